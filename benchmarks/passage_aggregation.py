"""Length bias under `max_passage`: `passage_aggregation="max"` vs `"mean_top2"`.

A document scored as its best window gets one draw per window: the longer it
is, the higher its best window by chance. No trained cross-encoder exists
offline, so two relevance scorers whose scores can be reasoned about stand in
for one, each scoring (query, window) pairs:

- `bm25`: BM25 (bm25s, English stopwords) of the query against every window
  of every page, each window a document of the BM25 corpus; all pages, all
  queries;
- `minilm`: cosine between the bundled all-MiniLM-L6-v2 embeddings of the
  query and of the window (a bi-encoder: a proxy, not a cross-encoder), on a
  subset sized for two CPU cores (`--minilm-queries` queries, each against
  its own page and a shared pool of `--minilm-pool` other pages spread over
  window counts).

On the man-page set of `man_pages.py` (known-item queries: one sentence deep
in one page), pages cut into windows of `--window` WordPiece tokens (the
tokenizer of ms-marco-MiniLM and all-MiniLM alike) overlapping by
`--overlap`, each document scored from its windows by
`langchain_ce_rerank.engine.aggregation.aggregate`. Reported per scorer and
aggregation:

- among non-relevant (query, page) pairs, the page score standardised within
  the query (z over the query's non-relevant candidates), by the page's
  window count, and the mean over queries of Spearman's rho between window
  count and score;
- the relevant page's recall at 1/5/10 among the query's candidates, and MRR.

    python benchmarks/man_pages.py --gcloud 0
    python benchmarks/passage_aggregation.py
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import spearmanr

from langchain_ce_rerank.engine.aggregation import PASSAGE_AGGREGATIONS, aggregate
from langchain_ce_rerank.engine.tokens import load_tokenizer, tokenizer_spans
from langchain_ce_rerank.engine.windows import windows
from langchain_ce_rerank.testing import build_standin_cross_encoder

ROOT = Path(__file__).resolve().parents[1]
BINS = ((1, 1), (2, 3), (4, 7), (8, 15), (16, 31), (32, 10**9))


def _bin(count: int) -> str:
    for low, high in BINS:
        if low <= count <= high:
            return (
                f"{low}"
                if low == high
                else f"{low}+"
                if high > 10**6
                else f"{low}-{high}"
            )
    raise AssertionError(count)


def evaluate(
    window_scores: dict[str, list[np.ndarray[Any, Any]]],
    candidates: dict[str, list[int]],
    relevant: dict[str, int],
    counts: Sequence[int],
) -> dict[str, Any]:
    """Bias and recall of each aggregation, from per-query window scores.

    `window_scores[q][i]` holds the scores of candidate `candidates[q][i]`'s
    windows for query `q`.
    """
    out: dict[str, Any] = {}
    for how in PASSAGE_AGGREGATIONS:
        by_bin: dict[str, list[float]] = {}
        rhos, ranks = [], []
        for query, pages in candidates.items():
            scores = [
                aggregate(list(map(float, s)), how)[0] for s in window_scores[query]
            ]
            others = [
                (counts[p], s)
                for p, s in zip(pages, scores, strict=True)
                if p != relevant[query]
            ]
            values = np.array([s for _, s in others])
            spread = float(values.std()) or 1.0
            for count, score in others:
                by_bin.setdefault(_bin(count), []).append(
                    (score - float(values.mean())) / spread
                )
            rho = spearmanr([c for c, _ in others], values).statistic
            if not np.isnan(rho):
                rhos.append(float(rho))
            mine = scores[pages.index(relevant[query])]
            ranks.append(1 + sum(s > mine for s in scores))
        out[how] = {
            "z_by_windows": {
                name: round(statistics.mean(by_bin[name]), 3)
                for name in sorted(
                    by_bin, key=lambda n: int(n.split("-")[0].rstrip("+"))
                )
            },
            "pairs_by_windows": {name: len(v) for name, v in by_bin.items()},
            "spearman_windows_vs_score": round(statistics.mean(rhos), 3),
            "recall@1": round(statistics.mean(r <= 1 for r in ranks), 3),
            "recall@5": round(statistics.mean(r <= 5 for r in ranks), 3),
            "recall@10": round(statistics.mean(r <= 10 for r in ranks), 3),
            "mrr": round(statistics.mean(1 / r for r in ranks), 3),
            "queries": len(ranks),
            "candidates_per_query": round(
                statistics.mean(len(c) for c in candidates.values()), 1
            ),
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=ROOT / ".cache" / "man-pages")
    parser.add_argument("--window", type=int, default=200)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--minilm-queries", type=int, default=40)
    parser.add_argument("--minilm-pool", type=int, default=30)
    parser.add_argument("--minilm-max-windows", type=int, default=40)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--skip-minilm", action="store_true")
    args = parser.parse_args()
    rng = random.Random(args.seed)

    tokenizer = load_tokenizer(
        str(build_standin_cross_encoder(ROOT / ".cache" / "standin-cross-encoder"))
    )
    spans_of = tokenizer_spans(tokenizer)
    names = sorted(p.stem for p in (args.data / "pages").glob("*.txt"))
    texts = [
        (args.data / "pages" / f"{n}.txt").read_text(encoding="utf-8") for n in names
    ]
    page_windows = [
        [t[a:b] for a, b in windows(t, spans_of(t), args.window, args.overlap)]
        for t in texts
    ]
    counts = [len(w) for w in page_windows]
    queries = [
        json.loads(line)
        for line in (args.data / "queries.jsonl").read_text().splitlines()
    ]
    index = {n: i for i, n in enumerate(names)}
    relevant = {q["id"]: index[q["page"]] for q in queries}
    text_of = {q["id"]: q["query"] for q in queries}
    print(f"{len(names)} pages, {sum(counts)} windows; {len(queries)} queries")
    results: dict[str, Any] = {"settings": {k: str(v) for k, v in vars(args).items()}}

    import bm25s

    flat = [w for ws in page_windows for w in ws]
    owner = np.repeat(np.arange(len(names)), counts)
    retriever = bm25s.BM25()
    retriever.index(
        bm25s.tokenize(flat, stopwords="en", show_progress=False), show_progress=False
    )
    starts = np.concatenate([[0], np.cumsum(counts)])
    all_pages = list(range(len(names)))
    bm25_scores: dict[str, list[np.ndarray[Any, Any]]] = {}
    for q in queries:
        tokens = bm25s.tokenize(
            [q["query"]], stopwords="en", return_ids=False, show_progress=False
        )[0]
        scores = retriever.get_scores(tokens)
        bm25_scores[q["id"]] = [scores[starts[p] : starts[p + 1]] for p in all_pages]
    assert len(owner) == len(flat)
    results["bm25"] = evaluate(
        bm25_scores, {q["id"]: all_pages for q in queries}, relevant, counts
    )
    print(json.dumps(results["bm25"], indent=1))

    if not args.skip_minilm:
        from langchain_ce_rerank.models import load_embeddings

        small = [
            q for q in queries if counts[relevant[q["id"]]] <= args.minilm_max_windows
        ]
        chosen = rng.sample(small, min(args.minilm_queries, len(small)))
        taken = {relevant[q["id"]] for q in chosen}
        others = [
            p
            for p in all_pages
            if p not in taken and counts[p] <= args.minilm_max_windows
        ]
        # Spread the pool over window counts: the same number from each bin.
        per_bin: dict[str, list[int]] = {}
        for p in others:
            per_bin.setdefault(_bin(counts[p]), []).append(p)
        pool: list[int] = []
        while len(pool) < args.minilm_pool and any(per_bin.values()):
            for members in per_bin.values():
                if members and len(pool) < args.minilm_pool:
                    pool.append(members.pop(rng.randrange(len(members))))
        pages = sorted(taken | set(pool))
        embeddings = load_embeddings()
        texts_to_embed = [w for p in pages for w in page_windows[p]]
        print(
            f"minilm: {len(chosen)} queries, {len(pages)} pages, {len(texts_to_embed)} windows"
        )
        # Kept, so that another aggregation is measured without re-embedding.
        kept = (
            args.data / f"minilm-windows-{args.window}-{args.overlap}-{args.seed}.npy"
        )
        if kept.is_file():
            vectors = np.load(kept)
        else:
            vectors = np.array(embeddings.embed_documents(texts_to_embed))
            np.save(kept, vectors)
        at = dict(
            zip(pages, np.cumsum([0] + [counts[p] for p in pages])[:-1], strict=True)
        )
        query_vectors = np.array(
            embeddings.embed_documents([q["query"] for q in chosen])
        )
        minilm_scores: dict[str, list[np.ndarray[Any, Any]]] = {}
        candidates: dict[str, list[int]] = {}
        for q, qv in zip(chosen, query_vectors, strict=True):
            candidates[q["id"]] = [relevant[q["id"]], *pool]
            minilm_scores[q["id"]] = [
                vectors[at[p] : at[p] + counts[p]] @ qv for p in candidates[q["id"]]
            ]
        results["minilm"] = evaluate(minilm_scores, candidates, relevant, counts)
        print(json.dumps(results["minilm"], indent=1))
    del text_of
    (args.data / "passage_aggregation.json").write_text(
        json.dumps(results, indent=2) + "\n"
    )


if __name__ == "__main__":
    main()
