"""Saved LLM connections: any OpenAI-compatible endpoint, plus the embedded offline model.

A connection stores where its API key comes from — an environment variable or a key in
`.streamlit/secrets.toml` — never the key itself. Keys are resolved at call time and are never
written to the database, the call log or an export.
"""

from __future__ import annotations

import asyncio
import json
import os
import tomllib
from dataclasses import dataclass, field

from core.keys import ENV_NAME, SECRET_NAME, KeyProblem, clean_key, mask, name_problem, secrets_paths
from db.generation import connections as conn_q

EMBEDDED_NAME = "Embedded SmolLM2 (offline)"
EMBEDDED_MODEL = "SmolLM2-135M-Instruct"
# Local servers ignore the key but the SDK wants one.
NO_KEY = "not-needed"


@dataclass(frozen=True)
class Connection:
    name: str
    base_url: str
    models: tuple[str, ...]
    kind: str = "openai"  # 'openai' (any OpenAI-compatible server) or 'embedded'
    api_key_env: str | None = None
    api_key_secret: str | None = None
    price_in_per_1m: float = 0.0
    price_out_per_1m: float = 0.0
    max_concurrency: int = 4
    timeout_s: float = 60.0
    id: int | None = None

    @property
    def needs_key(self) -> bool:
        return bool(self.api_key_env or self.api_key_secret)

    def cost(self, tokens_in: int | None, tokens_out: int | None) -> float:
        return ((tokens_in or 0) * self.price_in_per_1m + (tokens_out or 0) * self.price_out_per_1m) / 1e6

    def snapshot(self) -> dict:
        """What a run records about the connection it used (no key, only where it came from)."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "base_url": self.base_url,
            "models": list(self.models),
            "api_key_env": self.api_key_env,
            "api_key_secret": self.api_key_secret,
            "price_in_per_1m": self.price_in_per_1m,
            "price_out_per_1m": self.price_out_per_1m,
            "max_concurrency": self.max_concurrency,
            "timeout_s": self.timeout_s,
        }


@dataclass(frozen=True)
class Preset:
    name: str
    base_url: str
    models: tuple[str, ...]
    api_key_env: str | None = None
    price_in_per_1m: float = 0.0
    price_out_per_1m: float = 0.0
    max_concurrency: int = 4
    timeout_s: float = 60.0
    kind: str = "openai"
    hint: str = ""


PRESETS = {
    "OpenAI": Preset(
        "OpenAI",
        "https://api.openai.com/v1",
        ("gpt-4o-mini", "gpt-4o"),
        api_key_env="OPENAI_API_KEY",
        max_concurrency=8,
        hint="Prices per model come from a dated table of OpenAI's list prices; set your own per model below.",
    ),
    "Ollama": Preset(
        "Ollama",
        "http://localhost:11434/v1",
        ("llama3.2",),
        max_concurrency=2,
        timeout_s=300,
        hint="Start it with `ollama serve` and `ollama pull llama3.2`.",
    ),
    "vLLM": Preset(
        "vLLM",
        "http://localhost:8000/v1",
        ("meta-llama/Llama-3.1-8B-Instruct",),
        max_concurrency=32,
        timeout_s=300,
        hint="`vllm serve <model>`; raise the concurrency to what the server's batch allows.",
    ),
    "LM Studio": Preset(
        "LM Studio",
        "http://localhost:1234/v1",
        ("local-model",),
        max_concurrency=1,
        timeout_s=300,
        hint="Start the local server in LM Studio's Developer tab.",
    ),
    "Embedded (offline)": Preset(
        EMBEDDED_NAME,
        "",
        (EMBEDDED_MODEL,),
        max_concurrency=1,
        timeout_s=300,
        kind="embedded",
        hint="SmolLM2-135M-Instruct on this machine via llama.cpp: no key, no internet; fluent but weak.",
    ),
}


class KeyMissing(KeyProblem):
    """The connection names a key source, but nothing is there."""


def _secret(name: str) -> str | None:
    for path in secrets_paths():
        if path.is_file():
            with open(path, "rb") as fh:
                data = tomllib.load(fh)
            if isinstance(data.get(name), str) and data[name]:
                return data[name]
    return None


def resolve_api_key(conn: Connection, db_path=None) -> str:
    """The key for a call, read now from the environment or secrets.toml; never stored anywhere.

    Surrounding whitespace (a pasted line break) is removed; a key an HTTP header cannot carry is refused.
    The embedded model's key is the random one its server was started with (call `endpoint` first)."""
    if conn.kind == "embedded":
        from core.generation.embedded_server import api_key

        return api_key(db_path)
    if not conn.needs_key:
        return NO_KEY
    if conn.api_key_env and os.environ.get(conn.api_key_env, "").strip():
        return clean_key(os.environ[conn.api_key_env], f"environment variable {conn.api_key_env}")
    if conn.api_key_secret:
        value = _secret(conn.api_key_secret)
        if value and value.strip():
            return clean_key(value, f"key {conn.api_key_secret!r} in .streamlit/secrets.toml")
    where = []
    if conn.api_key_env:
        where.append(f"environment variable {conn.api_key_env}")
    if conn.api_key_secret:
        where.append(f"key {conn.api_key_secret!r} in .streamlit/secrets.toml")
    raise KeyMissing(f"Connection {conn.name!r}: no API key found (looked for {' and '.join(where)}).")


