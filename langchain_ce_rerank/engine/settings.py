"""The engine's settings, each declared, documented and validated once.

`ScoringSettings` decide which scores are computed (the model, how it is
loaded, what text it reads); they belong to the engine. `RankingSettings`
order and cut the scored candidates, and bound how long scoring may take;
each door keeps its own and a call may override some of them
(`RankingSettings.for_call`). A `Reranker` has both
(`RerankerSettings`), its ranking settings serving callers of `rank()`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from string import Formatter
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from typing_extensions import Self

from langchain_ce_rerank.engine.aggregation import PassageAggregation
from langchain_ce_rerank.engine.checks import (
    check_deadline_ms,
    check_diversity,
    check_instruction,
    check_min_probability,
    check_threshold,
    check_top_n,
)
from langchain_ce_rerank.engine.probability import ScoreCalibration
from langchain_ce_rerank.engine.protocols import CrossEncoderLike, PairScorer
from langchain_ce_rerank.engine.shaping import (
    SHAPING_OPTIONS,
    ShapingSettings,
    check_shaping,
)
from langchain_ce_rerank.models.backends import DEFAULT_BACKEND, check_options
from langchain_ce_rerank.models.backends.support import check_model
from langchain_ce_rerank.models.cross_encoder import DEFAULT_CROSS_ENCODER
from langchain_ce_rerank.models.precision import DEFAULT_DTYPE, Dtype, check_dtype

__all__ = [
    "DEFAULT_CROSS_ENCODER",
    "LOADING_FIELDS",
    "PER_CALL_OPTIONS",
    "RANKING_FIELDS",
    "SCORING_FIELDS",
    "UNSET",
    "RankingSettings",
    "RerankerSettings",
    "ScoringSettings",
    "Unset",
]


LOADING_FIELDS = (
    "max_length",
    "device",
    "dtype",
    "model_kwargs",
    "backend",
    "quantization",
    "export_cache_folder",
)
"""Settings that only apply when the model is loaded from an id or folder."""

PER_CALL_OPTIONS = (
    "top_n",
    "score_threshold",
    "diversity",
    "deadline_ms",
    "min_probability",
    *SHAPING_OPTIONS,
)
"""The ranking settings one call may override (`RankingSettings.for_call`)."""


class Unset(Enum):
    """Marks a per-call option that was not given (None means "no limit")."""

    UNSET = "UNSET"


UNSET: Final = Unset.UNSET


class _Settings(BaseModel):
    """Strict fields and a repr of what differs from the defaults."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

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


