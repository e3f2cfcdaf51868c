"""Results page render time: 20 runs × 10 labels × 5,000 test predictions vs an empty project.

Both are measured with Streamlit's AppTest (the whole page script, charts serialised) in the same
process. The study render clears the page's cache first, so it includes reading and comparing the
runs; the warm rerun (cache hit) is printed as a note.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = str(ROOT / "pages" / "results.py")
REPEATS = 3


def _render(project_id: int, clear: bool) -> tuple[float, object]:
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    if clear:
        st.cache_data.clear()
    at = AppTest.from_file(PAGE, default_timeout=120)
    at.session_state["project_id"] = project_id
    start = time.perf_counter()
    at.run()
    elapsed = (time.perf_counter() - start) * 1000
    if at.exception:
        raise RuntimeError(f"the Results page failed: {at.exception[0].value}")
    return elapsed, at


def main() -> None:
    from bench.common import report

    with tempfile.TemporaryDirectory() as tmp:
        os.environ["STUDIO_DB"] = str(Path(tmp) / "studio.db")
        os.environ["STUDIO_WORKER"] = "off"
        from db import connect
        from db.projects import Label, create_project
        from tests.results_fixtures import build_study

        db = connect()
        start = time.perf_counter()
        ids = build_study(db, n_test=5000, seeds=(1, 2, 3, 4, 5), augmented=3)
        runs = db.execute("SELECT COUNT(*) FROM training_runs").fetchone()[0]
        preds = db.execute("SELECT COUNT(*) FROM test_predictions").fetchone()[0]
        empty_id = create_project(db, "Empty project", labels=[Label("X", "X")])
        db.conn.close()
        print(f"    stored {runs} runs, {preds} test predictions in {time.perf_counter() - start:.1f} s", flush=True)

        _render(empty_id, clear=True)  # imports and first-run costs out of the way
        empty = statistics.median(_render(empty_id, clear=True)[0] for _ in range(REPEATS))
        study = []
        for _ in range(REPEATS):
            elapsed, at = _render(ids["project_id"], clear=True)
            study.append(elapsed)
        charts = len(at.get("plotly_chart"))
        warm_start = time.perf_counter()
        at.run()
        warm = (time.perf_counter() - warm_start) * 1000
        render = statistics.median(study)
        print(f"    {charts} charts; cold renders {[round(s) for s in study]} ms; warm rerun {warm:.0f} ms", flush=True)
        report("results_render", render, "ms", empty, "ms", ratio=render / empty)


if __name__ == "__main__":
    main()
