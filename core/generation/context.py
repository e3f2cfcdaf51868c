"""Whether one call's prompt and answer fit the model's context window, checked before a run starts.

Context windows are known for the embedded model (the llama.cpp server is started with `--n_ctx 2048`) and
for common hosted model families; for any other model the check says the window is unknown rather than
guessing. `STUDIO_CONTEXT_TOKENS` (e.g. `my-model=4096,other=32768`) adds or overrides windows by model name.
"""

from __future__ import annotations

import os

from core.generation.connections import EMBEDDED_MODEL

EMBEDDED_CONTEXT_TOKENS = 2048  # core.generation.embedded_server starts llama.cpp with this n_ctx

# Longest prefix wins: model name (lower case) prefix -> context window in tokens.
KNOWN_CONTEXT_TOKENS = {
    EMBEDDED_MODEL.lower(): EMBEDDED_CONTEXT_TOKENS,
    "gpt-3.5-turbo": 16_385,
    "gpt-4": 8_192,
    "gpt-4-32k": 32_768,
    "gpt-4-turbo": 128_000,
    "gpt-4o": 128_000,
    "gpt-4.1": 1_047_576,
    "gpt-5": 400_000,
    "o1": 200_000,
    "o3": 200_000,
    "o4-mini": 200_000,
}


def _overrides() -> dict[str, int]:
    out = {}
    for part in os.environ.get("STUDIO_CONTEXT_TOKENS", "").split(","):
        name, _, value = part.partition("=")
        if name.strip() and value.strip().isdigit():
            out[name.strip().lower()] = int(value)
    return out


def context_tokens(model: str) -> int | None:
    """The model's context window in tokens, or None when it is not known."""
    name = model.lower()
    overrides = _overrides()
    if name in overrides:
        return overrides[name]
    matches = [prefix for prefix in KNOWN_CONTEXT_TOKENS if name.startswith(prefix)]
    return KNOWN_CONTEXT_TOKENS[max(matches, key=len)] if matches else None


def fit_warning(model: str, prompt_tokens: int, answer_tokens: int) -> str | None:
    """A warning when the longest prompt plus its answer cannot fit the model's context, else None."""
    window = context_tokens(model)
    if window is None or prompt_tokens + answer_tokens <= window:
        return None
    return (
        f"{model}: one call's prompt is about {prompt_tokens:,} tokens and its answer about {answer_tokens:,}, "
        f"but the model's context holds {window:,} tokens — these calls will fail or be cut off. Ask for fewer "
        "observations per call, use fewer few-shot examples, shorten the template, or choose a model with a "
        "longer context."
    )
