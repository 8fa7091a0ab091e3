"""`RerankerSettings`: every knob of the engine, shared by all its doors.

The engine (`Reranker`), the LangChain compressor and the LlamaIndex
postprocessor all subclass this model, so a setting is declared, documented
and validated once and means the same thing behind every door.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from string import Formatter
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from typing_extensions import Self

from langchain_ce_rerank.engine.protocols import CrossEncoderLike, PairScorer
from langchain_ce_rerank.models.backends import DEFAULT_BACKEND, check_options
from langchain_ce_rerank.models.cross_encoder import DEFAULT_CROSS_ENCODER

__all__ = [
    "DEFAULT_CROSS_ENCODER",
    "LOADING_FIELDS",
    "RANKING_FIELDS",
    "RerankerSettings",
]


RANKING_FIELDS = ("top_n", "score_threshold", "fusion", "rrf_k")
"""Settings that only order and cut already scored candidates (cheap to vary
per call); every other setting changes which scores are computed."""

LOADING_FIELDS = (
    "max_length",
    "device",
    "model_kwargs",
    "backend",
    "quantization",
    "export_cache_folder",
)
"""Settings that only apply when the model is loaded from an id or folder."""


class RerankerSettings(BaseModel):
    """The settings of a cross-encoder reranker, validated at construction."""

    model: str | Path | CrossEncoderLike | PairScorer = DEFAULT_CROSS_ENCODER
    """A Hugging Face model id or local folder, a loaded
    `sentence_transformers.CrossEncoder`, or any scorer with
    `score(text_pairs) -> list[float]` (LangChain's `BaseCrossEncoder`,
    `RemoteCrossEncoder`). The LangChain and LlamaIndex adapters also take a
    ready `Reranker` engine, to share its loaded model and score cache."""

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
    model's `max_length`. Required for a scorer without a tokenizer (such as
    a `BaseCrossEncoder`), whose windows are counted in whitespace-separated
    words."""

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

    backend: str = DEFAULT_BACKEND
    """Inference backend when loading by id or folder, one of
    `langchain_ce_rerank.models.backends.BACKEND_NAMES`: `"torch"`; `"openvino"`
    (`pip install "langchain-ce-rerank[openvino]"`; runs in f32 unless
    `model_kwargs={"ov_config": {...}}` says otherwise); or `"onnx"`
    (onnxruntime; the `[onnx]` extra). Exports are made once and cached (see
    `export_cache_folder`). Fastest on CPU: `backend="openvino",
    quantization="int8"`; see benchmarks/README.md for the measured ratios."""

    quantization: str | None = None
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
            and self.passage_tokens is None
            # A loaded CrossEncoder has a tokenizer; an engine has its own settings.
            and not isinstance(self.model, str | Path | CrossEncoderLike)
            and not isinstance(self.model, RerankerSettings)
        ):
            msg = (
                f"long_documents='max_passage' with a {type(self.model).__name__} "
                "needs passage_tokens=... (its window, in words): the model "
                "exposes no tokenizer or max_length"
            )
            raise ValueError(msg)
        check_options(self.backend, self.quantization)
        if isinstance(self.model, str | Path):
            return self
        given = [
            name for name in ("max_length", "device") if getattr(self, name) is not None
        ] + (["model_kwargs"] if self.model_kwargs else [])
        given += [n for n in ("backend",) if self.backend != DEFAULT_BACKEND]
        if given:
            msg = (
                f"{', '.join(given)} configure loading a model by id or folder, but "
                f"model is an already loaded {type(self.model).__name__}; set them "
                "on that model instead, or pass model='<id or folder>'"
            )
            raise ValueError(msg)
        return self

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """Only the settings that differ from their defaults (and the model)."""
        fields = type(self).model_fields
        for name, value in super().__repr_args__():
            field = fields.get(name) if name is not None else None
            if (
                field is not None
                and name != "model"
                and value == field.get_default(call_default_factory=True)
            ):
                continue
            yield name, value

    def settings(self) -> dict[str, Any]:
        """Every setting as a dict, to build an equivalent reranker elsewhere."""
        return {name: getattr(self, name) for name in RerankerSettings.model_fields}
