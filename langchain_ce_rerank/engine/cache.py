"""A thread-safe LRU cache of cross-encoder scores, with hit and miss counts."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable
from typing import Any, NamedTuple


class CacheInfo(NamedTuple):
    """Counters in the style of `functools.lru_cache().cache_info()`."""

    hits: int
    misses: int
    maxsize: int
    currsize: int


def text_key(query: str, text: str) -> tuple[str, bytes]:
    """Key part for one pair: the query as is, the text by digest (texts are long)."""
    return query, hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()


class ScoreCache:
    """LRU map from (model settings, query, text digest) to a raw model score."""

    def __init__(self, maxsize: int) -> None:
        self.maxsize = maxsize
        self._data: OrderedDict[Hashable, float] = OrderedDict()
        self._lock = threading.Lock()
        self._hits = 0
        self._misses = 0

    def get(self, key: Hashable) -> float | None:
        """The cached score, or None; counts a hit or a miss."""
        with self._lock:
            value = self._data.get(key)
            if value is None:
                self._misses += 1
                return None
            self._data.move_to_end(key)
            self._hits += 1
            return value

    def lookup(
        self, model_key: Hashable, pairs: list[tuple[str, str]]
    ) -> tuple[dict[tuple[str, str], float], list[tuple[str, str]], dict[Any, Any]]:
        """(known scores, pairs the model must score, cache keys) for `pairs`.

        A pair's key is `model_key` with its `text_key`; each pair counts a
        hit or a miss.
        """
        keys = {pair: (model_key, *text_key(*pair)) for pair in pairs}
        known: dict[tuple[str, str], float] = {}
        missing = []
        for pair in pairs:
            cached = self.get(keys[pair])
            if cached is None:
                missing.append(pair)
            else:
                known[pair] = cached
        return known, missing, keys

    def put(self, key: Hashable, value: float) -> None:
        """Store a score, evicting the least recently used beyond `maxsize`."""
        if self.maxsize <= 0:
            return
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.maxsize:
                self._data.popitem(last=False)

    def info(self) -> CacheInfo:
        """Hits, misses and sizes so far."""
        with self._lock:
            return CacheInfo(self._hits, self._misses, self.maxsize, len(self._data))

    def clear(self) -> None:
        """Drop every entry and reset the counters."""
        with self._lock:
            self._data.clear()
            self._hits = self._misses = 0
