"""What a model's tokens cost: a dated table of OpenAI list prices, overridable per connection × model.

The price of a call is looked up in this order: a price the user set for this connection and model
(`model_prices`), the table below when the connection is OpenAI's API, the connection's own prices when
they are set, free for a server on this machine, and otherwise *unknown* — an unknown price is shown as
"cost unknown" and never taken for zero. Batch prices are the Batch API's (half the live price at OpenAI).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlparse

from db.generation import prices as price_q

# OpenAI's list prices in USD per 1M tokens (input, output, batch input, batch output), as published on this
# date. Prices change: the Connections page lets the user set the current one for any model.
PRICES_AS_OF = "2025-08-15"
OPENAI_PRICES: dict[str, tuple[float, float, float, float]] = {
    "gpt-5": (1.25, 10.00, 0.625, 5.00),
    "gpt-5-mini": (0.25, 2.00, 0.125, 1.00),
    "gpt-5-nano": (0.05, 0.40, 0.025, 0.20),
    "gpt-4.1": (2.00, 8.00, 1.00, 4.00),
    "gpt-4.1-mini": (0.40, 1.60, 0.20, 0.80),
    "gpt-4.1-nano": (0.10, 0.40, 0.05, 0.20),
    "gpt-4o": (2.50, 10.00, 1.25, 5.00),
    "gpt-4o-mini": (0.15, 0.60, 0.075, 0.30),
    "o3": (2.00, 8.00, 1.00, 4.00),
    "o3-mini": (1.10, 4.40, 0.55, 2.20),
    "o4-mini": (1.10, 4.40, 0.55, 2.20),
    "gpt-4-turbo": (10.00, 30.00, 5.00, 15.00),
    "gpt-4": (30.00, 60.00, 15.00, 30.00),
    "gpt-3.5-turbo": (0.50, 1.50, 0.25, 0.75),
}
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


@dataclass(frozen=True)
class Price:
    """USD per 1M tokens; `source` says where the figure came from (shown next to every estimate)."""

    price_in_per_1m: float
    price_out_per_1m: float
    batch_in_per_1m: float
    batch_out_per_1m: float
    source: str

    def cost(self, tokens_in: int | None, tokens_out: int | None, batch: bool = False) -> float:
        p_in, p_out = (
            (self.batch_in_per_1m, self.batch_out_per_1m) if batch else (self.price_in_per_1m, self.price_out_per_1m)
        )
        return ((tokens_in or 0) * p_in + (tokens_out or 0) * p_out) / 1e6


def is_local(conn) -> bool:
    """Whether the connection's server runs on this machine (the embedded model or a loopback address)."""
    if conn.kind == "embedded":
        return True
    host = (urlparse(conn.base_url).hostname or "").lower()
    return host in LOCAL_HOSTS or host.startswith("127.")


def is_openai(conn) -> bool:
    return (urlparse(conn.base_url).hostname or "").lower() == "api.openai.com"


def table_price(model: str) -> tuple[float, float, float, float] | None:
    """The table's row for a model id, also for dated snapshots ("gpt-4o-2024-08-06" → "gpt-4o")."""
    if model in OPENAI_PRICES:
        return OPENAI_PRICES[model]
    for name in sorted(OPENAI_PRICES, key=len, reverse=True):
        rest = model[len(name) :]
        if model.startswith(name) and rest[:1] == "-" and rest[1:2].isdigit():
            return OPENAI_PRICES[name]
    return None


def price_for(db, conn, model: str) -> Price | None:
    """The price of one model of one connection, or None when it is unknown."""
    if conn.id is not None and (row := price_q.get_price(db, conn.id, model)):
        batch_in = row["batch_in_per_1m"] if row["batch_in_per_1m"] is not None else row["price_in_per_1m"] / 2
        batch_out = row["batch_out_per_1m"] if row["batch_out_per_1m"] is not None else row["price_out_per_1m"] / 2
        return Price(row["price_in_per_1m"], row["price_out_per_1m"], batch_in, batch_out, "set for this connection")
    if is_openai(conn) and (row := table_price(model)):
        return Price(*row, source=f"OpenAI list price of {PRICES_AS_OF}")
    if conn.price_in_per_1m or conn.price_out_per_1m:
        p_in, p_out = conn.price_in_per_1m, conn.price_out_per_1m
        return Price(p_in, p_out, p_in / 2, p_out / 2, "the connection's prices")
    if is_local(conn):
        return Price(0.0, 0.0, 0.0, 0.0, "free (runs on this machine)")
    return None


def set_price(db, connection_id: int, model: str, price_in: float, price_out: float, batch_in=None, batch_out=None):
    for name, value in (
        ("Input", price_in),
        ("Output", price_out),
        ("Batch input", batch_in),
        ("Batch output", batch_out),
    ):
        if value is not None and value < 0:
            raise ValueError(f"{name} price: must not be negative.")
    price_q.set_price(db, connection_id, model, float(price_in), float(price_out), batch_in, batch_out)


def cost_or_none(price: Price | None, tokens_in, tokens_out, batch: bool = False) -> float | None:
    return price.cost(tokens_in, tokens_out, batch) if price is not None else None
