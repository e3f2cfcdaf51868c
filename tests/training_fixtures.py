"""Small projects and a tiny random BERT for the training tests."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest

from core.text import text_key
from core.training.config import TrainingConfig
from db.connection import immediate, now_utc
from db.projects import Facet, Label, create_project

WORDS = {
    "X": ["flapping", "rocking", "spinning"],
    "Y": ["routine", "sameness", "ritual"],
    "Z": ["noise", "texture", "lights"],
}
FILLER = ["the", "child", "often", "shows", "during", "play", "at", "home", "school", "and", "with", "peers"]
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tiny_bert(folder: Path) -> Path:
    """A randomly initialised 2-layer BERT (hidden size 32) and a word-level vocab, saved like a hub model."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    vocab = SPECIAL + sorted({w for ws in WORDS.values() for w in ws} | set(FILLER) | {"synthetic", "extra"})
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    # The vocabulary is passed as a mapping: transformers 5 ignores `vocab_file` here and would map every word to [UNK].
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=64,
    )
    BertModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def bert_dir(tmp_path_factory):
    """One tiny model per test module (building it takes a few seconds)."""
    return tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


def tiny_config(bert_dir, **kw) -> TrainingConfig:
    """A CPU training config small enough for a test: the tiny model, short texts, a high learning rate."""
    values = {
        "base_model": str(bert_dir),
        "epochs": 1,
        "batch_size": 8,
        "learning_rate": 1e-3,
        "max_length": 32,
        "seeds": [1],
        "mixed_precision": False,  # on a GPU too: stored probabilities are compared with an fp32 reload
    }
    return TrainingConfig(**{**values, **kw})


def sentence(rng: random.Random, labels: list[str]) -> str:
    words = rng.sample(FILLER, 4)
    for code in labels:
        words.append(rng.choice(WORDS[code]))
    rng.shuffle(words)
    return " ".join(words)


def insert_observation(db, project_id: int, text: str, labels: list[str], source: str = "real", split=None, **prov):
    cur = db.execute(
        "INSERT INTO observation_rows (project_id, source, split, text, text_key, labels_json, facets_json, run_id,"
        " model, created_utc) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            project_id,
            source,
            split,
            text,
            text_key(text),
            json.dumps(sorted(labels)),
            json.dumps(prov.get("facets", {})),
            prov.get("run_id"),
            prov.get("model"),
            now_utc(),
        ],
    )
    return cur.lastrowid


def tiny_project(db, sizes=(48, 24, 24), seed: int = 0, name: str = "Tiny") -> int:
    """Labels X, Y, Z (each signalled by its own words), real train/validation/test rows, one facet."""
    project_id = create_project(
        db,
        name,
        labels=[Label(c, f"Label {c}") for c in WORDS],
        facets=[Facet("gender", ("boy", "girl", "unspecified"))],
    )
    rng = random.Random(seed)
    seen = set()
    for split, n in zip(("train", "validation", "test"), sizes, strict=True):
        made = 0
        while made < n:
            labels = [c for c in WORDS if rng.random() < 0.35]
            text = sentence(rng, labels)
            if text_key(text) in seen:
                continue
            seen.add(text_key(text))
            insert_observation(db, project_id, text, labels, split=split)
            made += 1
    return project_id


def add_synthetic(db, project_id: int, rows: list[tuple[str, list[str], int, str, str]]) -> list[int]:
    """rows: (text, labels, run_id, model, gender)."""
    return [
        insert_observation(
            db, project_id, text, labels, source="synthetic", run_id=run, model=model, facets={"gender": gender}
        )
        for text, labels, run, model, gender in rows
    ]


def review_all(db, project_id: int, verdicts: dict[int, tuple[str, list[str] | None]]) -> None:
    """One reviewer judges the given synthetic observations: id -> (verdict, corrected labels)."""
    from db.review import answers as answer_q
    from db.review import samples as sample_q

    reviewer = sample_q.add_reviewer(db, project_id, "Dr Reviewer")
    with immediate(db):
        sample_id = sample_q.insert_sample(db, project_id, "s", 1, [1, 2], {}, {"fraction": 1})
        items = [{"observation_id": obs, "is_real": 0, "stratum": "all"} for obs in verdicts]
        sample_q.insert_draw(db, sample_id, {"fraction": 1}, "", items)
    for member in sample_q.sample_members(db, sample_id):
        verdict, corrected = verdicts[member["observation_id"]]
        answer_q.insert_review(db, member["id"], reviewer, {}, verdict, corrected, "")
