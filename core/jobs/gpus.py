"""Which GPUs this machine shows, and which of them a training job gets.

The supervisor runs one training job per visible GPU at once, each with `CUDA_VISIBLE_DEVICES` set to
its own GPU, or one torchrun job across several GPUs when the experiment asks for more processes. Only
`device_count` looks at the machine (without importing torch in the long-lived supervisor); everything
else takes the count, so the allocation is the same code on a CPU-only machine in a test.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterable


def device_count() -> int:
    """GPUs this process may use: the entries of CUDA_VISIBLE_DEVICES when it is set, else what
    `nvidia-smi -L` lists (0 without an NVIDIA driver)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len(visible_ids(visible))
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(line.startswith("GPU ") for line in out.splitlines())


def visible_ids(visible: str) -> list[str]:
    """The entries of a CUDA_VISIBLE_DEVICES value; a '-1' or an empty value hides every GPU."""
    ids = [part.strip() for part in visible.split(",") if part.strip()]
    return [] if not ids or ids[0] == "-1" else ids


def gpu_ids(count: int, visible: str | None = None) -> list[str]:
    """The ids to hand out as CUDA_VISIBLE_DEVICES values: the visible list itself when one is set (a job's
    ids are then the parent's ids), else 0..count-1."""
    if visible is not None:
        return visible_ids(visible)[:count]
    return [str(i) for i in range(count)]


def training_slots(count: int) -> int:
    """How many training jobs run at once: one per GPU, one on a machine without."""
    return max(1, count)


def allocate(ids: list[str], busy: Iterable[list[str]], wanted: int) -> list[str] | None:
    """`wanted` GPUs nobody uses, lowest first; None when fewer are free."""
    taken = {gpu for gpus in busy for gpu in gpus}
    free = [gpu for gpu in ids if gpu not in taken]
    return free[:wanted] if len(free) >= wanted else None


def processes_problem(processes: int, count: int) -> str | None:
    """Why an experiment's process count cannot run on a machine with `count` GPUs (None when it can).
    Without GPUs, several processes train on the CPU (gloo), so any count runs."""
    if count and processes > count:
        return (
            f"The experiment asks for {processes} training processes (one per GPU) but this machine shows "
            f"{count} GPU{'s' if count != 1 else ''}: set Processes to {count} or fewer."
        )
    return None
