"""An experiment's frozen training data: built once when the experiment is created, trained on by every seed.

`freeze` builds the three sets (core.training.dataset.build) with the generation runs resolved — an empty
run filter means "every run finished now", and a run still generating cannot be chosen — and stores every
observation id with the labels used for it and where they came from (original, corrected by a reviewer,
or vouched for by the LLM judge), the split set in force, the selection and the counts, with a sha256 over
a canonical serialisation. `load` turns a manifest back into `TrainingData` by reading the texts by id;
a text deleted or edited since is refused with a message, never silently dropped.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, replace

from core.data.resplit import current_split_set
from core.training.config import DataSelection
from core.training.dataset import Example, TrainingData, build, uses_judge
from db import manifests as mq
from db import training as q

SHORT = 12  # characters of the hash shown on pages


class ManifestError(ValueError):
    """The manifest cannot be used as it was frozen (texts deleted or changed, runs still generating)."""


def resolve_runs(db, project_id: int, selection: DataSelection) -> tuple[DataSelection, dict]:
    """The selection with its generation runs made explicit, and how the run filter was read."""
    if selection.kind != "augmented":
        return selection, {"run_filter": "none (baseline)", "run_ids": []}
    generating = set(mq.generating_run_ids(db, project_id))
    chosen = [r for r in selection.run_ids if r in generating]
    if chosen:
        listed = ", ".join(f"#{r}" for r in chosen)
        raise ManifestError(
            f"Generation run(s) {listed} are still generating: wait until they finish, or leave them out."
        )
    finished = [r for r in q.synthetic_choices(db, project_id)["run_ids"] if r not in generating]
    if selection.run_ids:
        return selection, {"run_filter": "chosen runs", "run_ids": sorted(selection.run_ids)}
    how = {"run_filter": "every run finished at creation", "run_ids": finished}
    if not generating:
        return selection, how  # nothing is generating: the unfiltered read is exactly the finished runs
    return replace(selection, run_ids=finished or [-1]), how


def _label_source(ex: Example, stored: dict[int, list[str]], judged: bool) -> str:
    if ex.source == "real":
        return "original"
    if sorted(stored.get(ex.observation_id, [])) != sorted(ex.labels):
        return "corrected"
    return "judged" if judged else "original"


def canonical(label_codes: list[str], selection: dict, rows: list[tuple]) -> bytes:
    """The bytes the content hash is taken over: the label order and every row's role, source, labels, label
    source and text key, sorted. Database ids and the selection (recorded beside) are left out, so the same
    data has the same hash in another database, after a study bundle renumbers it, or in a cell file."""
    head = json.dumps({"labels": label_codes}, separators=(",", ":"))
    body = "\n".join(sorted(json.dumps(list(r[1:]), separators=(",", ":")) for r in rows))
    return (head + "\n" + body).encode()


def content_hash(label_codes: list[str], selection: dict, rows: list[tuple]) -> str:
    return hashlib.sha256(canonical(label_codes, selection, rows)).hexdigest()


def freeze(db, project_id: int, selection: DataSelection) -> dict:
    """Build the training data once and store it as a manifest; returns its id, hash and counts.

    Raises ValueError (ManifestError) when a chosen generation run is still generating."""
    snap = snapshot(db, project_id, selection)
    manifest_id = mq.insert_manifest(
        db, project_id, snap["split_set_id"], snap["data"].label_codes, snap["record"], snap["counts"], snap["sha256"],
        snap["rows"],
    )  # fmt: skip
    return {"manifest_id": manifest_id, "sha256": snap["sha256"], "counts": snap["counts"], "data": snap["data"]}


def snapshot(db, project_id: int, selection: DataSelection) -> dict:
    """What `freeze` would store, without storing it: the rows, the record, the counts and the content hash
    (so a study can tell whether an existing baseline trained on exactly today's data)."""
    resolved, runs = resolve_runs(db, project_id, selection)
    split_set_id = current_split_set(db, project_id)
    data = build(db, project_id, resolved)
    synthetic_ids = [ex.observation_id for ex in data.train if ex.source == "synthetic"]
    stored = mq.stored_labels(db, synthetic_ids)
    judged = uses_judge(selection)
    keys = {i: key for i, (_, key) in mq.texts(db, [ex.observation_id for ex in _all(data)]).items()}
    rows = [
        (
            ex.observation_id,
            role,
            ex.source,
            json.dumps(list(ex.labels)),
            _label_source(ex, stored, judged),
            keys[ex.observation_id],
        )
        for role, examples in (("train", data.train), ("validation", data.validation), ("test", data.test))
        for ex in examples
    ]
    record = {**asdict(selection), **runs}
    counts = {**data.summary(), "composition": data.composition()}
    counts["label_sources"] = {s: sum(r[4] == s for r in rows) for s in ("original", "corrected", "judged")}
    sha = content_hash(data.label_codes, record, rows)
    return {"split_set_id": split_set_id, "record": record, "counts": counts, "rows": rows, "sha256": sha, "data": data}


def _all(data: TrainingData) -> list[Example]:
    return [*data.train, *data.validation, *data.test]


def load(db, manifest_id: int) -> TrainingData:
    """The manifest as TrainingData, texts read by id; ManifestError when a text was deleted or changed."""
    manifest = mq.get_manifest(db, manifest_id)
    if manifest is None:
        raise ManifestError(f"The experiment's training manifest #{manifest_id} no longer exists.")
    rows = mq.manifest_rows(db, manifest_id)
    found = mq.texts(db, [r["observation_id"] for r in rows])
    short = manifest["content_sha256"][:SHORT]
    missing = [r["observation_id"] for r in rows if r["observation_id"] not in found]
    if missing:
        raise ManifestError(
            f"{len(missing)} observation(s) of this experiment's frozen training data (manifest {short}) were "
            f"deleted after it was created (ids {_ids(missing)}): it cannot train on the same data again. "
            "Start a new experiment to train on the data as it is now."
        )
    changed = [r["observation_id"] for r in rows if found[r["observation_id"]][1] != r["text_key"]]
    if changed:
        raise ManifestError(
            f"{len(changed)} text(s) of this experiment's frozen training data (manifest {short}) changed after "
            f"it was created (ids {_ids(changed)}): it cannot train on the same data again."
        )
    return from_rows(manifest, [{**r, "text": found[r["observation_id"]][0]} for r in rows])


def from_rows(manifest: dict, rows: list[dict]) -> TrainingData:
    """TrainingData from manifest rows that carry their text (from the database or from a cell file)."""
    sets: dict[str, list[Example]] = {"train": [], "validation": [], "test": []}
    for r in sorted(rows, key=lambda r: (r["role"], r["source"], r["observation_id"])):
        sets[r["role"]].append(Example(r["observation_id"], r["text"], tuple(r["labels"]), r["source"]))
    counts = manifest["counts"]
    return TrainingData(
        list(manifest["label_codes"]),
        sets["train"],
        sets["validation"],
        sets["test"],
        dropped_overlap=counts.get("dropped_overlap", 0),
        dropped_quality=counts.get("dropped_quality", 0),
        unknown_labels=dict(counts.get("unknown_labels", {})),
        real_left_out=counts.get("real_left_out", 0),
    )


def verified_hash(db, manifest_id: int, data: TrainingData) -> str:
    """The content hash of the data a run is about to train on, recomputed from it; ManifestError when it
    is not the hash the manifest was stored with."""
    manifest = mq.get_manifest(db, manifest_id)
    sources = {r["observation_id"]: r["label_source"] for r in mq.manifest_rows(db, manifest_id)}
    keys = {i: key for i, (_, key) in mq.texts(db, list(sources)).items()}
    rows = [
        (
            ex.observation_id,
            role,
            ex.source,
            json.dumps(list(ex.labels)),
            sources[ex.observation_id],
            keys[ex.observation_id],
        )
        for role, examples in (("train", data.train), ("validation", data.validation), ("test", data.test))
        for ex in examples
    ]
    sha = content_hash(data.label_codes, manifest["selection"], rows)
    if sha != manifest["content_sha256"]:
        raise ManifestError(
            f"The training data read back does not match manifest {manifest['content_sha256'][:SHORT]}."
        )
    return sha[:SHORT]


def _ids(ids: list[int]) -> str:
    shown = ", ".join(map(str, ids[:10]))
    return shown + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")


def describe(manifest: dict | None) -> dict:
    """What pages show of a manifest: short hash, set sizes, label sources and the run filter."""
    if manifest is None:
        return {"hash": "", "hash_short": "—", "summary": "built when each seed started (before manifests)"}
    c = manifest["counts"]
    sel = manifest["selection"]
    runs = sel.get("run_filter", "")
    if sel.get("run_ids") and sel.get("kind") == "augmented":
        runs += " (" + ", ".join(f"#{r}" for r in sel["run_ids"]) + ")"
    src = c.get("label_sources", {})
    return {
        "hash": manifest["content_sha256"],
        "hash_short": manifest["content_sha256"][:SHORT],
        "train_real": c.get("train_real", 0),
        "train_synthetic": c.get("train_synthetic", 0),
        "validation": c.get("validation", 0),
        "test": c.get("test", 0),
        "split_set_id": manifest["split_set_id"],
        "summary": (
            f"train {c.get('train_real', 0)} real + {c.get('train_synthetic', 0)} synthetic, validation "
            f"{c.get('validation', 0)}, test {c.get('test', 0)}; labels: {src.get('corrected', 0)} corrected, "
            f"{src.get('judged', 0)} judged; runs: {runs}; split set #{manifest['split_set_id']}"
        ),
    }
