"""`CrossEncoderCompressor`: rerank LangChain documents with a cross-encoder.

A thin LangChain door over the framework-neutral engine
(`langchain_ce_rerank.engine.Reranker`): it turns `Document`s into the texts
the engine scores and the engine's results back into new `Document`s.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from typing_extensions import override

from langchain_ce_rerank.engine import (
    UNSET,
    CrossEncoderLike,
    RankingSettings,
    ScoredText,
    Unset,
    check_text,
    first_stage_ranks,
    result_metadata,
)
from langchain_ce_rerank.engine.diversity import first_stage_embeddings
from langchain_ce_rerank.engine.door import EngineDoor
from langchain_ce_rerank.engine.reranker import LoadedModel, Loader
from langchain_ce_rerank.models import load_cross_encoder

__all__ = ["CrossEncoderCompressor", "CrossEncoderLike"]


def _load(model: Any, **kwargs: Any) -> LoadedModel:
    # Looked up at call time, so `compressor.load_cross_encoder` stays the one
    # place a test or an application can swap the loader.
    loaded: LoadedModel = load_cross_encoder(model, **kwargs)
    return loaded


def check_documents(documents: Sequence[object]) -> list[Document]:
    """Return `documents` as a list if each is a text `Document`, else explain.

    Raises:
        TypeError: An item is not a `Document` (e.g. a plain string) or its
            `page_content` is not text.
        ValueError: A `page_content` is not valid Unicode (a lone surrogate).
    """
    docs: list[Document] = []
    for position, doc in enumerate(documents):
        if not isinstance(doc, Document):
            msg = (
                f"documents must be langchain_core Document objects, but item "
                f"{position} is a {type(doc).__name__} ({doc!r:.60}); wrap texts as "
                "Document(page_content=text), or score plain texts with "
                "compressor.score(query, texts)"
            )
            raise TypeError(msg)
        if not isinstance(doc.page_content, str):
            msg = f"document {position} (id={doc.id!r}) has non-text page_content"
            raise TypeError(msg)
        check_text(doc.page_content, f"document {position} (id={doc.id!r})")
        docs.append(doc)
    return docs


class CrossEncoderCompressor(EngineDoor, BaseDocumentCompressor):
    """Rerank documents by a cross-encoder's score for each (query, document) pair.

    Returns new documents (the inputs are never mutated) sorted by
    `metadata["relevance_score"]`, highest first, ties kept in input order, cut
    to `top_n`, then filtered by `score_threshold`. The id, text and all existing
    metadata (such as `retrieval_score` and `retrieval_rank`) are kept. Works
    after any retriever and inside `DocumentCompressorPipeline`;
    `compress_documents(docs, query, top_n=3, score_threshold=0.2,
    diversity=0.5, deadline_ms=200)` overrides those settings for one call.

    `diversity` orders by maximal marginal relevance, comparing documents by
    the first stage's vectors when every one has
    `metadata["retrieval_embedding"]` (`FaissRetriever(include_embeddings=
    True)`), else by their word sets. Under `deadline_ms`, documents left
    unscored follow the scored ones in input (first-stage) order with
    `metadata["reranked"] = False` and no `relevance_score`. With a
    `calibration` (fitted by `ce-rerank eval --calibrate`), each scored result
    also gets `relevance_probability`, and `min_probability` (per call too)
    drops scored results below it (never the unscored ones).

    The model loads lazily, once, on first use (or via `load_model()`); one
    compressor may be shared between threads. Documents with the same text are
    scored once. The scoring is done by a `langchain_ce_rerank.engine.Reranker`
    (`model=` also takes one, to share its model and cache with other doors).

    Example:
        ```python
        from langchain_core.documents import Document
        from langchain_ce_rerank import CrossEncoderCompressor

        reranker = CrossEncoderCompressor(
            model="cross-encoder/ms-marco-MiniLM-L6-v2", top_n=3
        )
        docs = [
            Document(page_content="Paris is in France."),
            Document(page_content="Cats purr."),
        ]
        best = reranker.compress_documents(docs, "Where is Paris?")
        print(best[0].metadata["relevance_score"])
        ```
    """

    @override
    def _base_loader(self) -> Loader:
        return _load

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Score each text against `query` (after `activation`), in input order.

        Args:
            query: The query.
            texts: Candidate texts.

        Returns:
            One float per text.
        """
        return self.engine.score(query, texts)

    def score_documents_batch(
        self,
        items: Sequence[tuple[Sequence[Document], str]],
        *,
        use_cache: bool = True,
        deadline_ms: float | None = None,
    ) -> list[list[ScoredText]]:
        """Score many (documents, query) lists in one stream of model batches.

        Every pair from every query is flattened, de-duplicated, looked up in
        the score cache, and the rest goes to the model in one length-sorted
        call (with `deadline_ms`, in first-stage order, until the time runs
        out; see `langchain_ce_rerank.engine.deadline`).

        Args:
            items: `(documents, query)` pairs.
            use_cache: False bypasses the score cache (to time the model).
            deadline_ms: A time budget for the whole call; None has none.

        Returns:
            Per item, per document: its score and, for `"max_passage"`, the
            character span of its best window (else None); an `UnscoredText`
            (`.scored` False) for a document the deadline left unscored.
        """
        return self.engine.score_batch(
            self._texts(items), use_cache=use_cache, deadline_ms=deadline_ms
        )

    def _texts(
        self, items: Sequence[tuple[Sequence[Document], str]]
    ) -> list[tuple[str, list[str]]]:
        """Per item, the query and the text the model reads for each document."""
        render = self.engine.render
        return [
            (
                query,
                [
                    render(
                        doc.page_content,
                        doc.metadata,
                        f"document {doc.id!r} (position {position})",
                    )
                    for position, doc in enumerate(check_documents(documents))
                ],
            )
            for documents, query in items
        ]

    def score_documents(
        self, documents: Sequence[Document], query: str
    ) -> list[ScoredText]:
        """Score each document against `query`, without reordering.

        Args:
            documents: Candidates.
            query: The query.

        Returns:
            Per document, its score and (for `"max_passage"`) the character span
            of its best window, else None.
        """
        return self.score_documents_batch([(documents, query)])[0]

    def order(
        self,
        documents: Sequence[Document],
        scored: Sequence[ScoredText | tuple[float, tuple[int, int] | None]],
        *,
        top_n: int | Unset | None = UNSET,
        score_threshold: float | Unset | None = UNSET,
        diversity: float | Unset = UNSET,
        min_probability: float | Unset | None = UNSET,
    ) -> list[Document]:
        """Order, cut and filter already scored documents into new Documents.

        This is the second half of `compress_documents`, exposed so evaluation
        can compare orderings (plain, fused) of one scoring pass.

        Args:
            documents: The candidates, in first-stage order.
            scored: `score_documents(documents, query)`'s result.
            top_n: Override of `top_n` for this call.
            score_threshold: Override of `score_threshold` for this call.
            diversity: Override of `diversity` for this call.
            min_probability: Override of `min_probability` for this call.

        Returns:
            New documents with `relevance_score` (and `fused_score`,
            `relevance_passage`, `relevance_probability` where they apply) in
            metadata.
        """
        ranking = self.for_call(
            top_n=top_n,
            score_threshold=score_threshold,
            diversity=diversity,
            min_probability=min_probability,
        )
        return self._order(documents, scored, ranking)

    def _order(
        self,
        documents: Sequence[Document],
        scored: Sequence[ScoredText | tuple[float, tuple[int, int] | None]],
        ranking: RankingSettings,
    ) -> list[Document]:
        items = [
            item if isinstance(item, ScoredText) else ScoredText(*item)
            for item in scored
        ]
        metadata = [doc.metadata for doc in documents]
        ranks = first_stage_ranks(metadata) if ranking.fusion == "rrf" else None
        embeddings = texts = None
        if ranking.diversity > 0:
            embeddings = first_stage_embeddings(metadata)
            if embeddings is None:
                texts = self._texts([(documents, "")])[0][1]
        results = self.engine.order(
            items,
            ranking,
            first_stage_ranks=ranks,
            embeddings=embeddings,
            texts=texts,
        )
        return [
            documents[result.index].model_copy(
                update={
                    "metadata": {
                        **documents[result.index].metadata,
                        **result_metadata(result),
                    }
                }
            )
            for result in results
        ]

    @override
    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
        *,
        top_n: int | Unset | None = UNSET,
        score_threshold: float | Unset | None = UNSET,
        diversity: float | Unset = UNSET,
        deadline_ms: float | Unset | None = UNSET,
        min_probability: float | Unset | None = UNSET,
    ) -> Sequence[Document]:
        """Rerank `documents` for `query`; see the class docstring for the rules.

        Args:
            documents: Candidates, e.g. a first-stage retriever's output.
            query: The query; empty or whitespace-only is an error.
            callbacks: Accepted for LangChain compatibility.
            top_n: Override of the `top_n` setting for this call.
            score_threshold: Override of the `score_threshold` setting.
            diversity: Override of the `diversity` setting.
            deadline_ms: Override of the `deadline_ms` setting.
            min_probability: Override of the `min_probability` setting.

        Returns:
            New documents with `metadata["relevance_score"]` (and
            `relevance_probability` with a `calibration`; or, left unscored
            by the deadline, `metadata["reranked"] = False`).
        """
        return self.compress_documents_batch(
            [(documents, query)],
            top_n=top_n,
            score_threshold=score_threshold,
            diversity=diversity,
            deadline_ms=deadline_ms,
            min_probability=min_probability,
        )[0]

    @override
    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
        *,
        top_n: int | Unset | None = UNSET,
        score_threshold: float | Unset | None = UNSET,
        diversity: float | Unset = UNSET,
        deadline_ms: float | Unset | None = UNSET,
        min_probability: float | Unset | None = UNSET,
    ) -> Sequence[Document]:
        """`compress_documents` without blocking the event loop.

        The model runs in a worker thread, or, when it has its own async
        `ascore` (such as `RemoteCrossEncoder`), is awaited directly.
        """
        ranking = self.for_call(
            top_n=top_n,
            score_threshold=score_threshold,
            diversity=diversity,
            deadline_ms=deadline_ms,
            min_probability=min_probability,
        )
        scored = await self.engine.ascore_batch(
            self._texts([(documents, query)]), deadline_ms=ranking.deadline_ms
        )
        return self._order(documents, scored[0], ranking)

    def compress_documents_batch(
        self,
        items: Sequence[tuple[Sequence[Document], str]],
        *,
        top_n: int | Unset | None = UNSET,
        score_threshold: float | Unset | None = UNSET,
        diversity: float | Unset = UNSET,
        deadline_ms: float | Unset | None = UNSET,
        min_probability: float | Unset | None = UNSET,
    ) -> list[list[Document]]:
        """Rerank many (documents, query) lists with one stream of model calls.

        Equivalent to `[compress_documents(d, q) for d, q in items]`, but every
        pair of every query goes to the model in one de-duplicated,
        length-sorted stream, which keeps batches full and padding low. A
        `deadline_ms` bounds the whole call (see `engine.deadline`).

        Args:
            items: `(documents, query)` pairs.
            top_n: Override of the `top_n` setting for every item.
            score_threshold: Override of the `score_threshold` setting.
            diversity: Override of the `diversity` setting.
            deadline_ms: Override of the `deadline_ms` setting.
            min_probability: Override of the `min_probability` setting.

        Returns:
            The reranked documents of each item, in order.
        """
        ranking = self.for_call(
            top_n=top_n,
            score_threshold=score_threshold,
            diversity=diversity,
            deadline_ms=deadline_ms,
            min_probability=min_probability,
        )
        scored = self.score_documents_batch(items, deadline_ms=ranking.deadline_ms)
        return [
            self._order(documents, scores, ranking)
            for (documents, _), scores in zip(items, scored, strict=True)
        ]
