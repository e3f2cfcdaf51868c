"""The example study that ships with the app, and the note every page shows for a project made from it.

assets/example/hoc_quick_study.zip is a study bundle made by `bench.study` (see its manifest's `about`:
the command, the settings and the date), so a fresh install opens on real synthetic data, reviews and results.
"""

from __future__ import annotations

import json
from pathlib import Path

from core.bundles.importer import Imported, import_bundle
from db import bundles as q

EXAMPLE = Path(__file__).resolve().parent.parent.parent / "assets" / "example" / "hoc_quick_study.zip"


def load_example(db, path: Path = EXAMPLE) -> Imported:
    """Import the shipped example study as a new project (each load makes another one)."""
    return import_bundle(db, path)


def origin(db, project_id: int) -> dict | None:
    """How the project came here from a bundle: file, when, and the bundle's `about`; None if it did not."""
    found = q.imported_from(db, project_id)
    if found is None:
        return None
    manifest = json.loads(found["manifest_json"])
    return {
        "filename": found["filename"],
        "imported_utc": found["created_utc"],
        "exported_utc": manifest.get("created_utc", ""),
        "about": manifest.get("about") or {},
    }


def note(db, project_id: int) -> str | None:
    """One short Markdown note for an example study (how it was made), or for any other imported study."""
    found = origin(db, project_id)
    if found is None:
        return None
    about = found["about"]
    if about.get("example"):
        settings = ", ".join(f"{k}={v}" for k, v in (about.get("settings") or {}).items())
        return (
            f"**Example study**: one run of `{about.get('command', '?')}` on {about.get('made_utc', '?')[:10]} "
            f"({about.get('summary', '')}). Settings: {settings}. Its reviews are scripted (a keyword rule, "
            "not a clinician) and its training is deliberately short: the figures show the pipeline, not a finding."
        )
    return f"Imported from the study bundle {found['filename']} (exported {found['exported_utc'][:10]})."
