"""LLM connections page: each model's price (from the dated table, the connection or set by the user), and
setting one per model."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.generation import prices
from ui.common import plain


def render_model_prices(database, conn) -> None:
    st.subheader("Prices per model")
    st.caption(
        f"USD per 1M tokens. OpenAI's models are priced from a table of list prices dated {prices.PRICES_AS_OF}; "
        "set the current price for any model here. A model without a price shows 'cost unknown'."
    )
    rows = []
    for model in conn.models:
        price = prices.price_for(database, conn, model)
        rows.append(
            {
                "Model": model,
                "Input": None if price is None else price.price_in_per_1m,
                "Output": None if price is None else price.price_out_per_1m,
                "Batch input": None if price is None else price.batch_in_per_1m,
                "Batch output": None if price is None else price.batch_out_per_1m,
                "From": "cost unknown: set a price" if price is None else price.source,
            }
        )
    st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")
    c1, c2, c3, c4, c5 = st.columns(5)
    model = c1.selectbox("Model", conn.models, key=f"price_model_{conn.id}")
    current = prices.price_for(database, conn, model)
    p_in = c2.number_input(
        "Input", 0.0, 10_000.0, current.price_in_per_1m if current else 0.0, key=f"price_in_{conn.id}_{model}"
    )
    p_out = c3.number_input(
        "Output", 0.0, 10_000.0, current.price_out_per_1m if current else 0.0, key=f"price_out_{conn.id}_{model}"
    )
    b_in = c4.number_input(
        "Batch input", 0.0, 10_000.0, current.batch_in_per_1m if current else 0.0, key=f"price_bin_{conn.id}_{model}"
    )
    b_out = c5.number_input(
        "Batch output", 0.0, 10_000.0, current.batch_out_per_1m if current else 0.0, key=f"price_bout_{conn.id}_{model}"
    )
    if st.button("Set price for this model"):
        try:
            prices.set_price(database, conn.id, model, p_in, p_out, b_in, b_out)
        except ValueError as exc:
            st.error(plain(exc))
        else:
            st.rerun()
