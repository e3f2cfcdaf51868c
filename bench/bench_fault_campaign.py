"""Fault campaign: a generation run (against a fake server that also fails on purpose), a stream of imports, two
reviewers answering a sample through the Review page's functions and a training job on a tiny BERT all go on
at once while random processes are SIGKILLed — the supervisor, a generation or training job process, an
importer, a reviewer — 30+ times, each restarted; after every kill the invariants are checked:

  integrity      PRAGMA integrity_check is ok
  no loss        every cell seen done stays done with the same observations; every finished import keeps
                 all its rows; every review answer a reviewer saw acknowledged is stored, once
  once           no cell holds observations of two calls, nor more than it asked for
  training       every training run that ended either has its metrics or failed with a reason
  jobs           at the end every job is done, or failed / cancelled with a reason; the runs are complete;
                 a failed training run started again finishes with its metrics; no import's staging
                 file is left (a killed import's is removed by the next one)
  paid once      the fake server counts usable answers per request seed (the engine derives the seed from
                 the cell and the try); no cell was paid for more than once, except answers the server sent
                 that never reached the call log (the process was killed between the server's answer and
                 its log line): those are counted and reported apart, as "paid, never logged"

Prints `BENCH fault_campaign: ratio=<checks passed / checks made> value=<kills> kills baseline=<checks> checks`.
Run alone: `python -m bench fault_campaign` (or `python -m bench.bench_fault_campaign`).
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from bench.common import report
from core.generation import connections as conns
from core.generation import plan as planning
from core.generation import runs as gen
from core.generation.prompts import AUTISM_SYSTEM, AUTISM_USER, cell_key
from core.generation.requests import try_seed
from core.jobs.processes import alive, descendants
from core.review import sampling as rs
from core.training.config import TrainingConfig
from core.training.job import start_experiment
from db import connect
from db import training as training_q
from db.generation import templates as template_q
from db.projects import Facet, Label, create_project, get_project
from db.review import samples as sample_q
from tests.fake_openai import MODEL, FakeOpenAI
from tests.review_fixtures import autism_project, fill_runs
from tests.training_fixtures import tiny_bert, tiny_project

ROOT = Path(__file__).resolve().parent.parent
KILLS = int(os.environ.get("FAULT_KILLS", "32"))
IMPORT = """
import sys
from core.data.importer import ImportSettings, import_file
from db import connect
import_file(connect(sys.argv[1]), int(sys.argv[2]), sys.argv[3], ImportSettings(text_column="text", labels_column="labels"))
"""
# A reviewer as the Review page works: resume at the first unanswered item, save the verdict, go on. Each
# item id is printed only once its save returned: that is the acknowledgement the campaign holds it to.
REVIEWER = """
import sys, time
from core.review import queue as rq
from db import connect
from db.projects import get_project
from db.review import answers
db = connect(sys.argv[1])
project = get_project(db, int(sys.argv[2]))
sample_id, reviewer_id = int(sys.argv[3]), int(sys.argv[4])
while (position := rq.resume_position(answers.queue_states(db, sample_id, reviewer_id))) is not None:
    item = rq.load_item(db, project, sample_id, reviewer_id, position)
    rq.set_verdict(db, project, item.item_id, reviewer_id, "correct")
    print(item.item_id, flush=True)
    time.sleep(0.1)
