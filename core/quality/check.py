"""A quality check as a background job: embed, then the fidelity panel, then the label-noise audit.

`start_check` stores a report row and enqueues a "quality" job; the worker calls `run(db, job)` in the
job's own process, which fills the report (`db.quality`) and reports progress into the jobs table.
`compute` is the same work without the job, for tests and the benchmark.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from core.keys import mask
from core.quality import audit as audit_mod
from core.quality import fidelity
from core.quality.embeddings import MODEL_NAME, Embedder, embed
from db import jobs as jobq
from db import quality as q
from db.projects import get_project


@dataclass
class CheckSettings:
    near_copy_threshold: float = fidelity.NEAR_COPY_THRESHOLD
    folds: int = audit_mod.FOLDS
    seed: int = 0
    embedding_model: str = MODEL_NAME

    def errors(self) -> list[str]:
        errs = []
        if not 0 < self.near_copy_threshold <= 1:
            errs.append("The near-copy threshold is a cosine similarity between 0 and 1.")
        if self.folds < 2:
            errs.append("The audit needs at least 2 folds.")
        return errs


def start_check(db, project_id: int, run_ids: list[int], settings: CheckSettings | None = None) -> dict:
    """Store a queued report and its job. Raises ValueError when there is nothing to check."""
    settings = settings or CheckSettings()
    errs = settings.errors()
    if errs:
        raise ValueError(" ".join(errs))
    if not q.synthetic_rows(db, project_id, run_ids):
        raise ValueError("There are no synthetic observations to check: generate a run first.")
    if not q.real_rows(db, project_id, "train"):
        raise ValueError("The project has no real train observations to compare with: import real data first.")
    report_id = q.create_report(db, project_id, run_ids, asdict(settings))
    runs = ", ".join(str(r) for r in sorted(run_ids)) or "all"
    job_id = jobq.enqueue(db, "quality", {"report_id": report_id}, project_id, title=f"Quality check · runs {runs}")
    q.set_report_job(db, report_id, job_id)
    return {"report_id": report_id, "job_id": job_id}


def load_corpus(db, project_id: int, run_ids: list[int], embedder=None, progress=None) -> fidelity.Corpus:
    real = fidelity.corpus_rows(q.real_rows(db, project_id, "train"))
    synthetic = fidelity.corpus_rows(q.synthetic_rows(db, project_id, run_ids))
    vectors = embed(db, real + synthetic, embedder, progress)
    return fidelity.Corpus(real, vectors[: len(real)], synthetic, vectors[len(real) :])


def compute(db, report_id: int, progress=None, embedder=None) -> None:
    """Fill report `report_id`: fidelity rows, per-observation near-copy and audit columns, audit summary."""
    report = q.get_report(db, report_id)
    project = get_project(db, report["project_id"])
    settings = CheckSettings(**report["settings"])
    say = progress or (lambda *_: None)
    say(0, 1, "Embedding texts (cached texts are skipped)")
    corpus = load_corpus(
        db, project.id, report["run_ids"], embedder, lambda d, t: say(d, t, f"Embedding texts: {d}/{t}")
    )
    labels = list(project.label_codes)
    facets = {f.name: list(f.values) for f in project.facets}
    verdicts = q.clinician_verdicts(db, project.id)
    rows = fidelity.panel(
        corpus, labels, facets, verdicts, settings.seed, lambda d, t: say(d, t, f"Fidelity panel: group {d}/{t}")
    )
    q.store_fidelity(db, report_id, rows)
    copies = fidelity.near_copies(corpus, settings.near_copy_threshold)
    q.store_items(db, report_id, copies)
    items = audit_mod.audit(
        corpus.real,
        corpus.real_vectors,
        corpus.synthetic,
        corpus.synthetic_vectors,
        labels,
        settings.seed,
        lambda d, t: say(d, t, f"Label-noise audit: model {d}/{t}"),
    )
    q.store_items(db, report_id, items)
    summary = {
        "audited": len(items),
        "flagged": sum(it["audit_flagged"] for it in items),
        "near_copies": sum(it["near_copy"] for it in copies),
        "vs_clinician": audit_mod.agreement(items, verdicts),
    }
    q.store_audit_summary(db, report_id, summary)


def run(db, job) -> str:
    """The "quality" job handler."""
    report_id = job["config"]["report_id"]
    q.set_report_status(db, report_id, "running")

    def progress(done, total, message):
        jobq.progress(db, job["id"], done, total, message)

    try:
        compute(db, report_id, progress, Embedder())
    except jobq.Cancelled:
        q.set_report_status(db, report_id, "cancelled", "Interrupted: cancelled by the user")
        raise
    except Exception as exc:
        q.set_report_status(db, report_id, "failed", f"Interrupted: {mask(f'{type(exc).__name__}: {exc}')}")
        raise
    q.set_report_status(db, report_id, "done")
    summary = q.get_report(db, report_id)["audit"]
    return (
        f"Checked {summary['audited']} synthetic observations: {summary['flagged']} disputed by the audit, "
        f"{summary['near_copies']} near-copies of real text"
    )
