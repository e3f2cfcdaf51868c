"""Trained models in a bundle (optional, off by default): each run's `save_pretrained` folder as members
`models/<run id>/<file>`, hashed like every member; on import they land in fresh `run-<new id>-<random>` folders.
"""

from __future__ import annotations

import hashlib
import secrets
import shutil
import zipfile
from pathlib import Path

from db import bundles as q
from db import training as training_q

PREFIX = "models/"


def pack(db, zf: zipfile.ZipFile, run_ids: set[int]) -> dict[str, dict]:
    """Add the model folders of these training runs to the zip; return their members with SHA-256 and size."""
    members = {}
    for run_id, folder in sorted(q.model_dirs_of(db, sorted(run_ids)).items()):
        folder = Path(folder)
        if not folder.is_dir():
            continue
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            name = f"{PREFIX}{run_id}/{path.relative_to(folder).as_posix()}"
            digest = _sha256(path)
            zf.write(path, name)
            members[name] = {"sha256": digest, "bytes": path.stat().st_size}
    return members


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def place(db, extracted: Path, run_map) -> list[Path]:
    """Move each extracted run folder to a fresh model folder of its new run and record it; return the folders
    (removed by the caller if the import fails)."""
    placed = []
    root = training_q.models_root(db)
    source = extracted / PREFIX.rstrip("/")
    if not source.is_dir():
        return placed
    root.mkdir(parents=True, exist_ok=True)
    for folder in sorted(source.iterdir()):
        new_id = run_map(int(folder.name))
        if new_id is None:
            continue
        target = root / f"run-{new_id}-{secrets.token_hex(6)}"
        shutil.move(str(folder), target)
        placed.append(target)
        q.set_model_dir(db, new_id, str(target))
    return placed
