"""Whether a process still runs, and ending a process with everything it started: shared by the job worker,
training under torchrun and the embedded LLM server's watchdog."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import time
from pathlib import Path


def alive(pid: int | None) -> bool:
    """True while `pid` runs (a zombie, which still answers kill(0), counts as gone)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return True


def descendants(pid: int) -> list[int]:
    """Every live process under `pid` (children, grandchildren, ...), from /proc; a torchrun's ranks start
    their own sessions, so a process group does not reach them but this does."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(c) for c in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            found += children
            todo += children
    return found


def kill_tree(pid: int, wait_s: float = 10.0) -> None:
    """End a process and everything it started: SIGTERM to all (so each can clean up), then SIGKILL to any
    still there after `wait_s`. The tree is read first, so children re-parented meanwhile are not missed."""
    tree = [pid, *descendants(pid)]
    for target in tree:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(target, signal.SIGTERM)
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and any(alive(p) for p in tree):
        tree += [d for p in tree if alive(p) for d in descendants(p) if d not in tree]
        time.sleep(0.1)
    for target in tree:
        if alive(target):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(target, signal.SIGKILL)


def die_with_parent() -> None:
    """For `preexec_fn`: ask the kernel to send this process SIGTERM when its parent dies (even by SIGKILL)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
