"""Observations as the Trainer wants them: tokenised without padding, label matrices, class weights."""

from __future__ import annotations

import numpy as np
import torch

from core.training.dataset import Example


class EncodedSet(torch.utils.data.Dataset):
    def __init__(self, items: list[dict]):
        self.items = items

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        return self.items[i]


def label_matrix(examples: list[Example], label_codes: list[str]) -> np.ndarray:
    index = {code: j for j, code in enumerate(label_codes)}
    y = np.zeros((len(examples), len(label_codes)), dtype=np.float32)
    for i, ex in enumerate(examples):
        for code in ex.labels:
            y[i, index[code]] = 1.0
    return y


def encode(tokenizer, examples: list[Example], label_codes: list[str], max_length: int) -> EncodedSet:
    """Tokenise without padding (the collator pads each batch to its longest row)."""
    enc = tokenizer([ex.text for ex in examples], truncation=True, max_length=max_length)
    y = label_matrix(examples, label_codes)
    keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
    items = [{**{k: enc[k][i] for k in keys}, "labels": y[i].tolist()} for i in range(len(examples))]
    return EncodedSet(items)


def pos_weights(train: list[Example], label_codes: list[str]) -> torch.Tensor:
    """negatives / positives per label, so each label's positives weigh as much as its negatives."""
    y = label_matrix(train, label_codes)
    pos = y.sum(axis=0)
    neg = len(train) - pos
    return torch.tensor(np.clip(neg / np.maximum(pos, 1), 1.0, 100.0), dtype=torch.float32)


def sorted_by_length(examples: list[Example]) -> list[Example]:
    # Evaluation batches of similar length waste little padding; results are re-ordered by id later.
    return sorted(examples, key=lambda ex: (len(ex.text), ex.observation_id))
