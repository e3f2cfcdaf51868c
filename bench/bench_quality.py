"""Quality lab: the fidelity panel and the label-noise audit on Hallmarks of Cancer, on CPU.

4,200 stand-in "synthetic" observations (HoC validation and test sentences, two runs of 2,100, every tenth
label set flipped to another hallmark) against the 12,110 real HoC train sentences. The embeddings of all
16,310 texts are computed once, from an empty cache, and timed: that is the baseline of both figures.

    BENCH fidelity_panel: value = embeddings + fidelity panel + near-copy search (s), baseline = embeddings (s)
    BENCH noise_audit:    value = embeddings + k-fold out-of-fold probabilities + cleanlab (s), baseline = same

`QUALITY_BENCH_SYNTHETIC=600 python -m bench quality` runs a smaller version.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
import time
from pathlib import Path

from bench.common import report

SYNTHETIC = int(os.environ.get("QUALITY_BENCH_SYNTHETIC", "4200"))


def _database(folder: Path):
    from core.projects.defaults import HOC_NAME, ensure_default_projects
    from core.text import text_key
    from db import connect, immediate
    from db.connection import now_utc

    db = connect(folder / "bench.db")
    ensure_default_projects(db)
    project_id = next(r["id"] for r in db.query("SELECT id FROM projects WHERE name = ?", [HOC_NAME]))
    codes = [r["code"] for r in db.query("SELECT code FROM labels WHERE project_id = ?", [project_id])]
    held_out = list(
        db.query(
            "SELECT text, labels_json FROM observations WHERE project_id = ? AND split != 'train' ORDER BY id",
            [project_id],
        )
    )
    rng = random.Random(0)
    rng.shuffle(held_out)
    rows, flipped = [], 0
    for k, r in enumerate(held_out[:SYNTHETIC]):
        labels = json.loads(r["labels_json"])
        if k % 10 == 0:
            labels = [rng.choice([c for c in codes if c not in labels])]
            flipped += 1
        run_id = 1 + k % 2
        rows.append((project_id, r["text"], text_key(r["text"]) + "s", json.dumps(labels), run_id, now_utc()))
    with immediate(db):
        db.conn.executemany(
            "INSERT INTO observations (project_id, source, text, text_key, labels_json, facets_json, run_id, model,"
            " created_utc) VALUES (?, 'synthetic', ?, ?, ?, '{}', ?, 'bench', ?)",
            rows,
        )
    return db, project_id, codes


def main() -> None:
    from core.quality import audit, fidelity
    from core.quality.check import load_corpus
    from core.quality.embeddings import Embedder
    from db import quality as q

    with tempfile.TemporaryDirectory() as tmp:
        db, project_id, codes = _database(Path(tmp))
        n_real = len(q.real_rows(db, project_id))
        embedder = Embedder()
        start = time.perf_counter()
        corpus = load_corpus(db, project_id, [1, 2], embedder)
        embed_s = time.perf_counter() - start
        print(f"    embedded {n_real:,} real + {len(corpus.synthetic):,} synthetic texts in {embed_s:.1f} s")

        start = time.perf_counter()
        rows = fidelity.panel(corpus, codes, {})
        copies = fidelity.near_copies(corpus)
        panel_s = time.perf_counter() - start
        print(f"    fidelity: {len(rows)} groups, {sum(c['near_copy'] for c in copies)} near-copies, {panel_s:.1f} s")
        report("fidelity_panel", embed_s + panel_s, "s", embed_s)

        start = time.perf_counter()
        items = audit.audit(corpus.real, corpus.real_vectors, corpus.synthetic, corpus.synthetic_vectors, codes)
        audit_s = time.perf_counter() - start
        flipped = {r["id"] for k, r in enumerate(corpus.synthetic) if k % 10 == 0}
        found = {it["observation_id"] for it in items if it["audit_flagged"]}
        print(
            f"    audit: {len(found):,} flagged, {len(found & flipped)}/{len(flipped)} injected flips found,"
            f" {audit_s:.1f} s"
        )
        report("noise_audit", embed_s + audit_s, "s", embed_s)
        db.conn.close()


if __name__ == "__main__":
    main()
