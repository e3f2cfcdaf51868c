"""The tiny model the training tests use reads its words: a tokenizer that maps everything to [UNK] would let
training tests pass on inputs that carry no signal."""

from __future__ import annotations

from transformers import AutoTokenizer

from tests.training_fixtures import WORDS, tiny_bert


def test_the_tiny_model_s_tokenizer_knows_its_words(tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert(tmp_path / "bert"))
    words = [w for ws in WORDS.values() for w in ws]
    assert tokenizer.tokenize(" ".join(words).upper()) == [w.lower() for w in words]
    assert tokenizer.tokenize("zebra") == ["[UNK]"]
