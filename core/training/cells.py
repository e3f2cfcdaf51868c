"""Experiments run beyond this machine: cell files out, results files back in.

`export_cells` writes one self-contained `cell-<run>.json` per seed (core.training.cell runs it without
the database), a `run_cells.sh` with the command per cell and a SLURM array script with one cell per task.
Runs still queued here are taken off the local queue so they are not trained twice. `import_results`
attaches a results file to its run after checking that the run exists and that it was trained on that
run's manifest; importing the same file again changes nothing.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import sys
from pathlib import Path

from core.training import manifest as frozen
from core.training.cell import CELL_FORMAT, RESULTS_FORMAT
from db import jobs as jobq
from db import manifests as mq
from db import training as q
from db.connection import immediate

ROOT = Path(__file__).resolve().parents[2]


class ResultsRefused(ValueError):
    """A results file that does not belong to this database's runs, or not to their manifest."""


def cell_for_run(db, run: dict) -> dict:
    """The self-contained cell of one run: config, manifest and the texts it names (ManifestError if gone)."""
    exp = q.get_experiment(db, run["experiment_id"])
    if not exp.get("manifest_id"):
        raise ValueError(
            f"Experiment '{exp['name']}' has no frozen manifest (it was created before manifests): re-create it "
            "to export it."
        )
    manifest = mq.get_manifest(db, exp["manifest_id"])
    data = frozen.load(db, exp["manifest_id"])  # refuses deleted or changed texts
    texts = {ex.observation_id: ex.text for ex in [*data.train, *data.validation, *data.test]}
    rows = [{**r, "text": texts[r["observation_id"]]} for r in mq.manifest_rows(db, exp["manifest_id"])]
    return {
        "format": CELL_FORMAT,
        "run_id": run["id"],
        "experiment_id": exp["id"],
        "experiment_name": exp["name"],
        "seed": run["seed"],
        "config": run["config"],
        "manifest": {
            "content_sha256": manifest["content_sha256"],
            "label_codes": manifest["label_codes"],
            "selection": manifest["selection"],
            "counts": manifest["counts"],
            "split_set_id": manifest["split_set_id"],
        },
        "rows": rows,
    }


