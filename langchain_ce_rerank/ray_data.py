"""Batch reranking on a Ray cluster with Ray Data.

`rerank_dataset` reranks a dataset of `(query, candidates)` rows with
`map_batches` over `RerankBatch` workers: each worker builds the engine and
loads its model once, then scores every batch it is given with
`Reranker.score_batch` (the same code, and so the same scores, as in-process).
`RayDataScorer` plugs this into `evaluate(..., scorer=RayDataScorer())`, so an
evaluation's reranking runs across the cluster with results identical to the
in-process path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from langchain_ce_rerank.engine import Reranker, RerankerSettings, ScoredText
from langchain_ce_rerank.optional import require

if TYPE_CHECKING:
    import ray.data
    from langchain_core.documents import Document

    from langchain_ce_rerank.compressor import CrossEncoderCompressor

__all__ = ["RayDataScorer", "RerankBatch", "rerank_dataset"]

logger = logging.getLogger(__name__)

_NO_PASSAGE = (-1, -1)


def _require_ray_data() -> Any:
    return require("ray.data", extra="ray", feature="reranking on Ray")


def _engine_settings(reranker: Reranker | RerankerSettings) -> dict[str, Any]:
    """Settings a worker rebuilds the engine from (it loads its own model).

    A relative model folder is made absolute: workers need not share the
    caller's working directory.
    """
    settings = {name: getattr(reranker, name) for name in RerankerSettings.model_fields}
    model = settings["model"]
    if isinstance(model, str | Path) and Path(model).exists():
        settings["model"] = str(Path(model).resolve())
    return settings


class RerankBatch:
    """The `map_batches` callable: one engine per worker, its model loaded once.

    Reads the `query` and `candidates` columns of a batch and adds `scores`
    (per candidate, input order), `ranks` (1-based rank per candidate, best
    first, ties keep input order), `order` (candidate indices, best first) and
    `passages` (for `long_documents="max_passage"`, each candidate's best
    window as `[start, end]` characters, else `[-1, -1]`).

    Example:
        ```python
        import ray
        from langchain_ce_rerank.ray_data import RerankBatch

        rows = ray.data.from_items([{"query": "q", "candidates": ["a", "b"]}])
        reranked = rows.map_batches(
            RerankBatch,
            fn_constructor_kwargs={"settings": {"model": "/models/ms-marco"}},
            concurrency=2,
        )
        ```
    """

    def __init__(
        self,
        settings: dict[str, Any],
        query_column: str = "query",
        candidates_column: str = "candidates",
        use_cache: bool = False,
    ) -> None:
        self._engine = Reranker(**settings)
        self._engine.load_model()
        self._query_column = query_column
        self._candidates_column = candidates_column
        self._use_cache = use_cache

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        """Score and rank one batch (numpy format: a column name -> array)."""
        queries = [str(query) for query in batch[self._query_column]]
        candidates = [
            [str(text) for text in texts] for texts in batch[self._candidates_column]
        ]
        scored = self._engine.score_batch(
            list(zip(queries, candidates, strict=True)), use_cache=self._use_cache
        )
        scores, ranks, orders, passages = [], [], [], []
        # Every candidate gets a rank: nothing is cut, grouped or budgeted here.
        everyone = self._engine.for_call(
            top_n=None,
            score_threshold=None,
            group_by=None,
            max_per_group=None,
            max_context_tokens=None,
        )
        for per_row in scored:
            ordered = self._engine.order(per_row, everyone)
            rank_of = [0] * len(per_row)
            for result in ordered:
                rank_of[result.index] = result.rank
            scores.append([item.score for item in per_row])
            ranks.append(rank_of)
            orders.append([result.index for result in ordered])
            passages.append([list(item.passage or _NO_PASSAGE) for item in per_row])
        return {
            **batch,
            "scores": scores,
            "ranks": ranks,
            "order": orders,
            "passages": passages,
        }


def rerank_dataset(
    dataset: ray.data.Dataset,
    reranker: Reranker | RerankerSettings,
    *,
    query_column: str = "query",
    candidates_column: str = "candidates",
    concurrency: int = 1,
    batch_size: int | None = 16,
    num_cpus: float = 1.0,
) -> ray.data.Dataset:
    """Rerank every row of `dataset` on the cluster (lazily, as Ray Data does).

    Args:
        dataset: Rows with a query string and a list of candidate strings.
        reranker: The engine (or settings) to reproduce on each worker. Its
            `model` should be a model id or a folder every worker can read;
            a model object is serialized to every worker.
        query_column: The query's column.
        candidates_column: The candidates' column.
        concurrency: Workers (each loads the model once).
        batch_size: Rows per `score_batch` call; None gives each worker whole
            blocks.
        num_cpus: CPUs Ray reserves per worker.

    Returns:
        The dataset with `scores`, `ranks`, `order` and `passages` columns
        added (see `RerankBatch`); `order` ignores `top_n` and
        `score_threshold`, so nothing is dropped.

    Raises:
        ImportError: ray[data] is not installed.
        ValueError: `concurrency` is below 1.

    Example:
        ```python
        import ray
        from langchain_ce_rerank.engine import Reranker
        from langchain_ce_rerank.ray_data import rerank_dataset

        rows = ray.data.from_items(
            [{"query": "Where is Paris?", "candidates": ["In France.", "Cats."]}]
        )
        engine = Reranker(model="/models/ms-marco")
        for row in rerank_dataset(rows, engine, concurrency=2).iter_rows():
            print(row["order"], row["scores"])
        ```
    """
    _require_ray_data()
    if concurrency < 1:
        msg = f"concurrency must be at least 1 worker, got {concurrency!r}"
        raise ValueError(msg)
    reranked: ray.data.Dataset = dataset.map_batches(
        RerankBatch,
        fn_constructor_kwargs={
            "settings": _engine_settings(reranker),
            "query_column": query_column,
            "candidates_column": candidates_column,
        },
        batch_size=batch_size,
        concurrency=concurrency,
        num_cpus=num_cpus,
    )
    return reranked


class RayDataScorer(BaseModel):
    """Scores an evaluation's candidate lists on Ray: `evaluate(..., scorer=)`.

    Renders each candidate's text in-process (`content_template`), reranks the
    lists with `rerank_dataset` and returns the scores in input order, so
    `evaluate` reports exactly what it reports in-process. Connects to the
    running Ray cluster (`ray.init(address=...)`), or starts a local one.

    Example:
        ```python
        from langchain_ce_rerank import build_reranking_retriever, evaluate
        from langchain_ce_rerank.ray_data import RayDataScorer

        pipeline = build_reranking_retriever(docs, reranker="/models/ms-marco")
        report = evaluate(pipeline, queries, qrels, scorer=RayDataScorer(concurrency=4))
        ```
    """

    model_config = ConfigDict(extra="forbid")

    concurrency: int = Field(default=2, ge=1)
    """Ray Data workers, each loading the model once."""

    batch_size: int | None = Field(default=16, ge=1)
    """Candidate lists per model call on a worker."""

    num_cpus: float = Field(default=1.0, ge=0)
    """CPUs Ray reserves per worker."""

    def __call__(
        self,
        compressor: CrossEncoderCompressor,
        items: Sequence[tuple[Sequence[Document], str]],
    ) -> list[list[ScoredText]]:
        """Score `(documents, query)` items as `score_documents_batch` would.

        Args:
            compressor: The pipeline's compressor (its engine's settings are
                reproduced on every worker).
            items: `(documents, query)` pairs.

        Returns:
            Per item, per document: its score and best-window span, or None.
        """
        ray_data = _require_ray_data()
        engine = compressor.engine
        rows = []
        for number, (documents, query) in enumerate(items):
            texts = [
                engine.render(
                    doc.page_content,
                    doc.metadata,
                    f"document {doc.id!r} (position {position})",
                )
                for position, doc in enumerate(documents)
            ]
            rows.append({"row": number, "query": query, "candidates": texts})
        if not rows:
            return []
        dataset = ray_data.from_items(rows)
        reranked = rerank_dataset(
            dataset,
            engine,
            concurrency=self.concurrency,
            batch_size=self.batch_size,
            num_cpus=self.num_cpus,
        )
        results: list[list[ScoredText]] = [[] for _ in rows]
        for row in reranked.iter_rows():
            results[int(row["row"])] = [
                ScoredText(
                    float(score),
                    None if int(span[0]) < 0 else (int(span[0]), int(span[1])),
                )
                for score, span in zip(row["scores"], row["passages"], strict=True)
            ]
        logger.info("Scored %d candidate lists on Ray", len(rows))
        return results
