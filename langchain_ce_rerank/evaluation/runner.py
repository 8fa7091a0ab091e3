"""`evaluate`: each first stage, reranked and fused, timed and scored per query."""

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
from langchain_ce_rerank.evaluation.first_stages import (
    FirstStageName,
    resolve_first_stages,
)
from langchain_ce_rerank.evaluation.report import ConfigurationResult, EvaluationReport

__all__ = ["PAIRS_PER_STEP", "DocumentScorer", "evaluate"]

PAIRS_PER_STEP = 128
"""With a `progress` callback, queries are scored in steps of about this many
(query, document) pairs per first stage, so the callback hears of each step:
four batches of 32 on a GPU, long enough to keep the model's length-sorted
batches full."""


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


_Items = list[tuple[Sequence[Document], str]]
# Suffixes of the reranked configurations of a first stage, and the fusion
# each orders by; both reuse one scoring pass of that first stage's lists.
_ORDERINGS = {" + rerank": "none", " + rerank, RRF": "rrf"}


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


def _steps(qids: Sequence[str], pairs_of: Callable[[str], int]) -> list[list[str]]:
    """Consecutive queries, about `PAIRS_PER_STEP` pairs a step."""
    steps: list[list[str]] = [[]]
    pairs = 0
    for qid in qids:
        if pairs >= PAIRS_PER_STEP:
            steps.append([])
            pairs = 0
        steps[-1].append(qid)
        pairs += pairs_of(qid)
    return [step for step in steps if step]


def _split(
    retriever_or_pipeline: BaseRetriever,
) -> tuple[BaseRetriever, CrossEncoderCompressor | None]:
    """(first stage, cross-encoder) of a pipeline; (retriever, None) otherwise."""
    if isinstance(retriever_or_pipeline, ContextualCompressionRetriever):
        compressor = retriever_or_pipeline.base_compressor
        base = retriever_or_pipeline.base_retriever
        if isinstance(compressor, CrossEncoderCompressor) and isinstance(
            base, BaseRetriever
        ):
            return base, compressor
    return retriever_or_pipeline, None


def _warm_up(
    reranker: CrossEncoderCompressor,
    candidates: Mapping[str, Mapping[str, list[Document]]],
    queries: Mapping[str, str],
) -> None:
    """Load the model and score one pair, untimed, before any reranking is timed.

    Otherwise the first first stage reranked would pay alone for what happens
    once (loading the weights, the first forward pass) and look slower.
    """
    reranker.load_model()
    for lists in candidates.values():
        for qid, docs in lists.items():
            if docs:
                items = [(docs[:1], queries[qid])]
                reranker.score_documents_batch(items, use_cache=False)
                return


