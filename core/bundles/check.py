"""Everything checked before an import writes a row: the file is a bundle, of a format version this app
reads, every member is whole and unchanged, and every table and column fits this app's schema.

A bundle made by an older app imports when its columns map onto today's tables (a column added since gets
its default); one made under migrations this app does not know is refused, since its rows may mean more.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

from core.bundles.export import DATA_MEMBER, MANIFEST, BundleError
from core.bundles.spec import BY_NAME, FORMAT, FORMAT_VERSION
from db import bundles as q

MAX_MANIFEST_BYTES = 50 * 2**20


def max_unpacked_bytes() -> int:
    """The most a bundle may unpack to (`STUDIO_BUNDLE_MAX_GB`, default 20): a small file that unpacks to
    terabytes (a zip bomb) is refused before anything is written."""
    return int(float(os.environ.get("STUDIO_BUNDLE_MAX_GB", "20")) * 2**30)


@dataclass
class OpenedBundle:
    manifest: dict
    data: Path  # the extracted study.sqlite, checked against its SHA-256 (model folders beside it)


def open_bundle(source: Path, workdir: Path, name: str | None = None) -> OpenedBundle:
    """Read and verify the bundle at `source` (`name`: how messages call it), extracting it into `workdir`."""
    name = name or Path(source).name
    try:
        zf = zipfile.ZipFile(source)
    except zipfile.BadZipFile:
        raise BundleError(f"{name} is not a study bundle: it is not a zip file (or it was cut short).") from None
    except OSError as exc:
        raise BundleError(f"{name} cannot be read: {exc.strerror or exc}.") from None
    with zf:
        manifest = _manifest(zf, name)
        members = manifest.get("members")
        if not isinstance(members, dict) or DATA_MEMBER not in members:
            raise BundleError(f"{name}: the manifest lists no {DATA_MEMBER}.")
        present = set(zf.namelist()) - {MANIFEST}
        if missing := sorted(set(members) - present):
            raise BundleError(f"{name}: member {missing[0]} is missing from the file.")
        if extra := sorted(present - set(members)):
            raise BundleError(f"{name}: member {extra[0]} is not in the manifest; the file was changed.")
        _check_size(zf, list(members), Path(workdir), name)
        for member, expected in members.items():
            target = (Path(workdir) / member).resolve()
            if Path(workdir).resolve() not in target.parents:
                raise BundleError(f"{name}: member {member} points outside the bundle.")
            target.parent.mkdir(parents=True, exist_ok=True)
            _extract_checked(zf, member, expected, target, name)
    return OpenedBundle(manifest, Path(workdir) / DATA_MEMBER)


def _check_size(zf: zipfile.ZipFile, members: list[str], workdir: Path, name: str) -> None:
    # A member never unpacks to more than the size its zip header declares (zipfile stops there), so the
    # declared sizes bound what extraction can write.
    unpacked = sum(zf.getinfo(m).file_size for m in members)
    if unpacked > max_unpacked_bytes():
        raise BundleError(
            f"{name} would unpack to {unpacked / 2**30:,.1f} GB, more than the {max_unpacked_bytes() / 2**30:,.1f} GB "
            "allowed (STUDIO_BUNDLE_MAX_GB); nothing was imported."
        )
    free = shutil.disk_usage(workdir).free
    if unpacked > free:
        raise BundleError(
            f"{name} would unpack to {unpacked / 2**30:,.2f} GB but only {free / 2**30:,.2f} GB are free where it is "
            "unpacked; nothing was imported."
        )


def _manifest(zf: zipfile.ZipFile, name: str) -> dict:
    try:
        if zf.getinfo(MANIFEST).file_size > MAX_MANIFEST_BYTES:
            raise BundleError(f"{name}: member {MANIFEST} is implausibly large; it is not a study bundle of this app.")
        raw = zf.read(MANIFEST)
    except KeyError:
        raise BundleError(f"{name} is not a study bundle: it has no {MANIFEST}.") from None
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise BundleError(f"{name}: member {MANIFEST} is damaged ({exc}).") from None
    try:
        manifest = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{name}: member {MANIFEST} is not valid JSON ({exc}).") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BundleError(f"{name} is not a study bundle of this app (its manifest names no {FORMAT!r} format).")
    version = manifest.get("format_version")
    if not isinstance(version, int):
        raise BundleError(f"{name}: the manifest has no format version.")
    if version > FORMAT_VERSION:
        raise BundleError(
            f"{name} is a study bundle of format version {version}, made by a newer version of the app; this one "
            f"reads up to version {FORMAT_VERSION}. Update the app to import it."
        )
    return manifest


def _extract_checked(zf: zipfile.ZipFile, member: str, expected: dict, target: Path, name: str) -> None:
    digest = hashlib.sha256()
    try:
        with zf.open(member) as src, open(target, "wb") as out:
            for block in iter(lambda: src.read(1 << 20), b""):
                digest.update(block)
                out.write(block)
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise BundleError(f"{name}: member {member} is damaged or cut short ({exc}); nothing was imported.") from None
    if digest.hexdigest() != expected.get("sha256"):
        raise BundleError(
            f"{name}: member {member} does not match the SHA-256 in the manifest: the file was changed or cut "
            "short; nothing was imported."
        )


def check_schema(db, manifest: dict, name: str) -> dict[str, list[str]]:
    """The columns to copy per table; raises when the bundle needs a schema this app does not have.
    `db` has the bundle attached."""
    known = set(q.migrations_applied(db))
    unknown = [m for m in manifest.get("migrations", []) if m not in known]
    if unknown:
        raise BundleError(
            f"{name} was made by a newer version of the app: its schema has migrations this app does not know "
            f"({', '.join(unknown[:3])}{'…' if len(unknown) > 3 else ''}). Update the app to import it."
        )
    in_bundle = q.tables(db, q.ALIAS)
    listed = manifest.get("tables", {})
    copy: dict[str, list[str]] = {}
    for table in in_bundle:
        if table not in BY_NAME:
            raise BundleError(f"{name}: table {table} is not one this app imports.")
        ours = {c["name"]: c for c in q.columns(db, table)}
        theirs = [c["name"] for c in q.columns(db, table, q.ALIAS)]
        if strange := [c for c in theirs if c not in ours]:
            raise BundleError(f"{name}: table {table} has column {strange[0]}, which this app does not have.")
        needed = [c for c, info in ours.items() if info["notnull"] and info["default"] is None and not info["pk"]]
        if lacking := [c for c in needed if c not in theirs]:
            raise BundleError(f"{name}: table {table} lacks column {lacking[0]}, which this app requires.")
        rows = q.count(db, table)
        if table in listed and listed[table].get("rows") != rows:
            raise BundleError(
                f"{name}: table {table} holds {rows} rows, the manifest says {listed[table].get('rows')}."
            )
        copy[table] = theirs
    if missing := [t for t in listed if t not in copy]:
        raise BundleError(f"{name}: table {missing[0]} named in the manifest is missing from {DATA_MEMBER}.")
    if "projects" not in copy or q.count(db, "projects") != 1:
        raise BundleError(f"{name}: the bundle must hold exactly one project.")
    return copy


def check_database(db, name: str) -> None:
    """The extracted member is a SQLite database in good order (`db` has it attached)."""
    try:
        result = db.execute(f"PRAGMA {q.ALIAS}.quick_check").fetchone()[0]
    except sqlite3.DatabaseError as exc:
        raise BundleError(f"{name}: member {DATA_MEMBER} is not a readable database ({exc}).") from None
    if result != "ok":
        raise BundleError(f"{name}: member {DATA_MEMBER} is damaged ({result}).")