def export_cells(db, experiment_ids: list[int], folder: Path, hold_local: bool = True) -> list[Path]:
    """Write cell-<run>.json for every seed of these experiments, plus run_cells.sh and slurm_array.sh.

    With `hold_local`, runs still queued here are taken off the local queue (they wait for their results
    file). Returns the cell files in run order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    runs = []
    for experiment_id in experiment_ids:
        found = q.list_runs(db, experiment_id=experiment_id)
        if not found:
            raise ValueError(f"Experiment {experiment_id} does not exist or has no runs.")
        runs += sorted(found, key=lambda r: r["id"])
    paths = []
    for run in runs:
        path = folder / f"cell-{run['id']}.json"
        path.write_text(json.dumps(cell_for_run(db, run)), encoding="utf-8")
        paths.append(path)
    _scripts(folder, [p.name for p in paths])
    if hold_local:
        for run, path in zip(runs, paths, strict=True):
            _hold(db, run, path.name)
    return paths


def _hold(db, run: dict, cell_name: str) -> None:
    if run["status"] != "queued" or not run["job_id"]:
        return
    jobq.request_cancel(db, run["job_id"])
    jobq.log(db, run["job_id"], f"Exported as {cell_name} to run elsewhere; its results file is imported here.")
    q.finish_run(db, run["id"], "cancelled", f"Exported as {cell_name}: import its results file on the Train page.")


def _scripts(folder: Path, cells: list[str]) -> None:
    root = shlex.quote(str(ROOT))
    python = shlex.quote(sys.executable)
    head = (
        "#!/usr/bin/env bash\n"
        "# Runs the exported experiment cells: one seed each, results-<run>.json beside its cell file.\n"
        f"# STUDIO_ROOT: the studio's code on this machine; PYTHON: its Python (defaults: where it was exported).\n"
        "set -euo pipefail\n"
        'HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"\n'
        f'cd "${{STUDIO_ROOT:-{root}}}"\n'
        f'PY="${{PYTHON:-{python}}}"\n'
    )
    lines = [
        f'"$PY" -m core.training.cell --config "$HERE/{c}" --out "$HERE/{c.replace("cell-", "results-")}"'
        for c in cells
    ]
    run_sh = folder / "run_cells.sh"
    run_sh.write_text(head + "\n".join(lines) + "\n", encoding="utf-8")
    run_sh.chmod(0o755)
    array = " ".join(shlex.quote(c) for c in cells)
    slurm = (
        "#!/usr/bin/env bash\n"
        "#SBATCH --job-name=studio-cells\n"
        f"#SBATCH --array=0-{len(cells) - 1}\n"
        "#SBATCH --gres=gpu:1\n"
        "#SBATCH --cpus-per-task=4\n"
        "#SBATCH --output=slurm-%A_%a.out\n"
        "# One exported cell per array task; submit from this folder: sbatch slurm_array.sh\n"
        "set -euo pipefail\n"
        'HERE="${SLURM_SUBMIT_DIR:-$(pwd)}"\n'
        f"CELLS=({array})\n"
        'CELL="${CELLS[$SLURM_ARRAY_TASK_ID]}"\n'
        f'cd "${{STUDIO_ROOT:-{root}}}"\n'
        f'"${{PYTHON:-{python}}}" -m core.training.cell --config "$HERE/$CELL" --out "$HERE/${{CELL/cell-/results-}}"\n'
    )
    (folder / "slurm_array.sh").write_text(slurm, encoding="utf-8")
    (folder / "slurm_array.sh").chmod(0o755)


def import_results(db, raw: bytes | str, name: str = "results file") -> dict:
    """Attach one results file to its run. Returns {run_id, status: 'imported' | 'already imported', message}.

    Raises ResultsRefused (nothing written) when the file is not a results file, names a run this database
    does not have, was trained on another manifest, or the run already has other results."""
    raw = raw.encode() if isinstance(raw, str) else raw
    try:
        results = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultsRefused(f"{name} is not a results file (not JSON: {exc}).") from None
    if not isinstance(results, dict) or results.get("format") != RESULTS_FORMAT:
        raise ResultsRefused(f"{name} is not a results file of an exported cell (expected format {RESULTS_FORMAT}).")
    run_id = results.get("run_id")
    run = q.get_run(db, run_id) if isinstance(run_id, int) else None
    if run is None:
        raise ResultsRefused(f"{name} is for run #{run_id}, which this database does not have.")
    manifest = mq.experiment_manifest(db, run["experiment_id"])
    theirs = str(results.get("manifest_sha256", ""))
    if manifest is None or manifest["content_sha256"] != theirs:
        ours = manifest["content_sha256"][: frozen.SHORT] if manifest else "none"
        raise ResultsRefused(
            f"{name} was trained on manifest {theirs[: frozen.SHORT] or '(none)'}, but run #{run_id}'s experiment "
            f"has manifest {ours}: these results are not of this run's data. Nothing was imported."
        )
    file_sha = hashlib.sha256(raw).hexdigest()
    before = mq.imported_result(db, run_id)
    if before and before["file_sha256"] == file_sha:
        return {"run_id": run_id, "status": "already imported", "message": f"{name}: run #{run_id} already has it."}
    if run["status"] == "done":
        where = "from another results file" if before else "trained here"
        raise ResultsRefused(
            f"Run #{run_id} already has results ({where}). Re-run the experiment for a new run, export that, and "
            "import its results."
        )
    _check_shape(db, results, manifest, name)
    with immediate(db):
        q.start_run(db, run_id, results.get("device") or "elsewhere")
        for e in results.get("epochs", []):
            q.add_epoch_metrics(
                db, run_id, e["epoch"], e["step"], e["train_loss"], e["val_loss"], e["val_micro_f1"], e["val_macro_f1"]
            )
        q.save_results(
            db,
            run_id,
            results["thresholds"],
            results["metrics"],
            [(int(i), probs) for i, probs in results["predictions"]],
            results.get("model_dir") or "",
            results.get("train_samples_per_s"),
        )
        mq.record_imported_result(db, run_id, theirs, file_sha, results.get("device"))
    return {"run_id": run_id, "status": "imported", "message": f"{name}: results attached to run #{run_id}."}


def _check_shape(db, results: dict, manifest: dict, name: str) -> None:
    if results.get("label_codes") != manifest["label_codes"]:
        raise ResultsRefused(f"{name}: its labels {results.get('label_codes')} are not the manifest's.")
    n = len(manifest["label_codes"])
    if any(len(p) != 2 or len(p[1]) != n for p in results.get("predictions", [])):
        raise ResultsRefused(f"{name}: every prediction must hold {n} probabilities, one per label.")
    if len(results.get("predictions", [])) != manifest["counts"].get("test", -1):
        raise ResultsRefused(
            f"{name}: {len(results.get('predictions', []))} test predictions, but the manifest's test set has "
            f"{manifest['counts'].get('test')}."
        )
    test_ids = {r["observation_id"] for r in mq.manifest_rows(db, manifest["id"]) if r["role"] == "test"}
    strays = [p[0] for p in results["predictions"] if p[0] not in test_ids]
    if strays:
        raise ResultsRefused(f"{name}: predictions for observations outside the manifest's test set ({strays[:5]}).")
    for key in ("metrics", "thresholds"):
        if key not in results:
            raise ResultsRefused(f"{name}: the '{key}' section is missing.")


def export_folder(db, experiment_ids: list[int]) -> Path:
    """A new folder for an export, beside the database: exports/cells-<experiments>-<time>."""
    from datetime import UTC, datetime

    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    name = "cells-" + "-".join(map(str, experiment_ids)) + f"-{stamp}"
    return q.database_file(db).parent / "exports" / name


def folder_zip(folder: Path) -> bytes:
    """The export folder as a ZIP (cells, run_cells.sh, slurm_array.sh) for the download button."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(Path(folder).iterdir()):
            if path.is_file():
                info = zipfile.ZipInfo(f"{Path(folder).name}/{path.name}")
                info.external_attr = (0o755 if path.suffix == ".sh" else 0o644) << 16
                zf.writestr(info, path.read_bytes(), zipfile.ZIP_DEFLATED)
    return buffer.getvalue()
