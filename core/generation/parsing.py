"""Turning a model's answer into observations: JSON first, then a tolerant fallback for servers that ignore it.

We ask for `{"observations": ["...", ...]}` through `response_format` (a JSON schema). Servers and small
models do not always comply, so `parse_response` also accepts: JSON inside a code fence, JSON followed or
preceded by chatter, a bare JSON list, JSON cut off by the token limit (the complete strings are kept),
and numbered or bulleted lists. It never raises: a failure comes back with its reason, and the caller
keeps the raw text.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

OBSERVATIONS_SCHEMA = {
    "type": "object",
    "properties": {"observations": {"type": "array", "items": {"type": "string"}}},
    "required": ["observations"],
    "additionalProperties": False,
}

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)(?:```|$)", re.DOTALL)
_JSON_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"', re.DOTALL)
_LIST_ITEM = re.compile(r"^\s*(?:\d{1,3}[.)]|[-*•])\s+(.+?)\s*$")
_WORD = re.compile(r"[^\W\d_]{2,}")
# Keys a model might use instead of "observations".
_LIST_KEYS = ("observations", "sentences", "items", "texts", "examples", "results", "data")
_TEXT_KEYS = ("text", "observation", "sentence", "content", "description")


@dataclass
class ParseResult:
    observations: list[str] = field(default_factory=list)
    method: str | None = None  # json, fenced_json, embedded_json, truncated_json, list, lines
    error: str | None = None

    @property
    def ok(self) -> bool:
        return bool(self.observations)


def response_format(n: int, mode: str = "json_schema") -> dict | None:
    """The `response_format` parameter for a request, by what the server understands."""
    schema = json.loads(json.dumps(OBSERVATIONS_SCHEMA))
    items = schema["properties"]["observations"]
    items["maxItems"] = max(1, n)
    if mode == "json_schema":
        # OpenAI's strict mode allows no array length or string length keywords.
        items.pop("maxItems")
        return {"type": "json_schema", "json_schema": {"name": "observations", "strict": True, "schema": schema}}
    if mode == "json_object":
        # llama.cpp's server: a grammar from the schema; ask for real sentences, not "..." placeholders.
        items["minItems"] = 1
        items["items"]["minLength"] = 20
        items["items"]["maxLength"] = 300
        return {"type": "json_object", "schema": schema}
    return None


def clean_observation(text) -> str | None:
    """Strip list markers, quotes and whitespace; None for items that are not prose (placeholders, numbers)."""
    if isinstance(text, dict):
        text = next((text[k] for k in _TEXT_KEYS if isinstance(text.get(k), str)), None)
    if not isinstance(text, str):
        return None
    text = " ".join(text.split())
    item = _LIST_ITEM.match(text)
    if item:
        text = item.group(1)
    text = text.strip().strip("\"'“”‘’").strip()
    if len(_WORD.findall(text)) < 2 or _looks_like_debris(text):
        return None
    return text


# Small models sometimes answer with pieces of code or of the JSON they were asked for; a fragment
# that starts mid-syntax or is mostly symbols is not an observation.
_DEBRIS_START = tuple("]}{)*;,.:/\\|")


def _looks_like_debris(text: str) -> bool:
    visible = [c for c in text if not c.isspace()]
    letters = sum(c.isalpha() for c in visible)
    return text.startswith(_DEBRIS_START) or letters < 0.6 * len(visible)


def _from_json(value) -> list[str] | None:
    if isinstance(value, dict):
        for key in _LIST_KEYS:
            if isinstance(value.get(key), list):
                return [o for o in map(clean_observation, value[key]) if o]
        lists = [v for v in value.values() if isinstance(v, list)]
        if len(lists) == 1:
            return [o for o in map(clean_observation, lists[0]) if o]
        single = clean_observation(value)
        return [single] if single else None
    if isinstance(value, list):
        return [o for o in map(clean_observation, value) if o]
    return None


def _first_json_value(text: str):
    """Decode the first JSON object or list in text that has other text around it."""
    decoder = json.JSONDecoder(strict=False)  # models put raw newlines inside strings
    for match in re.finditer(r"[\[{]", text):
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except ValueError:
            continue
        if isinstance(value, (dict, list)):
            return value
    return None


def _truncated_strings(text: str) -> list[str]:
    """The complete string items of a JSON list cut off by a token limit."""
    start = text.find("[")
    if start < 0:
        return []
    items = []
    for match in _JSON_STRING.finditer(text, start + 1):
        try:
            items.append(json.loads(f'"{match.group(1)}"', strict=False))
        except ValueError:
            continue
    return [o for o in map(clean_observation, items) if o]


def parse_response(content: str | None, n: int | None = None) -> ParseResult:
    """Observations from an answer's text; at most n are kept when n is given."""
    if content is None or not content.strip():
        return ParseResult(error="The answer is empty.")
    text = content.strip()
    result = _parse(text)
    if result.observations and n:
        result.observations = result.observations[:n]
    if not result.observations and not result.error:
        result.error = "No observations found in the answer."
    return result


def _parse(text: str) -> ParseResult:
    try:
        found = _from_json(json.loads(text, strict=False))
        if found is not None:
            return ParseResult(found, "json")
    except ValueError:
        pass
    fence = _FENCE.search(text)
    inner = fence.group(1).strip() if fence else None
    if inner:
        try:
            found = _from_json(json.loads(inner, strict=False))
            if found is not None:
                return ParseResult(found, "fenced_json")
        except ValueError:
            pass
    embedded = _first_json_value(text)
    if embedded is not None:
        found = _from_json(embedded)
        if found:
            return ParseResult(found, "embedded_json")
    source = inner or text
    if source.lstrip().startswith(("{", "[")):
        found = _truncated_strings(source)
        if found:
            return ParseResult(found, "truncated_json")
        return ParseResult(error="The answer looks like JSON but no complete observation could be read from it.")
    items = [m.group(1) for m in map(_LIST_ITEM.match, text.splitlines()) if m]
    found = [o for o in map(clean_observation, items) if o]
    if found:
        return ParseResult(found, "list")
    # Plain prose: one observation per line, skipping lead-ins such as "Here are three observations:".
    lines = [line for line in text.splitlines() if line.strip() and not line.rstrip().endswith(":")]
    found = [o for o in map(clean_observation, lines) if o]
    if found:
        return ParseResult(found, "lines")
    return ParseResult(error="No observations found in the answer.")
