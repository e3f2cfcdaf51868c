"""Call log: every LLM call of a run or of Prompt Studio's previews, exactly as sent and received."""

from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from core.generation import call_log
from db.generation import calls as call_q
from db.generation import runs as run_q
from ui.common import current_project, db, ensure_shell

ensure_shell()

project = current_project()
database = db()
st.title(f"Call log · {project.name}")

runs = run_q.list_runs(database, project.id)
scopes = [*(r["id"] for r in runs), "previews", "all"]
names = {r["id"]: f"Run #{r['id']} · {r['title']}" for r in runs} | {"previews": "Previews", "all": "All calls"}
f1, f2, f3, f4 = st.columns(4)
scope = f1.selectbox("Calls of", scopes, format_func=names.get, key="log_scope")
status = f2.selectbox("Status", ["(all)", "ok", "error"], key="log_status")
model = f3.selectbox("Model", ["(all)", *call_q.call_models(database, project.id)], key="log_model")
cell = f4.number_input("Cell id (0: all)", 0, 10**9, 0, key="log_cell")
rows = call_log.calls(
    database,
    project.id,
    scope,
    None if status == "(all)" else status,
    None if model == "(all)" else model,
    int(cell) or None,
    limit=None,
)
st.caption(f"{len(rows):,} calls")
st.dataframe(pd.DataFrame(call_log.summary(rows[:2000])), hide_index=True, width="stretch")
st.download_button(
    "Export JSONL (requests, responses, parameters, tokens, latency, cost)",
    call_log.export_jsonl(rows),
    f"calls-{scope}.jsonl",
    "application/x-ndjson",
)

st.subheader("One call")
ids = [r["id"] for r in rows[:2000]]
if ids:
    call_id = st.selectbox("Call", ids, key="log_call")
    found = call_log.detail(database, call_id)
    st.caption(
        f"Status {found['call']['status']} · HTTP tries {found['http_attempts']} · "
        f"{found['call']['tokens_in']} in / {found['call']['tokens_out']} out tokens · "
        f"{found['call']['latency_ms']} ms"
    )
    if found["call"]["error"]:
        st.text(found["call"]["error"])  # a server's words, shown literally
    st.caption("Request as sent")
    st.code(json.dumps(found["request"], indent=2, ensure_ascii=False), language="json", wrap_lines=True)
    st.caption("Raw response as received")
    st.code(found["raw_response"] or "", language="json", wrap_lines=True)
    if found["rejected"]:
        st.caption("Set aside as not observations")
        st.dataframe(pd.DataFrame(found["rejected"]), hide_index=True, width="stretch")
