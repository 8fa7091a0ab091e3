"""`CrossEncoderCompressor`: rerank LangChain documents with a cross-encoder."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Hashable, Sequence
from pathlib import Path
from string import Formatter
from typing import Any, Literal, Protocol, runtime_checkable

from langchain_core.callbacks import Callbacks
from langchain_core.cross_encoders import BaseCrossEncoder
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, Field, PrivateAttr, model_validator
from typing_extensions import Self, override

from langchain_ce_rerank._cache import CacheInfo, ScoreCache, text_key
from langchain_ce_rerank._export import Backend, Quantization, check_options
from langchain_ce_rerank._passages import (
    Span,
    TokenSpans,
    tokenizer_spans,
    windows,
    word_spans,
)
from langchain_ce_rerank._query import check_query
from langchain_ce_rerank._ranking import reciprocal_rank_fusion, score_order
from langchain_ce_rerank.models import DEFAULT_CROSS_ENCODER, load_cross_encoder

__all__ = ["CrossEncoderCompressor", "CrossEncoderLike"]

logger = logging.getLogger(__name__)


@runtime_checkable
class CrossEncoderLike(Protocol):
    """What the compressor needs from a loaded `sentence_transformers.CrossEncoder`."""

    def predict(self, inputs: Any, *args: Any, **kwargs: Any) -> Any:
        """Score (query, text) pairs."""


def _default_batch_size(model: object) -> int:
    """4 pairs a batch on CPU, 32 on an accelerator (see `batch_size`)."""
    device = str(getattr(model, "device", "cpu"))
    return 4 if device.startswith("cpu") else 32


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

    batch_size: int | None = Field(default=None, ge=1)
    """(query, document) pairs per forward pass of a sentence-transformers
    model; None picks 4 on CPU and 32 on a GPU. Pairs go to the model sorted
    by length, so a small batch pads little, and on CPU a batch of 4 pairs
    (~1,200 tokens) already keeps every core busy while its activations stay
    in cache: at 100 candidates on 2 cores, 4 against 32 was 5.6 s against
    8.0 s (torch), 3.2 s against 3.8 s (openvino int8) and 5.9 s against 8.5 s
    (onnx int8). A GPU needs the larger batch to fill."""

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

    long_documents: Literal["truncate", "max_passage"] = "truncate"
    """`"truncate"`: the model reads the first `max_length` tokens of each pair.
    `"max_passage"`: a longer document is cut into overlapping token windows
    (the query repeated in each pair), all windows are scored in the same
    batched call, the document scores as its best window, and
    `metadata["relevance_passage"]` holds that window's `[start, end]`
    character span in the scored text."""

    passage_tokens: int | None = Field(default=None, ge=8)
    """Tokens per (query, window) pair for `"max_passage"`; None uses the
    model's `max_length`. Required for a `BaseCrossEncoder`, whose windows are
    counted in whitespace-separated words."""

    passage_overlap: int = Field(default=64, ge=0)
    """Tokens each window shares with the previous one."""

    fusion: Literal["none", "rrf"] = "none"
    """`"rrf"`: order by Reciprocal Rank Fusion of the cross-encoder rank and
    the first-stage rank (`metadata["retrieval_rank"]`, else input order),
    stored as `metadata["fused_score"]`. `top_n` and `score_threshold` keep
    their meaning; the threshold still applies to `relevance_score`."""

    rrf_k: int = Field(default=60, ge=1)
    """The RRF constant: each ranking adds `1 / (rrf_k + rank)`."""

    content_template: str | None = None
    """Text the model reads, from metadata fields and `page_content`, e.g.
    `"{title}\\n{page_content}"`. None reads `page_content`. A field missing
    from a document's metadata is an error naming the field and document."""

    backend: Backend = "torch"
    """Inference backend when loading by id or folder: `"torch"`; `"openvino"`
    (`pip install "langchain-ce-rerank[openvino]"`; runs in f32 unless
    `model_kwargs={"ov_config": {...}}` says otherwise); or `"onnx"`
    (onnxruntime; the `[onnx]` extra). Exports are made once and cached (see
    `export_cache_folder`). Fastest on CPU: `backend="openvino",
    quantization="int8"`; see benchmarks/README.md for the measured ratios."""

    quantization: Quantization = None
    """`"int8"`: with `backend="openvino"`, NNCF static int8 calibrated offline
    on standard-library prose (no download); with `backend="onnx"`,
    onnxruntime dynamic int8. Cached like the export. int8 scores differ
    slightly from fp32; benchmarks/rerank.py measures the ranking agreement."""

    export_cache_folder: str | Path | None = None
    """Where ONNX/OpenVINO exports are cached; None uses `$LANGCHAIN_CE_RERANK_CACHE`
    or `~/.cache/langchain-ce-rerank`."""

    cache_size: int = Field(default=4096, ge=0)
    """Scores remembered (LRU, keyed on model, query, text digest and
    max_length); 0 turns the cache off. On by default: a lookup costs about a
    microsecond against milliseconds per pair for the model, and repeated
    queries (chat turns, agents re-asking, evaluation reruns) then skip the
    model entirely. 4096 entries take about 1 MB. See `cache_info()`."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    _cache: ScoreCache = PrivateAttr()
    _loaded: BaseCrossEncoder | CrossEncoderLike | None = PrivateAttr(default=None)
    _load_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _predict_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def model_post_init(self, context: Any, /) -> None:
        """Create the score cache once the fields are validated."""
        self._cache = ScoreCache(self.cache_size)

    @model_validator(mode="after")
    def _check_options(self) -> Self:
        if self.content_template is not None:
            try:
                fields = [f for _, f, _, _ in Formatter().parse(self.content_template)]
            except ValueError as err:
                msg = f"content_template {self.content_template!r} is malformed: {err}"
                raise ValueError(msg) from err
            if not any(fields):
                msg = (
                    f"content_template {self.content_template!r} has no {{field}}; "
                    "include at least {page_content}"
                )
                raise ValueError(msg)
        if self.passage_tokens is not None and (
            self.passage_overlap >= self.passage_tokens
        ):
            msg = (
                f"passage_overlap ({self.passage_overlap}) must be smaller than "
                f"passage_tokens ({self.passage_tokens})"
            )
            raise ValueError(msg)
        if (
            self.long_documents == "max_passage"
            and isinstance(self.model, BaseCrossEncoder)
            and self.passage_tokens is None
        ):
            msg = (
                "long_documents='max_passage' with a BaseCrossEncoder needs "
                "passage_tokens=... (its window, in words): the model exposes no "
                "tokenizer or max_length"
            )
            raise ValueError(msg)
        check_options(self.backend, self.quantization)
        if isinstance(self.model, str | Path):
            return self
        given = [
            name for name in ("max_length", "device") if getattr(self, name) is not None
        ] + (["model_kwargs"] if self.model_kwargs else [])
        given += [n for n in ("backend",) if self.backend != "torch"]
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
                            backend=self.backend,
                            quantization=self.quantization,
                            cache_folder=self.export_cache_folder,
                        )
                    else:
                        self._loaded = self.model
        return self._loaded

    def cache_info(self) -> CacheInfo:
        """Score cache hits, misses and sizes (see `cache_size`)."""
        return self._cache.info()

    def clear_cache(self) -> None:
        """Empty the score cache and reset its counters."""
        self._cache.clear()

    def _model_key(self) -> Hashable:
        if isinstance(self.model, str | Path):
            return (
                "path",
                str(self.model),
                self.max_length,
                self.backend,
                self.quantization,
                tuple(sorted(map(str, self.model_kwargs.items()))),
            )
        return ("object", id(self.model))

    def _predict(self, pairs: list[tuple[str, str]]) -> list[float]:
        """Raw model scores for `pairs`, fed to the model shortest first."""
        model = self.load_model()
        # One length-sorted stream: neighbouring pairs pad to similar lengths.
        order = sorted(
            range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1])
        )
        ordered = [pairs[i] for i in order]
        if isinstance(model, BaseCrossEncoder):
            raw = list(model.score(ordered))
        else:
            import torch

            # Fast tokenizers raise "Already borrowed" when one instance is
            # used from two threads at once, and torch already spreads one call
            # over every core, so calls into a shared model are serialized.
            with self._predict_lock:
                raw = model.predict(
                    ordered,
                    batch_size=self.batch_size or _default_batch_size(model),
                    show_progress_bar=self.show_progress_bar,
                    activation_fn=torch.nn.Identity(),
                    convert_to_numpy=True,
                ).tolist()
        if len(raw) != len(pairs):
            msg = f"the model returned {len(raw)} scores for {len(pairs)} pairs"
            raise RuntimeError(msg)
        scores = [0.0] * len(pairs)
        for position, i in enumerate(order):
            scores[i] = float(raw[position])
        return scores

    def _raw_scores(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Raw scores in input order; repeated pairs and cache hits skip the model."""
        unique = list(dict.fromkeys(pairs))
        model_key = self._model_key()
        keys = {pair: (model_key, *text_key(*pair)) for pair in unique}
        known: dict[tuple[str, str], float] = {}
        missing = []
        for pair in unique:
            cached = self._cache.get(keys[pair])
            if cached is None:
                missing.append(pair)
            else:
                known[pair] = cached
        if missing:
            for pair, score in zip(missing, self._predict(missing), strict=True):
                known[pair] = score
                self._cache.put(keys[pair], score)
        return [known[pair] for pair in pairs]

    def _activate(self, scores: list[float]) -> list[float]:
        if self.activation == "sigmoid":
            return [_sigmoid(value) for value in scores]
        return scores

    def score(self, query: str, texts: Sequence[str]) -> list[float]:
        """Score each text against `query` (after `activation`), in input order.

        Args:
            query: The query.
            texts: Candidate texts.

        Returns:
            One float per text.
        """
        check_query(query)
        return self._activate(self._raw_scores([(query, text) for text in texts]))

    def _scored_text(self, doc: Document, position: int) -> str:
        if self.content_template is None:
            return doc.page_content
        try:
            return self.content_template.format_map(
                {**doc.metadata, "page_content": doc.page_content}
            )
        except KeyError as err:
            msg = (
                f"content_template {self.content_template!r} needs metadata field "
                f"{err.args[0]!r}, which document {doc.id!r} (position {position}) "
                "does not have"
            )
            raise ValueError(msg) from err

    def _windows(self, query: str, text: str) -> list[Span]:
        model = self.load_model()
        tokenizer = getattr(model, "tokenizer", None)
        spans: TokenSpans
        if isinstance(model, BaseCrossEncoder) or tokenizer is None:
            spans = word_spans
            budget = self.passage_tokens or 0
            reserved = len(word_spans(query))
        else:
            spans = tokenizer_spans(tokenizer)
            budget = self.passage_tokens or int(getattr(model, "max_seq_length", 512))
            reserved = len(spans(query)) + tokenizer.num_special_tokens_to_add(
                pair=True
            )
        size = budget - reserved
        if size <= self.passage_overlap:
            msg = (
                f"the query takes {reserved} of the {budget} tokens per pair, "
                f"leaving {size} for each passage window (passage_overlap is "
                f"{self.passage_overlap}); shorten the query or raise passage_tokens"
            )
            raise ValueError(msg)
        return windows(text, spans(text), size, self.passage_overlap)

    def _units(
        self, documents: Sequence[Document], query: str
    ) -> list[list[tuple[Span | None, str]]]:
        """Per document, the texts to score: itself, or its passage windows."""
        texts = [self._scored_text(doc, i) for i, doc in enumerate(documents)]
        if self.long_documents == "truncate":
            return [[(None, text)] for text in texts]
        spans: dict[str, list[Span]] = {}
        for text in texts:
            if text not in spans:
                spans[text] = self._windows(query, text)
        return [[((a, b), text[a:b]) for a, b in spans[text]] for text in texts]

    def score_documents_batch(
        self, items: Sequence[tuple[Sequence[Document], str]]
    ) -> list[list[tuple[float, Span | None]]]:
        """Score many (documents, query) lists in one stream of model batches.

        Every pair from every query is flattened, de-duplicated, looked up in
        the score cache, and the rest goes to the model in one length-sorted
        call.

        Args:
            items: `(documents, query)` pairs.

        Returns:
            Per item, per document: its score and, for `"max_passage"`, the
            character span of its best window (else None).
        """
        units = []
        pairs: list[tuple[str, str]] = []
        for documents, query in items:
            check_query(query)
            per_doc = self._units(documents, query)
            units.append(per_doc)
            pairs.extend((query, text) for windows_ in per_doc for _, text in windows_)
        scores = iter(self._activate(self._raw_scores(pairs)))
        results = []
        for per_doc in units:
            scored = []
            for windows_ in per_doc:
                window_scores = [next(scores) for _ in windows_]
                top = score_order(window_scores)[0]
                scored.append((window_scores[top], windows_[top][0]))
            results.append(scored)
        return results

    def score_documents(
        self, documents: Sequence[Document], query: str
    ) -> list[tuple[float, Span | None]]:
        """Score each document against `query`, without reordering.

        Args:
            documents: Candidates.
            query: The query.

        Returns:
            Per document, its score and (for `"max_passage"`) the character span
            of its best window, else None.
        """
        return self.score_documents_batch([(documents, query)])[0]

    def _first_stage_ranks(self, docs: Sequence[Document]) -> list[int]:
        ranks = [doc.metadata.get("retrieval_rank") for doc in docs]
        if all(isinstance(r, int) and not isinstance(r, bool) for r in ranks):
            return [int(r) for r in ranks]  # type: ignore[arg-type]
        if any(r is not None for r in ranks):
            logger.warning(
                "Some documents lack an integer retrieval_rank; RRF uses the "
                "input order as the first-stage order for all of them."
            )
        return list(range(1, len(docs) + 1))

    def rerank(
        self,
        documents: Sequence[Document],
        scored: Sequence[tuple[float, Span | None]],
    ) -> list[Document]:
        """Order, cut and filter already scored documents into new Documents.

        This is the second half of `compress_documents`, exposed so evaluation
        can compare orderings (plain, fused) of one scoring pass.

        Args:
            documents: The candidates, in first-stage order.
            scored: `score_documents(documents, query)`'s result.

        Returns:
            New documents with `relevance_score` (and `fused_score`,
            `relevance_passage` where they apply) in metadata.
        """
        scores = [score for score, _ in scored]
        if any(math.isnan(s) for s in scores):
            logger.warning("The cross-encoder returned NaN scores; ranking them last.")
        order = score_order(scores)
        fused: list[float] | None = None
        if self.fusion == "rrf":
            ce_rank = [0] * len(order)
            for rank, i in enumerate(order, start=1):
                ce_rank[i] = rank
            fused_scores = reciprocal_rank_fusion(
                [ce_rank, self._first_stage_ranks(documents)], self.rrf_k
            )
            # Stable on the cross-encoder order: equal fused scores go to the
            # document the cross-encoder preferred.
            order = sorted(order, key=lambda i: -fused_scores[i])
            fused = fused_scores
        if self.top_n is not None:
            order = order[: self.top_n]
        if self.score_threshold is not None:
            order = [i for i in order if scores[i] >= self.score_threshold]
        result = []
        for i in order:
            extra: dict[str, Any] = {"relevance_score": scores[i]}
            if fused is not None:
                extra["fused_score"] = fused[i]
            span = scored[i][1]
            if span is not None:
                extra["relevance_passage"] = [span[0], span[1]]
            result.append(
                documents[i].model_copy(
                    update={"metadata": {**documents[i].metadata, **extra}}
                )
            )
        return result

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
        return self.compress_documents_batch([(documents, query)])[0]

    def compress_documents_batch(
        self, items: Sequence[tuple[Sequence[Document], str]]
    ) -> list[list[Document]]:
        """Rerank many (documents, query) lists with one stream of model calls.

        Equivalent to `[compress_documents(d, q) for d, q in items]`, but every
        pair of every query goes to the model in one de-duplicated,
        length-sorted stream, which keeps batches full and padding low.

        Args:
            items: `(documents, query)` pairs.

        Returns:
            The reranked documents of each item, in order.
        """
        lists = [(list(documents), query) for documents, query in items]
        for documents, query in lists:
            check_query(query)
            for position, doc in enumerate(documents):
                if not isinstance(doc.page_content, str):
                    msg = (
                        f"document {position} (id={doc.id!r}) has non-text page_content"
                    )
                    raise TypeError(msg)
        scored = self.score_documents_batch(lists)
        return [
            self.rerank(documents, scores)
            for (documents, _), scores in zip(lists, scored, strict=True)
        ]


def _sigmoid(value: float) -> float:
    # Split by sign so large logits of either sign never overflow exp().
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    exp = math.exp(value)
    return exp / (1.0 + exp)
