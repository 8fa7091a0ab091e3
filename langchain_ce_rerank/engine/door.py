"""`EngineDoor`: what every pydantic door in front of the engine shares.

A door (the LangChain compressor, the LlamaIndex postprocessor) holds a
`Reranker` engine and its own ranking settings (`top_n`, `score_threshold`,
`fusion`, `rrf_k`), and only converts its framework's candidates to texts and
the engine's results back. Its constructor also takes the engine's settings
(`batch_size=`, `activation=`, ...) and builds the engine from them, so they
are validated once, by the engine, when the door is made. A door that cannot
be a pydantic model holds a `Reranker` the same way, without this class.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import (
    ModelWrapValidatorHandler,
    PrivateAttr,
    ValidationError,
    model_validator,
)
from typing_extensions import Self, override

from langchain_ce_rerank.engine.cache import CacheInfo
from langchain_ce_rerank.engine.protocols import CrossEncoderLike, PairScorer
from langchain_ce_rerank.engine.reranker import (
    LoadedModel,
    Loader,
    Reranker,
    default_loader,
)
from langchain_ce_rerank.engine.settings import (
    DEFAULT_CROSS_ENCODER,
    RANKING_FIELDS,
    SCORING_FIELDS,
    RankingSettings,
    ScoringSettings,
)
from langchain_ce_rerank.errors import ModelNotFoundError

__all__ = ["ENGINE_KEYWORDS", "SCORING_FIELDS", "EngineDoor"]

ENGINE_KEYWORDS = tuple(name for name in SCORING_FIELDS if name != "model")
"""The engine settings a door's constructor takes besides `model=`."""
_DoorModel = str | Path | CrossEncoderLike | PairScorer | Reranker


if TYPE_CHECKING:
    # Type checkers see the engine's settings as the door's constructor
    # keywords and attributes; at runtime the constructor passes them to the
    # engine, and reading one reads the engine's (`EngineDoor.__getattr__`).
    class _DoorSettings(RankingSettings, ScoringSettings): ...

else:
    _DoorSettings = RankingSettings


