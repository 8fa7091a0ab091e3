"""The first stages `evaluate` compares: the store's dense, BM25 and hybrid search.

A retriever over the package's own store (`store.as_retriever()`) can search
three ways per call (`search_type`), so one evaluation measures each of them,
with and without the reranker, on the same queries. Any other LangChain
retriever is measured as it is, as one first stage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever

from langchain_ce_rerank.store.retriever import FaissRetriever

__all__ = [
    "FIRST_STAGES",
    "OTHER_FIRST_STAGE",
    "FirstStage",
    "FirstStageName",
    "default_first_stages",
    "keyword_search_available",
    "resolve_first_stages",
]

FirstStageName = Literal["dense", "bm25", "hybrid"]
"""A search of the store: `"dense"` (the bi-encoder, FAISS), `"bm25"` (the
keyword index) or `"hybrid"` (both, fused by the retriever's `fusion`)."""

FIRST_STAGES: tuple[FirstStageName, ...] = get_args(FirstStageName)
"""Every first stage of the store, in the order reports list them."""

OTHER_FIRST_STAGE = "first stage"
"""The name of a first stage that is not the store's retriever."""

_KEYWORD: tuple[FirstStageName, ...] = ("bm25", "hybrid")
# The retriever's own search types that are dense: "dense" keeps them (an MMR
# or thresholded retriever is measured as configured); any other is "similarity".
_DENSE_TYPES = ("similarity", "mmr", "similarity_score_threshold")


@dataclass(frozen=True)
class FirstStage:
    """One first stage of an evaluation: its name and how it retrieves.

    Example:
        ```python
        from langchain_core.embeddings import DeterministicFakeEmbedding
        from langchain_ce_rerank import FaissVectorStore
        from langchain_ce_rerank.evaluation.first_stages import resolve_first_stages

        store = FaissVectorStore.from_texts(
            ["cats purr", "dogs bark"], DeterministicFakeEmbedding(size=8)
        )
        for stage in resolve_first_stages(store.as_retriever(k=1), ["bm25"]):
            print(stage.name, stage.search("cats")[0].page_content)
        ```
    """

    name: str
    """`"dense"`, `"bm25"`, `"hybrid"`, or `OTHER_FIRST_STAGE`."""

    search: Callable[[str], list[Document]]
    """The candidates for one (checked) query, best first."""


def keyword_search_available(retriever: BaseRetriever) -> bool:
    """Whether `retriever` can run the `"bm25"` and `"hybrid"` first stages.

    True for the store's own retriever (`store.as_retriever()`) over an index
    that keeps a keyword (BM25) index; False for any other retriever.

    Args:
        retriever: A first stage.

    Example:
        ```python
        from langchain_core.embeddings import DeterministicFakeEmbedding
        from langchain_ce_rerank import FaissVectorStore
        from langchain_ce_rerank.evaluation.first_stages import (
            keyword_search_available,
        )

        store = FaissVectorStore.from_texts(["a"], DeterministicFakeEmbedding(size=8))
        print(keyword_search_available(store.as_retriever()))  # True
        ```
    """
    # The one place that decides it: a store made with `bm25=False` (or
    # `ce-rerank index --no-bm25`) keeps no keyword index.
    return isinstance(retriever, FaissRetriever) and bool(
        getattr(retriever.vectorstore, "bm25_enabled", False)
    )


def default_first_stages(retriever: BaseRetriever) -> tuple[FirstStageName, ...]:
    """What `evaluate` runs when `first_stages` is not given.

    All three (`"dense"`, `"bm25"`, `"hybrid"`) for the store's retriever over
    an index with a keyword index, `("dense",)` over one without, and `()`
    for any other retriever, which is measured as one first stage as it is.

    Args:
        retriever: The first stage (a pipeline's `base_retriever`).
    """
    if keyword_search_available(retriever):
        return FIRST_STAGES
    return ("dense",) if isinstance(retriever, FaissRetriever) else ()


def resolve_first_stages(
    retriever: BaseRetriever, names: Sequence[str] | None
) -> list[FirstStage]:
    """The first stages to measure, checked against what `retriever` can do.

    Args:
        retriever: The first stage (a pipeline's `base_retriever`).
        names: `evaluate`'s `first_stages`; None: `default_first_stages`.

    Raises:
        TypeError: `names` is a string, not a sequence of names.
        ValueError: An unknown or repeated name, none at all, a name given
            for a retriever that is not the store's, or `"bm25"`/`"hybrid"`
            for a store without a keyword index.
    """
    if names is None:
        if not isinstance(retriever, FaissRetriever):
            return [FirstStage(OTHER_FIRST_STAGE, retriever.invoke)]
        chosen: Sequence[str] = default_first_stages(retriever)
    else:
        chosen = _check_names(names)
        if not isinstance(retriever, FaissRetriever):
            msg = (
                f"first_stages={tuple(names)!r} picks searches of the package's "
                f"store and needs its retriever (store.as_retriever()) as the "
                f"first stage, got a {type(retriever).__name__}; leave "
                "first_stages out to measure it as one first stage"
            )
            raise ValueError(msg)
        keyword = [name for name in chosen if name in _KEYWORD]
        if keyword and not keyword_search_available(retriever):
            msg = (
                f"first_stages={tuple(names)!r}: this store has no keyword "
                f"(BM25) index, so {keyword[0]!r} cannot run on it; use "
                "first_stages=('dense',)"
            )
            raise ValueError(msg)
    return [_store_stage(retriever, name) for name in chosen]


def _check_names(names: Sequence[str]) -> list[str]:
    if isinstance(names, str):
        msg = (
            f"first_stages takes a sequence of names, got the string {names!r}; "
            f"e.g. first_stages=({names!r},)"
        )
        raise TypeError(msg)
    chosen = list(names)
    if not chosen:
        msg = f"first_stages is empty; give one or more of {list(FIRST_STAGES)}"
        raise ValueError(msg)
    for name in chosen:
        if name not in FIRST_STAGES:
            msg = (
                f"first_stages: {name!r} is not a first stage; use one or more "
                f"of {list(FIRST_STAGES)}"
            )
            raise ValueError(msg)
        if chosen.count(name) > 1:
            msg = f"first_stages names {name!r} twice; give each first stage once"
            raise ValueError(msg)
    return chosen


def _store_stage(retriever: FaissRetriever, name: str) -> FirstStage:
    """The store's retriever, searching as `name` says on every call."""
    if name == "dense":
        own = retriever.search_type
        search_type = own if own in _DENSE_TYPES else "similarity"
        options: dict[str, Any] = {"search_type": search_type}
    else:
        # A dense score threshold does not apply to keyword ranking (the
        # retriever refuses the two together); dense keeps it.
        options = {"search_type": name, "score_threshold": None}

    def search(query: str) -> list[Document]:
        return retriever.invoke(query, **options)

    return FirstStage(name, search)
