"""The per-process registry of shared models, and the one lock of each model."""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable, Hashable
from typing import Any, TypeVar, cast

__all__ = ["model_lock"]

_T = TypeVar("_T")

# One loaded model per key, kept while anyone holds it (weak values); models
# that take no weak reference stay for the life of the process.
_SHARED: weakref.WeakValueDictionary[Hashable, Any] = weakref.WeakValueDictionary()
_SHARED_STRONG: dict[Hashable, Any] = {}
_KEY_LOCKS: dict[Hashable, threading.Lock] = {}
_REGISTRY_GUARD = threading.Lock()


def freeze(value: Any) -> Hashable:
    """A hashable, order-independent stand-in for `value` (for cache keys)."""
    if isinstance(value, dict):
        return tuple(sorted(((str(k), freeze(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, set | frozenset):
        return tuple(sorted(repr(v) for v in value))
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return cast("Hashable", value)


def _lookup(key: Hashable) -> Any:
    model = _SHARED.get(key)
    return model if model is not None else _SHARED_STRONG.get(key)


def shared_model(key: Hashable, build: Callable[[], _T]) -> _T:
    """The model loaded under `key`, building it once (one lock per key)."""
    with _REGISTRY_GUARD:
        found = _lookup(key)
        if found is not None:
            return cast("_T", found)
        key_lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with key_lock:
        with _REGISTRY_GUARD:
            found = _lookup(key)
        if found is not None:
            return cast("_T", found)
        model = build()
        with _REGISTRY_GUARD:
            try:
                _SHARED[key] = model
            except TypeError:
                _SHARED_STRONG[key] = model
        return model


_MODEL_LOCKS: dict[int, tuple[Any, threading.Lock]] = {}
# Re-entrant: a collected model's callback may run inside `model_lock`.
_MODEL_LOCKS_GUARD = threading.RLock()


def model_lock(model: object) -> threading.Lock:
    """The one lock of a loaded model: hold it around every call into `model`.

    Loaded models are shared within a process, and a model must not run in two
    threads at once (fast tokenizers raise "Already borrowed"; torch already
    spreads one call over every core). Every caller gets the same lock for the
    same object. The lock is forgotten when the model is garbage-collected; an
    object that takes no weak reference is kept alive by its lock.

    Args:
        model: Any loaded model object.

    Returns:
        The `threading.Lock` for that object.

    Example:
        ```python
        from langchain_ce_rerank.models import model_lock

        model = object.__new__(type("Model", (), {}))
        with model_lock(model):
            pass  # model.predict(...)
        assert model_lock(model) is model_lock(model)
        ```
    """
    key = id(model)
    with _MODEL_LOCKS_GUARD:
        entry = _MODEL_LOCKS.get(key)
        if entry is not None:
            known, lock = entry
            alive = known() if isinstance(known, weakref.ref) else known
            if alive is model:
                return lock
        lock = threading.Lock()
        holder: Any
        try:
            holder = weakref.ref(model, _forget_lock)
        except TypeError:
            holder = model
        _MODEL_LOCKS[key] = (holder, lock)
        return lock


def _forget_lock(ref: weakref.ref[Any]) -> None:
    """Drop the lock of a garbage-collected model (a weak reference callback)."""
    with _MODEL_LOCKS_GUARD:
        for key, (holder, _lock) in list(_MODEL_LOCKS.items()):
            if holder is ref:
                del _MODEL_LOCKS[key]
                return
