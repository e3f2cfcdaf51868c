"""Study outcome: a queued grid as a matrix of deltas with intervals and corrected flags, and what to pick."""

from __future__ import annotations

import streamlit as st

from core.results import caveats, comparison, tables
from core.studies import outcome
from db import db_path
from db import results as stored
from db import studies as study_q
from ui.common import current_project, db, ensure_shell, plain
from ui.study_outcome import costs, facet_sensitivity, matrix, operating_points, per_label
from ui.training_cells import cluster_export

ensure_shell()


@st.cache_data(max_entries=8, show_spinner="Summarising the study…")
def summarised(db_file: str, fingerprint: tuple, study_id: int, kind: str, interval: str, correction: str):
    # fingerprint (finished runs and their finish times) is part of the cache key on purpose.
    return outcome.summarise(db(), study_id, kind, interval, correction)


project = current_project()
database = db()
st.title(f"Study outcome · {project.name}")
studies = study_q.list_studies(database, project.id)
if not studies:
    st.info("No study in this project yet: plan and queue one on the Study planner page.")
    st.stop()

by_id = {s["id"]: s for s in studies}
left, mid, right = st.columns([3, 2, 2])
study_id = left.selectbox(
    "Study",
    list(by_id),
    format_func=lambda i: f"{by_id[i]['name']} ({by_id[i]['runs_done']}/{by_id[i]['runs']} runs done)",
)
interval = mid.radio("Interval", list(tables.INTERVALS), format_func=tables.INTERVALS.get)
correction = right.radio(
    "Correction for multiple comparisons", list(caveats.CORRECTION_NAMES), format_func=caveats.CORRECTION_NAMES.get
)
kind = st.radio(
    "Decision threshold", list(comparison.THRESHOLD_KINDS), index=1, format_func=comparison.THRESHOLD_KINDS.get,
    horizontal=True,
)  # fmt: skip
experiment_ids = [by_id[study_id]["baseline_experiment_id"]] + [
    c["experiment_id"] for c in study_q.cells(database, study_id)
]
with st.expander("Run this grid on a cluster"):
    st.caption(
        "Every seed of every cell (and the baseline) as a self-contained cell file with its frozen manifest, "
        "one command per cell and a SLURM array script; the results files come back on Train → Import results."
    )
    cluster_export([e for e in experiment_ids if e is not None], "study", st, "Export the grid for a cluster")
fingerprint = stored.runs_fingerprint(database, [e for e in experiment_ids if e is not None])
try:
    result = summarised(str(db_path().resolve()), fingerprint, study_id, kind, interval, correction)
except comparison.ComparisonError as exc:
    st.info(plain(f"{exc} Results appear here as the study's runs finish."))
    st.stop()
if result.waiting:
    st.warning(plain(f"{len(result.waiting)} cell(s) have no finished run yet: {', '.join(result.waiting)}."))
notes = result.results.comparison.notes + caveats.notes(result.results.comparison)
if len(notes) > 2:  # one line per cell would push the grid off the screen
    with st.expander(f"{len(notes)} notes on these runs", icon=":material/warning:"):
        for note in notes:
            st.warning(plain(note))
else:
    for note in notes:
        st.warning(plain(note))
if result.matrix.empty:
    st.info("No cell has a finished run yet.")
    st.stop()
matrix(result)
per_label(result)
costs(result)
operating_points(result)
facet_sensitivity(database, project, result)
