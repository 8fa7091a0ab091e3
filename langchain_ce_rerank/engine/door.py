"""`EngineDoor`: what every door in front of the engine shares.

A door (the LangChain compressor, the LlamaIndex postprocessor) is configured
with the engine's settings and scores through an engine made from them on
first use, or through a ready `Reranker` passed as `model=`. Written once here
so the doors stay thin and cannot drift apart.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from pathlib import Path
from typing import Any

from pydantic import PrivateAttr, model_validator
from typing_extensions import Self

from langchain_ce_rerank.engine.cache import CacheInfo
from langchain_ce_rerank.engine.reranker import (
    LoadedModel,
    Loader,
    Reranker,
    default_loader,
)
from langchain_ce_rerank.engine.settings import RANKING_FIELDS, RerankerSettings
from langchain_ce_rerank.errors import ModelNotFoundError

__all__ = ["SCORING_FIELDS", "EngineDoor"]

SCORING_FIELDS = tuple(
    name for name in RerankerSettings.model_fields if name not in RANKING_FIELDS
)
"""Settings that decide which scores are computed; they belong to the engine.
The ranking settings (`top_n`, `score_threshold`, `fusion`, `rrf_k`) belong to
each door and are passed to the engine per call."""


class EngineDoor(RerankerSettings):
    """Engine settings plus the engine they describe, made on first use."""

    _engine: Reranker | None = PrivateAttr(default=None)
    _engine_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)
    _model_remedy: str | None = PrivateAttr(default=None)
    """How a user of this door passes a local folder, for `ModelNotFoundError`
    (default `"<ClassName>(model='/path/to/model')"`); a function that builds
    the door, such as `build_reranking_retriever`, sets its own spelling."""

    def _base_loader(self) -> Loader:
        """How the engine loads a model id or folder."""
        return default_loader

    def _loader(self) -> Loader:
        base = self._base_loader()
        remedy = self._model_remedy or f"{type(self).__name__}(model='/path/to/model')"

        def load(model: str | Path, **kwargs: Any) -> LoadedModel:
            try:
                return base(model, **kwargs)
            except ModelNotFoundError as err:
                raise err.with_remedy(remedy) from None

        return load

    @model_validator(mode="after")
    def _engine_settings_live_on_the_engine(self) -> Self:
        if isinstance(self.model, Reranker):
            defaults = RerankerSettings.model_fields
            given = [
                name
                for name in SCORING_FIELDS
                if name != "model"
                and getattr(self, name)
                != defaults[name].get_default(call_default_factory=True)
            ]
            if given:
                msg = (
                    f"{', '.join(given)} configure scoring, but model is a Reranker "
                    "engine with its own settings; set them on the engine instead: "
                    f"{type(self).__name__}(model=Reranker(..., {given[0]}=...))"
                )
                raise ValueError(msg)
        return self

    @property
    def engine(self) -> Reranker:
        """The engine that scores for this door (made on first use)."""
        if isinstance(self.model, Reranker):
            return self.model
        settings = {name: getattr(self, name) for name in SCORING_FIELDS}
        with self._engine_lock:
            engine = self._engine
            if engine is None:
                engine = self._engine = Reranker(**settings, loader=self._loader())
            elif any(getattr(engine, k) != v for k, v in settings.items()):
                # A model_copy(update=...) shares the private engine of its
                # source; a copy with other scoring settings gets its own,
                # which keeps the model and raw-score cache where still valid.
                engine = self._engine = engine.with_settings(**settings)
        return engine

    def load_model(self) -> LoadedModel:
        """Load the model now (it is otherwise loaded on first use) and return it.

        Raises:
            ModelNotFoundError: The model id or folder cannot be found.
        """
        return self.engine.load_model()

    def cache_info(self) -> CacheInfo:
        """Score cache hits, misses and sizes (see `cache_size`)."""
        return self.engine.cache_info()

    def clear_cache(self) -> None:
        """Empty the score cache and reset its counters."""
        self.engine.clear_cache()

    def _model_key(self) -> Hashable:
        """The model part of the engine's score-cache keys (see `Reranker`)."""
        return self.engine._model_key()
