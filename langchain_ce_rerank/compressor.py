"""`CrossEncoderCompressor`: rerank LangChain documents with a cross-encoder."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from langchain_core.callbacks import Callbacks
from langchain_core.cross_encoders import BaseCrossEncoder
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, Field, PrivateAttr, model_validator
from typing_extensions import Self, override

from langchain_ce_rerank._query import check_query
from langchain_ce_rerank.models import DEFAULT_CROSS_ENCODER, load_cross_encoder

__all__ = ["CrossEncoderCompressor", "CrossEncoderLike"]

logger = logging.getLogger(__name__)


@runtime_checkable
class CrossEncoderLike(Protocol):
    """What the compressor needs from a loaded `sentence_transformers.CrossEncoder`."""

    def predict(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """Score (query, text) pairs."""


class CrossEncoderCompressor(BaseDocumentCompressor):
    """Rerank documents by a cross-encoder's score for each (query, document) pair.

    Returns new documents (the inputs are never mutated) sorted by
    `metadata["relevance_score"]`, highest first, ties kept in input order, cut
    to `top_n`, then filtered by `score_threshold`. The id, text and all existing
    metadata (such as `retrieval_score` and `retrieval_rank`) are kept. Works
    after any retriever and inside `DocumentCompressorPipeline`.

    The model loads lazily, once, on first use (or via `load_model()`); one
    compressor may be shared between threads. Documents with the same text are
    scored once.

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

    model: str | Path | BaseCrossEncoder | CrossEncoderLike = DEFAULT_CROSS_ENCODER
    """A Hugging Face model id or local folder, a loaded
    `sentence_transformers.CrossEncoder`, or any LangChain `BaseCrossEncoder`."""

    top_n: int | None = Field(default=5, ge=1)
    """How many documents to return, best first; None keeps all."""

    score_threshold: float | None = None
    """Drop documents whose `relevance_score` is below this (after `top_n`)."""

    batch_size: int = Field(default=32, ge=1)
    """(query, document) pairs per forward pass of a sentence-transformers model."""

    max_length: int | None = Field(default=None, ge=1)
    """Token window per pair when loading by id or folder; None keeps the
    model's own (512 for MiniLM). Longer documents are truncated."""

    device: str | None = None
    """Torch device when loading by id or folder; None picks cuda, mps, cpu."""

    activation: Literal["none", "sigmoid"] = "none"
    """`"none"` keeps raw logits (compare them relative to each other);
    `"sigmoid"` maps them to 0..1 probabilities."""

    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Extra keyword arguments for `sentence_transformers.CrossEncoder(...)`
    when loading by id or folder, e.g. `{"revision": "main"}`."""

    show_progress_bar: bool = False
    """Show sentence-transformers' progress bar while scoring."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    _loaded: BaseCrossEncoder | CrossEncoderLike | None = PrivateAttr(default=None)
    _load_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _predict_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @model_validator(mode="after")
    def _check_loading_options(self) -> Self:
        if isinstance(self.model, str | Path):
            return self
        given = [
            name for name in ("max_length", "device") if getattr(self, name) is not None
        ] + (["model_kwargs"] if self.model_kwargs else [])
        if given:
            msg = (
                f"{', '.join(given)} configure loading a model by id or folder, but "
                f"model is an already loaded {type(self.model).__name__}; set them "
                "on that model instead, or pass model='<id or folder>'"
            )
            raise ValueError(msg)
        return self

    def load_model(self) -> BaseCrossEncoder | CrossEncoderLike:
        """Load the model now (it is otherwise loaded on first use) and return it.

        Raises:
            ModelNotFoundError: The model id or folder cannot be found.
        """
        if self._loaded is None:
            with self._load_lock:
                if self._loaded is None:
                    if isinstance(self.model, str | Path):
                        self._loaded = load_cross_encoder(
                            self.model,
                            device=self.device,
                            max_length=self.max_length,
                            model_kwargs=self.model_kwargs,
                        )
                    else:
                        self._loaded = self.model
        return self._loaded

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Score each text against `query` (after `activation`), in input order.

        Args:
            query: The query.
            texts: Candidate texts.

        Returns:
            One float per text.
        """
        check_query(query)
        if not texts:
            return []
        model = self.load_model()
        pairs = [(query, text) for text in texts]
        if isinstance(model, BaseCrossEncoder):
            raw = list(model.score(pairs))
        else:
            import torch

            # Fast tokenizers raise "Already borrowed" when one instance is
            # used from two threads at once, and torch already spreads one call
            # over every core, so calls into a shared model are serialized.
            with self._predict_lock:
                raw = model.predict(
                    pairs,
                    batch_size=self.batch_size,
                    show_progress_bar=self.show_progress_bar,
                    activation_fn=torch.nn.Identity(),
                    convert_to_numpy=True,
                ).tolist()
        if len(raw) != len(pairs):
            msg = f"the model returned {len(raw)} scores for {len(pairs)} pairs"
            raise RuntimeError(msg)
        scores = [float(value) for value in raw]
        if self.activation == "sigmoid":
            scores = [_sigmoid(value) for value in scores]
        return scores

    @override
    def compress_documents(
        self,
        documents: Sequence[Document],
        query: str,
        callbacks: Callbacks | None = None,
    ) -> Sequence[Document]:
        """Rerank `documents` for `query`; see the class docstring for the rules.

        Args:
            documents: Candidates, e.g. a first-stage retriever's output.
            query: The query; empty or whitespace-only is an error.
            callbacks: Accepted for LangChain compatibility.

        Returns:
            New documents with `metadata["relevance_score"]`.
        """
        check_query(query)
        docs = list(documents)
        if not docs:
            return []
        for position, doc in enumerate(docs):
            if not isinstance(doc.page_content, str):
                msg = f"document {position} (id={doc.id!r}) has non-text page_content"
                raise TypeError(msg)
        # Identical texts (e.g. the same passage from two merged retrievers)
        # are scored once.
        unique = list(dict.fromkeys(doc.page_content for doc in docs))
        by_text = dict(zip(unique, self.score(query, unique), strict=True))
        scores = [by_text[doc.page_content] for doc in docs]
        if any(math.isnan(s) for s in scores):
            logger.warning("The cross-encoder returned NaN scores; ranking them last.")
        order = sorted(
            range(len(docs)), key=lambda i: (math.isnan(scores[i]), -scores[i])
        )
        if self.top_n is not None:
            order = order[: self.top_n]
        if self.score_threshold is not None:
            order = [i for i in order if scores[i] >= self.score_threshold]
        return [
            docs[i].model_copy(
                update={"metadata": {**docs[i].metadata, "relevance_score": scores[i]}}
            )
            for i in order
        ]


def _sigmoid(value: float) -> float:
    # Split by sign so large logits of either sign never overflow exp().
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    exp = math.exp(value)
    return exp / (1.0 + exp)