class EngineDoor(_DoorSettings):
    """A door's ranking settings plus the engine it holds (see the module)."""

    # A door also takes a Reranker, which the engine's own setting cannot.
    model: _DoorModel = DEFAULT_CROSS_ENCODER  # type: ignore[assignment]
    """A Hugging Face model id or local folder, a loaded
    `sentence_transformers.CrossEncoder`, any scorer with
    `score(text_pairs) -> list[float]`, or a ready `Reranker` engine, to share
    its loaded model and score cache with other doors (then set the engine's
    settings on it). The other engine settings are keywords of the door's
    constructor; see `RerankerSettings`."""

    _engine: Reranker = PrivateAttr()
    _model_remedy: str | None = PrivateAttr(default=None)
    """How a user of this door passes a local folder, for `ModelNotFoundError`
    (default `"<ClassName>(model='/path/to/model')"`); a function that builds
    the door, such as `build_reranking_retriever`, sets its own spelling."""

    @model_validator(mode="wrap")
    @classmethod
    def _hold_an_engine(
        cls, data: Any, handler: ModelWrapValidatorHandler[Self]
    ) -> Self:
        if not isinstance(data, dict):
            return handler(data)
        fields = dict(data)
        engine_settings = {k: fields.pop(k) for k in ENGINE_KEYWORDS if k in fields}
        door = handler(fields)
        try:
            door._engine = door._make_engine(engine_settings)
        except ValidationError as err:
            # Named for the door the user called, not the engine inside it.
            raise ValidationError.from_exception_data(
                cls.__name__,
                err.errors(),  # type: ignore[arg-type]
            ) from None
        door._check_calibration()
        return door

    def _check_calibration(self) -> None:
        """Refuse a calibration fitted for scores this door's engine does not make."""
        if self.calibration is not None:
            self.calibration.check(self._engine.scoring_identity())

    def _make_engine(self, settings: dict[str, Any]) -> Reranker:
        if not isinstance(self.model, Reranker):
            return Reranker(model=self.model, loader=self._loader(), **settings)
        defaults = ScoringSettings.model_fields
        given = [
            name
            for name, value in settings.items()
            if value != defaults[name].get_default(call_default_factory=True)
        ]
        if given:
            msg = (
                f"{', '.join(given)} configure scoring, but model is a Reranker "
                "engine with its own settings; set them on the engine instead: "
                f"{type(self).__name__}(model=Reranker(..., {given[0]}=...))"
            )
            raise ValueError(msg)
        return self.model

    def _base_loader(self) -> Loader:
        """How the engine loads a model id or folder."""
        return default_loader

    def _loader(self) -> Loader:
        base = self._base_loader()

        def load(model: str | Path, **kwargs: Any) -> LoadedModel:
            try:
                return base(model, **kwargs)
            except ModelNotFoundError as err:
                remedy = (
                    self._model_remedy
                    or f"{type(self).__name__}(model='/path/to/model')"
                )
                raise err.with_remedy(remedy) from None

        return load

    @override
    def model_copy(
        self, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> Self:
        """A copy with some settings changed, engine settings included.

        A copy with other engine settings gets its own engine, which shares
        the loaded model and the raw-score cache where they stay valid (see
        `Reranker.with_settings`); otherwise the copy shares this engine.

        Args:
            update: Settings to change, by name (door or engine settings).
            deep: Copy the door's fields deeply.

        Returns:
            The copy (this door is unchanged).
        """
        changes = dict(update or {})
        engine_settings = {k: changes.pop(k) for k in ENGINE_KEYWORDS if k in changes}
        copy = super().model_copy(update=changes, deep=deep)
        if "model" in changes or engine_settings:
            if isinstance(self.model, Reranker) or isinstance(copy.model, Reranker):
                copy._engine = copy._make_engine(engine_settings)
            else:
                copy._engine = self._engine.with_settings(
                    model=copy.model, **engine_settings
                )
        ranking = {name: changes[name] for name in RANKING_FIELDS if name in changes}
        if ranking:
            # model_copy does not validate; the ranking settings changed are
            # checked as the constructor checks them (a calibration's file read).
            checked = RankingSettings.model_validate(
                {name: getattr(copy, name) for name in RANKING_FIELDS}
            )
            for name in ranking:
                copy.__dict__[name] = getattr(checked, name)
        if {"model", "calibration"} & set(changes) or engine_settings:
            copy._check_calibration()
        return copy

    @override
    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        """The model, then the engine's and the door's non-default settings."""
        own = list(super().__repr_args__())
        yield from (item for item in own if item[0] == "model")
        if not isinstance(self.model, Reranker):
            yield from (
                item
                for item in self._engine.__repr_args__()
                if item[0] in ENGINE_KEYWORDS
            )
        yield from (item for item in own if item[0] != "model")

    if not TYPE_CHECKING:

        def __getattr__(self, name: str) -> Any:
            if name in ENGINE_KEYWORDS:
                return getattr(self._engine, name)
            return super().__getattr__(name)

    @property
    def engine(self) -> Reranker:
        """The engine that scores for this door."""
        return self._engine

    def load_model(self) -> LoadedModel:
        """Load the model now (it is otherwise loaded on first use) and return it.

        Raises:
            ModelNotFoundError: The model id or folder cannot be found.
        """
        return self._engine.load_model()

    def cache_info(self) -> CacheInfo:
        """Score cache hits, misses and sizes (see `cache_size`)."""
        return self._engine.cache_info()

    def clear_cache(self) -> None:
        """Empty the score cache and reset its counters."""
        self._engine.clear_cache()

    def _model_key(self) -> Hashable:
        """The model part of the engine's score-cache keys (see `Reranker`)."""
        return self._engine._model_key()
