"""`CrossEncoderCompressor`: rerank LangChain documents with a cross-encoder.

A thin LangChain door over the framework-neutral engine
(`langchain_ce_rerank.engine.Reranker`): it turns `Document`s into the texts
the engine scores and the engine's results back into new `Document`s.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, NamedTuple

from langchain_core.callbacks import Callbacks
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import PrivateAttr, SkipValidation, field_validator
from typing_extensions import override

from langchain_ce_rerank.engine import (
    UNSET,
    CrossEncoderLike,
    GroupBy,
    RankingSettings,
    Reranker,
    ScoredText,
    Unset,
    check_text,
    first_stage_ranks,
    group_keys,
    result_metadata,
)
from langchain_ce_rerank.engine.diversity import first_stage_embeddings
from langchain_ce_rerank.engine.door import EngineDoor
from langchain_ce_rerank.engine.reranker import LoadedModel, Loader
from langchain_ce_rerank.models import load_cross_encoder
from langchain_ce_rerank.parents import (
    PARENT_REMEDY,
    Parents,
    ParentStore,
    collapse_to_parents,
)

__all__ = ["CrossEncoderCompressor", "CrossEncoderLike", "RerankedDocuments"]

PARENT_GROUP_BY = "doc_id"
"""How `parents=` groups chunks when neither `group_by` nor the store (its own
`group_by`, as `SourceFiles` has) says: the parent id `load_corpus` writes, and
the key LangChain's `ParentDocumentRetriever` uses."""


