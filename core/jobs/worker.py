"""The background worker: one supervisor process per database, one child process per job.

The app starts the supervisor (`ensure_worker`); it holds a lock file beside the database so only
one runs. It claims queued jobs, runs each in its own process (so a crash, an out-of-memory kill or
a cancel never takes the app or other jobs down), notices children that died, and exits when the
app that started it is gone. A job left "running" by a dead worker is resumed (generation: its
unfinished cells) or failed with the reason; it is never left "running".
"""

from __future__ import annotations

import argparse
import fcntl
import importlib
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from dataclasses import dataclass, field
from datetime import UTC
from pathlib import Path

from core.data.pending_import import discard_dead
from core.jobs.gpus import allocate, device_count, gpu_ids, processes_problem, training_slots
from core.jobs.processes import alive, die_with_parent, kill_tree
from core.keys import mask
from db import connect, db_path
from db import jobs as jobq
from db.connection import is_locked, open_private_log, retry_locked
from db.generation import leases
from db.import_staging import remove_stale

# kind -> "module:function"; a handler is called as handler(db, job) in the job's own process.
HANDLERS = {
    "generation": "core.generation.job:run",
    "training": "core.training.job:run",
    "quality": "core.quality.check:run",
    "judge": "core.quality.judge_job:run",
}
# Kinds whose handler can pick up where a dead process left off.
RESUMABLE = {"generation", "judge"}
# How many jobs of each kind may run at once (2 CPU cores: one training at a time). Training gets one slot
# per visible GPU instead when the machine has GPUs (core.jobs.gpus).
SLOTS = {"generation": 2, "training": 1, "quality": 1, "judge": 2}
STALE_AFTER_S = 120
POLL_S = 0.5


def lock_path(path: Path) -> Path:
    return path.with_name(path.name + ".worker.lock")


def worker_running(path: Path | None = None) -> bool:
    """True if a supervisor holds the lock for this database."""
    path = Path(path or db_path())
    lock = lock_path(path)
    if not lock.exists():
        return False
    with open(lock, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
    return False


def ensure_worker(path: Path | None = None, parent_pid: int | None = None) -> subprocess.Popen | None:
    """Start the supervisor for this database unless one already runs. Returns the new process."""
    path = Path(path or db_path()).resolve()
    if os.environ.get("STUDIO_WORKER", "on") == "off" or worker_running(path):
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "core.jobs.worker", "--db", str(path), "--parent-pid", str(parent_pid or os.getpid())]
    log = open_private_log(path.with_name(path.name + ".worker.log"))
    return subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[2], stdout=log, stderr=subprocess.STDOUT)


def recover_orphans(db, own_children: set[int] = frozenset()) -> list[int]:
    """Resume or fail jobs marked running whose process is gone. Returns the job ids touched."""
    touched = []
    for job in jobq.running(db):
        pid = job["worker_pid"]
        if pid in own_children and alive(pid):
            continue
        if alive(pid) and pid not in own_children and not _stale(job):
            continue  # another live process owns it
        reason = f"The process running this job (pid {pid}) stopped before it finished."
        if not alive(pid):
            leases.release_leases(db, leases.lease_owner(pid, job["id"]))  # its claims died with it
        if job["kind"] in RESUMABLE and not job["cancel_requested"]:
            jobq.log(db, job["id"], reason + " Resuming its unfinished work.", "warning")
            jobq.requeue(db, job["id"], "Resumed after the worker stopped")
        elif job["cancel_requested"]:
            jobq.finish(db, job["id"], "cancelled", "Cancelled")
        else:
            jobq.log(db, job["id"], reason, "error")
            jobq.finish(db, job["id"], "failed", "Worker stopped", error=reason)
        touched.append(job["id"])
    close_interrupted(db)
    return touched


def close_interrupted(db) -> None:
    """A quality check or judge run whose job ended without it (killed, crashed, cancelled while queued) says
    so, with the reason, instead of reading "running" for ever; a new one can then start."""
    for table in jobq.OUTCOME_TABLES:
        jobq.close_rows_of_ended_jobs(db, table)


