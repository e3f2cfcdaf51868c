"""Text normalisation shared by import and generation, so duplicate checks agree everywhere."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_SPACE = re.compile(r"\s+")
_PUNCT_EDGE = re.compile(r"^[\W_]+|[\W_]+$")


def normalise(text: str) -> str:
    """Case-, width- and whitespace-insensitive form of a text (for duplicate detection only)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _SPACE.sub(" ", text).strip()
    return _PUNCT_EDGE.sub("", text)


def text_key(text: str) -> str:
    """sha1 of the normalised text: equal keys mean exact duplicates up to case and spacing."""
    return hashlib.sha1(normalise(text).encode("utf-8")).hexdigest()
