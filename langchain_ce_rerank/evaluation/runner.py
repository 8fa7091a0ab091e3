"""`evaluate`: the first stage, the reranker and fusion, timed and scored per query."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from langchain_ce_rerank.compressor import CrossEncoderCompressor
from langchain_ce_rerank.engine import ScoredText
from langchain_ce_rerank.engine.checks import check_query
from langchain_ce_rerank.evaluation.datasets import Qrels, Run
from langchain_ce_rerank.evaluation.report import ConfigurationResult, EvaluationReport

__all__ = ["PAIRS_PER_STEP", "DocumentScorer", "evaluate"]

PAIRS_PER_STEP = 128
"""With a `progress` callback, queries are scored in steps of about this many
(query, document) pairs, so the callback hears of each step: four batches of
32 on a GPU, long enough to keep the model's length-sorted batches full."""


class DocumentScorer(Protocol):
    """Scores candidate lists for `evaluate` elsewhere (e.g. `RayDataScorer`).

    Must return what `compressor.score_documents_batch(items, use_cache=False)`
    returns for the same items.
    """

    def __call__(
        self,
        compressor: CrossEncoderCompressor,
        items: Sequence[tuple[Sequence[Document], str]],
    ) -> list[list[ScoredText]]:
        """Per item, per document: its `ScoredText`."""
        ...


def _ranked_run(docs: Sequence[Document]) -> dict[str, float]:
    """Documents in order -> {doc id: strictly decreasing score}.

    Chunks of one source document share its `doc_id`; the best-ranked counts.
    Scores are synthetic so ties can never reorder a list the pipeline ranked.
    """
    ranked: dict[str, float] = {}
    for doc in docs:
        doc_id = str(doc.metadata.get("doc_id") or doc.id)
        if doc_id not in ranked:
            ranked[doc_id] = float(len(docs) - len(ranked))
    return ranked


def _best_scores(
    docs: Sequence[Document], scored: Sequence[ScoredText]
) -> dict[str, float]:
    """{doc id: its best chunk's score}, as `_ranked_run` counts documents."""
    best: dict[str, float] = {}
    for doc, item in zip(docs, scored, strict=True):
        doc_id = str(doc.metadata.get("doc_id") or doc.id)
        if doc_id not in best or item.score > best[doc_id]:
            best[doc_id] = item.score
    return best


def _steps(
    items: Sequence[tuple[Sequence[Document], str]],
) -> list[list[tuple[Sequence[Document], str]]]:
    """Consecutive queries, about `PAIRS_PER_STEP` pairs a step."""
    steps: list[list[tuple[Sequence[Document], str]]] = [[]]
    pairs = 0
    for item in items:
        if pairs >= PAIRS_PER_STEP:
            steps.append([])
            pairs = 0
        steps[-1].append(item)
        pairs += len(item[0])
    return [step for step in steps if step]


def _metrics(qrels: Qrels, run: Run, recall_at: Sequence[int]) -> dict[str, float]:
    import ir_measures
    from ir_measures import RR, R, nDCG

    cutoffs = {"nDCG@10": nDCG @ 10, "MRR@10": RR @ 10}
    cutoffs.update({f"Recall@{c}": R @ c for c in sorted(set(recall_at))})
    per_query: dict[str, dict[str, float]] = {name: {} for name in cutoffs}
    by_measure = {measure: name for name, measure in cutoffs.items()}
    evaluated = [q for q in run if q in qrels]
    # pytrec_eval aborts the whole process on a query with an empty ranking,
    # so those are left out of the call and scored 0 below.
    ranked = {q: run[q] for q in evaluated if run[q]}
    if ranked:
        judged = {q: dict(qrels[q]) for q in ranked}
        for metric in ir_measures.iter_calc(list(cutoffs.values()), judged, ranked):
            per_query[by_measure[metric.measure]][metric.query_id] = float(metric.value)
    return {
        name: sum(values.get(q, 0.0) for q in evaluated) / max(len(evaluated), 1)
        for name, values in per_query.items()
    }