def _stale(job: dict) -> bool:
    from datetime import datetime

    if not job["heartbeat_utc"]:
        return True
    beat = datetime.fromisoformat(job["heartbeat_utc"])
    return (datetime.now(UTC) - beat).total_seconds() > STALE_AFTER_S


def run_job(path: Path, job_id: int) -> int:
    """Run one claimed job in this process; the handler reports through the jobs table."""
    # SIGTERM (the supervisor stopping) unwinds the job, so its `finally` blocks stop what it started.
    if threading.current_thread() is threading.main_thread():  # (a test may run a job in a thread)
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    db = connect(path)
    job = jobq.get(db, job_id)
    if job is None:
        return 0  # deleted with its project before it started
    jobq.set_pid(db, job_id, os.getpid())
    if os.environ.get("CUDA_VISIBLE_DEVICES") is not None and job["kind"] == "training":
        jobq.log(db, job_id, f"Runs with CUDA_VISIBLE_DEVICES={os.environ['CUDA_VISIBLE_DEVICES']}.")
    module_name, func_name = HANDLERS[job["kind"]].split(":")
    try:
        handler = getattr(importlib.import_module(module_name), func_name)
        message = handler(db, job) or "Finished"
        retry_locked(jobq.finish, db, job_id, "done", message, owner_pid=os.getpid())
        return 0
    except jobq.Cancelled:
        current = jobq.get(db, job_id)
        if current is None or current["worker_pid"] != os.getpid():
            return 0  # the job went with its project, or another process owns it now: nothing to record here
        retry_locked(jobq.log, db, job_id, "Cancelled by the user.", "warning")
        retry_locked(jobq.finish, db, job_id, "cancelled", "Cancelled", owner_pid=os.getpid())
        return 0
    except Exception as exc:  # the job fails with its reason; the worker lives on
        if jobq.get(db, job_id) is None:
            return 0
        # Masked: an HTTP library's error can quote a header, key and all, and the Jobs page shows this.
        retry_locked(jobq.log, db, job_id, mask(traceback.format_exc()), "error")
        error = mask(f"{type(exc).__name__}: {exc}")
        retry_locked(jobq.finish, db, job_id, "failed", "Failed", error=error, owner_pid=os.getpid())
        return 1