def key_source(conn: Connection) -> str:
    """Where the key is read from, in words (for messages that ask the user to fix it)."""
    where = []
    if conn.api_key_env:
        where.append(f"the environment variable {conn.api_key_env}")
    if conn.api_key_secret:
        where.append(f"the key {conn.api_key_secret!r} in .streamlit/secrets.toml")
    return " or ".join(where) or "the server's settings (this connection sends no key)"


def key_status(conn: Connection) -> str:
    """A line for the page: where the key comes from and whether it is there (never the key)."""
    if conn.kind == "embedded" or not conn.needs_key:
        return "no key needed"  # the embedded server's own key is made when it starts
    try:
        resolve_api_key(conn)
    except KeyMissing:
        return "missing"
    except KeyProblem:
        return "unusable (spaces or line breaks inside)"
    return "found"


def from_row(row: dict) -> Connection:
    return Connection(
        id=row["id"],
        name=row["name"],
        kind=row["kind"],
        base_url=row["base_url"],
        models=tuple(json.loads(row["models_json"])),
        api_key_env=row["api_key_env"],
        api_key_secret=row["api_key_secret"],
        price_in_per_1m=row["price_in_per_1m"],
        price_out_per_1m=row["price_out_per_1m"],
        max_concurrency=row["max_concurrency"],
        timeout_s=row["timeout_s"],
    )


def from_snapshot(snap: dict) -> Connection:
    return Connection(
        id=snap.get("id"),
        name=snap["name"],
        kind=snap.get("kind", "openai"),
        base_url=snap["base_url"],
        models=tuple(snap.get("models", ())),
        api_key_env=snap.get("api_key_env"),
        api_key_secret=snap.get("api_key_secret"),
        price_in_per_1m=snap.get("price_in_per_1m", 0.0),
        price_out_per_1m=snap.get("price_out_per_1m", 0.0),
        max_concurrency=snap.get("max_concurrency", 4),
        timeout_s=snap.get("timeout_s", 60.0),
    )


def ensure_embedded_connection(db) -> int:
    """The offline default is always there to pick (created on first use)."""
    row = conn_q.connection_by_name(db, EMBEDDED_NAME)
    if row:
        return row["id"]
    preset = PRESETS["Embedded (offline)"]
    try:
        return save_connection(db, connection_from_preset(preset))
    except ValueError:  # created meanwhile by another session
        return conn_q.connection_by_name(db, EMBEDDED_NAME)["id"]


def connection_from_preset(preset: Preset, name: str | None = None) -> Connection:
    return Connection(
        name=name or preset.name,
        base_url=preset.base_url,
        models=preset.models,
        kind=preset.kind,
        api_key_env=preset.api_key_env,
        price_in_per_1m=preset.price_in_per_1m,
        price_out_per_1m=preset.price_out_per_1m,
        max_concurrency=preset.max_concurrency,
        timeout_s=preset.timeout_s,
    )


