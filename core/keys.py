"""API keys: where they are read from, how they are checked, and how they are masked in any text we keep.

A connection names where its key lives (an environment variable or a key in `.streamlit/secrets.toml`);
`secrets_paths` is the one place both the app and the background worker find that file, whatever their
working directory. `mask` is applied to every error text that can reach a page, a log or the database:
it hides the key itself and anything shaped like a credential (a `Bearer …` value, `sk-…` tokens, an
`api_key=…` pair, long mixed letter-and-digit tokens), because a proxy may echo a header we never saw.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MASK = "[redacted]"
# What the page's "environment variable" field accepts: a conventional variable name, never a key.
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
SECRET_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")

_PATTERNS = (
    # `Authorization: Bearer <token>` and `Bearer <token>` anywhere (a proxy echoing our header).
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[^\s\"',;}\]]+"), r"\1\2" + MASK),
    # `"api_key": "…"`, `x-api-key=…`, `token: …` pairs.
    (
        re.compile(
            r"(?i)\b((?:x-)?api[-_ ]?key|access[-_ ]?token|secret|token|password)(\"?'?\s*[:=]\s*\"?'?)([^\s\"',;}\]]{6,})"
        ),
        r"\1\2" + MASK,
    ),
    # Provider-style keys: sk-…, sk-proj-…, sk-ant-…, hf_…, gsk_…, AIza…
    (re.compile(r"\b(?:sk|rk|pk)-[A-Za-z0-9_\-]{8,}"), MASK),
    (re.compile(r"\b(?:hf|gsk|ghp|gho|xox[abp])_[A-Za-z0-9_\-]{8,}"), MASK),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"), MASK),
    # Any other long token mixing letters and digits: key-shaped, whoever sent it.
    (re.compile(r"\b(?=[A-Za-z0-9_\-]*\d)(?=[A-Za-z0-9_\-]*[A-Za-z])[A-Za-z0-9_\-]{32,}\b"), MASK),
)


class KeyProblem(RuntimeError):
    """The connection's key is missing or unusable; the message says where it looked, never the key."""


def secrets_paths() -> list[Path]:
    """Where secrets are read: `STUDIO_SECRETS` if set, else the app's own `.streamlit/secrets.toml`
    (next to app.py, not the working directory), then the user's `~/.streamlit/secrets.toml`."""
    override = os.environ.get("STUDIO_SECRETS")
    if override:
        return [Path(override)]
    return [ROOT / ".streamlit" / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml"]


def clean_key(value: str, where: str) -> str:
    """The key with surrounding whitespace removed; a key with spaces, line breaks or other characters an
    HTTP header cannot carry is refused (the HTTP library's error would quote the header, key and all)."""
    key = value.strip()
    if not key:
        raise KeyProblem(f"The API key in {where} is empty.")
    if any(not (33 <= ord(c) <= 126) for c in key):
        raise KeyProblem(
            f"The API key in {where} contains spaces, line breaks or non-ASCII characters; paste it again."
        )
    return key


def name_problem(label: str, value: str | None, pattern: re.Pattern = ENV_NAME) -> str | None:
    """Why a key-source name is refused (it looks like a key, or is not a plain name), or None."""
    if not value:
        return None
    if mask(value) != value or value.startswith(("sk-", "sk_")) or not pattern.match(value):
        if pattern is ENV_NAME:
            rule = "capital letters, digits and _, not starting with a digit, at most 64 characters"
        else:
            rule = "letters, digits, _ . -, at most 64 characters"
        return f"{label}: give the *name* where the key is kept ({rule}), not the key itself."
    return None


def mask(text: str | None, *keys: str | None) -> str | None:
    """The text with the given keys (as given and stripped) and anything credential-shaped replaced."""
    if not text:
        return text
    for key in keys:
        text = mask_key(text, key)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def mask_key(text: str | None, key: str | None) -> str | None:
    """Only the key itself masked: for a successful answer, which is otherwise kept verbatim."""
    stripped = (key or "").strip()  # the key as sent; also found inside any padded copy of it
    if text and len(stripped) >= 6:
        text = text.replace(stripped, MASK)
    return text
