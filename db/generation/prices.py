"""Prices a user set for one model of one connection (they win over the dated table)."""

from __future__ import annotations

from db.connection import now_utc


def get_price(db, connection_id: int, model: str) -> dict | None:
    rows = list(db.query("SELECT * FROM model_prices WHERE connection_id = ? AND model = ?", [connection_id, model]))
    return rows[0] if rows else None


def set_price(db, connection_id: int, model: str, price_in: float, price_out: float, batch_in=None, batch_out=None):
    """Repeat-safe: the latest price for a connection × model replaces the earlier one."""
    db.execute(
        "INSERT INTO model_prices (connection_id, model, price_in_per_1m, price_out_per_1m, batch_in_per_1m,"
        " batch_out_per_1m, updated_utc) VALUES (?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (connection_id, model) DO UPDATE SET price_in_per_1m = excluded.price_in_per_1m,"
        " price_out_per_1m = excluded.price_out_per_1m, batch_in_per_1m = excluded.batch_in_per_1m,"
        " batch_out_per_1m = excluded.batch_out_per_1m, updated_utc = excluded.updated_utc",
        [connection_id, model, price_in, price_out, batch_in, batch_out, now_utc()],
    )


def delete_price(db, connection_id: int, model: str) -> None:
    db.execute("DELETE FROM model_prices WHERE connection_id = ? AND model = ?", [connection_id, model])


def acknowledge_privacy(db, connection_id: int) -> None:
    db.execute(
        "UPDATE llm_connections SET privacy_ack_utc = COALESCE(privacy_ack_utc, ?) WHERE id = ?",
        [now_utc(), connection_id],
    )


def privacy_acknowledged(db, connection_id: int) -> bool:
    row = db.execute("SELECT privacy_ack_utc FROM llm_connections WHERE id = ?", [connection_id]).fetchone()
    return bool(row and row[0])