def list_connections(db) -> list[Connection]:
    ensure_embedded_connection(db)
    return [from_row(r) for r in conn_q.list_connections(db)]


def get_connection(db, connection_id: int) -> Connection:
    row = conn_q.get_connection(db, connection_id)
    if row is None:
        raise ValueError(f"Connection {connection_id} does not exist.")
    return from_row(row)


def validate(conn: Connection) -> list[str]:
    """Problems with a connection's settings, each naming the field."""
    problems = []
    if not conn.name.strip():
        problems.append("Name: a connection needs a name.")
    if conn.kind == "openai" and not conn.base_url.startswith(("http://", "https://")):
        problems.append(f"Base URL: {conn.base_url!r} must start with http:// or https://.")
    if not [m for m in conn.models if m.strip()]:
        problems.append("Models: name at least one model id.")
    if conn.max_concurrency < 1:
        problems.append("Max concurrency: must be at least 1.")
    if conn.timeout_s <= 0:
        problems.append("Timeout: must be more than 0 seconds.")
    if conn.price_in_per_1m < 0 or conn.price_out_per_1m < 0:
        problems.append("Prices: must not be negative.")
    env_problem = name_problem("API key variable", (conn.api_key_env or "").strip() or None, ENV_NAME)
    secret_problem = name_problem("secrets.toml key", (conn.api_key_secret or "").strip() or None, SECRET_NAME)
    problems += [p for p in (env_problem, secret_problem) if p]
    return problems


def save_connection(db, conn: Connection, connection_id: int | None = None) -> int:
    problems = validate(conn)
    if problems:
        raise ValueError(" ".join(problems))
    return conn_q.save_connection(
        db,
        {
            "name": conn.name.strip(),
            "kind": conn.kind,
            "base_url": conn.base_url.strip().rstrip("/"),
            "models_json": json.dumps([m.strip() for m in conn.models if m.strip()]),
            "api_key_env": (conn.api_key_env or "").strip() or None,
            "api_key_secret": (conn.api_key_secret or "").strip() or None,
            "price_in_per_1m": float(conn.price_in_per_1m),
            "price_out_per_1m": float(conn.price_out_per_1m),
            "max_concurrency": int(conn.max_concurrency),
            "timeout_s": float(conn.timeout_s),
        },
        connection_id,
    )


def delete_connection(db, connection_id: int) -> None:
    conn_q.delete_connection(db, connection_id)


@dataclass
class ConnectionCheck:
    ok: bool
    models: list[str] = field(default_factory=list)
    error: str | None = None
    base_url: str = ""


def test_connection(conn: Connection, db_path=None) -> ConnectionCheck:
    """List the server's models, or return the exact error (for the page's "Test connection" button)."""
    from core.generation.client import LLMClient, describe_error

    api_key = None
    try:
        base_url = endpoint(conn, db_path)
        api_key = resolve_api_key(conn, db_path)
    except Exception as exc:
        return ConnectionCheck(False, error=mask(describe_error(exc), api_key))

    async def go():
        client = LLMClient(base_url, api_key, timeout_s=min(conn.timeout_s, 15), max_retries=0)
        try:
            return await client.list_models()
        finally:
            await client.aclose()

    try:
        models = asyncio.run(go())
    except Exception as exc:  # a proxy may echo the Authorization header in its error body
        return ConnectionCheck(False, error=mask(describe_error(exc), api_key), base_url=base_url)
    return ConnectionCheck(True, models=models, base_url=base_url)


test_connection.__test__ = False  # a product function, not a pytest test


def endpoint(conn: Connection, db_path=None) -> str:
    """The base URL to call; for the embedded model this starts the local server if it is not running."""
    if conn.kind == "embedded":
        from core.generation.embedded_server import ensure_embedded_server

        return ensure_embedded_server(db_path)
    return conn.base_url
