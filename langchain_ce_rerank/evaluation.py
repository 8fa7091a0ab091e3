"""Does reranking help on my data? Retrieval metrics and latency per stage.

Metrics come from `ir-measures` (TREC's own `trec_eval` code, through
pytrec_eval); datasets use the BEIR layout retrieval people already have, and
runs can be written as TREC run files for other tools.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from langchain_ce_rerank._query import check_query
from langchain_ce_rerank.compressor import CrossEncoderCompressor
from langchain_ce_rerank.engine import ScoredText

if TYPE_CHECKING:
    import pandas
    from matplotlib.axes import Axes

__all__ = [
    "BeirDataset",
    "ConfigurationResult",
    "DocumentScorer",
    "EvaluationReport",
    "evaluate",
    "load_beir",
    "read_qrels",
    "read_queries",
    "write_trec_run",
]

Qrels = Mapping[str, Mapping[str, int]]
Run = dict[str, dict[str, float]]


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


@dataclass
class BeirDataset:
    """A BEIR-layout dataset: corpus Documents, queries and relevance judgements."""

    corpus: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]


@dataclass
class ConfigurationResult:
    """Metrics, mean per-query latency and the run of one configuration."""

    name: str
    metrics: dict[str, float]
    latency_ms: dict[str, float]
    run: Run = field(repr=False)


@dataclass
class EvaluationReport:
    """All configurations evaluated on the same queries and candidates.

    Example:
        ```python
        from langchain_core.embeddings import DeterministicFakeEmbedding
        from langchain_ce_rerank import FaissVectorStore, evaluate

        store = FaissVectorStore.from_texts(
            ["a cat", "a dog"], DeterministicFakeEmbedding(size=8), ids=["cat", "dog"]
        )
        report = evaluate(store.as_retriever(k=2), {"q": "a cat"}, {"q": {"cat": 1}})
        for config in report.configurations:
            print(config.name, config.metrics, config.latency_ms)
        print(report.to_dict())
        print(report)  # the `ce-rerank eval` table; Jupyter shows it as HTML
        ```
    """

    configurations: list[ConfigurationResult]
    num_queries: int
    k: int
    top_n: int | None

    def to_dict(self, include_runs: bool = False) -> dict[str, Any]:
        """Plain data for JSON; runs are left out unless asked for."""
        data = asdict(self)
        if not include_runs:
            for config in data["configurations"]:
                config.pop("run")
        return data

    def __str__(self) -> str:
        from langchain_ce_rerank.display import report_text

        return report_text(self)

    def _repr_html_(self) -> str:
        from langchain_ce_rerank.display import report_html

        return report_html(self)

    def to_dataframe(self) -> pandas.DataFrame:
        """One row per configuration: its metrics, then mean latency in ms.

        Columns are named as in the `ce-rerank eval` table; values are floats.

        Raises:
            ImportError: pandas is not installed (`pip install pandas`).
        """
        try:
            import pandas
        except ImportError as err:
            msg = "EvaluationReport.to_dataframe() needs pandas: pip install pandas"
            raise ImportError(msg) from err
        rows = {
            config.name: {
                **config.metrics,
                "first stage ms": config.latency_ms["first_stage"],
                "rerank ms": config.latency_ms["rerank"],
                "total ms": config.latency_ms["total"],
            }
            for config in self.configurations
        }
        frame = pandas.DataFrame.from_dict(rows, orient="index")
        frame.index.name = "configuration"
        return frame

    def plot(self, metric: str = "nDCG@10", *, ax: Axes | None = None) -> Axes:
        """A bar of `metric` per configuration, labelled with its value.

        Args:
            metric: Any metric of the report, e.g. `"MRR@10"`.
            ax: Axes to draw on; None makes a new pyplot figure (shown inline
                in Jupyter, by `plt.show()` in a script).

        Returns:
            The matplotlib `Axes` drawn on.

        Raises:
            ImportError: matplotlib is not installed (`pip install matplotlib`).
            ValueError: `metric` is not in the report.
        """
        names = list(self.configurations[0].metrics) if self.configurations else []
        if metric not in names:
            msg = (
                f"metric {metric!r} is not in this report; use one of {names}, "
                f"e.g. report.plot({names[0] if names else 'nDCG@10'!r})"
            )
            raise ValueError(msg)
        try:
            import matplotlib.pyplot as plt
        except ImportError as err:
            msg = "EvaluationReport.plot() needs matplotlib: pip install matplotlib"
            raise ImportError(msg) from err
        if ax is None:
            # White, not the inline backend's transparent default, so the black
            # labels stay legible under a dark notebook theme.
            _, ax = plt.subplots(
                figsize=(6.4, 3.2), layout="constrained", facecolor="white"
            )
        labels = [config.name for config in self.configurations]
        values = [config.metrics[metric] for config in self.configurations]
        bars = ax.bar(labels, values, color=[f"C{i}" for i in range(len(labels))])
        ax.bar_label(bars, fmt="%.3f", padding=2)
        ax.set_ylim(0, 1.1 if max(values, default=0.0) <= 1 else None)
        ax.set_ylabel(metric)
        ax.set_title(
            f"{metric}: {self.num_queries} queries, k={self.k}, top_n={self.top_n}",
            fontsize="medium",
        )
        ax.spines[["top", "right"]].set_visible(False)
        return ax


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as err:
                    msg = f"{path}:{number}: not valid JSON ({err.msg})"
                    raise ValueError(msg) from err
    return rows


def read_queries(path: str | os.PathLike[str]) -> dict[str, str]:
    """Read BEIR `queries.jsonl` (`_id`, `text`) into {query id: text}."""
    source = Path(path)
    queries = {}
    for row in _read_jsonl(source):
        if "_id" not in row or not isinstance(row.get("text"), str):
            msg = f"{source}: every row needs '_id' and 'text', got {row!r}"
            raise ValueError(msg)
        queries[str(row["_id"])] = row["text"]
    return queries


def read_qrels(path: str | os.PathLike[str]) -> dict[str, dict[str, int]]:
    """Read a BEIR qrels TSV (`query-id corpus-id score`, with a header line)."""
    source = Path(path)
    qrels: dict[str, dict[str, int]] = {}
    lines = source.read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, start=1):
        parts = line.split("\t")
        if number == 1 and parts[0] == "query-id":
            continue
        if not line.strip():
            continue
        if len(parts) != 3:
            msg = f"{source}:{number}: expected 3 tab-separated fields, got {line!r}"
            raise ValueError(msg)
        try:
            qrels.setdefault(parts[0], {})[parts[1]] = int(parts[2])
        except ValueError as err:
            msg = f"{source}:{number}: relevance must be an integer, got {parts[2]!r}"
            raise ValueError(msg) from err
    return qrels


def load_beir(folder: str | os.PathLike[str], split: str = "test") -> BeirDataset:
    r"""Load `corpus.jsonl`, `queries.jsonl` and `qrels/<split>.tsv` from `folder`.

    Corpus rows become Documents with `id` and `metadata["doc_id"]` set to `_id`
    and the title (if any) in `metadata["title"]`.

    Raises:
        FileNotFoundError: A file of the layout is missing.

    Example:
        ```python
        from pathlib import Path
        from langchain_ce_rerank import load_beir

        Path("ds/qrels").mkdir(parents=True, exist_ok=True)
        Path("ds/corpus.jsonl").write_text('{"_id": "d1", "title": "", "text": "cats"}')
        Path("ds/queries.jsonl").write_text('{"_id": "q1", "text": "cat"}')
        Path("ds/qrels/test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\n")
        data = load_beir("ds")
        print(len(data.corpus), data.queries, data.qrels)
        ```
    """
    root = Path(folder)
    for name in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv"):
        if not (root / name).is_file():
            msg = f"{root / name} is missing: {root} is not a BEIR-layout dataset"
            raise FileNotFoundError(msg)
    corpus = [
        Document(
            id=str(row["_id"]),
            page_content=row["text"],
            metadata={"doc_id": str(row["_id"]), "title": row.get("title", "")},
        )
        for row in _read_jsonl(root / "corpus.jsonl")
    ]
    return BeirDataset(
        corpus=corpus,
        queries=read_queries(root / "queries.jsonl"),
        qrels=read_qrels(root / "qrels" / f"{split}.tsv"),
    )


def write_trec_run(run: Run, path: str | os.PathLike[str], tag: str) -> None:
    """Write `run` as a TREC run file: `qid Q0 docid rank score tag` per line."""
    lines = []
    for qid, docs in run.items():
        ranked = sorted(docs.items(), key=lambda item: -item[1])
        for rank, (doc_id, score) in enumerate(ranked, start=1):
            lines.append(f"{qid} Q0 {doc_id} {rank} {score:.6f} {tag}")
    Path(path).write_text("\n".join(lines) + ("\n" if lines else ""), encoding="utf-8")


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

    Returns:
        An `EvaluationReport` with nDCG@10, MRR@10, Recall@k, Recall@top_n and
        mean latency per query (first stage, rerank, total) per configuration.

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
    timings: dict[str, float] = {"first_stage": 0.0, "rerank": 0.0}
    variants: dict[str, CrossEncoderCompressor] = {}
    if reranker is not None:
        plain = {"top_n": None, "score_threshold": None}
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
    if reranker is not None:
        # Scored once, as one stream over all queries; both orderings reuse it.
        todo = [qid for qid in judged if candidates[qid]]
        start = time.perf_counter()
        items = [(candidates[qid], queries[qid]) for qid in todo]
        if scorer is None:
            scored = reranker.score_documents_batch(items, use_cache=False)
        else:
            scored = scorer(reranker, items)
        for name, variant in variants.items():
            for qid, scores in zip(todo, scored, strict=True):
                runs[name][qid] = _ranked_run(variant.rerank(candidates[qid], scores))
        timings["rerank"] = time.perf_counter() - start
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
    return EvaluationReport(configurations, num_queries=count, k=k, top_n=top_n)