def evaluate(
    retriever_or_pipeline: BaseRetriever,
    queries: Mapping[str, str],
    qrels: Qrels,
    *,
    k_values: Sequence[int] = (),
    scorer: DocumentScorer | None = None,
    progress: Callable[[str, int], object] | None = None,
) -> EvaluationReport:
    """Measure a retriever, or a first stage + cross-encoder pipeline, on qrels.

    For a `ContextualCompressionRetriever` whose compressor is a
    `CrossEncoderCompressor`, three configurations are measured on the same
    candidates: the first stage alone, first stage + cross-encoder, and the
    cross-encoder fused with the first stage by RRF. Each candidate list is
    scored once, in one stream over all queries
    (`CrossEncoderCompressor.score_documents_batch`); the reranked runs keep all
    `k` candidates, so Recall@k is the same for all three and the others show
    what reordering bought. First-stage latency is measured per query; rerank
    latency is the batch's time divided by the number of queries, with the
    score cache bypassed (neither read nor written), so a second evaluation
    of the same retriever times the model again instead of cache hits.

    Args:
        retriever_or_pipeline: Any LangChain retriever, or the pipeline from
            `build_reranking_retriever`.
        queries: {query id: text}; queries without qrels are not scored.
        qrels: {query id: {doc id: relevance}}; doc ids match each document's
            `metadata["doc_id"]`, else its `id`.
        k_values: Extra Recall cutoffs to report besides k and top_n.
        scorer: Scores the candidate lists instead of the compressor itself,
            e.g. `RayDataScorer()` to spread them over a Ray cluster (same
            scores, so the same report); rerank latency then includes it.
        progress: Called as `progress(stage, queries)` after each step, where
            `stage` is `"first stage"` or `"rerank"` and `queries` how many
            queries the step finished; each stage counts every judged query
            once (`"rerank"` only when there is a cross-encoder). With it, the
            reranker scores about `PAIRS_PER_STEP` pairs per step instead of
            all queries in one stream (a `scorer` still gets them all at once).

    Returns:
        An `EvaluationReport` with nDCG@10, MRR@10, Recall@k, Recall@top_n and
        mean latency per query (first stage, rerank, total) per configuration,
        and each candidate's reranker score (`reranker_scores`, what
        `calibrate_scores` fits a probability calibration on).

    Example:
        ```python
        from langchain_core.embeddings import DeterministicFakeEmbedding
        from langchain_ce_rerank import FaissVectorStore, evaluate

        store = FaissVectorStore.from_texts(
            ["a cat", "a dog"], DeterministicFakeEmbedding(size=8), ids=["cat", "dog"]
        )
        report = evaluate(store.as_retriever(k=2), {"q1": "a cat"}, {"q1": {"cat": 1}})
        print(report.configurations[0].metrics["nDCG@10"])
        ```

        Pass `build_reranking_retriever(...)` instead of a plain retriever to
        compare the first stage with the reranked and fused orders.
    """
    judged = [qid for qid in queries if qid in qrels]
    if not judged:
        msg = "no query has relevance judgements: query ids and qrels ids differ"
        raise ValueError(msg)
    first: BaseRetriever = retriever_or_pipeline
    reranker: CrossEncoderCompressor | None = None
    if isinstance(retriever_or_pipeline, ContextualCompressionRetriever):
        compressor = retriever_or_pipeline.base_compressor
        base = retriever_or_pipeline.base_retriever
        if isinstance(compressor, CrossEncoderCompressor) and isinstance(
            base, BaseRetriever
        ):
            first, reranker = base, compressor
    runs: dict[str, Run] = {"first stage": {}}
    reranker_scores: dict[str, dict[str, float]] = {}
    timings: dict[str, float] = {"first_stage": 0.0, "rerank": 0.0}
    variants: dict[str, CrossEncoderCompressor] = {}
    if reranker is not None:
        plain = {"top_n": None, "score_threshold": None, "min_probability": None}
        variants = {
            "+ cross-encoder": reranker.model_copy(update={**plain, "fusion": "none"}),
            "+ cross-encoder, RRF": reranker.model_copy(
                update={**plain, "fusion": "rrf"}
            ),
        }
        runs.update({name: {} for name in variants})
    k = 0
    candidates: dict[str, list[Document]] = {}
    for qid in judged:
        query = check_query(queries[qid])
        start = time.perf_counter()
        candidates[qid] = first.invoke(query)
        timings["first_stage"] += time.perf_counter() - start
        k = max(k, len(candidates[qid]))
        runs["first stage"][qid] = _ranked_run(candidates[qid])
        if progress is not None:
            progress("first stage", 1)
    if reranker is not None:
        # Scored once (in one stream, or in steps for `progress`); both
        # orderings reuse the scores.
        todo = [qid for qid in judged if candidates[qid]]
        start = time.perf_counter()
        items = [(candidates[qid], queries[qid]) for qid in todo]
        if scorer is not None:
            scored = scorer(reranker, items)
        elif progress is None:
            scored = reranker.score_documents_batch(items, use_cache=False)
        else:
            scored = []
            for step in _steps(items):
                scored += reranker.score_documents_batch(step, use_cache=False)
                progress("rerank", len(step))
        counted = len(todo) if scorer is None else 0
        if progress is not None and len(judged) > counted:
            # Queries without candidates (and a scorer's single step) count too.
            progress("rerank", len(judged) - counted)
        for name, variant in variants.items():
            for qid, scores in zip(todo, scored, strict=True):
                runs[name][qid] = _ranked_run(variant.order(candidates[qid], scores))
        timings["rerank"] = time.perf_counter() - start
        for qid, scores in zip(todo, scored, strict=True):
            reranker_scores[qid] = _best_scores(candidates[qid], scores)
        for name in variants:
            for qid in judged:
                runs[name].setdefault(qid, {})
    top_n = reranker.top_n if reranker is not None else None
    recall_at = [k, *k_values] + ([top_n] if top_n is not None else [])
    count = len(judged)
    first_ms = 1000 * timings["first_stage"] / count
    rerank_ms = 1000 * timings["rerank"] / count
    configurations = []
    for name, run in runs.items():
        metrics = _metrics(qrels, run, recall_at)
        reranks = name != "first stage"
        latency = {
            "first_stage": first_ms,
            "rerank": rerank_ms if reranks else 0.0,
            "total": first_ms + (rerank_ms if reranks else 0.0),
        }
        configurations.append(ConfigurationResult(name, metrics, latency, run))
    return EvaluationReport(
        configurations,
        num_queries=count,
        k=k,
        top_n=top_n,
        reranker_scores=reranker_scores,
    )
