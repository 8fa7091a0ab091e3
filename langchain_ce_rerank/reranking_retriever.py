"""`RerankingRetriever`: a first stage and the cross-encoder as one retriever.

`build_reranking_retriever` wires the two together in one call.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Iterable
from typing import Any, cast

from langchain_classic.retrievers import ContextualCompressionRetriever
from langchain_core.callbacks import (
    AsyncCallbackManagerForRetrieverRun,
    CallbackManager,
    CallbackManagerForRetrieverRun,
)
from langchain_core.cross_encoders import BaseCrossEncoder
from langchain_core.documents import BaseDocumentCompressor, Document
from langchain_core.embeddings import Embeddings
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import RunnableConfig
from langchain_core.runnables.config import (
    ensure_config,
    get_config_list,
    run_in_executor,
)
from langchain_core.vectorstores import VectorStore
from typing_extensions import override

from langchain_ce_rerank.compressor import (
    CrossEncoderCompressor,
    CrossEncoderLike,
    RerankedDocuments,
    check_documents,
)
from langchain_ce_rerank.engine import PER_CALL_OPTIONS, UNSET, RankingSettings
from langchain_ce_rerank.engine.diversity import EMBEDDING_KEY
from langchain_ce_rerank.errors import ModelNotFoundError
from langchain_ce_rerank.models import (
    DEFAULT_CROSS_ENCODER,
    load_embeddings,
    resolve_model,
)
from langchain_ce_rerank.store import new_index
from langchain_ce_rerank.store.retriever import FaissRetriever

__all__ = ["RerankingRetriever", "build_reranking_retriever"]


# The reranker's per-call options: its ranking settings, and the instruction
# its model scores under (a scoring setting, so not one of PER_CALL_OPTIONS).
_RERANK_OPTIONS = (*PER_CALL_OPTIONS, "instruction")
# First-stage options a RerankingRetriever passes on, under the names it
# accepts: the first stage's threshold is spelled apart from the reranker's.
_FIRST_STAGE_OPTIONS = {
    "k": "k",
    "filter": "filter",
    "fetch_k": "fetch_k",
    "lambda_mult": "lambda_mult",
    "retrieval_score_threshold": "score_threshold",
    # The store's keyword and hybrid search (FaissRetriever's own options).
    "search_type": "search_type",
    "fusion": "fusion",
    "alpha": "alpha",
    "rrf_k": "rrf_k",
    "dense_depth": "dense_depth",
    "bm25_depth": "bm25_depth",
}
_OPTIONS = (*_RERANK_OPTIONS, *_FIRST_STAGE_OPTIONS)
# What `BaseRetriever.invoke` passes to `_get_relevant_documents` itself.
_RETRIEVER_ARGS = frozenset({"self", "query", "run_manager"})


def _ranking_options(rerank: dict[str, Any]) -> dict[str, Any]:
    """The reranker's per-call options less `instruction` (not a ranking one)."""
    return {name: value for name, value in rerank.items() if name != "instruction"}


def _accepted_options(first_stage: object) -> frozenset[str] | None:
    """Per-call options `first_stage.invoke` hands on; None: any name.

    `BaseRetriever.invoke` passes keyword arguments on only when the class's
    `_get_relevant_documents` declares more than the query and run manager,
    and drops them silently otherwise; this reads the same signature, so an
    option the first stage would never see is an error instead.
    """
    method = getattr(type(first_stage), "_get_relevant_documents", None)
    if method is None:  # another runnable: its invoke decides
        return None
    parameters = inspect.signature(method).parameters.values()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters):
        return None
    return frozenset(p.name for p in parameters) - _RETRIEVER_ARGS