class RankingSettings(_Settings, ShapingSettings):
    """How scored candidates are ordered and cut, and the time scoring may take.

    Cheap to vary per call: none of them changes a candidate's score. The
    order of the cuts is `ranking.select`'s.

    With the shaping settings of `ShapingSettings` (`group_by`,
    `max_per_group`, `max_context_tokens`, `token_counter`).

    Example:
        ```python
        from langchain_ce_rerank.engine import RankingSettings

        settings = RankingSettings(top_n=5)
        print(settings.for_call(top_n=2).top_n)  # 2; settings.top_n stays 5
        ```
    """

    top_n: int | None = Field(default=5, ge=1)
    """How many documents to return, best first; None keeps all."""

    score_threshold: float | None = None
    """Drop documents whose `relevance_score` is below this (after `top_n`)."""

    fusion: Literal["none", "rrf"] = "none"
    """`"rrf"`: order by Reciprocal Rank Fusion of the cross-encoder rank and
    the first-stage rank (`metadata["retrieval_rank"]`, else input order),
    stored as `metadata["fused_score"]`. `top_n` and `score_threshold` keep
    their meaning; the threshold still applies to `relevance_score`."""

    rrf_k: int = Field(default=60, ge=1)
    """The RRF constant: each ranking adds `1 / (rrf_k + rank)`."""

    diversity: float = Field(default=0.0, ge=0.0, le=1.0, strict=True)
    """Maximal marginal relevance after reranking: 0 (the default) is off;
    `λ` in (0, 1] picks each next document by `(1 - λ) * relevance - λ *
    (its highest similarity to a document already picked)`, relevance being
    the order's score (`fused_score` with RRF, else `relevance_score`)
    min-max scaled to [0, 1] over the call's candidates. Similarity is the
    cosine of the first stage's embeddings when every candidate came with
    one (`metadata["retrieval_embedding"]`, a LlamaIndex `node.embedding`,
    or `embeddings=` to `Reranker.order`), else the overlap of the texts'
    word sets (Jaccard); nothing is embedded a second time. See
    `langchain_ce_rerank.engine.diversity`."""

    deadline_ms: float | None = Field(
        default=None, gt=0, allow_inf_nan=False, strict=True
    )
    """A time budget for scoring, in milliseconds from the moment the reranker
    gets the candidates; None (the default) has none. Candidates are scored
    in first-stage order, in batches of `batch_size` pairs; when the next
    batch is predicted to end past the deadline (its pairs times the slowest
    time per pair measured so far), scoring stops and the unscored rest
    follows the scored documents in first-stage order, with
    `metadata["reranked"] = False` and no `relevance_score`. It never raises
    because of the deadline, and never returns fewer documents than the same
    call without one (`top_n` counts the unscored; `score_threshold` and
    `min_probability` do not apply to them; `max_per_group` and
    `max_context_tokens` count them like any other, the token budget being a
    bound on tokens, not documents). Score-cache hits count as scored. See
    `langchain_ce_rerank.engine.deadline`."""

    calibration: ScoreCalibration | None = None
    """A `ScoreCalibration` (or the path of its JSON file) fitted for this
    reranker's model: each result then carries `relevance_probability`, the
    probability that it is relevant, and `min_probability` can cut by it.
    One fitted for another model or scoring setup is refused, saying why."""

    min_probability: float | None = Field(default=None, ge=0.0, le=1.0)
    """Drop documents whose `relevance_probability` is below this (the last
    cut by score: after `group_by`, `diversity`, `top_n` and
    `score_threshold`, before `max_context_tokens`); needs
    `calibration`. When it drops every document the result is empty and a
    warning says so, with the best probability there was. Like
    `score_threshold`, it does not apply to candidates `deadline_ms` left
    unscored: they have no score and so no probability, and still follow the
    kept documents (`metadata["reranked"] = False`, no
    `relevance_probability`), so a deadline never returns fewer documents
    than the same call without one. Check `reranked` to drop them too."""

    @field_validator("calibration", mode="before")
    @classmethod
    def _load_calibration(cls, value: object) -> object:
        if isinstance(value, str | os.PathLike):
            return ScoreCalibration.load(value)
        return value

    @model_validator(mode="after")
    def _probability_needs_calibration(self) -> Self:
        if self.min_probability is not None and self.calibration is None:
            raise ValueError(_needs_calibration(self.min_probability))
        return self

    def for_call(self, **options: Any) -> RankingSettings:
        """These settings with one call's overrides applied and checked.

        Every door resolves a call's options here, so all of them accept the
        same options and reject the same mistakes with the same words.

        Args:
            **options: Any of `PER_CALL_OPTIONS` (`top_n`, `score_threshold`,
                `diversity`, `deadline_ms`, `min_probability`, `group_by`,
                `max_per_group`, `max_context_tokens`); one left out, or
                `UNSET`, keeps the setting.

        Returns:
            The settings for this call (these settings stay unchanged).

        Raises:
            TypeError: An option a call cannot set; the message lists those
                it can.
            ValueError: A `top_n` below 1, a `score_threshold` that is not
                a number, a `diversity` outside [0, 1], a `deadline_ms`
                that is not a positive number, a `min_probability` outside
                [0, 1] or without a `calibration`, or shaping options that
                cannot work together (`check_shaping`).
        """
        unknown = sorted(set(options) - set(PER_CALL_OPTIONS))
        if unknown:
            msg = (
                f"unexpected option(s) {unknown}; a call accepts "
                f"{list(PER_CALL_OPTIONS)} (the others are set at construction)"
            )
            raise TypeError(msg)
        given = {name: v for name, v in options.items() if v is not UNSET}
        check_top_n(given.get("top_n"))
        check_threshold(given.get("score_threshold"))
        if "diversity" in given:
            check_diversity(given["diversity"])
        check_deadline_ms(given.get("deadline_ms"))
        check_min_probability(given.get("min_probability"))
        if given.get("min_probability") is not None and self.calibration is None:
            raise ValueError(_needs_calibration(given["min_probability"]))
        current = {name: getattr(self, name) for name in RANKING_FIELDS}
        resolved = {**current, **given}
        if given.keys() & set(SHAPING_OPTIONS):
            check_shaping(**{name: resolved[name] for name in SHAPING_OPTIONS})
        return RankingSettings.model_construct(**resolved)


