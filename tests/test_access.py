"""Review sharing without a server: the password hash, invite tokens, failed-attempt limits, the refusal
to serve beyond loopback without a password, and items shared among reviewers with an overlap."""

from __future__ import annotations

from collections import Counter

import pytest

from core.access import gate, invites, passwords, server
from core.review import assignment
from core.review import queue as rq
from core.review import sampling as rs
from db import access as access_q
from db.projects import get_project
from db.review import samples as sample_q
from tests.review_fixtures import autism_project, fill_runs


@pytest.fixture
def shared(db):
    pid = autism_project(db)
    fill_runs(db, pid, per_cell=4, models=("model-a",))
    sample_id = rs.create_sample(db, pid, [1], {"kind": "count", "count": 30}, seed=3).sample_id
    other = rs.create_sample(db, pid, [1], {"kind": "count", "count": 5}, seed=4).sample_id
    people = [sample_q.add_reviewer(db, pid, n) for n in ("Ann", "Bob", "Cem")]
    return db, get_project(db, pid), sample_id, other, people


def test_password_is_kept_only_as_an_argon2_hash(monkeypatch, tmp_path):
    h = passwords.hash_password("correct horse")
    assert h.startswith("$argon2id$") and "correct horse" not in h
    assert passwords.verify(h, "correct horse") and not passwords.verify(h, "correct hors")
    monkeypatch.delenv(passwords.ENV_VAR, raising=False)
    secrets = tmp_path / "secrets.toml"
    assert passwords.configured_hash(secrets) is None
    secrets.write_text(f'{passwords.SECRETS_KEY} = "{h}"\n')
    assert passwords.configured_hash(secrets) == h
    with pytest.raises(ValueError):
        passwords.hash_password("short")


def test_refuses_to_serve_beyond_loopback_without_a_password_hash(monkeypatch, capsys, tmp_path):
    monkeypatch.delenv(passwords.ENV_VAR, raising=False)
    monkeypatch.setenv("STUDIO_SHARING", "off")  # the launcher turns it on: put back after the test
    assert gate.refusal("127.0.0.1", None) is None  # private, as always
    line = gate.refusal("0.0.0.0", None)
    assert line.startswith("Refusing to serve on 0.0.0.0: no researcher password is set")
    assert "plain password" in gate.refusal("192.168.1.20", "hunter22")
    assert gate.refusal("0.0.0.0", passwords.hash_password("correct horse")) is None
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml here
    assert server.main(["--address", "0.0.0.0", "--port", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Refusing to serve on 0.0.0.0")


def test_invite_token_is_stored_only_as_a_hash_and_expires_or_is_revoked(shared):
    db, project, sample_id, _, (ann, *_rest) = shared
    invite_id, token = invites.create_invite(db, project.id, sample_id, ann, days=1)
    stored = access_q.get_invite(db, invite_id)
    assert token not in str(stored) and stored["token_sha256"] == invites.token_hash(token)
    found = invites.find_invite(db, token)
    assert (found.sample_id, found.reviewer_id) == (sample_id, ann)
    assert invites.find_invite(db, token[:-1] + ("A" if token[-1] != "A" else "B")) is None
    invites.revoke(db, invite_id)
    assert invites.find_invite(db, token) is None and invites.still_valid(db, invite_id) is None
    old_id, old = invites.create_invite(db, project.id, sample_id, ann, days=1)
    db.execute("UPDATE review_invites SET expires_utc = '2020-01-01T00:00:00.000+00:00' WHERE id = ?", [old_id])
    assert invites.find_invite(db, old) is None


def test_failed_attempts_are_logged_and_throttled_per_address(shared):
    db, *_ = shared
    h = passwords.hash_password("correct horse")
    for _ in range(gate.MAX_FAILURES_PER_CLIENT):
        assert not gate.try_password(db, "127.0.0.2", h, "guess").ok
    refused = gate.try_password(db, "127.0.0.2", h, "correct horse")
    assert not refused.ok and refused.message == gate.TOO_MANY  # even the right password waits
    assert not gate.try_invite(db, "127.0.0.2", "whatever").ok
    assert gate.try_password(db, "loopback", h, "correct horse").ok  # another address is not blocked
    outcomes = Counter((a["client"], a["outcome"]) for a in access_q.recent_attempts(db))
    assert outcomes == {("127.0.0.2", "failed"): 5, ("127.0.0.2", "throttled"): 2, ("loopback", "ok"): 1}


def test_overlap_assignment_gives_each_reviewer_their_own_queue(shared):
    db, project, sample_id, _, people = shared
    items = sample_q.sample_members(db, sample_id)
    added = assignment.assign(db, project.id, sample_id, people, overlap=0.2)
    assert added == len(items) + round(0.2 * len(items))  # 30 items, 6 of them to two people
    rows = {r["reviewer"]: r for r in assignment.assignments(db, sample_id)}
    assert sum(r["items"] for r in rows.values()) == added and {r["items"] for r in rows.values()} <= {12, 13, 11}
    assert sum(r["shared"] for r in rows.values()) == 12
    assert assignment.assign(db, project.id, sample_id, people, overlap=0.2) == 0  # repeat-safe
    ann_items = {rq.load_item(db, project, sample_id, people[0], i).item_id for i in range(rows["Ann"]["items"])}
    assigned = {r[0] for r in db.execute("SELECT item_id FROM review_assignments WHERE reviewer_id = ?", [people[0]])}
    assert ann_items == assigned
    progress = rq.progress(db, sample_id, people[0])
    assert progress.total == rows["Ann"]["items"] and progress.answered == 0
    rq.set_verdict(db, project, next(iter(ann_items)), people[0], "correct")
    assert rq.progress(db, sample_id, people[0]).answered == 1 and rq.progress(db, sample_id, people[1]).answered == 0


def test_overlap_plan_never_gives_an_item_twice_to_one_reviewer():
    rows = assignment.plan(list(range(100)), [1, 2, 3, 4], overlap=0.5, seed=1)
    pairs = Counter((item, reviewer) for item, reviewer, _ in rows)
    assert max(pairs.values()) == 1 and len(rows) == 150
    per_item = Counter(item for item, _, _ in rows)
    assert Counter(per_item.values()) == {1: 50, 2: 50}


def test_sharing_view_assigns_items_and_shows_an_invite_link_once(shared):
    from pathlib import Path

    from streamlit.testing.v1 import AppTest

    db, project, sample_id, _, people = shared
    page = str(Path(__file__).resolve().parent.parent / "pages" / "review.py")
    at = AppTest.from_file(page, default_timeout=60)
    at.session_state["project_id"] = project.id
    at.query_params["sample"] = str(sample_id)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    at.segmented_control(key="rv_view").set_value("Sharing").run()
    assert not at.exception
    assert any("make review-server" in i.value for i in at.info)  # not shared now: says how
    at.multiselect(key="rv_assign_who").set_value(people[:2])
    at.slider(key="rv_assign_overlap").set_value(50)
    at.button[[b.label for b in at.button].index("Assign the unassigned items")].click().run()
    assert any("45 assignments added" in s.value for s in at.success)  # 30 items, 15 of them twice
    at.selectbox(key="rv_invite_who").set_value(people[1])
    at.button[[b.label for b in at.button].index("Make invite link")].click().run()
    assert not at.exception
    link = at.code[0].value
    token = link.split("/?invite=")[1]
    invite = invites.find_invite(db, token)
    assert (invite.sample_id, invite.reviewer_id) == (sample_id, people[1])
    assert token not in str(list(db.query("SELECT * FROM review_invites")))
