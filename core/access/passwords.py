"""The researcher's password, kept only as an Argon2 hash (environment or .streamlit/secrets.toml)."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

ENV_VAR = "STUDIO_PASSWORD_HASH"
SECRETS_KEY = "researcher_password_hash"
SECRETS_FILE = Path(".streamlit") / "secrets.toml"
HOW_TO_SET = f"set {ENV_VAR} (or {SECRETS_KEY} in .streamlit/secrets.toml) to a hash made by `make password-hash`"

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("A researcher password has at least 8 characters.")
    return _hasher.hash(password)


def configured_hash(secrets_file: Path = SECRETS_FILE) -> str | None:
    """The researcher's password hash, from the environment first, then the secrets file; None if unset."""
    value = os.environ.get(ENV_VAR, "").strip()
    if not value and secrets_file.is_file():
        try:
            value = str(tomllib.loads(secrets_file.read_text()).get(SECRETS_KEY, "")).strip()
        except (tomllib.TOMLDecodeError, OSError):
            value = ""
    return value or None


def hash_problem(password_hash: str | None) -> str | None:
    """Why this value cannot serve as the password hash (None when it can): a plain password is refused."""
    if not password_hash:
        return "no researcher password is set"
    if not password_hash.startswith("$argon2"):
        return "the researcher password setting is not an Argon2 hash (a plain password is never accepted)"
    return None


def verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