def _with_ranks(docs: list[Document]) -> list[Document]:
    """`docs` with `retrieval_rank` (1-based position) where the first stage gave none.

    A document that lacks it is copied (the first stage's own objects are
    never changed); anything the first stage wrote, `retrieval_score`
    included, is kept as it is. No `retrieval_score` is made up for a first
    stage that gives none: the key stays absent.
    """
    return [
        doc.model_copy(update={"metadata": {**doc.metadata, "retrieval_rank": i}})
        if isinstance(doc, Document) and doc.metadata.get("retrieval_rank") is None
        else doc  # the reranker explains anything that is not a Document
        for i, doc in enumerate(docs, start=1)
    ]


def _without_vectors(docs: list[Document]) -> list[Document]:
    """Copies of `docs` without the first-stage vectors asked for diversity."""
    return [
        doc.model_copy(
            update={
                "metadata": {
                    k: v for k, v in doc.metadata.items() if k != EMBEDDING_KEY
                }
            }
        )
        if EMBEDDING_KEY in doc.metadata
        else doc
        for doc in docs
    ]


_RERANKER_REMEDY = "build_reranking_retriever(reranker='/path/to/model')"


class RerankingRetriever(ContextualCompressionRetriever):
    """A `ContextualCompressionRetriever` with per-call options and one-pass batches.

    The first stage (`base_retriever`) is any LangChain retriever: our
    `FaissRetriever`, or your own (Elasticsearch, Qdrant, pgvector, BM25...).
    Each candidate gets `metadata["retrieval_rank"]`, its 1-based position,
    unless the first stage gave one; the first stage's own metadata
    (`retrieval_score` included) is never overwritten, and no score is made
    up for one that gives none.

    Per call (`invoke`, `ainvoke`, `batch`, `abatch`, or
    `with_config(configurable={...})`), it takes the reranker's `top_n`,
    `score_threshold` (a minimum `relevance_score`, the cross-encoder's
    score), `group_by`, `max_per_group` and `max_context_tokens`,
    `diversity` and `deadline_ms` (which bounds the reranking, not the first
    stage), `min_probability` (a minimum `relevance_probability`, with a
    `calibration`), `instruction` (for rerankers that read one) and the first
    stage's `k`, `filter`, `fetch_k`,
    `lambda_mult`,
    `retrieval_score_threshold` (the first stage's own threshold, passed
    to it as `score_threshold`: for `FaissRetriever`, LangChain's normalized
    relevance, for cosine `(1 + cosine) / 2`) and, for the store's keyword
    and hybrid search, `search_type`, `fusion`, `alpha`, `rrf_k`,
    `dense_depth` and `bm25_depth`. The first stage's options go
    to its `invoke` when its `_get_relevant_documents` takes them (a
    `VectorStoreRetriever` takes any, and its store decides what they mean);
    one that it would silently drop is a `TypeError` naming it. An unknown
    option is an error that lists the accepted ones; per-call arguments win
    over `configurable`, which wins over the settings.

    `batch` runs each stage once per query: the first stage as one batch
    (for `FaissRetriever`, one FAISS search for all queries), then every
    (query, candidate) pair in one de-duplicated, length-sorted model
    stream. Each query keeps its own run, with its own callbacks and trace,
    as under `invoke`. `invoke_explained` also returns the candidates the
    reranker dropped, each with its reason.

    With `diversity` above 0 and a `FaissRetriever` first stage, it asks the
    first stage for its stored vectors (`include_embeddings=True`) so that
    diversity compares the first stage's own embeddings, and removes them
    from the documents it returns (unless the `FaissRetriever` was set to
    include them itself). Any other first stage: word-set similarity, unless
    it puts `metadata["retrieval_embedding"]` on its documents.

    Example:
        ```python
        from langchain_core.documents import Document
        from langchain_core.embeddings import DeterministicFakeEmbedding
        from langchain_ce_rerank import build_reranking_retriever

        from langchain_core.cross_encoders import BaseCrossEncoder


        class Overlap(BaseCrossEncoder):  # counts shared words; any model works
            def score(self, text_pairs):
                return [
                    float(len(set(q.split()) & set(t.split()))) for q, t in text_pairs
                ]


        retriever = build_reranking_retriever(
            [Document(page_content=t) for t in ["red apple", "blue sky", "red sky"]],
            embedding=DeterministicFakeEmbedding(size=8),
            reranker=Overlap(),
            k=3,
            top_n=1,
        )
        print(retriever.batch(["red apple", "blue sky"]))
        print(retriever.invoke("red sky", top_n=2, score_threshold=1.0))
        ```
    """

    def _repr_html_(self) -> str:
        from langchain_ce_rerank.display import summary_html

        return summary_html(
            type(self).__name__,
            {
                "first stage": repr(self.base_retriever),
                "reranker": repr(self.base_compressor),
            },
        )

    def _split(self, options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(first-stage kwargs, reranker kwargs) from the per-call options."""
        unknown = sorted(set(options) - set(_OPTIONS))
        if unknown:
            msg = (
                f"unexpected argument(s) {unknown}; accepted: {list(_OPTIONS)} "
                "(score_threshold is the reranker's minimum relevance_score; "
                "retrieval_score_threshold is the first stage's)"
            )
            raise TypeError(msg)
        rerank = {k: v for k, v in options.items() if k in _RERANK_OPTIONS}
        if rerank and not isinstance(self.base_compressor, CrossEncoderCompressor):
            msg = (
                f"{sorted(rerank)} per call need a CrossEncoderCompressor; "
                f"this retriever reranks with a {type(self.base_compressor).__name__}"
            )
            raise TypeError(msg)
        first = {
            _FIRST_STAGE_OPTIONS[k]: v
            for k, v in options.items()
            if k in _FIRST_STAGE_OPTIONS
        }
        accepted = _accepted_options(self.base_retriever)
        refused = sorted(
            name
            for name, passed in _FIRST_STAGE_OPTIONS.items()
            if name in options and accepted is not None and passed not in accepted
        )
        if refused:
            kind = type(self.base_retriever).__name__
            msg = (
                f"{refused} per call go to the first stage, and this retriever's "
                f"first stage, a {kind}, takes no such option (its "
                "_get_relevant_documents does not accept it); set it on the "
                f"{kind} itself. Per call, top_n, score_threshold, diversity, "
                "deadline_ms, min_probability and instruction (the reranker's) "
                "always work"
            )
            raise TypeError(msg)
        return first, rerank

    def _ranking(self, rerank: dict[str, Any]) -> RankingSettings | None:
        """The reranker's settings for one call (checked), if it is ours."""
        compressor = self.base_compressor
        if not isinstance(compressor, CrossEncoderCompressor):
            return None
        return compressor.for_call(**_ranking_options(rerank))

    def _ask_for_vectors(self, first: dict[str, Any], rerank: dict[str, Any]) -> bool:
        """Ask a FAISS first stage for its vectors when diversity needs them.

        Returns:
            Whether the vectors were asked for here, so must be removed from
            what the call returns.
        """
        try:
            ranking = self._ranking(rerank)
        except (TypeError, ValueError):
            return False  # the reranker raises it, in its own words
        stage = self.base_retriever
        if (
            ranking is None
            or ranking.diversity == 0
            or not isinstance(stage, FaissRetriever)
            or first.get("include_embeddings", stage.include_embeddings)
        ):
            return False
        first["include_embeddings"] = True
        return True

    @staticmethod
    def _with_configurable(
        config: RunnableConfig | None, kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """Our options from `configurable`, overridden by the call's own.

        Other `configurable` keys are ignored: the whole chain shares them.
        """
        configurable = ensure_config(config).get("configurable") or {}
        return {k: v for k, v in configurable.items() if k in _OPTIONS} | kwargs

    @override
    def invoke(
        self, input: str, config: RunnableConfig | None = None, **kwargs: Any
    ) -> list[Document]:
        return super().invoke(input, config, **self._with_configurable(config, kwargs))

    def invoke_explained(
        self, input: str, config: RunnableConfig | None = None, **kwargs: Any
    ) -> RerankedDocuments:
        """`invoke`, plus the candidates the reranker dropped and why.

        What `explain()` shows. Takes the same per-call options and
        `configurable` as `invoke`; callbacks in `config` see the first
        stage's run.

        Returns:
            The documents `invoke` returns, and copies of the dropped
            candidates with `metadata["drop_reason"]`.

        Raises:
            TypeError: The reranker is not a `CrossEncoderCompressor`.
        """
        compressor = self.base_compressor
        if not isinstance(compressor, CrossEncoderCompressor):
            msg = (
                "invoke_explained needs a CrossEncoderCompressor; this retriever "
                f"reranks with a {type(compressor).__name__}"
            )
            raise TypeError(msg)
        first, rerank = self._split(self._with_configurable(config, kwargs))
        asked = self._ask_for_vectors(first, rerank)
        docs = _with_ranks(
            self.base_retriever.invoke(
                input,
                config={"callbacks": ensure_config(config).get("callbacks")},
                **first,
            )
        )
        if not docs:
            return RerankedDocuments([], [])
        result = compressor.compress_documents_explained(docs, input, **rerank)
        if not asked:
            return result
        return RerankedDocuments(
            _without_vectors(result.documents), _without_vectors(result.dropped)
        )

    @override
    async def ainvoke(
        self, input: str, config: RunnableConfig | None = None, **kwargs: Any
    ) -> list[Document]:
        return await super().ainvoke(
            input, config, **self._with_configurable(config, kwargs)
        )

    @override
    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        **kwargs: Any,
    ) -> list[Document]:
        first, rerank = self._split(kwargs)
        asked = self._ask_for_vectors(first, rerank)
        docs = _with_ranks(
            self.base_retriever.invoke(
                query, config={"callbacks": run_manager.get_child()}, **first
            )
        )
        if not docs:
            return []
        reranked = list(
            self.base_compressor.compress_documents(
                docs, query, callbacks=run_manager.get_child(), **rerank
            )
        )
        return _without_vectors(reranked) if asked else reranked

    @override
    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        **kwargs: Any,
    ) -> list[Document]:
        first, rerank = self._split(kwargs)
        asked = self._ask_for_vectors(first, rerank)
        docs = _with_ranks(
            await self.base_retriever.ainvoke(
                query, config={"callbacks": run_manager.get_child()}, **first
            )
        )
        if not docs:
            return []
        reranked = list(
            await self.base_compressor.acompress_documents(
                docs, query, callbacks=run_manager.get_child(), **rerank
            )
        )
        return _without_vectors(reranked) if asked else reranked

    def _start_run(
        self, query: str, config: RunnableConfig
    ) -> CallbackManagerForRetrieverRun:
        """Open one query's run, as `BaseRetriever.invoke` does.

        `batch` cannot call `invoke` per query: it scores every query's
        candidates in one model stream, so all the runs must be open at once,
        with each query's first-stage run nested in its own, while `invoke`
        opens and closes a run around one query's whole work. So it opens them
        itself, through public API (`CallbackManager.configure`,
        `on_retriever_start`, and `on_retriever_end`/`_error` in `batch`),
        except for one call: `BaseRetriever._get_ls_params`, the hook through
        which LangChain adds its LangSmith retriever metadata
        (`ls_retriever_name`, plus what a subclass adds) to the run. LangChain
        offers no public way to read it; leaving it out would make a query's
        trace under `batch` lack metadata it has under `invoke`, which
        `test_batch_runs_carry_the_metadata_invoke_gives_them` pins.
        """
        manager = CallbackManager.configure(
            config.get("callbacks"),
            None,
            verbose=False,
            inheritable_tags=config.get("tags"),
            local_tags=self.tags,
            inheritable_metadata={
                **(config.get("metadata") or {}),
                **self._get_ls_params(),
            },
            local_metadata=self.metadata,
        )
        return manager.on_retriever_start(
            None,
            query,
            name=config.get("run_name") or self.get_name(),
            run_id=config.get("run_id"),
        )

    @override
    def batch(
        self,
        inputs: list[str],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[list[Document]]:
        compressor = self.base_compressor
        if not isinstance(compressor, CrossEncoderCompressor) or len(inputs) < 2:
            return super().batch(
                inputs, config, return_exceptions=return_exceptions, **kwargs
            )
        configs = get_config_list(config, len(inputs))
        options = [self._split(self._with_configurable(c, kwargs)) for c in configs]
        asked = [self._ask_for_vectors(first, rerank) for first, rerank in options]
        runs = [self._start_run(q, c) for q, c in zip(inputs, configs, strict=True)]
        outcomes: list[list[Document] | Exception] = [[] for _ in inputs]
        # Stage 1: one batch per distinct set of first-stage options (usually one).
        groups: dict[str, list[int]] = {}
        for i, (first, _) in enumerate(options):
            groups.setdefault(repr(sorted(first.items())), []).append(i)
        for members in groups.values():
            found = self.base_retriever.batch(
                [inputs[i] for i in members],
                [
                    {
                        "callbacks": runs[i].get_child(),
                        "max_concurrency": configs[i].get("max_concurrency"),
                    }
                    for i in members
                ],
                return_exceptions=True,
                **options[members[0]][0],
            )
            for i, result in zip(members, found, strict=True):
                outcomes[i] = (
                    result if isinstance(result, Exception) else _with_ranks(result)
                )
        # Stage 2: every query's candidates (the documents, or their parents)
        # in one model stream per distinct deadline (a deadline bounds the
        # stream it is given to).
        rankings: dict[int, RankingSettings] = {}
        candidates: dict[int, list[Document]] = {}
        for i, outcome in enumerate(outcomes):
            if isinstance(outcome, Exception) or not outcome:
                continue
            try:
                rankings[i] = compressor.rank_settings(
                    **_ranking_options(options[i][1])
                )
                compressor.engine.check_call_calibration(
                    rankings[i].calibration,
                    options[i][1].get("instruction", UNSET),
                )
                candidates[i] = compressor.candidates(
                    outcome, group_by=options[i][1].get("group_by", UNSET)
                )
            except Exception as err:
                rankings.pop(i, None)
                outcomes[i] = err
        # and per distinct instruction (a model call reads one).
        streams: dict[tuple[float | None, object], list[int]] = {}
        for i, ranking in rankings.items():
            instruction = options[i][1].get("instruction", UNSET)
            streams.setdefault((ranking.deadline_ms, instruction), []).append(i)
        for (deadline_ms, instruction), members in streams.items():
            try:
                scored = compressor.score_documents_batch(
                    [(candidates[i], inputs[i]) for i in members],
                    deadline_ms=deadline_ms,
                    instruction=instruction,  # type: ignore[arg-type]
                )
            except Exception as err:
                for i in members:
                    outcomes[i] = err
                continue
            for i, scores in zip(members, scored, strict=True):
                try:
                    docs = compressor.order_with(candidates[i], scores, rankings[i])
                except Exception as err:
                    outcomes[i] = err
                else:
                    outcomes[i] = _without_vectors(docs) if asked[i] else docs
        for run, outcome in zip(runs, outcomes, strict=True):
            if isinstance(outcome, Exception):
                run.on_retriever_error(outcome)
            else:
                run.on_retriever_end(outcome)
        if not return_exceptions:
            for outcome in outcomes:
                if isinstance(outcome, Exception):
                    raise outcome
        return cast("list[list[Document]]", outcomes)

    @override
    async def abatch(
        self,
        inputs: list[str],
        config: RunnableConfig | list[RunnableConfig] | None = None,
        *,
        return_exceptions: bool = False,
        **kwargs: Any,
    ) -> list[list[Document]]:
        if not isinstance(self.base_compressor, CrossEncoderCompressor):
            return await super().abatch(
                inputs, config, return_exceptions=return_exceptions, **kwargs
            )
        # One model stream for all queries, scored off the event loop.
        return await run_in_executor(
            None,
            functools.partial(
                self.batch, inputs, config, return_exceptions=return_exceptions
            ),
            **kwargs,
        )


def build_reranking_retriever(
    documents: Iterable[Document] | None = None,
    *,
    first_stage: BaseRetriever | None = None,
    vectorstore: VectorStore | None = None,
    embedding: Embeddings | None = None,
    reranker: (
        str
        | os.PathLike[str]
        | BaseCrossEncoder
        | CrossEncoderLike
        | BaseDocumentCompressor
        | None
    ) = None,
    k: int | None = None,
    top_n: int | None = 5,
    **compressor_kwargs: Any,
) -> RerankingRetriever:
    """Build a first stage plus cross-encoder reranker, ready to invoke.

    The first stage is one of: a new FAISS store over `documents`, an existing
    `vectorstore`, or any LangChain retriever as `first_stage` (Elasticsearch,
    OpenSearch, Qdrant, pgvector, BM25, an `EnsembleRetriever`...): keep your
    store and add the reranker.

    Each candidate reaches the reranker with `metadata["retrieval_rank"]`, its
    1-based position in the first stage's list, unless the first stage gave
    one; `retrieval_score` is what the first stage gave (our FAISS store gives
    its cosine similarity; a retriever that gives none leaves it absent).
    What a first stage wrote is never overwritten, and its documents are
    copied, not changed.

    Args:
        documents: Documents to index in a new FAISS store.
        first_stage: Any LangChain `BaseRetriever`, used as it is (not with
            `documents`, `vectorstore`, `embedding` or `k`: it returns as many
            candidates as it is set to).
        vectorstore: An existing LangChain vector store to search instead, such
            as a `FaissVectorStore` (not with `documents` or `embedding`; add
            documents to it yourself).
        embedding: Embeddings for the new store; default
            `sentence-transformers/all-MiniLM-L6-v2`, normalized.
        reranker: A cross-encoder id or folder, a loaded
            `sentence_transformers.CrossEncoder`, a `BaseCrossEncoder`, or a
            ready document compressor (used as is: then `top_n` and
            `compressor_kwargs` are not used). Default
            `cross-encoder/ms-marco-MiniLM-L6-v2`.
        k: Candidates the first stage hands to the reranker; default 20. Not
            with `first_stage`: set the count on that retriever.
        top_n: Documents returned after reranking; None keeps all `k`.
        **compressor_kwargs: Other `CrossEncoderCompressor` fields
            (`score_threshold`, `calibration`, `min_probability`,
            `batch_size`, `activation`, ...).

    Returns:
        A `RerankingRetriever` (a `ContextualCompressionRetriever`). Per call,
        `top_n`, `score_threshold`, `diversity`, `deadline_ms` and
        `min_probability` always work; the first stage's options (`k`,
        `filter`, `fetch_k`, `lambda_mult`,
        `retrieval_score_threshold`) are passed to the first stage when it
        takes per-call options (ours and LangChain's `VectorStoreRetriever`
        do), and are a `TypeError` naming them when it does not.

    Raises:
        ModelNotFoundError: The reranker or the default embedding model
            cannot be found; both are looked for before any document is
            embedded, so this comes in seconds.
        ValueError: Conflicting arguments, or `k`/`top_n` below 1.
        TypeError: `first_stage` is not a LangChain retriever.

    Example:
        ```python
        from langchain_core.documents import Document
        from langchain_ce_rerank import build_reranking_retriever

        retriever = build_reranking_retriever(
            [Document(page_content="Paris is the capital of France.")], k=20, top_n=5
        )
        docs = retriever.invoke("What is the capital of France?")

        # Or keep your own first stage (any LangChain retriever):
        reranking = build_reranking_retriever(first_stage=retriever, top_n=1)
        ```
    """
    if first_stage is not None:
        _check_first_stage(
            first_stage,
            documents=documents is not None,
            vectorstore=vectorstore is not None,
            embedding=embedding is not None,
            k=k is not None,
        )
    if vectorstore is not None and (documents is not None or embedding is not None):
        msg = (
            "pass either vectorstore=... or documents/embedding, not both; to add "
            "documents to an existing store call vectorstore.add_documents(...) first"
        )
        raise ValueError(msg)
    if isinstance(reranker, BaseDocumentCompressor):
        if compressor_kwargs:
            msg = (
                f"reranker is a ready compressor; {sorted(compressor_kwargs)} would "
                "be ignored: set them on the compressor instead"
            )
            raise ValueError(msg)
        compressor = reranker
    else:
        model = DEFAULT_CROSS_ENCODER if reranker is None else reranker
        compressor = CrossEncoderCompressor(
            model=model, top_n=top_n, **compressor_kwargs
        )
        # The reranker loads on first use; if it cannot be found, the error
        # names this function's parameter, not the compressor's.
        compressor._model_remedy = _RERANKER_REMEDY
        if isinstance(model, str | os.PathLike):
            # Found (not loaded) before any embedding: a missing reranker
            # fails in seconds, however large the corpus.
            try:
                resolve_model(model, cross_encoder=True)
            except ModelNotFoundError as err:
                raise err.with_remedy(_RERANKER_REMEDY) from None
    if first_stage is None:
        search_kwargs = {"k": _DEFAULT_K if k is None else k}
        if vectorstore is not None:
            first_stage = vectorstore.as_retriever(search_kwargs=search_kwargs)
        else:
            docs = None if documents is None else check_documents(list(documents))
            if embedding is None:
                try:
                    embedding = load_embeddings()
                except ModelNotFoundError as err:
                    remedy = (
                        "build_reranking_retriever(embedding=load_embeddings('/path'))"
                    )
                    raise err.with_remedy(remedy) from None
            index = new_index(embedding)
            if docs is not None:
                index.add_documents(docs)
            first_stage = index.as_retriever(search_kwargs=search_kwargs)
    return RerankingRetriever(base_compressor=compressor, base_retriever=first_stage)


_DEFAULT_K = 20


def _check_first_stage(first_stage: object, **given: bool) -> None:
    """Raise unless `first_stage` is a retriever given without store arguments."""
    if not isinstance(first_stage, BaseRetriever):
        hint = (
            "pass vectorstore=... for a vector store, or "
            "first_stage=store.as_retriever()"
            if isinstance(first_stage, VectorStore)
            else "pass a LangChain retriever, e.g. first_stage=store.as_retriever()"
        )
        msg = (
            "first_stage must be a LangChain BaseRetriever, got a "
            f"{type(first_stage).__name__}; {hint}"
        )
        raise TypeError(msg)
    clashing = [name for name, was_given in given.items() if was_given]
    if not clashing:
        return
    if clashing == ["k"]:
        msg = (
            "k sets how many candidates the FAISS first stage that "
            "build_reranking_retriever makes returns; with first_stage=... set "
            "the count on your retriever instead (e.g. "
            "store.as_retriever(search_kwargs={'k': 20})), and leave k out"
        )
        raise ValueError(msg)
    names = " and ".join(f"{name}=..." for name in clashing)
    msg = (
        f"pass either first_stage=... or {names}, not both: first_stage is "
        f"the retriever that finds the candidates, used as it is; {names} "
        "would build another one. Add documents to your retriever's own store"
    )
    raise ValueError(msg)
