"""Review-sharing mode against the real server, bound to every interface but reached only through loopback
addresses (127.0.0.1, 127.0.0.2, 127.0.0.3): plain HTTP, a raw websocket client and a real browser.

Without the researcher's password or an invite link nobody gets a page, an item or an answer, whatever their
address; an invite opens only its sample's queue as its reviewer; revoked and expired links get nothing;
failed attempts are logged and slowed; and the server refuses to start beyond loopback without a password."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
from google.protobuf import text_format
from playwright.sync_api import expect
from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from websockets.sync.client import connect as ws_connect

from core.access import invites, passwords
from core.review import assignment
from core.review import queue as rq
from core.review import sampling as rs
from db import connect
from db.projects import get_project
from db.review import samples as sample_q
from tests.conftest import ROOT, free_port, start_streamlit
from tests.review_fixtures import autism_project, fill_runs

PASSWORD = "correct horse battery"
BOB_NOTE = "Bob's private doubt about this one"


@pytest.fixture(scope="module")
def shared_server(tmp_path_factory):
    """A database with two samples, Ann and Bob sharing the first with an overlap, and invite links; then the
    server in sharing mode on 0.0.0.0 with a researcher password hash."""
    folder = tmp_path_factory.mktemp("sharing")
    db = connect(folder / "studio.db")
    pid = autism_project(db)
    fill_runs(db, pid, per_cell=2, models=("model-a", "model-b"), labels=("A1", "B1"))
    first = rs.create_sample(db, pid, [1], {"kind": "count", "count": 8}, seed=1, name="first").sample_id
    second = rs.create_sample(db, pid, [2], {"kind": "count", "count": 4}, seed=2, name="second").sample_id
    ann, bob = (sample_q.add_reviewer(db, pid, n) for n in ("Ann", "Bob"))
    assignment.assign(db, pid, first, [ann, bob], overlap=0.5)
    project = get_project(db, pid)
    shared_items = [
        r[0] for r in db.execute("SELECT item_id FROM review_assignments GROUP BY item_id HAVING COUNT(*) = 2")
    ]
    for item in shared_items:
        rq.set_verdict(db, project, item, bob, "incorrect")
        rq.set_note(db, project, item, bob, BOB_NOTE)
    tokens = {
        "ann": invites.create_invite(db, pid, first, ann, days=1),
        "bob_second": invites.create_invite(db, pid, second, bob, days=1),
        "revoked": invites.create_invite(db, pid, first, ann, days=1),
        "expired": invites.create_invite(db, pid, first, ann, days=1),
        "live_revoke": invites.create_invite(db, pid, first, ann, days=1),
    }
    invites.revoke(db, tokens["revoked"][0])
    db.execute(
        "UPDATE review_invites SET expires_utc = '2020-01-01T00:00:00.000+00:00' WHERE id = ?", [tokens["expired"][0]]
    )
    texts = {
        "ann": {rq.load_item(db, project, first, ann, i).text for i in range(rq.progress(db, first, ann).total)},
        "all_first": {
            m["text"]
            for m in db.query(
                "SELECT o.text FROM sample_items i JOIN observations o ON o.id = i.observation_id WHERE i.sample_id = ?",
                [first],
            )
        },
        "second": {
            m["text"]
            for m in db.query(
                "SELECT o.text FROM sample_items i JOIN observations o ON o.id = i.observation_id WHERE i.sample_id = ?",
                [second],
            )
        },
    }
    db.conn.close()
    env = {"STUDIO_SHARING": "on", passwords.ENV_VAR: passwords.hash_password(PASSWORD)}
    proc, url = start_streamlit(
        folder / "studio.db",
        folder / "streamlit.log",
        address="0.0.0.0",
        extra_args=("--client.showErrorDetails", "none"),
        extra_env=env,
    )
    port = int(url.rsplit(":", 1)[1])
    yield {
        "port": port,
        "db": folder / "studio.db",
        "tokens": {k: v[1] for k, v in tokens.items()},
        "invite_ids": {k: v[0] for k, v in tokens.items()},
        "texts": texts,
        "ann": ann,
        "bob": bob,
    }
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def url(server, host: str, path: str = "/") -> str:
    return f"http://{host}:{server['port']}{path}"


class Client:
    """A program speaking Streamlit's websocket protocol from a chosen loopback source address (a browser on
    this machine always comes from 127.0.0.1), reaching the server through `host`."""

    def __init__(self, server, source: str = "127.0.0.1", host: str = "127.0.0.1"):
        sock = socket.create_connection((host, server["port"]), source_address=(source, 0))
        self.ws = ws_connect(
            f"ws://{host}:{server['port']}/_stcore/stream",
            sock=sock,
            subprotocols=["streamlit"],
            origin=url(server, host)[:-1],
        )
        self.widgets: dict[str, str] = {}  # label → widget id, from the latest run

    def run(self, query: str = "", page: str = "", values: dict | None = None, press: str | None = None) -> str:
        """One script run; every message it sent back, as text. `values` fill widgets by label, `press` a button."""
        msg = BackMsg()
        msg.rerun_script.query_string = query
        msg.rerun_script.page_name = page
        for label, value in (values or {}).items():
            msg.rerun_script.widget_states.widgets.add(id=self.widgets[label], string_value=value)
        if press:
            msg.rerun_script.widget_states.widgets.add(id=self.widgets[press], trigger_value=True)
        self.ws.send(msg.SerializeToString())
        out = []
        while True:
            fm = ForwardMsg()
            fm.ParseFromString(self.ws.recv(timeout=60))
            out.append(text_format.MessageToString(fm, as_utf8=True))
            if fm.WhichOneof("type") == "delta" and fm.delta.WhichOneof("type") == "new_element":
                kind = fm.delta.new_element.WhichOneof("type")
                if kind in ("text_input", "button"):
                    element = getattr(fm.delta.new_element, kind)
                    self.widgets[element.label] = element.id
            # A run the app reruns at once (a page switch, the first run's shell check) ends "early": read on.
            if fm.WhichOneof("type") == "script_finished" and fm.script_finished != fm.FINISHED_EARLY_FOR_RERUN:
                return "\n".join(out)

    def close(self) -> None:
        self.ws.close()


def ws_run(server, host: str, query: str = "", page: str = "", source: str = "127.0.0.1") -> str:
    client = Client(server, source, host)
    try:
        return client.run(query, page)
    finally:
        client.close()


def http_get(server, host: str, path: str, source: str) -> tuple[int, str]:
    conn = http.client.HTTPConnection(host, server["port"], timeout=10, source_address=(source, 0))
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace")
    finally:
        conn.close()


def settled(page) -> None:
    """Until the current script run has finished (the skeleton of a rerun is inert to clicks)."""
    page.wait_for_timeout(300)
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]')
    page.wait_for_function("() => !document.querySelector('[data-stale=\"true\"]')")


def leaked(server, text: str) -> set[str]:
    every = server["texts"]["all_first"] | server["texts"]["second"]
    return {t for t in every if t in text} | ({"Bob's note"} if BOB_NOTE in text else set())


def test_plain_http_and_websockets_get_nothing_without_a_password_or_invite(shared_server):
    # Two clients (source 127.0.0.1, the "local" one, and 127.0.0.2), each through two server addresses.
    for source, host in (("127.0.0.1", "127.0.0.1"), ("127.0.0.2", "127.0.0.1"), ("127.0.0.2", "127.0.0.2")):
        for path in ("/", "/results", "/review", "/data?project=1"):
            status, body = http_get(shared_server, host, path, source)
            assert status == 200 and leaked(shared_server, body) == set() and "Autism" not in body
        assert http_get(shared_server, host, "/media/anything.csv", source)[0] == 404
        agent = urllib.request.Request(url(shared_server, host, "/_stcore/agent/interact"), data=b"{}", method="POST")
        with pytest.raises(urllib.error.HTTPError):  # Streamlit's JSON-over-HTTP agent API is off
            urllib.request.urlopen(agent, timeout=10)
        for page in ("", "results", "review", "data", "projects"):
            seen = ws_run(shared_server, host, page=page, source=source)
            assert "Researcher password" in seen
            assert leaked(shared_server, seen) == set() and "Autism" not in seen and "Sample" not in seen
    refused = ws_run(shared_server, "127.0.0.2", query="invite=not-a-real-token", page="results", source="127.0.0.2")
    assert "This invite link is not valid" in refused and leaked(shared_server, refused) == set()


def test_an_invite_opens_only_its_sample_as_its_reviewer_over_a_raw_websocket(shared_server):
    token = shared_server["tokens"]["ann"]
    for page in ("results", "review", "data"):
        seen = ws_run(shared_server, "127.0.0.2", query=f"invite={token}&sample=2", page=page, source="127.0.0.4")
        assert "Reviewing as **Ann**" in seen
        shown = leaked(shared_server, seen)
        assert len(shown) == 1 and shown <= shared_server["texts"]["ann"]  # one item, from Ann's own queue
    bob = ws_run(
        shared_server, "127.0.0.2", query=f"invite={shared_server['tokens']['bob_second']}", source="127.0.0.4"
    )
    assert "Reviewing as **Bob**" in bob and leaked(shared_server, bob) <= shared_server["texts"]["second"]
    for name in ("revoked", "expired"):
        seen = ws_run(shared_server, "127.0.0.2", query=f"invite={shared_server['tokens'][name]}", source="127.0.0.4")
        assert "This invite link is not valid" in seen and leaked(shared_server, seen) == set()


def test_reviewer_in_a_browser_sees_only_their_queue_and_loses_it_when_revoked(shared_server, browser_page):
    page = browser_page
    token = shared_server["tokens"]["live_revoke"]
    # Other paths (/results, /data) get the same page after a "Page not found" note: see the websocket test.
    page.goto(url(shared_server, "127.0.0.2", f"/?invite={token}"))
    expect(page.get_by_text("Reviewing as Ann")).to_be_visible()
    settled(page)
    expect(page.get_by_test_id("stSidebar")).to_have_count(0)
    total = len(shared_server["texts"]["ann"])
    expect(page.locator(".st-key-rv_counter")).to_contain_text(f"of {total}")
    seen = set()
    for _ in range(total):
        seen.add(page.locator(".rv-text").inner_text().strip())
        assert BOB_NOTE not in page.content()
        page.get_by_role("button", name="Next →").click()
        settled(page)
    assert seen == shared_server["texts"]["ann"]
    page.get_by_role("button", name="correct (c)").click()
    settled(page)
    db = connect(shared_server["db"], migrate=False)
    rows = list(db.query("SELECT reviewer_id, verdict FROM reviews WHERE reviewer_id = ?", [shared_server["ann"]]))
    assert rows == [{"reviewer_id": shared_server["ann"], "verdict": "correct"}]
    invites.revoke(db, shared_server["invite_ids"]["live_revoke"])
    page.get_by_role("button", name="← Previous").click()
    expect(page.get_by_text("This invite link is no longer valid")).to_be_visible()
    expect(page.locator(".rv-text")).to_have_count(0)
    db.conn.close()


def test_password_guessing_is_slowed_and_logged_and_the_researcher_gets_in(shared_server, browser_page):
    guesser = Client(shared_server, source="127.0.0.3", host="127.0.0.2")
    try:
        guesser.run(page="results")
        for k in range(5):
            seen = guesser.run(values={"Researcher password": f"guess {k}"}, press="Sign in")
            assert "Wrong password." in seen
        seen = guesser.run(values={"Researcher password": PASSWORD}, press="Sign in")
        assert "Too many failed attempts" in seen and leaked(shared_server, seen) == set()
    finally:
        guesser.close()
    page = browser_page  # another address (127.0.0.1): not held back by the guesser
    page.goto(url(shared_server, "127.0.0.2", "/review"))
    settled(page)
    page.get_by_label("Researcher password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Review", exact=True)).to_be_visible()  # the address asked for
    expect(page.get_by_test_id("stSidebar")).to_be_visible()
    db = connect(shared_server["db"], migrate=False)
    outcomes = list(
        db.query(
            "SELECT client, outcome, COUNT(*) AS n FROM access_attempts WHERE kind = 'password' GROUP BY 1, 2 ORDER BY 1, 2"
        )
    )
    db.conn.close()
    assert outcomes == [
        {"client": "127.0.0.3", "outcome": "failed", "n": 5},
        {"client": "127.0.0.3", "outcome": "throttled", "n": 1},
        {"client": "loopback", "outcome": "ok", "n": 1},
    ]


def test_refuses_to_serve_beyond_loopback_without_a_password(tmp_path, browser_page):
    env = {k: v for k, v in os.environ.items() if k != passwords.ENV_VAR}
    port = free_port()
    run = subprocess.run(
        [sys.executable, "-m", "core.access.server", "--address", "0.0.0.0", "--port", str(port)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.strip().count("\n") == 0 and run.stderr.startswith("Refusing to serve on 0.0.0.0")
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0  # nothing listens
    # Started by hand beyond loopback, without the launcher and without a password: the app itself refuses.
    os.environ.pop(passwords.ENV_VAR, None)
    proc, base = start_streamlit(tmp_path / "studio.db", tmp_path / "streamlit.log", address="0.0.0.0")
    try:
        browser_page.goto(base.replace("127.0.0.1", "127.0.0.2") + "/data")
        refusal = browser_page.get_by_text("Refusing to serve on 0.0.0.0: no researcher password is set")
        expect(refusal).to_be_visible(timeout=90_000)  # the first run seeds the database
        settled(browser_page)
        expect(browser_page.get_by_test_id("stSidebar")).to_have_count(0)
        expect(browser_page.get_by_label("Researcher password")).to_have_count(0)
    finally:
        proc.terminate()
        proc.wait(timeout=15)
