"""Queueing a planned grid: every cell and the shared baseline become experiments, stored as one study."""

from __future__ import annotations

from core.studies.plan import StudyPlan, cells, config, pool_problem, real_counts, shared_baseline
from core.training.config import DataSelection
from core.training.dataset import build, pin_quality_report
from core.training.job import start_experiment
from db import studies as q
from db.connection import immediate
from db.projects import get_project


def queue_study(db, project_id: int, plan: StudyPlan, name: str = "") -> int:
    """Store the study, queue the baseline and one experiment per cell; returns the study id. A baseline with
    the same settings and seeds on exactly today's real data (an earlier study's) is shared, not trained again.

    Every setting and pool is checked before anything is written, so a bad form leaves the database as it was.
    """
    project = get_project(db, project_id)
    if project is None:
        raise ValueError(f"Project {project_id} does not exist.")
    problems = plan.errors(project.label_codes)
    problems += [p for p in (pool_problem(db, project_id, pool) for pool in plan.pools) if p]
    problems += build(db, project_id, DataSelection()).problems()  # the baseline must be able to train
    if problems:
        raise ValueError(" ".join(problems))
    grid = cells(plan, real_counts(db, project_id))
    configs = [config(plan, cell) for cell in grid]
    for cfg in configs:
        cfg.validate()
        pin_quality_report(db, project_id, cfg.data)  # raises for a filter without its check or judge run
    shared = shared_baseline(db, project_id, plan)
    name = name.strip() or f"Study of {len(grid)} cells"
    # One transaction: a failure while queueing cell 7 of 24 leaves no half-queued study behind (and the worker
    # cannot start a cell's job before the whole grid is stored).
    with immediate(db):
        study_id = q.create_study(db, project_id, name, plan.to_dict())
        if shared is None:
            shared = {"id": start_experiment(db, project_id, config(plan, None), f"{name} · baseline")["experiment_id"]}
        q.set_baseline(db, study_id, shared["id"])
        for cell, cfg in zip(grid, configs, strict=True):
            queued = start_experiment(db, project_id, cfg, f"{name} · {cell.name}")
            q.add_cell(
                db, study_id, cell.position, cell.name, cell.params() | {"caps": cell.caps}, queued["experiment_id"]
            )
    return study_id
