"""Complete and clean runs, through the fake server: top-ups reach the planned count, refusals and chatter
are never stored, duplicates are checked across the project's runs, seeds are sent, and Prompt Studio's
preview shows the examples a run sends."""

from __future__ import annotations

import json
from dataclasses import replace

from core.generation import preview as previews
from core.generation import prompts
from core.generation import runs as gen
from core.generation.cleaning import Screen
from db.generation import calls as call_q
from db.generation import outcomes as outcome_q
from db.generation import runs as run_q
from tests import generation_fixtures
from tests.generation_fixtures import REAL_TRAIN
from tests.test_generation import FAST, cells, run_queued_job, small_plan

fake_llm, study = generation_fixtures.fake_llm, generation_fixtures.study  # fixtures used below
TOPUP = replace(FAST, max_topup_calls=5)

GOOD = [
    "At nursery he spins the wheels of every toy car and will not let other children touch them.",
    "She lines her crayons up by colour before drawing and screams if one is out of place.",
    "Mother reports that he flaps his hands and bounces on his toes whenever the washing machine spins.",
    "During the visit she repeated the examiner's questions word for word instead of answering.",
    'Says "I can\'t" and covers his ears when the hand dryer in the school toilet starts.',
]
REFUSALS = [
    "I'm sorry, but I cannot write clinical observations about children with autism.",
    "I’m sorry, I can’t help with that request.",
    "Sorry, I can't generate medical records, even synthetic ones.",
    "I apologize, but I am unable to provide clinical descriptions of patients.",
    "As an AI language model, I cannot create medical documentation.",
    "Unfortunately, I cannot fulfil this request because it involves sensitive health information.",
    "I am not comfortable writing observations that could be mistaken for real patient data.",
    "I must decline to produce content that imitates clinical records.",
]
CHATTER = [
    "Sure! Here are two observations.",
    "Here are the observations you asked for.",
    "Certainly! Below are some examples of repetitive behaviour.",
    "I hope these help with your research!",
    "Let me know if you need more examples.",
    "Note: these observations are synthetic and not from real patients.",
]
ECHOES = [
    "Each observation is one or two sentences about concrete behaviour that a clinician saw or a parent reported.",
    "Do not name the criterion or a diagnosis.",
    "Hand flapping, lining up toys, echolalia.",  # the criterion's description (label B1) copied out
]


def test_screen_rejects_refusals_chatter_and_copies_and_keeps_real_observations():
    messages = [{"role": "user", "content": prompts.AUTISM_USER.replace("{{", "").replace("}}", "")}]
    screen = Screen(messages, ["Hand flapping, lining up toys, echolalia.", "Repetitive behaviour"])
    assert [screen.reason(t) for t in REFUSALS[:4]] == ["refusal"] * 4
    assert all(screen.reason(t) for t in REFUSALS + CHATTER + ECHOES)
    assert screen.reason(ECHOES[2]) == "criterion text copied"
    assert screen.reason(ECHOES[0]) == "instructions echoed"
    assert [screen.reason(t) for t in GOOD + [text for text, _ in REAL_TRAIN]] == [None] * (len(GOOD) + 4)