"""


class Campaign:
    def __init__(self, folder: Path):
        self.folder = folder
        self.path = folder / "studio.db"
        self.db = connect(self.path)
        # 100 ms answers: a job process is often killed with calls in flight, whose answers are paid, never logged.
        self.fake = FakeOpenAI(latency_s=0.1, timeout_sleep_s=1.0).start()
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
        self.review_project = autism_project(self.db)
        fill_runs(self.db, self.review_project, per_cell=10)
        self.reviewers: dict[int, subprocess.Popen | None] = {
            sample_q.add_reviewer(self.db, self.review_project, name): None for name in ("Ann", "Bob")
        }
        self.acked: dict[int, set[int]] = {r: set() for r in self.reviewers}  # reviewer -> item ids acknowledged
        self.sample_id = self.new_sample()
        self.training_project = tiny_project(self.db, name="Training")
        self.bert = tiny_bert(folder / "tiny-bert")
        self.training_runs: list[int] = []
        self.run_no = 0
        self.run_configs: dict[int, planning.RunConfig] = {}
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

    def new_sample(self) -> int:
        self.samples = getattr(self, "samples", 0) + 1
        spec = {"kind": "fraction", "fraction": 1.0}
        return rs.create_sample(self.db, self.review_project, [1, 2], spec, seed=self.samples).sample_id

    def start_reviewer(self, reviewer_id: int) -> None:
        cmd = [sys.executable, "-c", REVIEWER, str(self.path), str(self.review_project), str(self.sample_id)]
        proc = subprocess.Popen(
            [*cmd, str(reviewer_id)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
        )
        self.reviewers[reviewer_id] = proc

        def read() -> None:  # every line is an answer whose save returned
            for line in proc.stdout:
                self.acked[reviewer_id].add(int(line))

        threading.Thread(target=read, daemon=True).start()

    def keep_reviewing(self) -> None:
        for reviewer_id, proc in self.reviewers.items():
            if proc is None or proc.poll() is not None:
                self.start_reviewer(reviewer_id)  # killed, or through its queue: it resumes where it stopped

    def start_run(self) -> int:
        """A generation run with a seed of its own, so each request seed belongs to one cell of one run."""
        self.run_no += 1
        models = [{"connection_id": self.connection_id, "model": MODEL}]
        plan = planning.Plan(["A1", "A2", "B1", "B2"], {"gender": ["boy", "girl"]}, models, per_cell=40, per_call=1)
        config = planning.RunConfig(retry_base_s=0.05, max_attempts=6, seed=1000 + self.run_no)
        run_id = gen.start_run(self.db, self.project, self.version_id, plan, config)
        self.run_configs[run_id] = config
        return run_id

    def keep_training(self) -> None:
        """A training job always about: a new one once the last has ended (how a user starts it again)."""
        if self.training_runs:
            training_q.reconcile_runs(self.db, self.training_project)
            if training_q.get_run(self.db, self.training_runs[-1])["status"] in ("queued", "running"):
                return
        config = TrainingConfig(
            base_model=str(self.bert), epochs=20, batch_size=8, learning_rate=1e-3, max_length=32, seeds=[1],
            mixed_precision=False, early_stopping_patience=0,
        )  # fmt: skip
        self.training_runs += start_experiment(self.db, self.training_project, config)["run_ids"]

    def victims(self) -> list[tuple[str, int]]:
        found = []
        if self.supervisor and self.supervisor.poll() is None:
            found.append(("supervisor", self.supervisor.pid))
            kinds = dict(self.db.execute("SELECT worker_pid, kind FROM jobs WHERE status = 'running'").fetchall())
            for pid in descendants(self.supervisor.pid):
                if alive(pid):
                    found.append((f"{kinds.get(pid, 'generation')} job process", pid))
        if self.importer and self.importer.poll() is None:
            found.append(("importer", self.importer.pid))
        found += [("reviewer", p.pid) for p in self.reviewers.values() if p is not None and p.poll() is None]
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
        for reviewer_id, acked_so_far in self.acked.items():
            acked = set(acked_so_far)  # taken before the query: each of these was committed before it ran
            stored = dict(
                db.execute(
                    "SELECT item_id, COUNT(*) FROM reviews WHERE reviewer_id = ? AND verdict = 'correct' GROUP BY item_id",
                    [reviewer_id],
                ).fetchall()
            )
            wrong = [i for i in acked if stored.get(i) != 1]
            self.check("an acknowledged answer is stored once", not wrong, f"reviewer {reviewer_id}: {wrong[:5]}")
        training_q.reconcile_runs(db, self.training_project)
        for run_id in self.training_runs:
            run = training_q.get_run(db, run_id)
            if run["status"] == "done":
                ok = bool(training_q.test_metrics(db, run_id)) and bool(training_q.epoch_metrics(db, run_id))
                self.check("a finished training run has its metrics", ok, f"training run {run_id}")
            elif run["status"] in ("failed", "cancelled"):
                self.check("a training run that stopped says why", bool(run["error"]), f"training run {run_id}")

    def paid_once(self) -> int:
        """Check that no cell was paid for twice; return the answers paid that never reached the call log."""
        paid = dict(self.fake.answers_by_seed)
        logged: dict[int, int] = {}
        for (params_json,) in self.db.execute(
            "SELECT params_json FROM llm_calls WHERE cell_id IS NOT NULL AND http_status = 200 AND parse_error IS NULL"
        ):
            seed = json.loads(params_json).get("seed")
            logged[seed] = logged.get(seed, 0) + 1
        never_logged, twice, uncounted = 0, [], []
        for cell in self.db.query("SELECT * FROM generation_cells"):
            key = cell_key(cell["label_code"], cell["facets_json"], cell["model"], cell["cell_index"])
            config = self.run_configs[cell["run_id"]]
            seeds = {try_seed(config, key, attempt) for attempt in range(1, cell["attempts"] + 3)}
            recorded = sum(min(paid.get(s, 0), logged.get(s, 0)) for s in seeds)
            never_logged += sum(max(paid.get(s, 0) - logged.get(s, 0), 0) for s in seeds)
            if recorded > 1:
                twice.append(cell["id"])
            if cell["status"] == "done" and recorded == 0:
                uncounted.append(cell["id"])
        self.check("no cell paid twice (beyond answers never logged)", not twice, str(twice[:5]))
        self.check("the server counted the answer of every done cell", not uncounted, str(uncounted[:5]))
        return never_logged

    # -- the campaign

    def run(self) -> None:
        run_id = self.start_run()
        self.keep_training()
        self.start_supervisor()
        self.start_import()
        self.keep_reviewing()
        while self.kills < KILLS:
            time.sleep(self.rng.uniform(1.0, 3.0))  # long enough for restarted processes to get to work
            self.fake.inject(*self.rng.sample(["500", "429", "timeout", "truncated"], k=1))
            if self.importer.poll() is not None:
                self.start_import()
            if self.supervisor.poll() is not None:
                self.start_supervisor()
            if all(p.poll() == 0 for p in self.reviewers.values()):
                self.sample_id = self.new_sample()  # both through the sample: a new one to review
            self.keep_reviewing()
            self.keep_training()
            choices = self.victims()
            if not choices:
                continue
            jobs = [c for c in choices if c[0].endswith("job process")]
            kind, pid = self.rng.choice(jobs if jobs and self.rng.random() < 0.5 else choices)
            if kind == "generation job process":  # mostly with calls in flight: answered, paid, never logged
                wait_until = time.monotonic() + 2
                while self.fake.in_flight == 0 and time.monotonic() < wait_until:
                    time.sleep(0.01)
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                continue  # it finished while the campaign waited for calls in flight
            self.kills += 1
            self.killed[kind] = self.killed.get(kind, 0) + 1
            time.sleep(0.2)
            self.check_invariants()
            if gen.run_counts(self.db, run_id)["cells_queued"] == 0 and self.kills < KILLS:
                run_id = self.start_run()  # more work to kill
        # Let everything finish with nobody killed, then the final checks.
        if self.supervisor.poll() is not None:
            self.start_supervisor()
        if self.importer.poll() is not None:
            self.start_import()
        self.keep_reviewing()
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            training_q.reconcile_runs(self.db, self.training_project)
            if training_q.get_run(self.db, self.training_runs[-1])["status"] in ("failed", "cancelled"):
                self.keep_training()  # a training run killed last is started again, as a user would, and must finish
            active = self.db.execute("SELECT COUNT(*) FROM jobs WHERE status IN ('queued', 'running')").fetchone()[0]
            busy = [p for p in [self.importer, *self.reviewers.values()] if p.poll() is None]
            if not active and not busy:
                break
            time.sleep(1)
        self.check_invariants()
        last = training_q.get_run(self.db, self.training_runs[-1])
        self.check("a training run started again finishes", last["status"] == "done", str(last["error"]))
        for reviewer_id in self.reviewers:
            answered = self.db.execute(
                "SELECT COUNT(*) FROM reviews WHERE reviewer_id = ? AND item_id IN"
                " (SELECT id FROM sample_items WHERE sample_id = ?)",
                [reviewer_id, self.sample_id],
            ).fetchone()[0]
            size = sample_q.sample_size(self.db, self.sample_id)
            self.check(
                "a restarted reviewer finishes the sample, each item once", answered == size, f"{answered}/{size}"
            )
        self.never_logged = self.paid_once()
        left = sorted(p.name for p in self.folder.glob(f"{self.path.name}.import-*"))
        self.check("no staging file is left once imports are done", not left, str(left))
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
        for proc in self.reviewers.values():
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
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
        answers = {r: len(a) for r, a in campaign.acked.items()}
        training = dict(db.execute("SELECT status, COUNT(*) FROM training_runs GROUP BY status").fetchall())
        print(f"  review answers acknowledged per reviewer: {answers}; training runs: {training}", flush=True)
        print(
            f"  paid, never logged (killed between the server's answer and the call log): "
            f"{getattr(campaign, 'never_logged', 'not counted')}",
            flush=True,
        )
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