def _rerank(
    reranker: CrossEncoderCompressor,
    candidates: Mapping[str, Mapping[str, list[Document]]],
    queries: Mapping[str, str],
    judged: Sequence[str],
    *,
    scorer: DocumentScorer | None,
    progress: Callable[[str, int], object] | None,
    clock: Callable[[], float],
) -> tuple[dict[str, dict[str, list[ScoredText]]], dict[str, float]]:
    """Per first stage: {query id: scores} (queries with candidates) and seconds.

    Each first stage's lists are scored in calls of their own, timed apart,
    with the score cache bypassed: a document two first stages both found is
    scored by the model for each, as it would be in production, instead of
    the second reading the first's score from the cache.
    """
    scores: dict[str, dict[str, list[ScoredText]]] = {name: {} for name in candidates}
    seconds = dict.fromkeys(candidates, 0.0)
    if scorer is not None or progress is None:
        steps = [list(judged)]
    else:
        steps = _steps(
            judged, lambda qid: max(len(docs[qid]) for docs in candidates.values())
        )
    for step in steps:
        for name, lists in candidates.items():
            todo = [qid for qid in step if lists[qid]]
            if not todo:
                continue
            items: _Items = [(lists[qid], queries[qid]) for qid in todo]
            start = clock()
            if scorer is not None:
                scored = scorer(reranker, items)
            else:
                scored = reranker.score_documents_batch(items, use_cache=False)
            seconds[name] += clock() - start
            scores[name].update(zip(todo, scored, strict=True))
        if progress is not None:
            progress("rerank", len(step))
    return scores, seconds


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
    first_stages: Sequence[FirstStageName] | None = None,
    k_values: Sequence[int] = (),
    scorer: DocumentScorer | None = None,
    progress: Callable[[str, int], object] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> EvaluationReport:
    """Measure first stages, each alone and reranked, on the same queries.

    The first stage is the retriever, or the pipeline's `base_retriever`. Over
    the package's store (`store.as_retriever()`, `build_reranking_retriever`)
    it is run as each of `first_stages`: `"dense"`, `"bm25"` and `"hybrid"`
    (the retriever's `k`, `fusion`, `alpha` and depths apply). Any other
    retriever is one first stage, named `"first stage"`.

    For a `ContextualCompressionRetriever` whose compressor is a
    `CrossEncoderCompressor` (what `build_reranking_retriever` makes), each
    first stage gives three configurations on its own candidates: the first
    stage alone (`"hybrid"`), + cross-encoder (`"hybrid + rerank"`), and the
    cross-encoder fused with that first stage's order by RRF (`"hybrid +
    rerank, RRF"`). Each candidate list is scored once and both orderings
    reuse the scores; the reranked runs keep all `k` candidates, so Recall@k
    is the same for a first stage's three rows and the others show what
    reordering bought.

    Latency is the mean per judged query, in ms, per configuration:
    `first_stage` (that first stage's own search, timed per query), `rerank`
    (the cross-encoder scoring that first stage's candidates, timed per call
    and divided by the number of queries; 0 for a first stage alone) and
    `total`. It is honest across first stages: before anything is timed each
    first stage runs once and the model loads and scores one pair, so no
    configuration pays alone for one-off start-up; each first stage's lists
    are scored in calls of their own with the score cache bypassed (neither
    read nor written), so a document two first stages both found is scored
    for each, and a second evaluation times the model again, not cache hits.

    Reranking costs model time per first stage: three first stages take
    three times the reranking of one. Pass fewer, e.g.
    `first_stages=("hybrid",)`, to spend less.

    Args:
        retriever_or_pipeline: Any LangChain retriever, or the pipeline from
            `build_reranking_retriever`.
        queries: {query id: text}; queries without qrels are not scored.
        qrels: {query id: {doc id: relevance}}; doc ids match each document's
            `metadata["doc_id"]`, else its `id`.
        first_stages: The store's searches to measure, in this order: some of
            `"dense"`, `"bm25"`, `"hybrid"`. None (the default): all three
            when the store has a keyword (BM25) index, else `("dense",)`
            (`default_first_stages`). Only for the store's retriever: any
            other is measured as it is, without this argument.
        k_values: Extra Recall cutoffs to report besides k and top_n.
        scorer: Scores the candidate lists instead of the compressor itself,
            e.g. `RayDataScorer()` to spread them over a Ray cluster (same
            scores, so the same report); it is called once per first stage,
            and its time is that first stage's rerank latency.
        progress: Called as `progress(stage, queries)` after each step, where
            `stage` is `"first stage"` or `"rerank"` and `queries` how many
            queries the step finished (in every first stage); each stage
            counts every judged query once (`"rerank"` only when there is a
            cross-encoder). With it, the reranker scores about
            `PAIRS_PER_STEP` pairs per first stage per step instead of all
            queries in one stream (a `scorer` still gets them all at once).
        clock: Seconds from a monotonic clock; tests pass a fake one.

    Returns:
        An `EvaluationReport` with nDCG@10, MRR@10, Recall@k, Recall@top_n
        and the latencies above per configuration, and each candidate's
        reranker score (`reranker_scores`, what `calibrate_scores` fits a
        probability calibration on) from the first of `first_stages` (the
        first stage measured first), so each (query, document) pair counts
        once.

    Raises:
        ValueError: No query has judgements, or `first_stages` is unknown,
            repeated, given for a retriever that is not the store's, or asks
            for keyword search of a store without a keyword index.

    Example:
        ```python
        from langchain_core.embeddings import DeterministicFakeEmbedding
        from langchain_ce_rerank import FaissVectorStore, evaluate

        store = FaissVectorStore.from_texts(
            ["a cat", "a dog"], DeterministicFakeEmbedding(size=8), ids=["cat", "dog"]
        )
        report = evaluate(store.as_retriever(k=2), {"q1": "a cat"}, {"q1": {"cat": 1}})
        print([c.name for c in report.configurations])  # ['dense', 'bm25', 'hybrid']
        print(report.configurations[0].metrics["nDCG@10"])
        ```

        Pass `build_reranking_retriever(...)` instead of a plain retriever to
        compare each first stage with its reranked and fused orders.
    """
    judged = [qid for qid in queries if qid in qrels]
    if not judged:
        msg = "no query has relevance judgements: query ids and qrels ids differ"
        raise ValueError(msg)
    first, reranker = _split(retriever_or_pipeline)
    stages = resolve_first_stages(first, first_stages)
    probe = check_query(queries[judged[0]])
    for stage in stages:
        # Untimed: what happens once (a model's first call, building the BM25
        # index after the last write) is not any query's latency.
        stage.search(probe)
    candidates: dict[str, dict[str, list[Document]]] = {s.name: {} for s in stages}
    first_seconds = dict.fromkeys(candidates, 0.0)
    for qid in judged:
        query = check_query(queries[qid])
        for stage in stages:
            start = clock()
            candidates[stage.name][qid] = stage.search(query)
            first_seconds[stage.name] += clock() - start
        if progress is not None:
            progress("first stage", 1)
    scores: dict[str, dict[str, list[ScoredText]]] = {}
    rerank_seconds: dict[str, float] = {}
    orderings: dict[str, CrossEncoderCompressor] = {}
    if reranker is not None:
        if scorer is None:
            _warm_up(reranker, candidates, queries)
        scores, rerank_seconds = _rerank(
            reranker,
            candidates,
            queries,
            judged,
            scorer=scorer,
            progress=progress,
            clock=clock,
        )
        plain = {"top_n": None, "score_threshold": None, "min_probability": None}
        orderings = {
            suffix: reranker.model_copy(update={**plain, "fusion": fusion})
            for suffix, fusion in _ORDERINGS.items()
        }
    # Calibration fits on one first stage's reranked candidates: the first
    # asked for, so a (query, document) pair two first stages found counts once.
    calibrated = stages[0].name
    reranker_scores = {
        qid: _best_scores(candidates[calibrated][qid], scored)
        for qid, scored in scores.get(calibrated, {}).items()
    }
    k = max((len(d) for run in candidates.values() for d in run.values()), default=0)
    top_n = reranker.top_n if reranker is not None else None
    recall_at = [k, *k_values] + ([top_n] if top_n is not None else [])
    count = len(judged)
    configurations = []
    for name, lists in candidates.items():
        runs = {name: {qid: _ranked_run(lists[qid]) for qid in judged}}
        for suffix, ordering in orderings.items():
            runs[name + suffix] = {
                qid: (
                    _ranked_run(ordering.order(lists[qid], scores[name][qid]))
                    if qid in scores[name]
                    else {}
                )
                for qid in judged
            }
        first_ms = 1000 * first_seconds[name] / count
        rerank_ms = 1000 * rerank_seconds.get(name, 0.0) / count
        for config, run in runs.items():
            reranks = config != name
            latency = {
                "first_stage": first_ms,
                "rerank": rerank_ms if reranks else 0.0,
                "total": first_ms + (rerank_ms if reranks else 0.0),
            }
            metrics = _metrics(qrels, run, recall_at)
            configurations.append(
                ConfigurationResult(config, metrics, latency, run, first_stage=name)
            )
    return EvaluationReport(
        configurations,
        num_queries=count,
        k=k,
        top_n=top_n,
        reranker_scores=reranker_scores,
    )
