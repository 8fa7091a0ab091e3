"""Diversity after reranking: redundancy of the top 5 against nDCG@10, per λ.

On the project's test dataset (tests/data/stdlib-docs, BEIR layout: 60
standard-library docstrings, 25 queries with hand-made qrels), with the real
all-MiniLM-L6-v2 as the first stage (k candidates per query, their vectors
taken from the FAISS index: `include_embeddings=True`). For each λ in
`--lambdas` the top 10 is picked by `Reranker.order(..., diversity=λ)` and
scored for:

- redundancy: the mean pairwise cosine (MiniLM vectors) of the top 5;
- nDCG@10 (ir-measures) against the qrels.

Two relevances are reported, each clearly labelled:

- `cross-encoder`: the untrained MiniLM-L6 stand-in (no trained cross-encoder
  is available offline), whose scores are meaningless: its rows show how the
  redundancy falls with λ, not a quality to expect;
- `bi-encoder`: the first stage's cosine used as the relevance, a stand-in
  with real meaning, to show the shape of the trade-off;

and, for the bi-encoder relevance, the word-set fallback (what a door uses
when the candidates come without vectors), still measured by MiniLM cosine.

`--cost` instead times what attaching the vectors adds to the first stage
(`store.get_embeddings` for the k hits: all the extra work
`include_embeddings=True` does), next to a plain `invoke` (which embeds the
query), and the size the vectors add to the documents' metadata as JSON.

    python benchmarks/diversity.py [--reranker FOLDER] [-k 20] [--cost]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from _timing import interleaved_median_ms

from langchain_ce_rerank import FaissVectorStore, load_beir, load_embeddings
from langchain_ce_rerank.engine import Reranker, ScoredText
from langchain_ce_rerank.engine.diversity import EMBEDDING_KEY
from langchain_ce_rerank.testing import build_standin_cross_encoder

DATASET = Path(__file__).resolve().parents[1] / "tests" / "data" / "stdlib-docs"


def redundancy(vectors: list[list[float]]) -> float:
    """Mean pairwise cosine of `vectors` (unit length, as FAISS stores them)."""
    matrix = np.asarray(vectors)
    pairs = list(itertools.combinations(range(len(matrix)), 2))
    return float(np.mean([matrix[i] @ matrix[j] for i, j in pairs]))


def ndcg_at_10(qrels: dict[str, dict[str, int]], run: dict[str, list[str]]) -> float:
    import ir_measures
    from ir_measures import nDCG

    ranked = {
        q: {d: float(10 - i) for i, d in enumerate(ids)} for q, ids in run.items()
    }
    values = [m.value for m in ir_measures.iter_calc([nDCG @ 10], qrels, ranked)]
    return float(np.mean(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reranker", help="cross-encoder folder (default: stand-in)")
    parser.add_argument("-k", type=int, default=20, help="first-stage candidates")
    parser.add_argument(
        "--lambdas", type=float, nargs="+", default=[0.0, 0.3, 0.5, 0.7]
    )
    parser.add_argument("--cost", action="store_true", help="time the vectors only")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    data = load_beir(DATASET)
    store = FaissVectorStore(load_embeddings(device="cpu"))
    store.add_documents(data.corpus)
    queries = {q: t for q, t in data.queries.items() if q in data.qrels}
    if args.cost:
        _cost(store, next(iter(queries.values())))
        return
    retriever = store.as_retriever(k=args.k, include_embeddings=True)
    candidates = {q: retriever.invoke(text) for q, text in queries.items()}
    folder = args.reranker or str(
        build_standin_cross_encoder(Path(tempfile.gettempdir()) / "ce-rerank-standin")
    )
    engine = Reranker(model=folder, device="cpu", top_n=10)
    cross = engine.score_batch(
        [(queries[q], [d.page_content for d in docs]) for q, docs in candidates.items()]
    )
    relevances = {
        "cross-encoder (stand-in: meaningless)": dict(
            zip(candidates, cross, strict=True)
        ),
        "bi-encoder cosine (as relevance)": {
            q: [ScoredText(d.metadata["retrieval_score"]) for d in docs]
            for q, docs in candidates.items()
        },
    }
    print(
        f"{len(queries)} queries, k={args.k}, MiniLM first stage; "
        f"reranker {'stand-in' if not args.reranker else args.reranker}"
    )
    print(
        f"{'relevance':40} {'similarity':11} {'λ':>4} {'top-5 redundancy':>17} "
        f"{'nDCG@10':>8}"
    )
    for label, scored in relevances.items():
        kinds = ["embeddings"] + (["word sets"] if label.startswith("bi") else [])
        for kind, lam in itertools.product(kinds, args.lambdas):
            run: dict[str, list[str]] = {}
            top5: list[float] = []
            for q, docs in candidates.items():
                vectors = [d.metadata[EMBEDDING_KEY] for d in docs]
                results = engine.order(
                    scored[q],
                    diversity=lam,
                    embeddings=vectors if kind == "embeddings" else None,
                    texts=[d.page_content for d in docs],
                )
                run[q] = [str(docs[r.index].id) for r in results]
                top5.append(redundancy([vectors[r.index] for r in results[:5]]))
            score = ndcg_at_10(data.qrels, run)
            print(f"{label:40} {kind:11} {lam:4.1f} {np.mean(top5):17.3f} {score:8.4f}")


def _cost(store: FaissVectorStore, text: str) -> None:
    print("what include_embeddings=True adds to one first-stage query")
    for k in (20, 50):
        plain = store.as_retriever(k=k)
        ids = [str(doc.id) for doc in plain.invoke(text)]
        times = interleaved_median_ms(
            {"invoke": lambda: plain.invoke(text)}, repeats=10
        ) | interleaved_median_ms(
            {"vectors": lambda: store.get_embeddings(ids)}, repeats=200
        )
        extra = sum(len(json.dumps(v)) for v in store.get_embeddings(ids))
        print(
            f"k={k}: get_embeddings {times['vectors']:.3f} ms against "
            f"{times['invoke']:.1f} ms for the invoke itself; the vectors add "
            f"{extra / 1024:.0f} KB of JSON ({extra / len(ids) / 1024:.1f} KB a "
            "document)"
        )


if __name__ == "__main__":
    main()
