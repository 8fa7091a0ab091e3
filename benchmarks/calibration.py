"""Relevance probabilities on tests/data/stdlib-docs: fit on half the queries, report on the rest.

For each scorer and method, the queries are split in two (`--splits` seeds),
a calibration is fitted on one half and measured on the other: the fraction
of returned documents that are relevant at `min_probability` 0.5, against
the raw `score_threshold` picked (on the held-out labels) for the same
recall, and against the naive `sigmoid(score) >= 0.5`.

Two scorers, clearly apart:

- the untrained MiniLM-L6 stand-in cross-encoder (no trained cross-encoder
  can be downloaded here): its scores are meaningless, and so is any
  calibration of them;
- the bundled all-MiniLM-L6-v2 **bi-encoder's cosine** as the "raw score",
  through a custom scorer: not a cross-encoder, but a score that means
  something offline, to show what calibration does with one.

    python benchmarks/calibration.py [--k 10] [--splits 10]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from langchain_ce_rerank import (
    CrossEncoderCompressor,
    FaissVectorStore,
    build_reranking_retriever,
    evaluate,
    load_beir,
    load_embeddings,
)
from langchain_ce_rerank.evaluation import calibrate_scores
from langchain_ce_rerank.testing import build_standin_cross_encoder

DATASET = Path(__file__).parents[1] / "tests" / "data" / "stdlib-docs"


class CosineScorer:
    """The bi-encoder's cosine of (query, text) as a pair score."""

    def __init__(self, embeddings: object) -> None:
        self.embeddings = embeddings

    def score(self, text_pairs: Sequence[tuple[str, str]]) -> list[float]:
        queries = self.embeddings.embed_documents([q for q, _ in text_pairs])  # type: ignore[attr-defined]
        texts = self.embeddings.embed_documents([t for _, t in text_pairs])  # type: ignore[attr-defined]
        q, t = np.asarray(queries), np.asarray(texts)
        cosine = (q * t).sum(axis=1) / (
            np.linalg.norm(q, axis=1) * np.linalg.norm(t, axis=1)
        )
        return [float(c) for c in cosine]


def _mean(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return "   -   "
    spread = f" ({min(known):.2f}-{max(known):.2f})" if len(known) > 1 else ""
    return f"{statistics.fmean(known):.3f}{spread}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--k", type=int, default=10, help="first-stage candidates")
    parser.add_argument("--splits", type=int, default=10, help="query splits (seeds)")
    parser.add_argument("--reranker", help="a cross-encoder folder (default: stand-in)")
    args = parser.parse_args()

    data = load_beir(DATASET)
    embeddings = load_embeddings(device="cpu")
    store = FaissVectorStore(embeddings)
    store.add_documents(data.corpus)
    standin = args.reranker or str(
        build_standin_cross_encoder(Path(tempfile.gettempdir()) / "standin-ce")
    )
    scorers = {
        f"cross-encoder {Path(standin).name} (UNTRAINED stand-in: meaningless)"
        if not args.reranker
        else f"cross-encoder {args.reranker}": standin,
        "bi-encoder cosine (all-MiniLM-L6-v2, a custom scorer)": CosineScorer(
            embeddings
        ),
    }
    print(
        f"{DATASET.name}: {len(data.corpus)} documents, {len(data.queries)} queries, "
        f"k={args.k}; fit on half the queries, report on the other half, "
        f"{args.splits} splits (seeds 0-{args.splits - 1}); unjudged = irrelevant"
    )
    for label, model in scorers.items():
        device = {"device": "cpu"} if isinstance(model, str) else {}
        compressor = CrossEncoderCompressor(model=model, top_n=None, **device)
        pipeline = build_reranking_retriever(
            first_stage=store.as_retriever(k=args.k), reranker=compressor
        )
        report = evaluate(pipeline, data.queries, data.qrels)
        for method in ("platt", "isotonic"):
            fits = [
                calibrate_scores(
                    report.reranker_scores,
                    data.qrels,
                    engine=compressor.engine,
                    method=method,  # type: ignore[arg-type]
                    seed=seed,
                    source=str(DATASET),
                )
                for seed in range(args.splits)
            ]
            print(f"\n## {label}, {method}\n")
            print(fits[0])
            rows = [
                ("min_probability 0.5 (calibrated)", 0),
                ("score_threshold, same recall (oracle)", 1),
                ("sigmoid(score) >= 0.5 (uncalibrated)", 2),
            ]
            print(f"\nover {args.splits} splits: mean (min-max) on the held-out half")
            print(f"{'cut':42} {'precision':>20} {'recall':>20} {'returned':>10}")
            for name, i in rows:
                cuts = [fit.cuts[i] for fit in fits]
                print(
                    f"{name:42} {_mean([c.precision for c in cuts]):>20} "
                    f"{_mean([c.recall for c in cuts]):>20} "
                    f"{statistics.fmean(c.returned for c in cuts):>10.1f}"
                )
            brier = {
                key: _mean([fit.brier[key] for fit in fits]) for key in fits[0].brier
            }
            print("Brier: " + ", ".join(f"{k} {v}" for k, v in brier.items()))
            empty = statistics.fmean(fit.empty_queries for fit in fits)
            held = statistics.fmean(len(fit.report_queries) for fit in fits)
            print(f"queries left empty at 0.5: {empty:.1f} of {held:.1f}")


if __name__ == "__main__":
    main()