def _needs_calibration(min_probability: object) -> str:
    return (
        f"min_probability={min_probability!r} needs a calibration, which maps "
        "the reranker's scores to probabilities: pass calibration="
        "ScoreCalibration.load('calibration.json') (fit one with ce-rerank eval "
        "--calibrate FILE), or cut by score with score_threshold instead"
    )


RANKING_FIELDS = tuple(RankingSettings.model_fields)
"""Settings that order and cut scored candidates or bound the time scoring
takes (cheap to vary per call); every other setting changes which scores are
computed."""


class ScoringSettings(_Settings):
    """The settings that decide which scores are computed, validated at construction.

    Example:
        ```python
        from langchain_ce_rerank.engine import ScoringSettings

        settings = ScoringSettings(activation="sigmoid", cache_size=0)
        print(settings)  # only what differs from the defaults, and the model
        ```
    """

    model: str | Path | CrossEncoderLike | PairScorer = DEFAULT_CROSS_ENCODER
    """A Hugging Face model id or local folder, a loaded
    `sentence_transformers.CrossEncoder`, or any scorer with
    `score(text_pairs) -> list[float]` (LangChain's `BaseCrossEncoder`,
    `RemoteCrossEncoder`). The LangChain and LlamaIndex doors also take a
    ready `Reranker` engine, to share its loaded model and score cache."""

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

    dtype: Dtype = DEFAULT_DTYPE
    """The precision the model's weights are loaded and run in, when loading
    by id or folder with the torch backend: `"float32"` (the default, also
    for models saved in half precision), `"bfloat16"` or `"float16"`. Half
    precision is for GPUs. On CPU, float16 is refused (2.3x slower than
    float32, measured) and bfloat16 is allowed only on processors with
    bfloat16 instructions (avx512_bf16 or amx_bf16), where it measured 1.5x
    faster with the same top 5 (see `langchain_ce_rerank.models.precision`
    and benchmarks/README.md). With `backend="onnx"` or `"openvino"` only
    float32: their exports run in it (their speed-up is
    `quantization="int8"`). A model that overflows in
    float16 (NaN or infinite scores; some fine-tuned models do) raises an
    error naming the dtype instead of returning them: use bfloat16, which
    has float32's range, or float32."""

    activation: Literal["none", "sigmoid"] = "none"
    """`"none"` keeps the model's raw score (compare them relative to each
    other): an encoder cross-encoder's relevance logit, or for a causal LM
    scored on "yes"/"no" (sentence-transformers' `LogitScore`) the log-odds
    `logit(yes) - logit(no)`. `"sigmoid"` maps it to (0, 1): for a causal
    LM exactly P(yes) among {yes, no}; for an encoder the model's own reading
    of its logit, not a calibrated probability (see `calibration`).
    `score_threshold` compares against the score after activation, so
    `0.0` with `"none"` keeps what `0.5` keeps with `"sigmoid"`."""

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
    model's `max_length`. Required for a scorer without `predict` (such as a
    `BaseCrossEncoder` or a `RemoteCrossEncoder`), whose windows are counted
    in the tokens of the tokenizer it names (`tokenizer=`), else in
    whitespace-separated words (logged once)."""

    passage_overlap: int = Field(default=64, ge=0)
    """Tokens each window shares with the previous one."""

    passage_aggregation: PassageAggregation = "max"
    """How `"max_passage"` scores a document from its windows' scores (after
    `activation`; a one-window document scores as its window under each):
    `"max"`, its best window; `"mean_top2"`, the mean of its two best;
    `"max_debiased"`, its best less what chance adds to the best of that many
    windows (their standard deviation times the expected maximum of as many
    normal draws). `"max"` favours long documents (more windows, more chances
    at a high one); see benchmarks/README.md for what each does to that bias
    and to recall. `metadata["relevance_passage"]` is the best window under
    each (`engine.aggregation`)."""

    content_template: str | None = None
    """Text the model reads, from metadata fields and `page_content`, e.g.
    `"{title}\\n{page_content}"`. None reads `page_content`. A field missing
    from a document's metadata is an error naming the field and document."""

    backend: str = DEFAULT_BACKEND
    """Inference backend when loading by id or folder, one of
    `langchain_ce_rerank.models.backends.BACKEND_NAMES`: `"torch"`; `"openvino"`
    (the `[openvino]` extra; runs in f32 unless
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

    instruction: str | None = Field(default=None, strict=True)
    """The task the model judges relevance for, e.g. `"Given a legal
    question, retrieve the statute that answers it"`, for rerankers that read
    one (LLM-based ones such as Qwen3-Reranker; see
    `langchain_ce_rerank.engine.instructions` for the rule). Passed to
    sentence-transformers as its `prompt`, which each model reads its own
    way (a causal-LM reranker's chat template puts it in its instruction
    slot). None uses the model's own default. A model that reads no
    instruction refuses one with `InstructionNotSupportedError` at the first
    call; it is never dropped silently. Part of the score-cache key and of
    the scoring identity; a call may override it (`instruction=`)."""

    cache_size: int = Field(default=4096, ge=0)
    """Scores remembered (LRU, keyed on model, instruction, query, text digest
    and max_length); 0 turns the cache off. On by default: a lookup costs about a
    microsecond against milliseconds per pair for the model, and repeated
    queries (chat turns, agents re-asking, evaluation reruns) then skip the
    model entirely. 4096 entries take about 1 MB. See `cache_info()`."""

    @field_validator("instruction")
    @classmethod
    def _instruction_has_text(cls, instruction: str | None) -> str | None:
        check_instruction(instruction)
        return instruction

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
            # A loaded CrossEncoder has a tokenizer.
            and not isinstance(self.model, str | Path | CrossEncoderLike)
        ):
            msg = (
                f"long_documents='max_passage' with a {type(self.model).__name__} "
                "needs passage_tokens=... (its window, in the tokens of the "
                "tokenizer it names, else in words): the model exposes no "
                "max_length"
            )
            raise ValueError(msg)
        # With device=None the device is picked at load, and checked there.
        check_dtype(self.dtype, device=self.device, backend=self.backend)
        check_options(self.backend, self.quantization)
        if isinstance(self.model, str | Path):
            check_model(self.model, self.backend, self.quantization)
            return self
        given = [
            name for name in ("max_length", "device") if getattr(self, name) is not None
        ] + (["model_kwargs"] if self.model_kwargs else [])
        given += [n for n in ("backend",) if self.backend != DEFAULT_BACKEND]
        given += [n for n in ("dtype",) if self.dtype != DEFAULT_DTYPE]
        if given:
            msg = (
                f"{', '.join(given)} configure loading a model by id or folder, but "
                f"model is an already loaded {type(self.model).__name__}; set them "
                "on that model instead, or pass model='<id or folder>'"
            )
            raise ValueError(msg)
        return self


SCORING_FIELDS = tuple(ScoringSettings.model_fields)
"""Settings that decide which scores are computed; they belong to the engine."""


class RerankerSettings(RankingSettings, ScoringSettings):
    """Every setting of a cross-encoder reranker, validated at construction."""

    def settings(self) -> dict[str, Any]:
        """Every setting as a dict, to build an equivalent reranker elsewhere."""
        return {name: getattr(self, name) for name in RerankerSettings.model_fields}
