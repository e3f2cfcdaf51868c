"""Facet sensitivity: the word swap on constructed texts, and flip counts from real (tiny) saved models."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.studies import sensitivity
from db.projects import Facet, Label, create_project
from tests.training_fixtures import insert_observation

GENDER = ("boy", "girl", "unspecified")


def test_swap_map_is_built_from_the_facet_values():
    mapping = sensitivity.swap_map(GENDER)
    assert mapping["boy"] == "girl" and mapping["girl"] == "boy"
    assert mapping["he"] == "she" and mapping["she"] == "he" and mapping["him"] == "her" and mapping["her"] == "his"
    assert "unspecified" not in mapping
    assert sensitivity.swap_map(["urban", "rural"]) == {"urban": "rural", "rural": "urban"}
    assert sensitivity.swap_map(["0-5", "6-11", "12+"]) == {}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("He hands his toy to him.", "She hands her toy to her."),
        ("She lines up her cars; the girl's mother watches.", "He lines up his cars; the boy's father watches."),
        ("HE SCREAMS when his son is late", "SHE SCREAMS when her daughter is late"),
        (
            "The theme, a shepherd, and Hermann: other words stay.",
            "The theme, a shepherd, and Hermann: other words stay.",
        ),
        ("Boys and girls", "Girls and boys"),
    ],
)
def test_swap_changes_whole_words_and_keeps_case(text, expected):
    assert sensitivity.swap(text, sensitivity.swap_map(GENDER)) == expected


def tiny_classifier(folder, words: list[str], seed: int):
    """A 2-layer BERT classifier (3 labels, random weights) whose vocabulary holds `words`."""
    import torch
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizerFast

    folder.mkdir(parents=True)
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]
    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37,
        max_position_embeddings=64, num_labels=3, problem_type="multi_label_classification", initializer_range=0.5,
    )  # fmt: skip
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        # Feminine and masculine words far apart in embedding space, so this model does read them.
        direction = torch.randn(config.hidden_size) * 4
        for word, sign in (("she", 1), ("her", 1), ("girl", 1), ("he", -1), ("his", -1), ("him", -1), ("boy", -1)):
            if word in vocab:
                model.bert.embeddings.word_embeddings.weight[vocab.index(word)] = sign * direction
    model.save_pretrained(folder)
    # A vocabulary dict: transformers 5 ignores a `vocab_file` argument (every word would be [UNK]).
    tokenizer = BertTokenizerFast(vocab={w: i for i, w in enumerate(vocab)}, do_lower_case=True)
    tokenizer.save_pretrained(folder)
    return folder


CONTENT = ["the", "child", "flaps", "lines", "up", "toys", "and", "avoids", "eye", "contact", "at", "school"]
TEXTS = [
    "the boy flaps at school",
    "he lines up toys",
    "the girl avoids eye contact",
    "she flaps and lines up toys",
    "the child avoids eye contact at school",  # nothing to swap
    "his toys and her toys",
]
HAND_SWAPPED = [
    "the girl flaps at school",
    "she lines up toys",
    "the boy avoids eye contact",
    "he flaps and lines up toys",
    "her toys and his toys",
]


def test_flip_rates_baseline_vs_augmented_with_real_saved_models(db, tmp_path):
    project_id = create_project(
        db, "Gender", labels=[Label(c, c) for c in ("A1", "A2", "B1")], facets=[Facet("gender", GENDER)]
    )
    for text in TEXTS:
        insert_observation(db, project_id, text, ["A1"], split="test")
    # The baseline's vocabulary has no gender words (they read as [UNK] either way): it cannot flip.
    blind = tiny_classifier(tmp_path / "blind", CONTENT, seed=1)
    aware = tiny_classifier(tmp_path / "aware", CONTENT + ["he", "she", "his", "her", "him", "boy", "girl"], seed=2)
    swapped_texts = [t for t in TEXTS if sensitivity.swap(t, sensitivity.swap_map(GENDER)) != t]
    assert [sensitivity.swap(t, sensitivity.swap_map(GENDER)) for t in swapped_texts] == HAND_SWAPPED
    # Thresholds at the median of the aware model's probabilities put decisions where a swap can move them.
    probs = sensitivity.predict(str(aware), swapped_texts)
    thresholds = dict(zip(["A1", "A2", "B1"], np.median(probs, 0).tolist(), strict=True))
    experiments = {}
    for name, model, kind in (("Baseline", blind, "baseline"), ("Augmented", aware, "augmented")):
        exp_id = db.execute(
            "INSERT INTO experiments (project_id, name, kind, config_json, created_utc) VALUES (?, ?, ?, '{}', 'now')",
            [project_id, name, kind],
        ).lastrowid
        db.execute(
            "INSERT INTO training_runs (experiment_id, project_id, seed, status, config_json, labels_json,"
            " thresholds_json, model_dir, created_utc) VALUES (?, ?, 1, 'done', '{\"max_length\": 32}', ?, ?, ?, 'now')",
            [exp_id, project_id, json.dumps(["A1", "A2", "B1"]), json.dumps(thresholds), str(model)],
        )
        experiments[exp_id] = name

    result = sensitivity.flip_rates(db, project_id, "gender", experiments)
    assert (result.swapped, result.tested) == (5, 6)
    flips = result.flips.set_index("label")
    assert (flips["Baseline"] == 0).all()
    # The expected flips, from the model run on the texts swapped by hand.
    original = sensitivity.predict(str(aware), swapped_texts)
    by_hand = sensitivity.predict(str(aware), HAND_SWAPPED)
    t = np.array(list(thresholds.values()))
    expected = ((original >= t) != (by_hand >= t)).mean(0)
    np.testing.assert_allclose(flips["Augmented"].to_numpy(), expected)
    assert expected.sum() > 0  # this model does read the gender words
    with pytest.raises(ValueError, match="no values that are words"):
        sensitivity.flip_rates(db, project_id, "age", experiments)
