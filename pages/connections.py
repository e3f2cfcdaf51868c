"""LLM connections: saved OpenAI-compatible endpoints (and the embedded model), presets, a connection test."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.generation import connections as conns
from db import db_path
from ui import prices as ui_prices
from ui.common import db, ensure_shell, plain

ensure_shell()

NEW = "➕ New connection"
FIELDS = ("name", "base_url", "models", "key_env", "key_secret", "price_in", "price_out", "concurrency", "timeout")

st.title("LLM connections")
st.caption(
    "Any OpenAI-compatible server: OpenAI, Azure, Ollama, vLLM, LM Studio, llama.cpp. API keys are never stored: "
    "a connection names the environment variable or the key in `.streamlit/secrets.toml` that holds it."
)

database = db()
saved = conns.list_connections(database)
by_name = {c.name: c for c in saved}

st.dataframe(
    pd.DataFrame(
        [
            {
                "Name": c.name,
                "Base URL": c.base_url or "(started on this machine when needed)",
                "Models": ", ".join(c.models),
                "Key from": c.api_key_env or (f"secrets.toml: {c.api_key_secret}" if c.api_key_secret else "—"),
                "Key": conns.key_status(c),
                "$ in / 1M": c.price_in_per_1m,
                "$ out / 1M": c.price_out_per_1m,
                "Concurrency": c.max_concurrency,
                "Timeout (s)": c.timeout_s,
            }
            for c in saved
        ]
    ),
    hide_index=True,
    width="stretch",
)


def load_into_form(conn: conns.Connection | conns.Preset) -> None:
    st.session_state.update(
        {
            "conn_name": conn.name,
            "conn_base_url": conn.base_url,
            "conn_models": ", ".join(conn.models),
            "conn_key_env": conn.api_key_env or "",
            "conn_key_secret": getattr(conn, "api_key_secret", None) or "",
            "conn_price_in": float(conn.price_in_per_1m),
            "conn_price_out": float(conn.price_out_per_1m),
            "conn_concurrency": int(conn.max_concurrency),
            "conn_timeout": float(conn.timeout_s),
        }
    )


def on_pick() -> None:
    picked = st.session_state["conn_pick"]
    if picked == NEW:
        load_into_form(conns.PRESETS["OpenAI"])
        st.session_state["conn_preset"] = "OpenAI"
    else:
        load_into_form(by_name[picked])


def on_preset() -> None:
    load_into_form(conns.PRESETS[st.session_state["conn_preset"]])


if "conn_name" not in st.session_state:
    load_into_form(conns.PRESETS["OpenAI"])

left, right = st.columns([3, 2])
with left:
    picked = st.selectbox("Edit", [NEW, *by_name], key="conn_pick", on_change=on_pick)
    current = by_name.get(picked)
    kind = current.kind if current else "openai"
    if current is None:
        preset = st.selectbox("Start from a preset", list(conns.PRESETS), key="conn_preset", on_change=on_preset)
        kind = conns.PRESETS[preset].kind
        if conns.PRESETS[preset].hint:
            st.caption(conns.PRESETS[preset].hint)
    st.text_input("Name", key="conn_name")
    st.text_input("Base URL", key="conn_base_url", disabled=kind == "embedded", help="e.g. http://localhost:11434/v1")
    st.text_input("Models (comma-separated ids)", key="conn_models")
    k1, k2 = st.columns(2)
    k1.text_input(
        "API key environment variable",
        key="conn_key_env",
        help="The variable's *name* (capitals, digits, _), e.g. OPENAI_API_KEY",
    )
    k2.text_input("…or key name in .streamlit/secrets.toml", key="conn_key_secret")
    p1, p2, p3, p4 = st.columns(4)
    p1.number_input(
        "$ per 1M input tokens",
        min_value=0.0,
        step=0.05,
        key="conn_price_in",
        format="%.3f",
        help="For models without a price of their own (below) or in the dated OpenAI table",
    )
    p2.number_input("$ per 1M output tokens", min_value=0.0, step=0.05, key="conn_price_out", format="%.3f")
    p3.number_input("Max concurrency", min_value=1, max_value=256, step=1, key="conn_concurrency")
    p4.number_input("Timeout (s)", min_value=1.0, step=5.0, key="conn_timeout")

    form = conns.Connection(
        name=st.session_state["conn_name"],
        base_url=st.session_state["conn_base_url"],
        models=tuple(m.strip() for m in st.session_state["conn_models"].split(",") if m.strip()),
        kind=kind,
        api_key_env=st.session_state["conn_key_env"] or None,
        api_key_secret=st.session_state["conn_key_secret"] or None,
        price_in_per_1m=st.session_state["conn_price_in"],
        price_out_per_1m=st.session_state["conn_price_out"],
        max_concurrency=int(st.session_state["conn_concurrency"]),
        timeout_s=st.session_state["conn_timeout"],
        id=current.id if current else None,
    )
    b1, b2, b3 = st.columns(3)
    if b1.button("Save connection", type="primary"):
        try:
            conns.save_connection(database, form, current.id if current else None)
        except ValueError as exc:
            st.error(str(exc))
        else:
            st.session_state["conn_saved"] = form.name
            st.rerun()
    test_clicked = b2.button("Test connection")
    if current and current.name != conns.EMBEDDED_NAME and b3.button("Delete"):
        try:
            conns.delete_connection(database, current.id)
        except ValueError as exc:
            st.error(str(exc))
        else:
            st.rerun()
    if saved_name := st.session_state.pop("conn_saved", None):
        st.success(f"Saved connection {saved_name!r}.")

with right:
    st.subheader("Test")
    st.caption(f"Key: {conns.key_status(form)}. The test lists the server's models (the embedded model starts first).")
    if test_clicked:
        with st.spinner("Contacting the server…"):
            check = conns.test_connection(form, db_path())
        if check.ok:
            st.success(f"Connected to {check.base_url}: {len(check.models)} model(s).")
            st.code("\n".join(check.models) or "(no models listed)")
            missing = [m for m in form.models if m not in check.models]
            if missing and check.models:
                st.warning(f"Not listed by the server: {', '.join(missing)}")
        else:
            st.error(plain(check.error))

if current:
    ui_prices.render_model_prices(database, current)