class RerankedDocuments(NamedTuple):
    """What one rerank call returned, and what it did not, with why.

    Example:
        ```python
        from langchain_core.documents import Document
        from langchain_ce_rerank import CrossEncoderCompressor


        class Length:  # any object with score(pairs) works; or a model id
            def score(self, text_pairs):
                return [float(len(text)) for _, text in text_pairs]


        reranker = CrossEncoderCompressor(model=Length(), top_n=1)
        docs = [Document(page_content="short"), Document(page_content="longer")]
        kept, dropped = reranker.compress_documents_explained(docs, "q")
        print(kept[0].page_content, dropped[0].metadata["drop_reason"])  # top_n
        ```
    """

    documents: list[Document]
    """The returned documents, best first (what `compress_documents` returns)."""
    dropped: list[Document]
    """Copies of the scored candidates not returned, best first, each with
    `metadata["relevance_score"]` and `metadata["drop_reason"]` (a key of
    `langchain_ce_rerank.engine.DROP_REASONS`)."""


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
    diversity=0.5, deadline_ms=200)` overrides those settings for one call
    (also `group_by`, `max_per_group`, `max_context_tokens`,
    `min_probability` and, for rerankers that read one, `instruction`).

    Shaping the context: `group_by="source"` keeps the best result per file
    (`max_per_group` for more), `max_context_tokens=N` stops adding results
    when their text fills N tokens, and `parents=` returns (and scores) the
    whole parent document of the chunks the first stage found.
    `compress_documents_explained` also returns what was dropped, and why.

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

    parents: SkipValidation[Parents | None] = None
    """Rerank and return whole parent documents instead of the chunks found:
    the candidates are collapsed by `group_by` (when not set: the store's own
    `group_by` if it has one, else `"doc_id"`), one parent per group in the
    order of its best chunk, looked up here, and each
    parent is scored as its best window (so the engine runs with
    `long_documents="max_passage"`; passing `"truncate"` is an error). A
    `BaseStore` (`InMemoryStore`, a `ParentDocumentRetriever`'s docstore), a
    dict, or `langchain_ce_rerank.parents.SourceFiles` for what
    `load_corpus` / `ce-rerank index` read. A chunk without a parent is a
    `LookupError` naming it. Each parent keeps its best chunk's
    `retrieval_rank`/`retrieval_score` and adds `parent_chunks` and
    `best_chunk_span`. `max_per_group` does not apply (one parent per group)."""

    _parents_remedy: str = PrivateAttr(default=PARENT_REMEDY)
    """What a missing parent's error tells the user to do, in the words of the
    entry point they used (the CLI sets its own)."""

    @field_validator("parents")
    @classmethod
    def _check_parents(cls, parents: object) -> object:
        if parents is None or isinstance(parents, Mapping | ParentStore):
            return parents
        msg = (
            f"parents must be a parent store with mget(keys) (a LangChain "
            f"BaseStore, langchain_ce_rerank.parents.SourceFiles) or a dict of "
            f"key to Document, got a {type(parents).__name__}"
        )
        raise ValueError(msg)

    @override
    def _make_engine(self, settings: dict[str, Any]) -> Reranker:
        if self.parents is None:
            return super()._make_engine(settings)
        if self.max_per_group is not None:
            msg = (
                "max_per_group does not apply with parents=...: each group "
                "becomes one parent document; leave max_per_group out"
            )
            raise ValueError(msg)
        if isinstance(self.model, Reranker):
            if self.model.long_documents != "max_passage":
                msg = (
                    "parents=... scores whole parent documents, longer than the "
                    "model's window: give the Reranker long_documents='max_passage'"
                )
                raise ValueError(msg)
            return super()._make_engine(settings)
        if settings.setdefault("long_documents", "max_passage") != "max_passage":
            msg = (
                "parents=... scores whole parent documents, longer than the "
                "model's window, as their best window: leave long_documents "
                "out, or set it to 'max_passage'"
            )
            raise ValueError(msg)
        return super()._make_engine(settings)

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

    def candidates(
        self,
        documents: Sequence[Document],
        *,
        group_by: GroupBy | Unset | None = UNSET,
    ) -> list[Document]:
        """What the reranker scores for these first-stage documents.

        The documents themselves, or with `parents=` their parents, one per
        group (see `parents`). `compress_documents` calls it first;
        `score_documents` and `order` take its result.

        Args:
            documents: The first stage's documents, best first.
            group_by: Override of `group_by` for this call.

        Returns:
            The candidates, as a new list.

        Raises:
            LookupError: With `parents=`, a group has no parent.
        """
        docs = check_documents(documents)
        if self.parents is None:
            return docs
        ranking = self.for_call(group_by=group_by)
        key = (
            ranking.group_by
            or getattr(self.parents, "group_by", None)
            or PARENT_GROUP_BY
        )
        groups = self._groups(docs, key)
        return collapse_to_parents(
            docs, groups, self.parents, key, self._parents_remedy
        )

    def score_documents_batch(
        self,
        items: Sequence[tuple[Sequence[Document], str]],
        *,
        use_cache: bool = True,
        deadline_ms: float | None = None,
        instruction: str | Unset | None = UNSET,
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
            instruction: Override of the `instruction` setting.

        Returns:
            Per item, per document: its score and, for `"max_passage"`, the
            character span of its best window (else None); an `UnscoredText`
            (`.scored` False) for a document the deadline left unscored.
        """
        return self.engine.score_batch(
            self._texts(items),
            use_cache=use_cache,
            deadline_ms=deadline_ms,
            instruction=instruction,
        )

    def _texts(
        self, items: Sequence[tuple[Sequence[Document], str]]
    ) -> list[tuple[str, list[str]]]:
        """Per item, the query and the text the model reads for each document."""
        return [
            (query, self._rendered(check_documents(documents)))
            for documents, query in items
        ]

    def _rendered(self, documents: Sequence[Document]) -> list[str]:
        render = self.engine.render
        return [
            render(
                doc.page_content,
                doc.metadata,
                f"document {doc.id!r} (position {position})",
            )
            for position, doc in enumerate(documents)
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
        group_by: GroupBy | Unset | None = UNSET,
        max_per_group: int | Unset | None = UNSET,
        max_context_tokens: int | Unset | None = UNSET,
        diversity: float | Unset = UNSET,
        min_probability: float | Unset | None = UNSET,
    ) -> list[Document]:
        """Order, cut and filter already scored documents into new Documents.

        This is the second half of `compress_documents`, exposed so evaluation
        can compare orderings (plain, fused) of one scoring pass.

        Args:
            documents: The candidates, in first-stage order (with `parents=`,
                what `candidates` returned).
            scored: `score_documents(documents, query)`'s result.
            top_n: Override of `top_n` for this call.
            score_threshold: Override of `score_threshold` for this call.
            group_by: Override of `group_by` for this call.
            max_per_group: Override of `max_per_group` for this call.
            max_context_tokens: Override of `max_context_tokens` for this call.
            diversity: Override of `diversity` for this call.
            min_probability: Override of `min_probability` for this call.

        Returns:
            New documents with `relevance_score` (and `fused_score`,
            `relevance_passage`, `relevance_probability`, `context_tokens`,
            `context_cut` where they apply) in metadata.
        """
        ranking = self._ranking(
            top_n=top_n,
            score_threshold=score_threshold,
            group_by=group_by,
            max_per_group=max_per_group,
            max_context_tokens=max_context_tokens,
            diversity=diversity,
            min_probability=min_probability,
        )
        return self._order(documents, scored, ranking).documents

    def rank_settings(self, **options: Any) -> RankingSettings:
        """One call's ranking settings, as `compress_documents` resolves them.

        `for_call`, except that with `parents=` the groups are already the
        parents (so `group_by` is spent on choosing them, and `max_per_group`
        is refused).

        Args:
            **options: Any of `PER_CALL_OPTIONS`.

        Returns:
            The settings for `order_with`.
        """
        return self._ranking(**options)

    def order_with(
        self,
        documents: Sequence[Document],
        scored: Sequence[ScoredText],
        ranking: RankingSettings,
    ) -> list[Document]:
        """`order` with settings already resolved by `rank_settings`.

        Args:
            documents: The candidates `scored` belongs to (after `candidates`).
            scored: Their scores, from `score_documents_batch`.
            ranking: This call's settings.

        Returns:
            The kept documents, as `compress_documents` returns them.
        """
        return self._order(documents, scored, ranking).documents

    def _ranking(self, **options: Any) -> RankingSettings:
        """This call's settings; with `parents=` the groups are already parents."""
        ranking = self.for_call(**options)
        if self.parents is None:
            return ranking
        if ranking.max_per_group is not None:
            msg = (
                "max_per_group does not apply with parents=...: each group "
                "becomes one parent document"
            )
            raise ValueError(msg)
        return ranking.model_copy(update={"group_by": None})

    def _groups(
        self, documents: Sequence[Document], group_by: GroupBy
    ) -> list[Hashable]:
        return group_keys(
            group_by,
            documents,
            lambda doc: doc.metadata,
            lambda i: f"document {i} (id={documents[i].id!r})",
        )

    def _order(
        self,
        documents: Sequence[Document],
        scored: Sequence[ScoredText | tuple[float, tuple[int, int] | None]],
        ranking: RankingSettings,
    ) -> RerankedDocuments:
        metadata = [doc.metadata for doc in documents]
        ranks = first_stage_ranks(metadata) if ranking.fusion == "rrf" else None
        contents = [doc.page_content for doc in documents]
        template = self.engine.content_template
        selection = self.engine.select(
            [
                item if isinstance(item, ScoredText) else ScoredText(*item)
                for item in scored
            ],
            ranking,
            first_stage_ranks=ranks,
            groups=(
                None
                if ranking.group_by is None
                else self._groups(documents, ranking.group_by)
            ),
            contents=contents,
            scored_texts=None if template is None else self._rendered(documents),
            embeddings=first_stage_embeddings(metadata)
            if ranking.diversity > 0
            else None,
        )
        kept = []
        for result in selection.results:
            doc = documents[result.index]
            update: dict[str, Any] = {
                "metadata": {**doc.metadata, **result_metadata(result)}
            }
            if result.cut is not None:
                update["page_content"] = result.content(doc.page_content)
            kept.append(doc.model_copy(update=update))
        dropped = [
            documents[item.index].model_copy(
                update={
                    "metadata": {
                        **documents[item.index].metadata,
                        **(
                            {"relevance_score": item.score}
                            if item.reranked
                            else {"reranked": False}
                        ),
                        "drop_reason": item.reason,
                    }
                }
            )
            for item in selection.dropped
        ]
        return RerankedDocuments(kept, dropped)

    @override
    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
        *,
        top_n: int | Unset | None = UNSET,
        score_threshold: float | Unset | None = UNSET,
        group_by: GroupBy | Unset | None = UNSET,
        max_per_group: int | Unset | None = UNSET,
        max_context_tokens: int | Unset | None = UNSET,
        diversity: float | Unset = UNSET,
        deadline_ms: float | Unset | None = UNSET,
        min_probability: float | Unset | None = UNSET,
        instruction: str | Unset | None = UNSET,
    ) -> Sequence[Document]:
        """Rerank `documents` for `query`; see the class docstring for the rules.

        Args:
            documents: Candidates, e.g. a first-stage retriever's output.
            query: The query; empty or whitespace-only is an error.
            callbacks: Accepted for LangChain compatibility.
            top_n: Override of the `top_n` setting for this call.
            score_threshold: Override of the `score_threshold` setting.
            group_by: Override of the `group_by` setting.
            max_per_group: Override of the `max_per_group` setting.
            max_context_tokens: Override of the `max_context_tokens` setting.
            diversity: Override of the `diversity` setting.
            deadline_ms: Override of the `deadline_ms` setting.
            min_probability: Override of the `min_probability` setting.
            instruction: Override of the `instruction` setting.

        Returns:
            New documents with `metadata["relevance_score"]` (and
            `relevance_probability` with a `calibration`; or, left unscored
            by the deadline, `metadata["reranked"] = False`).
        """
        return self.compress_documents_explained(
            documents,
            query,
            top_n=top_n,
            score_threshold=score_threshold,
            group_by=group_by,
            max_per_group=max_per_group,
            max_context_tokens=max_context_tokens,
            diversity=diversity,
            deadline_ms=deadline_ms,
            min_probability=min_probability,
            instruction=instruction,
        ).documents

    def compress_documents_explained(
        self,
        documents: Sequence[Document],
        query: str,
        *,
        top_n: int | Unset | None = UNSET,
        score_threshold: float | Unset | None = UNSET,
        group_by: GroupBy | Unset | None = UNSET,
        max_per_group: int | Unset | None = UNSET,
        max_context_tokens: int | Unset | None = UNSET,
        diversity: float | Unset = UNSET,
        deadline_ms: float | Unset | None = UNSET,
        min_probability: float | Unset | None = UNSET,
        instruction: str | Unset | None = UNSET,
    ) -> RerankedDocuments:
        """`compress_documents`, plus every candidate it dropped and why.

        Args:
            documents: Candidates, e.g. a first-stage retriever's output.
            query: The query; empty or whitespace-only is an error.
            top_n: Override of the `top_n` setting for this call.
            score_threshold: Override of the `score_threshold` setting.
            group_by: Override of the `group_by` setting.
            max_per_group: Override of the `max_per_group` setting.
            max_context_tokens: Override of the `max_context_tokens` setting.
            diversity: Override of the `diversity` setting.
            deadline_ms: Override of the `deadline_ms` setting.
            min_probability: Override of the `min_probability` setting.
            instruction: Override of the `instruction` setting.

        Returns:
            The returned documents and the dropped ones (copies with
            `metadata["drop_reason"]`), both best first.
        """
        ranking = self._ranking(
            top_n=top_n,
            score_threshold=score_threshold,
            group_by=group_by,
            max_per_group=max_per_group,
            max_context_tokens=max_context_tokens,
            diversity=diversity,
            deadline_ms=deadline_ms,
            min_probability=min_probability,
        )
        self.engine.check_call_calibration(ranking.calibration, instruction)
        candidates = self.candidates(documents, group_by=group_by)
        scored = self.score_documents_batch(
            [(candidates, query)],
            deadline_ms=ranking.deadline_ms,
            instruction=instruction,
        )[0]
        return self._order(candidates, scored, ranking)

    @override
    async def acompress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
        *,
        top_n: int | Unset | None = UNSET,
        score_threshold: float | Unset | None = UNSET,
        group_by: GroupBy | Unset | None = UNSET,
        max_per_group: int | Unset | None = UNSET,
        max_context_tokens: int | Unset | None = UNSET,
        diversity: float | Unset = UNSET,
        deadline_ms: float | Unset | None = UNSET,
        min_probability: float | Unset | None = UNSET,
        instruction: str | Unset | None = UNSET,
    ) -> Sequence[Document]:
        """`compress_documents` without blocking the event loop.

        The model runs in a worker thread, or, when it has its own async
        `ascore` (such as `RemoteCrossEncoder`), is awaited directly.
        """
        ranking = self._ranking(
            top_n=top_n,
            score_threshold=score_threshold,
            group_by=group_by,
            max_per_group=max_per_group,
            max_context_tokens=max_context_tokens,
            diversity=diversity,
            deadline_ms=deadline_ms,
            min_probability=min_probability,
        )
        self.engine.check_call_calibration(ranking.calibration, instruction)
        candidates = self.candidates(documents, group_by=group_by)
        scored = await self.engine.ascore_batch(
            self._texts([(candidates, query)]),
            deadline_ms=ranking.deadline_ms,
            instruction=instruction,
        )
        return self._order(candidates, scored[0], ranking).documents

    def compress_documents_batch(
        self,
        items: Sequence[tuple[Sequence[Document], str]],
        *,
        top_n: int | Unset | None = UNSET,
        score_threshold: float | Unset | None = UNSET,
        group_by: GroupBy | Unset | None = UNSET,
        max_per_group: int | Unset | None = UNSET,
        max_context_tokens: int | Unset | None = UNSET,
        diversity: float | Unset = UNSET,
        deadline_ms: float | Unset | None = UNSET,
        min_probability: float | Unset | None = UNSET,
        instruction: str | Unset | None = UNSET,
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
            group_by: Override of the `group_by` setting.
            max_per_group: Override of the `max_per_group` setting.
            max_context_tokens: Override of the `max_context_tokens` setting.
            diversity: Override of the `diversity` setting.
            deadline_ms: Override of the `deadline_ms` setting.
            min_probability: Override of the `min_probability` setting.
            instruction: Override of the `instruction` setting.

        Returns:
            The reranked documents of each item, in order.
        """
        ranking = self._ranking(
            top_n=top_n,
            score_threshold=score_threshold,
            group_by=group_by,
            max_per_group=max_per_group,
            max_context_tokens=max_context_tokens,
            diversity=diversity,
            deadline_ms=deadline_ms,
            min_probability=min_probability,
        )
        self.engine.check_call_calibration(ranking.calibration, instruction)
        candidates = [
            (self.candidates(documents, group_by=group_by), query)
            for documents, query in items
        ]
        scored = self.score_documents_batch(
            candidates, deadline_ms=ranking.deadline_ms, instruction=instruction
        )
        return [
            self._order(documents, scores, ranking).documents
            for (documents, _), scores in zip(candidates, scored, strict=True)
        ]
