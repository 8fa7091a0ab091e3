"""`Reranker`: the framework-neutral cross-encoder engine behind every door.

It owns everything that is not LangChain or LlamaIndex: model loading and
backends, the score cache, long-document windows, content templates,
de-duplication, length-sorted batches, activation, ordering, diversity
(`engine.diversity`) and the time budget (`engine.deadline`). The doors
(`CrossEncoderCompressor`, the LlamaIndex `CrossEncoderRerank`, the HTTP
server) only translate their framework's objects to texts and back.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr, model_validator
from typing_extensions import Self

import langchain_ce_rerank.engine.ranking as ranking_rules
from langchain_ce_rerank.engine.aggregation import best_windows
from langchain_ce_rerank.engine.cache import CacheInfo, ScoreCache, text_key
from langchain_ce_rerank.engine.checks import (
    check_deadline_ms,
    check_instruction,
    check_query,
    check_text,
)
from langchain_ce_rerank.engine.checks import check_threshold as check_threshold
from langchain_ce_rerank.engine.checks import check_top_n as check_top_n
from langchain_ce_rerank.engine.deadline import Budget, Clock, DeadlinePlan, Pace
from langchain_ce_rerank.engine.diversity import similarities
from langchain_ce_rerank.engine.identity import ScoringIdentity, scoring_identity
from langchain_ce_rerank.engine.instructions import (
    require_instruction_support,
    scorer_keywords,
)
from langchain_ce_rerank.engine.probability import ScoreCalibration
from langchain_ce_rerank.engine.protocols import (
    AsyncDeadlineScorer,
    AsyncPairScorer,
    DeadlineScorer,
)
from langchain_ce_rerank.engine.rendering import render
from langchain_ce_rerank.engine.results import RerankResult, ScoredText, Selection
from langchain_ce_rerank.engine.scoring import (
    LoadedModel,
    activate,
    default_batch_size,
    in_input_order,
    length_order,
    predict,
)
from langchain_ce_rerank.engine.scoring import Loader as Loader
from langchain_ce_rerank.engine.scoring import default_loader as default_loader
from langchain_ce_rerank.engine.settings import (
    LOADING_FIELDS,
    UNSET,
    RankingSettings,
    RerankerSettings,
    Unset,
)
from langchain_ce_rerank.engine.shaping import GroupBy, group_keys
from langchain_ce_rerank.engine.tokens import pair_format
from langchain_ce_rerank.engine.windows import Span, scoring_units, truncate_texts

__all__ = ["UNSET", "LoadedModel", "Reranker", "Unset", "check_text"]
# Imported `as` themselves above, so that they stay importable from here:
# `Loader`, `default_loader`, `check_top_n`, `check_threshold`. `UNSET` and
# `Unset` are defined in `engine.settings` and re-exported.

logger = logging.getLogger(__name__)


class Reranker(RerankerSettings):
    """Score and rank (query, text) pairs with a cross-encoder; no framework.

    Loads the model lazily, once (or via `load_model()`); one engine may be
    shared between threads and between doors (`CrossEncoderCompressor(model=
    engine)`, `CrossEncoderRerank(model=engine)`), which then share its model
    and score cache. Scores are plain Python floats; repeated texts are scored
    once; pairs reach the model in one length-sorted stream.

    Example:
        ```python
        from langchain_ce_rerank.engine import Reranker


        class Overlap:  # any object with score(pairs) works; or a model id
            def score(self, text_pairs):
                return [
                    float(len(set(q.split()) & set(t.split()))) for q, t in text_pairs
                ]


        engine = Reranker(model=Overlap(), top_n=2)
        for result in engine.rank("red apple", ["blue sky", "red apple", "apple pie"]):
            print(result.rank, result.index, result.score)
        ```
    """

    loader: Loader | None = Field(default=None, exclude=True, repr=False)
    """How a model id or folder is loaded: called as `loader(model, device=...,
    dtype=..., max_length=..., model_kwargs=..., backend=..., quantization=...,
    cache_folder=...)`. None uses `langchain_ce_rerank.models.load_cross_encoder`,
    which shares loaded models within the process."""

    clock: Clock | None = Field(default=None, exclude=True, repr=False)
    """The clock `deadline_ms` is measured on: a function returning seconds,
    never going back. None uses `time.monotonic`; tests pass their own."""

    _cache: ScoreCache = PrivateAttr()
    _loaded: LoadedModel | None = PrivateAttr(default=None)
    _load_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _pace: Pace = PrivateAttr(default_factory=Pace)
    _takes_instruction: object = PrivateAttr(default=None)
    """The loaded model last found to take an instruction (checked once)."""

    def model_post_init(self, context: Any, /) -> None:
        """Create the score cache once the fields are validated."""
        self._cache = ScoreCache(self.cache_size)

    @model_validator(mode="after")
    def _not_nested(self) -> Self:
        if isinstance(self.model, Reranker):
            msg = "model is already a Reranker engine: use that engine directly"
            raise ValueError(msg)
        return self

    @model_validator(mode="after")
    def _calibration_fits(self) -> Self:
        if self.calibration is not None:
            self.calibration.check(self.scoring_identity())
        return self

    def scoring_identity(self) -> ScoringIdentity:
        """What makes this engine's raw scores what they are (for calibrations).

        The model (as given, plus a content fingerprint of its folder), the
        backend, quantization and what the model reads; see `ScoringIdentity`.
        Finds the model without loading it.

        Raises:
            ModelNotFoundError: The model id or folder cannot be found.
        """
        return scoring_identity(self)

    # -- the model ------------------------------------------------------------

    def load_model(self) -> LoadedModel:
        """Load the model now (it is otherwise loaded on first use) and return it.

        Raises:
            ModelNotFoundError: The model id or folder cannot be found.
        """
        if self._loaded is None:
            with self._load_lock:
                if self._loaded is None:
                    if isinstance(self.model, str | Path):
                        loader = self.loader or default_loader
                        self._loaded = loader(
                            self.model,
                            device=self.device,
                            dtype=self.dtype,
                            max_length=self.max_length,
                            model_kwargs=self.model_kwargs,
                            backend=self.backend,
                            quantization=self.quantization,
                            cache_folder=self.export_cache_folder,
                        )
                    else:
                        self._loaded = self.model
        return self._loaded

    def with_settings(self, **changes: Any) -> Reranker:
        """A new engine with some settings changed, sharing what stays valid.

        The loaded model and the score cache (raw scores, before activation)
        are shared when the model and its loading settings are unchanged, so
        `engine.with_settings(activation="sigmoid")` costs no model call.

        Args:
            **changes: Settings to change, by field name.

        Returns:
            The new engine (this one is unchanged).
        """
        engine = Reranker(
            **{**self.settings(), "loader": self.loader, "clock": self.clock, **changes}
        )
        if engine._model_key() == self._model_key():
            engine._loaded = self._loaded
            engine._pace = self._pace
            if engine.cache_size == self.cache_size:
                engine._cache = self._cache
        return engine

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
                *(str(getattr(self, name)) for name in LOADING_FIELDS),
            )
        return ("object", id(self.model))

    def _score_key(self, instruction: str | None) -> Hashable:
        """The cache-key prefix of scores made under `instruction`."""
        model_key = self._model_key()
        return model_key if instruction is None else (model_key, instruction)

    def instruction_for_call(
        self, instruction: str | Unset | None = UNSET
    ) -> str | None:
        """The instruction a call scores under, checked against the model.

        Args:
            instruction: The call's override; `UNSET` keeps the `instruction`
                setting, None scores under the model's own default.

        Returns:
            The instruction, or None.

        Raises:
            InstructionNotSupportedError: The model reads no instruction
                (see `engine.instructions`); loads the model to find out.
            TypeError, ValueError: Not a string, or blank.
        """
        resolved = self.instruction if instruction is UNSET else instruction
        if resolved is None:
            return None
        check_instruction(resolved)
        model = self.load_model()
        if self._takes_instruction is not model:
            require_instruction_support(self.model, model)
            self._takes_instruction = model
        return resolved

    def check_call_calibration(
        self, calibration: ScoreCalibration | None, instruction: object
    ) -> None:
        """Refuse a call's instruction that `calibration` was not fitted under.

        A calibration maps the scores of one scoring setup, the instruction
        included, so a call that overrides the instruction gets scores its
        probabilities do not hold for. Nothing to check without a
        calibration, or for `instruction=UNSET` (no override).

        Raises:
            CalibrationMismatchError: The calibration's instruction differs.
        """
        if calibration is None or instruction in (UNSET, self.instruction):
            return
        update = {"instruction": instruction}
        calibration.check(self.scoring_identity().model_copy(update=update))

    def _predict(
        self, pairs: list[tuple[str, str]], instruction: str | None = None
    ) -> list[float]:
        """Raw model scores for `pairs`, fed to the model shortest first."""
        return predict(
            self.load_model(),
            pairs,
            batch_size=self.batch_size,
            show_progress_bar=self.show_progress_bar,
            instruction=instruction,
        )

    def _raw_scores(
        self,
        pairs: Sequence[tuple[str, str]],
        *,
        use_cache: bool = True,
        instruction: str | None = None,
    ) -> list[float]:
        """Raw scores in input order; repeated pairs and cache hits skip the model."""
        unique = list(dict.fromkeys(pairs))
        if not use_cache:
            raw = self._predict(unique, instruction)
            known = dict(zip(unique, raw, strict=True))
            return [known[pair] for pair in pairs]
        known, missing, keys = self._cache.lookup(self._score_key(instruction), unique)
        if missing:
            raw = self._predict(missing, instruction)
            for pair, score in zip(missing, raw, strict=True):
                known[pair] = score
                self._cache.put(keys[pair], score)
        return [known[pair] for pair in pairs]

    async def _araw_scores(
        self,
        scorer: AsyncPairScorer,
        pairs: Sequence[tuple[str, str]],
        use_cache: bool,
        instruction: str | None,
    ) -> list[float]:
        """`_raw_scores` through a scorer's own `ascore` (a remote server)."""
        unique = list(dict.fromkeys(pairs))
        known, missing, keys = (
            self._cache.lookup(self._score_key(instruction), unique)
            if use_cache
            else ({}, unique, {})
        )
        if missing:
            order = length_order(missing)
            raw = await scorer.ascore(
                [missing[i] for i in order], **scorer_keywords(instruction)
            )
            for pair, score in zip(
                missing, in_input_order(order, raw, scorer), strict=True
            ):
                known[pair] = score
                if use_cache:
                    self._cache.put(keys[pair], score)
        return [known[pair] for pair in pairs]

    # -- texts ----------------------------------------------------------------

    def render(self, content: str, metadata: Mapping[str, Any], label: str) -> str:
        """The text the model reads for one candidate (`content_template`).

        Args:
            content: The candidate's main text (`page_content`, node text).
            metadata: Its metadata, for the template's other fields.
            label: How to name the candidate in an error.

        Returns:
            The text; with a template, a `RenderedText` that locates the
            content, so windows and truncation cut only the content.

        Raises:
            ValueError: The template needs a field the metadata lacks.
        """
        return render(self.content_template, content, metadata, label)

    def truncate(self, texts: Sequence[str], max_tokens: int) -> list[str]:
        """Each text cut to its first `max_tokens` tokens of the model's tokenizer.

        Whitespace-separated words count as tokens for a model without a
        tokenizer. The HTTP doors use it for Cohere's `max_tokens_per_doc`.

        Args:
            texts: Candidate texts.
            max_tokens: Tokens to keep, at least 1.

        Returns:
            The cut texts, in order (a text that fits is returned whole).
        """
        return truncate_texts(pair_format(self.load_model()), texts, max_tokens)

    def _units(
        self, query: str, texts: Sequence[str], instruction: str | None
    ) -> list[list[tuple[Span | None, str]]]:
        """Per text, what to score: its windows, or itself cut to fit.

        The instruction's tokens are counted beside the query's, so windows
        and truncation cut the document only.
        """
        return scoring_units(
            self.load_model(),
            query,
            texts,
            long_documents=self.long_documents,
            passage_tokens=self.passage_tokens,
            passage_overlap=self.passage_overlap,
            prompt=instruction,
        )

    # -- scoring --------------------------------------------------------------

    def score_batch(
        self,
        items: Sequence[tuple[str, Sequence[str]]],
        *,
        use_cache: bool = True,
        deadline_ms: float | None = None,
        instruction: str | Unset | None = UNSET,
    ) -> list[list[ScoredText]]:
        """Score many (query, texts) lists in one stream of model batches.

        Every pair from every query is flattened, de-duplicated, looked up in
        the score cache, and the rest goes to the model in one length-sorted
        call; with `deadline_ms`, in first-stage order, in batches, until the
        next batch would pass the deadline (see `engine.deadline`).

        Args:
            items: `(query, texts)` pairs.
            use_cache: False reads and writes no cache entry, so every unique
                pair reaches the model (for measuring the model's latency).
            deadline_ms: A time budget for this call, in milliseconds; None
                has none (a door passes its resolved `deadline_ms` setting).
            instruction: Override of the `instruction` setting (None: the
                model's default); part of every score's cache key.

        Returns:
            Per item, per text, in input order: its score and, for
            `"max_passage"`, the character span of its best window; with a
            deadline, an `UnscoredText` (`.scored` False) for a text left
            unscored.

        Raises:
            ValueError: A blank query, a text that is not valid Unicode, or
                a `deadline_ms` that is not a positive number.
            TypeError: A query or text that is not a string.
            InstructionNotSupportedError: An instruction for a model that
                reads none.
        """
        budget = self._budget(deadline_ms)
        return self._score_sync(
            items, use_cache, budget, self.instruction_for_call(instruction)
        )

    def _score_sync(
        self,
        items: Sequence[tuple[str, Sequence[str]]],
        use_cache: bool,
        budget: Budget | None,
        instruction: str | None,
    ) -> list[list[ScoredText]]:
        units, pairs = self._prepare(items, instruction)
        if budget is None:
            raw = self._raw_scores(pairs, use_cache=use_cache, instruction=instruction)
            return best_windows(
                units, activate(raw, self.activation), self.passage_aggregation
            )
        plan = self._plan(items, units, pairs, use_cache, instruction)
        keywords = scorer_keywords(instruction)
        if plan.rest():
            model = self.load_model()
            if isinstance(model, DeadlineScorer):
                rest = plan.rest()
                left = budget.left()
                if left > 0:
                    plan.record(
                        rest, list(model.score_within(rest, left, **keywords)), model
                    )
            else:
                limit = self.batch_size or default_batch_size(model)
                while batch := plan.next_batch(limit):
                    if not budget.allows(len(batch)):
                        break
                    started = budget.clock()
                    raw = self._predict(batch, instruction)
                    budget.record(len(batch), budget.clock() - started)
                    plan.record(batch, raw, model)
        return self._finish(plan, use_cache, instruction)

    async def ascore_batch(
        self,
        items: Sequence[tuple[str, Sequence[str]]],
        *,
        use_cache: bool = True,
        deadline_ms: float | None = None,
        instruction: str | Unset | None = UNSET,
    ) -> list[list[ScoredText]]:
        """`score_batch` for async code: the event loop is never blocked.

        A model with its own `async ascore(pairs)` (such as
        `RemoteCrossEncoder`, which awaits its server) is awaited directly
        (its `ascore_within` under a deadline, when it has one); any other
        model is run in a worker thread. The deadline counts from this call.
        """
        budget = self._budget(deadline_ms)
        model = self._loaded or await asyncio.to_thread(self.load_model)
        # The model is loaded: checking it blocks for no longer than a render.
        resolved = self.instruction_for_call(instruction)
        if not isinstance(model, AsyncPairScorer):
            return await asyncio.to_thread(
                self._score_sync, items, use_cache, budget, resolved
            )
        units, pairs = self._prepare(items, resolved)
        if budget is None:
            raw = await self._araw_scores(model, pairs, use_cache, resolved)
            return best_windows(
                units, activate(raw, self.activation), self.passage_aggregation
            )
        plan = self._plan(items, units, pairs, use_cache, resolved)
        rest = plan.rest()
        keywords = scorer_keywords(resolved)
        if rest and isinstance(model, AsyncDeadlineScorer):
            left = budget.left()
            if left > 0:
                answer = await model.ascore_within(rest, left, **keywords)
                plan.record(rest, list(answer), model)
        elif rest:
            limit = self.batch_size or default_batch_size(model)
            while batch := plan.next_batch(limit):
                if not budget.allows(len(batch)):
                    break
                started = budget.clock()
                order = length_order(batch)
                answer = await model.ascore([batch[i] for i in order], **keywords)
                budget.record(len(batch), budget.clock() - started)
                plan.record(batch, in_input_order(order, answer, model), model)
        return self._finish(plan, use_cache, resolved)

    def _budget(self, deadline_ms: float | None) -> Budget | None:
        if deadline_ms is None:
            return None
        check_deadline_ms(deadline_ms)
        return Budget(deadline_ms, self.clock or time.monotonic, self._pace)

    def _plan(
        self,
        items: Sequence[tuple[str, Sequence[str]]],
        units: list[list[list[tuple[Span | None, str]]]],
        pairs: list[tuple[str, str]],
        use_cache: bool,
        instruction: str | None,
    ) -> DeadlinePlan:
        """What to score under a deadline, knowing the cache's hits."""
        known: dict[tuple[str, str], float] = {}
        if use_cache:
            known, _, _ = self._cache.lookup(
                self._score_key(instruction), list(dict.fromkeys(pairs))
            )
        return DeadlinePlan([query for query, _ in items], units, known)

    def _finish(
        self, plan: DeadlinePlan, use_cache: bool, instruction: str | None
    ) -> list[list[ScoredText]]:
        """Cache what the model scored, and the items' `ScoredText`s."""
        if use_cache and plan.fresh:
            model_key = self._score_key(instruction)
            for pair, score in plan.fresh.items():
                self._cache.put((model_key, *text_key(*pair)), score)
        return plan.results(
            lambda raw: activate(raw, self.activation), self.passage_aggregation
        )

    def _prepare(
        self, items: Sequence[tuple[str, Sequence[str]]], instruction: str | None
    ) -> tuple[list[list[list[tuple[Span | None, str]]]], list[tuple[str, str]]]:
        """Check every text; per item, per text, its windows; all pairs, flat."""
        units = []
        pairs: list[tuple[str, str]] = []
        for number, (query, texts) in enumerate(items):
            check_text(check_query(query), "the query")
            for i, text in enumerate(texts):
                check_text(
                    text, f"text {i} of item {number}" if number else f"text {i}"
                )
            per_text = self._units(query, texts, instruction)
            units.append(per_text)
            pairs.extend((query, text) for windows_ in per_text for _, text in windows_)
        return units, pairs

    def score(
        self,
        query: str,
        texts: Sequence[str],
        *,
        instruction: str | Unset | None = UNSET,
    ) -> list[float]:
        """Score each text against `query` (after `activation`), in input order.

        Args:
            query: The query; blank is an error.
            texts: Candidate texts.
            instruction: Override of the `instruction` setting.

        Returns:
            One plain float per text.
        """
        scored = self.score_batch([(query, texts)], instruction=instruction)
        return [item.score for item in scored[0]]

    # -- ranking --------------------------------------------------------------

    def count_tokens(self, text: str) -> int:
        """Tokens in `text` by the model's tokenizer, without special tokens.

        Whitespace-separated words for a model without a tokenizer. The
        default `token_counter` of `max_context_tokens`.
        """
        return len(pair_format(self.load_model(), warn=False).spans(text))

    def select(
        self,
        scored: Sequence[ScoredText],
        ranking: RankingSettings | None = None,
        *,
        first_stage_ranks: Sequence[int] | None = None,
        groups: Sequence[Hashable] | None = None,
        contents: Sequence[str] | None = None,
        scored_texts: Sequence[str] | None = None,
        embeddings: Any = None,
    ) -> Selection:
        """Order scored candidates, keep what the settings allow, say why not the rest.

        Sorted by score, highest first (ties keep input order, NaN last), or
        by RRF when `fusion="rrf"`; then at most `max_per_group` per group
        (`group_by`), `top_n` (picked by maximal marginal relevance when
        `diversity` is above 0), filtered by `score_threshold` and, with a
        `calibration`, by `min_probability` (each scored result then carries
        its `probability`); candidates a deadline left unscored follow in
        first-stage order (`reranked=False`, no probability), filling what
        `top_n` leaves within `max_per_group`; last, results are taken while
        they fit `max_context_tokens`. Every candidate not returned is in
        `dropped` with its reason (see `ranking.select`).

        Args:
            scored: One `score_batch` item's result.
            ranking: The ranking settings of this call, such as a door's own
                resolved by `for_call`; None uses this engine's.
            first_stage_ranks: 1-based first-stage rank per candidate, for RRF
                and the order of unscored candidates; None uses the input
                order.
            groups: Each candidate's group, required with `group_by` (a door
                computes them with `engine.shaping.group_keys`).
            contents: Each candidate's returned text, required with
                `max_context_tokens`; with `diversity` and no `embeddings`,
                the texts compared by word sets (`scored_texts` when given).
            scored_texts: The texts the model read, when they differ from
                `contents` (a `content_template`, node metadata): the best
                window of `long_documents="max_passage"` is a span of the
                scored text, so an over-budget candidate is cut to it only
                where the two are the same (from its start otherwise).
            embeddings: For `diversity`: one vector per candidate (the first
                stage's), compared by cosine; None compares texts by their
                word sets instead.

        Returns:
            A `Selection`: the results, best first, and the dropped candidates.

        Raises:
            ValueError: `group_by` without `groups`, `max_context_tokens`
                without `contents`, or diversity with neither `embeddings`
                nor texts (or with a count other than the candidates').
        """
        settings = ranking or self
        if any(item.scored and math.isnan(item.score) for item in scored):
            logger.warning("The cross-encoder returned NaN scores; ranking them last.")
        if settings.group_by is not None and groups is None:
            msg = (
                f"group_by={settings.group_by!r} needs each candidate's group: "
                "pass groups=[...], one per candidate"
            )
            raise ValueError(msg)
        windows: list[Span | None] | None = None
        count = None
        if settings.max_context_tokens is not None:
            if contents is None:
                msg = (
                    "max_context_tokens needs each candidate's text: pass "
                    "contents=[...], one per candidate"
                )
                raise ValueError(msg)
            windows = [
                item.passage
                if scored_texts is None or scored_texts[i] == contents[i]
                else None
                for i, item in enumerate(scored)
            ]
            count = settings.token_counter or self.count_tokens
        similarity = None
        if settings.diversity > 0 and sum(item.scored for item in scored) > 1:
            similarity, kind = similarities(
                len(scored),
                embeddings=embeddings,
                texts=scored_texts if scored_texts is not None else contents,
            )
            logger.debug("diversity %s over %s", settings.diversity, kind)
        calibration = settings.calibration
        return ranking_rules.select(
            scored,
            settings,
            first_stage_ranks=first_stage_ranks,
            groups=groups,
            contents=contents,
            windows=windows,
            count=count,
            similarity=similarity,
            probabilities=None
            if calibration is None
            else calibration.probabilities(
                [item.score for item in scored], self.activation
            ),
        )

    def order(
        self,
        scored: Sequence[ScoredText],
        ranking: RankingSettings | None = None,
        *,
        top_n: int | Unset | None = UNSET,
        score_threshold: float | Unset | None = UNSET,
        diversity: float | Unset = UNSET,
        first_stage_ranks: Sequence[int] | None = None,
        fusion: Literal["none", "rrf"] | Unset = UNSET,
        rrf_k: int | Unset = UNSET,
        min_probability: float | Unset | None = UNSET,
        embeddings: Any = None,
        texts: Sequence[str] | None = None,
        groups: Sequence[Hashable] | None = None,
        contents: Sequence[str] | None = None,
        scored_texts: Sequence[str] | None = None,
    ) -> list[RerankResult]:
        """Order, cut and filter already scored candidates: `select`'s results.

        Sorted by score, highest first (ties keep input order, NaN last), or
        by RRF when `fusion="rrf"`, or picked by maximal marginal relevance
        when `diversity` is above 0; cut to `top_n`, *then* filtered by
        `score_threshold` and, with a `calibration`, by `min_probability`
        (each scored result then carries its `probability`). Candidates a
        deadline left unscored follow in first-stage order (`reranked=False`,
        no probability), filling what `top_n` leaves; neither
        `score_threshold` nor `min_probability` drops them. Shaped by
        `group_by` and `max_context_tokens` too (see `select`).

        Args:
            scored: One `score_batch` item's result.
            ranking: The ranking settings to apply, such as a door's own
                resolved for one call (`door.for_call(top_n=...)`); None uses
                this engine's.
            top_n: Override of `top_n` for this call.
            score_threshold: Override of `score_threshold`.
            diversity: Override of `diversity`.
            first_stage_ranks: 1-based first-stage rank per candidate, for RRF
                and the order of unscored candidates; None uses the input
                order.
            fusion: Override of `fusion`.
            rrf_k: Override of `rrf_k`.
            min_probability: Override of `min_probability`.
            embeddings: For `diversity`: one vector per candidate (the first
                stage's), compared by cosine; None compares `texts` by their
                word sets instead.
            texts: For `diversity` without embeddings: the candidates' texts.
            groups: Each candidate's group, with `group_by` (see `select`).
            contents: Each candidate's text, with `max_context_tokens`.
            scored_texts: The texts the model read, where they differ.

        Returns:
            The kept candidates in their new order.

        Raises:
            ValueError: A `top_n` below 1, a `score_threshold` that is not a
                number, a `diversity` outside [0, 1], diversity with neither
                `embeddings` nor `texts` (or with a count other than the
                candidates'), or a `min_probability` outside [0, 1] or
                without a `calibration`.
        """
        settings = (ranking or self).for_call(
            top_n=top_n,
            score_threshold=score_threshold,
            diversity=diversity,
            min_probability=min_probability,
        )
        changes = {
            name: value
            for name, value in (("fusion", fusion), ("rrf_k", rrf_k))
            if value is not UNSET
        }
        if changes:
            settings = settings.model_copy(update=changes)
        return self.select(
            scored,
            settings,
            first_stage_ranks=first_stage_ranks,
            groups=groups,
            contents=contents if contents is not None else texts,
            scored_texts=scored_texts
            if scored_texts is not None or contents is None
            else texts,
            embeddings=embeddings,
        ).results

    def rank(
        self,
        query: str,
        texts: Sequence[str],
        *,
        top_n: int | Unset | None = UNSET,
        score_threshold: float | Unset | None = UNSET,
        diversity: float | Unset = UNSET,
        deadline_ms: float | Unset | None = UNSET,
        min_probability: float | Unset | None = UNSET,
        group_by: GroupBy | Unset | None = UNSET,
        max_per_group: int | Unset | None = UNSET,
        max_context_tokens: int | Unset | None = UNSET,
        instruction: str | Unset | None = UNSET,
        first_stage_ranks: Sequence[int] | None = None,
        groups: Sequence[Hashable] | None = None,
        embeddings: Any = None,
    ) -> list[RerankResult]:
        """Score `texts` against `query` and return them reranked.

        Args:
            query: The search query.
            texts: Candidate texts, e.g. a first stage's results in its order.
            top_n: Override of the `top_n` setting for this call.
            score_threshold: Override of the `score_threshold` setting.
            diversity: Override of the `diversity` setting.
            deadline_ms: Override of the `deadline_ms` setting.
            min_probability: Override of the `min_probability` setting.
            group_by: Override of `group_by`; for plain texts a function of
                the text (a metadata key needs `groups`).
            max_per_group: Override of `max_per_group`.
            max_context_tokens: Override of `max_context_tokens`, counted on
                the texts.
            instruction: Override of the `instruction` setting.
            first_stage_ranks: 1-based first-stage ranks, for `fusion="rrf"`.
            groups: Each text's group, when grouping by something the texts
                do not hold.
            embeddings: The first stage's vector per text, for `diversity`
                (None compares the texts' word sets).

        Returns:
            `RerankResult`s, best first, each with its input `index`.
        """
        settings = self.for_call(
            top_n=top_n,
            score_threshold=score_threshold,
            diversity=diversity,
            deadline_ms=deadline_ms,
            min_probability=min_probability,
            group_by=group_by,
            max_per_group=max_per_group,
            max_context_tokens=max_context_tokens,
        )
        self.check_call_calibration(settings.calibration, instruction)
        scored = self.score_batch(
            [(query, texts)], deadline_ms=settings.deadline_ms, instruction=instruction
        )
        return self.select(
            scored[0],
            settings,
            first_stage_ranks=first_stage_ranks,
            groups=self._text_groups(settings, texts, groups),
            contents=texts,
            embeddings=embeddings,
        ).results

    def rank_batch(
        self,
        items: Sequence[tuple[str, Sequence[str]]],
        *,
        top_n: int | Unset | None = UNSET,
        score_threshold: float | Unset | None = UNSET,
        min_probability: float | Unset | None = UNSET,
        diversity: float | Unset = UNSET,
        deadline_ms: float | Unset | None = UNSET,
        group_by: GroupBy | Unset | None = UNSET,
        max_per_group: int | Unset | None = UNSET,
        max_context_tokens: int | Unset | None = UNSET,
        instruction: str | Unset | None = UNSET,
    ) -> list[list[RerankResult]]:
        """`rank` for many (query, texts) items, scored in one model stream.

        Args:
            items: `(query, texts)` pairs.
            top_n: Override of the `top_n` setting for every item.
            score_threshold: Override of the `score_threshold` setting.
            min_probability: Override of the `min_probability` setting.
            diversity: Override of the `diversity` setting (word-set
                similarity: `rank` takes embeddings).
            deadline_ms: Override of the `deadline_ms` setting: one budget
                for the whole call.
            group_by: Override of `group_by` (a function of the text).
            max_per_group: Override of `max_per_group`.
            max_context_tokens: Override of `max_context_tokens`.
            instruction: Override of the `instruction` setting.

        Returns:
            Per item, its `RerankResult`s, best first.
        """
        settings = self.for_call(
            top_n=top_n,
            score_threshold=score_threshold,
            diversity=diversity,
            deadline_ms=deadline_ms,
            min_probability=min_probability,
            group_by=group_by,
            max_per_group=max_per_group,
            max_context_tokens=max_context_tokens,
        )
        self.check_call_calibration(settings.calibration, instruction)
        scored = self.score_batch(
            items, deadline_ms=settings.deadline_ms, instruction=instruction
        )
        return [
            self.select(
                item,
                settings,
                groups=self._text_groups(settings, texts, None),
                contents=texts,
            ).results
            for item, (_, texts) in zip(scored, items, strict=True)
        ]

    @staticmethod
    def _text_groups(
        settings: RankingSettings,
        texts: Sequence[str],
        groups: Sequence[Hashable] | None,
    ) -> Sequence[Hashable] | None:
        """Plain texts' groups: given, or the `group_by` function of each text."""
        group_by = settings.group_by
        if group_by is None:
            return None
        if groups is not None:
            if len(groups) != len(texts):
                msg = f"groups has {len(groups)} items for {len(texts)} texts"
                raise ValueError(msg)
            return groups
        if isinstance(group_by, str):
            msg = (
                f"group_by={group_by!r} names a metadata key, and plain texts "
                "have no metadata: pass groups=[...] (one per text), or "
                "group_by=a function of the text"
            )
            raise ValueError(msg)
        return group_keys(group_by, texts, lambda _: {}, lambda i: f"text {i}")