def test_refusals_and_chatter_through_the_server_are_never_stored(study):
    db, fake = study["db"], study["fake"]
    fake.rules["Write"] = "raw"
    fake.raw_contents = [
        REFUSALS[0] + " If you have other questions, feel free to ask.",  # a server that ignored JSON mode
        json.dumps({"observations": REFUSALS[1:3]}),
        "\n".join([CHATTER[0], GOOD[0], GOOD[1], CHATTER[3]]),  # prose, read line by line
        json.dumps({"observations": [REFUSALS[4], GOOD[2]]}),
        "\n".join([REFUSALS[3], REFUSALS[5]]),
        json.dumps({"observations": [ECHOES[0], ECHOES[2], GOOD[3]]}),
        "\n".join([CHATTER[1], REFUSALS[6], REFUSALS[7], CHATTER[4]]),
        json.dumps({"observations": [CHATTER[2], CHATTER[5], ECHOES[1], GOOD[4]]}),
    ]
    plan = small_plan(study, labels=("B1",), genders=("boy",), per_cell=16, per_call=2)  # 8 calls, one of each
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, FAST)
    run_queued_job(db)

    stored = {o["text"] for o in run_q.run_observations(db, run_id)}
    assert stored == set(GOOD)
    rejected = {r["text"]: r["reason"] for r in outcome_q.run_rejects(db, run_id)}
    for text in REFUSALS[1:] + CHATTER[:3] + CHATTER[4:] + ECHOES:
        assert text in rejected, text
    assert {rejected[t] for t in REFUSALS[1:4]} == {"refusal"}
    assert rejected[ECHOES[2]] == "criterion text copied"
    assert any(t.startswith(REFUSALS[0]) for t in rejected)
    # Counted per cell and kept with their call in the call log.
    counts = gen.run_counts(db, run_id)
    assert counts["rejected"] == len(rejected) and counts["observations"] == len(GOOD)
    some_call = next(r["call_id"] for r in outcome_q.run_rejects(db, run_id))
    assert outcome_q.call_rejects(db, some_call)


def test_top_ups_reach_the_planned_count(study):
    db, fake = study["db"], study["fake"]
    fake.rules["boy"] = "short"  # every answer for boys holds one observation fewer than asked
    plan = small_plan(study, labels=("A2", "B1"), genders=("boy", "girl"), per_cell=6, per_call=3)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, TOPUP)
    run_queued_job(db)

    outcomes = outcome_q.combination_outcomes(db, run_id)
    assert [(o["planned"], o["kept"]) for o in outcomes] == [(6, 6)] * 4
    boys = [o for o in outcomes if o["facets"] == {"gender": "boy"}]
    assert all(o["topup_calls"] >= 1 for o in boys)
    assert all(o["topup_calls"] == 0 for o in outcomes if o not in boys)
    assert run_q.get_run(db, run_id)["status"] == "done"


def test_top_ups_are_bounded_and_the_shortfall_is_shown(study):
    db, fake = study["db"], study["fake"]
    fake.fixed_texts = GOOD[:2]  # every answer repeats the same two observations
    plan = small_plan(study, labels=("B1",), genders=("girl",), per_cell=6, per_call=2)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, replace(FAST, max_topup_calls=2))
    run_queued_job(db)

    [outcome] = outcome_q.combination_outcomes(db, run_id)
    assert (outcome["planned"], outcome["kept"], outcome["topup_calls"]) == (6, 2, 2)
    assert outcome["duplicates"] == 8  # 3 planned + 2 top-up calls, 2 each, all but the first two dropped
    assert len(cells(db, run_id)) == 5 and run_q.get_run(db, run_id)["status"] == "done"


def test_duplicates_are_checked_against_every_run_of_the_project(study):
    db, fake = study["db"], study["fake"]
    fake.fixed_texts = GOOD[:2]
    plan = small_plan(study, labels=("B1",), genders=("girl",), per_cell=2, per_call=2)
    first = gen.start_run(db, study["project"], study["version_id"], plan, FAST)
    run_queued_job(db)
    second = gen.start_run(db, study["project"], study["version_id"], plan, replace(FAST, seed=5))
    run_queued_job(db)

    assert len(run_q.run_observations(db, first)) == 2
    assert run_q.run_observations(db, second) == []
    dropped = run_q.run_duplicates(db, second)
    assert {(d["matched_source"], d["matched_run_id"]) for d in dropped} == {("synthetic", first)}
    scope = outcome_q.duplicate_scope(db, study["project"].id, second)
    assert scope == {"real": 4, "other_synthetic": 2, "other_runs": 1}