@dataclass
class Supervisor:
    path: Path
    parent_pid: int | None = None
    children: dict[int, tuple[int, str, subprocess.Popen]] = field(default_factory=dict)  # job id -> (pid, kind, proc)
    stopping: bool = False
    gpu_count: int | None = None  # None: what the machine shows (core.jobs.gpus.device_count)
    job_gpus: dict[int, list[str]] = field(default_factory=dict)  # job id -> the GPU ids it was given

    def __post_init__(self):
        count = device_count() if self.gpu_count is None else self.gpu_count
        self.gpu_ids = gpu_ids(count, os.environ.get("CUDA_VISIBLE_DEVICES"))

    def loop(self) -> None:
        try:
            db = retry_locked(connect, self.path)
            retry_locked(recover_orphans, db)
            retry_locked(discard_dead, db)  # the rows of imports killed before this start
            last_recover = time.monotonic()
            while not self.stopping:
                if self.parent_pid and not alive(self.parent_pid):
                    break
                try:
                    self._reap(db)
                    if time.monotonic() - last_recover > 10:
                        recover_orphans(db, {pid for pid, _, _ in self.children.values()})
                        last_recover = time.monotonic()
                    self._start_jobs(db)
                except sqlite3.OperationalError as exc:
                    if not is_locked(exc):
                        raise
                    # A long write (a bundle import, a deleted project) holds the database: this round is skipped, the next one retries.
                    print(f"Supervisor: the database is locked; trying again. ({exc})", flush=True)
                time.sleep(POLL_S)
        finally:
            self._stop_children()  # whatever ended the loop, no job process is left running without it

    def _free_kinds(self) -> list[str]:
        busy = {}
        for _, kind, _ in self.children.values():
            busy[kind] = busy.get(kind, 0) + 1
        slots = {**SLOTS, "training": training_slots(len(self.gpu_ids))}
        return [kind for kind in HANDLERS if busy.get(kind, 0) < slots.get(kind, 1)]

    def _gpus_for_next_training(self, db) -> list[str] | None | bool:
        """GPU ids for the next queued training job; None when it must wait for GPUs to free up; False when
        the machine has no GPUs (or no training job waits)."""
        if not self.gpu_ids:
            return False
        waiting = jobq.next_queued(db, "training")
        if waiting is None:
            return False
        wanted = int(waiting["config"].get("processes", 1))
        problem = processes_problem(wanted, len(self.gpu_ids))
        if problem:
            job = jobq.claim_next(db, ["training"])
            jobq.log(db, job["id"], problem, "error")
            jobq.finish(db, job["id"], "failed", "Too few GPUs", error=problem)
            return self._gpus_for_next_training(db)
        return allocate(self.gpu_ids, self.job_gpus.values(), wanted)

    def _start_jobs(self, db) -> None:
        while kinds := self._free_kinds():
            gpus = self._gpus_for_next_training(db) if "training" in kinds else False
            if gpus is None:  # the next training job waits for its GPUs; other kinds still start
                kinds = [k for k in kinds if k != "training"]
                if not kinds:
                    return
            job = jobq.claim_next(db, kinds)
            if job is None:
                return
            env = None
            if job["kind"] == "training" and gpus:
                # One GPU per job (or the job's torchrun ranks across its GPUs): each sees only its own.
                env = {**os.environ, "CUDA_VISIBLE_DEVICES": ",".join(gpus)}
                self.job_gpus[job["id"]] = gpus
            cmd = [sys.executable, "-m", "core.jobs.worker", "--db", str(self.path), "--run-job", str(job["id"])]
            # The job goes with the supervisor, even a SIGKILLed one (and takes its own children with it).
            proc = subprocess.Popen(cmd, cwd=Path(__file__).resolve().parents[2], preexec_fn=die_with_parent, env=env)
            jobq.set_pid(db, job["id"], proc.pid)
            self.children[job["id"]] = (proc.pid, job["kind"], proc)

    def _reap(self, db) -> None:
        for job_id, (_pid, _kind, proc) in list(self.children.items()):
            code = proc.poll()
            if code is None:
                continue
            del self.children[job_id]
            self.job_gpus.pop(job_id, None)
            leases.release_leases(db, leases.lease_owner(_pid, job_id))  # its claims died with it
            job = jobq.get(db, job_id)
            if job and job["status"] == "running":
                # The child died without recording an outcome: a signal, out of memory, a crash.
                how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
                reason = f"The job's process {how} before it finished."
                if code == -signal.SIGKILL:
                    reason += " (SIGKILL is what the kernel sends when memory runs out.)"
                if job["kind"] in RESUMABLE and not job["cancel_requested"]:
                    jobq.log(db, job_id, reason + " Resuming its unfinished work.", "warning")
                    jobq.requeue(db, job_id, "Resumed after its process died")
                else:
                    jobq.log(db, job_id, reason, "error")
                    jobq.finish(db, job_id, "failed", "Process died", error=reason)
                close_interrupted(db)

    def _stop_children(self) -> None:
        # Each job with every process it started (a training job's torchrun and its ranks).
        for _, _, proc in self.children.values():
            kill_tree(proc.pid)
            proc.wait()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Background worker for the studio's jobs.")
    parser.add_argument("--db", type=Path, default=None)
    parser.add_argument("--parent-pid", type=int, default=None)
    parser.add_argument("--run-job", type=int, default=None)
    parser.add_argument("--gpus", type=int, default=None, help="GPUs to schedule training on (default: all visible)")
    args = parser.parse_args(argv)
    path = (args.db or db_path()).resolve()
    if args.run_job is not None:
        return run_job(path, args.run_job)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path(path), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return 0  # another supervisor serves this database
        remove_stale(path)  # staging files of imports killed before this start
        sup = Supervisor(path, args.parent_pid, gpu_count=args.gpus)

        def stop(*_):
            sup.stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        sup.loop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
