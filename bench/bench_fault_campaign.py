"""Fault campaign: a generation run (against a fake server that also fails on purpose) and a stream of imports
go on at once while random processes are SIGKILLed — the supervisor, a job process, an importer — 30+ times,
each restarted; after every kill the invariants are checked:

  integrity      PRAGMA integrity_check is ok
  no loss        every cell seen done stays done with the same observations; every finished import keeps
                 all its rows
  once           no cell holds observations of two calls, nor more than it asked for
  jobs           at the end every job is done, or failed / cancelled with a reason; the run is complete

Prints `BENCH fault_campaign: ratio=<checks passed / checks made> value=<kills> kills baseline=<checks> checks`.
Run alone: `python -m bench fault_campaign` (or `python -m bench.bench_fault_campaign`).
Not covered yet: the two reviewers and the training job of the issue's campaign, and per-cell request counts
at the fake server (a call killed between the server's answer and its log line is paid and redone).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import report
from core.generation import connections as conns
from core.generation import plan as planning
from core.generation import runs as gen
from core.generation.prompts import AUTISM_SYSTEM, AUTISM_USER
from core.jobs.processes import alive, descendants
from db import connect
from db.generation import templates as template_q
from db.projects import Facet, Label, create_project, get_project
from tests.fake_openai import MODEL, FakeOpenAI

ROOT = Path(__file__).resolve().parent.parent
KILLS = int(os.environ.get("FAULT_KILLS", "32"))
IMPORT = """
import sys
from core.data.importer import ImportSettings, import_file
from db import connect
import_file(connect(sys.argv[1]), int(sys.argv[2]), sys.argv[3], ImportSettings(text_column="text", labels_column="labels"))
"""


class Campaign:
    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / "studio.db"
        self.db = connect(self.path)
        self.fake = FakeOpenAI(latency_s=0.03, timeout_sleep_s=1.0).start()
        self.fake.httpd.handle_error = lambda *_: None  # a client killed mid-request is the point, not news
        self.rng = random.Random(11)
        self.made = self.passed = self.kills = 0
        self.failures: list[str] = []
        self.done_cells: dict[int, set[int]] = {}  # cell id -> its observation ids, once seen done
        self.imports_seen: dict[int, int] = {}  # finished import id -> rows imported
        self.app = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(100000)"])
        self.supervisor: subprocess.Popen | None = None
        self.importer: subprocess.Popen | None = None
        self.import_no = 0
        self.killed: dict[str, int] = {}
        labels = [Label(c, f"Label {c}", "A behaviour.") for c in ("A1", "A2", "B1", "B2")]
        self.project = get_project(
            self.db, create_project(self.db, "Faults", labels=labels, facets=[Facet("gender", ("boy", "girl"))])
        )
        self.import_project = create_project(self.db, "Imports", labels=labels)
        template_id = template_q.create_template(self.db, self.project.id, "T", AUTISM_SYSTEM, AUTISM_USER)
        self.version_id = template_q.list_versions(self.db, template_id)[0]["id"]
        self.connection_id = conns.save_connection(
            self.db,
            conns.Connection(
                name="Fake", base_url=self.fake.base_url, models=(MODEL,), max_concurrency=4, timeout_s=0.6
            ),
        )

    # -- processes

    def start_supervisor(self) -> None:
        cmd = [sys.executable, "-m", "core.jobs.worker", "--db", str(self.path), "--parent-pid", str(self.app.pid)]
        log = open(self.folder / "worker.log", "a")
        self.supervisor = subprocess.Popen(cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)

    def start_import(self) -> None:
        self.import_no += 1
        path = self.folder / f"import{self.import_no}.csv"
        rows = [f"Imported observation {self.import_no}-{i} about {self.rng.random():.6f}." for i in range(1000)]
        path.write_text("text,labels\n" + "".join(f'"{t}",A1\n' for t in rows))
        cmd = [sys.executable, "-c", IMPORT, str(self.path), str(self.import_project), str(path)]
        self.importer = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def victims(self) -> list[tuple[str, int]]:
        found = []
        if self.supervisor and self.supervisor.poll() is None:
            found.append(("supervisor", self.supervisor.pid))
            found += [("job process", pid) for pid in descendants(self.supervisor.pid) if alive(pid)]
        if self.importer and self.importer.poll() is None:
            found.append(("importer", self.importer.pid))
        return found

    # -- checks

    def check(self, name: str, ok: bool, detail: str = "") -> None:
        self.made += 1
        self.passed += ok
        if not ok:
            self.failures.append(f"after kill {self.kills}: {name} {detail}")

    def check_invariants(self) -> None:
        db = self.db
        self.check("integrity", db.execute("PRAGMA integrity_check").fetchone()[0] == "ok")
        now_done = {r[0] for r in db.execute("SELECT id FROM generation_cells WHERE status = 'done'")}
        lost = [c for c in self.done_cells if c not in now_done]
        self.check("done cells stay done", not lost, str(lost[:5]))
        for cell_id in now_done:
            ids = {r[0] for r in db.execute("SELECT id FROM observations WHERE cell_id = ?", [cell_id])}
            if cell_id in self.done_cells and self.done_cells[cell_id] != ids:
                self.check("a done cell keeps its observations", False, str(cell_id))
            self.done_cells[cell_id] = ids
        twice = db.execute(
            "SELECT o.cell_id FROM observations o JOIN generation_cells c ON c.id = o.cell_id GROUP BY o.cell_id"
            " HAVING COUNT(DISTINCT o.call_id) > 1 OR COUNT(*) > MAX(c.n_requested)"
        ).fetchall()
        self.check("no cell stored twice", not twice, str(twice[:5]))
        for import_id, rows in db.execute("SELECT id, rows_imported FROM imports WHERE rows_imported IS NOT NULL"):
            stored = db.execute("SELECT COUNT(*) FROM observations WHERE import_id = ?", [import_id]).fetchone()[0]
            self.check("a finished import keeps its rows", stored == rows, f"import {import_id}: {stored}/{rows}")

    # -- the campaign

    def run(self) -> None:
        models = [{"connection_id": self.connection_id, "model": MODEL}]
        plan = planning.Plan(["A1", "A2", "B1", "B2"], {"gender": ["boy", "girl"]}, models, per_cell=40, per_call=1)
        config = planning.RunConfig(retry_base_s=0.05, max_attempts=6)
        run_id = gen.start_run(self.db, self.project, self.version_id, plan, config)
        self.start_supervisor()
        self.start_import()
        while self.kills < KILLS:
            time.sleep(self.rng.uniform(1.0, 3.0))  # long enough for restarted processes to get to work
            self.fake.inject(*self.rng.sample(["500", "429", "timeout", "truncated"], k=1))
            if self.importer.poll() is not None:
                self.start_import()
            if self.supervisor.poll() is not None:
                self.start_supervisor()
            choices = self.victims()
            if not choices:
                continue
            jobs = [c for c in choices if c[0] == "job process"]
            kind, pid = self.rng.choice(jobs if jobs and self.rng.random() < 0.5 else choices)
            os.kill(pid, signal.SIGKILL)
            self.kills += 1
            self.killed[kind] = self.killed.get(kind, 0) + 1
            time.sleep(0.2)
            self.check_invariants()
            if gen.run_counts(self.db, run_id)["cells_queued"] == 0 and self.kills < KILLS:
                run_id = gen.start_run(self.db, self.project, self.version_id, plan, config)  # more work to kill
        # Let everything finish with nobody killed, then the final checks.
        if self.supervisor.poll() is not None:
            self.start_supervisor()
        if self.importer.poll() is not None:
            self.start_import()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            active = self.db.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')").fetchone()[0]
            if not active and self.importer.poll() is not None:
                break
            time.sleep(1)
        self.check_invariants()
        jobs = list(self.db.query("SELECT id, status, error FROM jobs"))
        unfinished = [j for j in jobs if j["status"] not in ("done", "failed", "cancelled")]
        self.check("every job ends", not unfinished, str(unfinished[:3]))
        silent = [j for j in jobs if j["status"] == "failed" and not j["error"]]
        self.check("a failed job says why", not silent, str(silent[:3]))
        queued = self.db.execute("SELECT COUNT(*) FROM generation_cells WHERE status = 'queued'").fetchone()[0]
        self.check("the runs complete", queued == 0, f"{queued} cells still queued")

    def close(self) -> None:
        self.app.kill()
        self.app.wait()
        if self.supervisor:
            self.supervisor.wait(timeout=60)
        if self.importer and self.importer.poll() is None:
            self.importer.kill()
        self.fake.stop()


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        campaign = Campaign(Path(folder))
        try:
            campaign.run()
        finally:
            campaign.close()
        db = campaign.db
        cells = dict(db.execute("SELECT status, COUNT(*) FROM generation_cells GROUP BY status").fetchall())
        imports = db.execute("SELECT COUNT(*), COALESCE(SUM(rows_imported), 0) FROM imports").fetchone()
        jobs = dict(db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall())
        print(f"  killed: {campaign.killed}; cells: {cells}; jobs: {jobs}", flush=True)
        print(f"  imports finished: {imports[0]} ({imports[1]:,} rows) of {campaign.import_no} started", flush=True)
        for failure in campaign.failures[:20]:
            print("  check failed:", failure, flush=True)
        report(
            "fault_campaign",
            campaign.kills,
            "kills",
            campaign.made,
            "checks",
            ratio=campaign.passed / campaign.made if campaign.made else float("nan"),
        )


if __name__ == "__main__":
    main()