def test_a_seed_is_sent_per_cell_and_dropped_for_a_server_that_refuses_it(study):
    db, fake = study["db"], study["fake"]
    plan = small_plan(study, labels=("A2",), genders=("boy", "girl"), per_cell=2, per_call=2)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, replace(FAST, seed=11))
    run_queued_job(db)
    seeds = [r["body"]["seed"] for r in fake.chat_requests]
    assert len(seeds) == 2 and len(set(seeds)) == 2  # one per cell, different
    logged = [json.loads(c["params_json"]) for c in call_q.list_calls(db, run_id=run_id)]
    assert sorted(p["seed"] for p in logged) == sorted(seeds)  # every parameter is stored with its call
    assert all({"temperature", "max_tokens", "response_format"} <= set(p) for p in logged)

    # The same run again sends the same seeds.
    again = gen.start_run(db, study["project"], study["version_id"], plan, replace(FAST, seed=11), title="again")
    run_queued_job(db)
    assert sorted(json.loads(c["params_json"])["seed"] for c in call_q.list_calls(db, run_id=again)) == sorted(seeds)

    fake.rules["Write"] = "seed_400"
    third = gen.start_run(db, study["project"], study["version_id"], plan, replace(FAST, seed=12))
    run_queued_job(db)
    assert run_q.get_run(db, third)["status"] == "done"
    assert "seed" not in fake.chat_requests[-1]["body"]


def test_preview_shows_the_examples_and_seed_a_run_sends(study):
    db = study["db"]
    config = replace(FAST, n_examples=1, seed=3)
    plan = small_plan(study, labels=("B1",), genders=("girl",), per_cell=4, per_call=2)
    run_id = gen.start_run(db, study["project"], study["version_id"], plan, config)
    run_queued_job(db)
    version = {"system": prompts.AUTISM_SYSTEM, "user": prompts.AUTISM_USER}
    for call in call_q.list_calls(db, run_id=run_id):
        cell = next(c for c in cells(db, run_id) if c["id"] == call["cell_id"])
        # What Prompt Studio renders for this label, facet values, model and call index.
        slot = previews.cell_slot(
            db, study["project"], "B1", {"gender": "girl"}, cell["model"], cell["cell_index"], 2, config
        )
        assert prompts.build_messages(version["system"], version["user"], study["project"], slot) == json.loads(
            call["messages_json"]
        )
        assert (
            previews.cell_seed(config, "B1", {"gender": "girl"}, cell["model"], cell["cell_index"])
            == (json.loads(call["params_json"])["seed"])
        )


def test_real_examples_to_a_remote_server_need_an_acknowledgement_once(study):
    from core.generation import connections as conns
    from core.generation import privacy

    db = study["db"]
    remote = conns.save_connection(
        db, conns.Connection(name="Remote", base_url="https://api.example.org/v1", models=("m",))
    )
    plan = small_plan(study, labels=("B1",), genders=("girl",), per_cell=2, per_call=2)
    plan.models = [{"connection_id": remote, "model": "m"}]
    with_examples = replace(FAST, n_examples=2)
    [exposure] = privacy.exposures(db, study["project"].id, [remote], 2, ["B1"])
    assert exposure.message.startswith("Real observations may be sent to api.example.org")
    try:
        gen.start_run(db, study["project"], study["version_id"], plan, with_examples)
    except privacy.NotAcknowledged as exc:
        assert "api.example.org" in str(exc)
    else:
        raise AssertionError("a run sending real examples to a remote server started unacknowledged")
    assert run_q.list_runs(db, study["project"].id) == []
    assert privacy.exposures(db, study["project"].id, [remote], 0, ["B1"]) == []  # no examples, nothing sent
    assert privacy.exposures(db, study["project"].id, [study["connection_id"]], 2, ["B1"]) == []  # 127.0.0.1

    privacy.acknowledge(db, remote)
    assert privacy.exposures(db, study["project"].id, [remote], 2, ["B1"]) == []
    assert gen.start_run(db, study["project"], study["version_id"], plan, with_examples)
