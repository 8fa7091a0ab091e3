"""Small deterministic stand-ins for models, so ranking logic is tested exactly."""

from __future__ import annotations

import threading
from collections.abc import Callable

import numpy as np
from langchain_core.cross_encoders import BaseCrossEncoder
from langchain_core.embeddings import Embeddings


class TableCrossEncoder(BaseCrossEncoder):
    """Scores each pair by a lookup on the text (default 0.0); records every call."""

    def __init__(self, table: dict[str, float] | None = None) -> None:
        self.table = dict(table or {})
        self.calls: list[list[tuple[str, str]]] = []

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        self.calls.append(list(text_pairs))
        return [self.table.get(text, 0.0) for _, text in text_pairs]


class WordOverlapCrossEncoder(BaseCrossEncoder):
    """Scores a pair by how many query words the text contains."""

    def __init__(self) -> None:
        self.calls = 0

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        self.calls += 1
        return [
            float(sum(word in text.lower().split() for word in query.lower().split()))
            for query, text in text_pairs
        ]


class BlockingCrossEncoder(BaseCrossEncoder):
    """Blocks inside `score` until `release` is set (or fails after a timeout)."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        self.started.set()
        if not self.release.wait(timeout=30):
            msg = "never released: the event loop was blocked while scoring"
            raise RuntimeError(msg)
        return [float(len(text)) for _, text in text_pairs]


class FunctionCrossEncoder(BaseCrossEncoder):
    """Scores with any function of (query, text)."""

    def __init__(self, fn: Callable[[str, str], float]) -> None:
        self.fn = fn

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        return [self.fn(q, t) for q, t in text_pairs]


class AxisEmbeddings(Embeddings):
    """Each known word is one axis; a text embeds as the sum of its words' axes.

    Gives exact, hand-checkable cosines: "red" vs "red blue" = 1/sqrt(2).
    """

    def __init__(self, vocabulary: list[str]) -> None:
        self.vocabulary = {word: i for i, word in enumerate(vocabulary)}
        self.calls = 0

    def _embed(self, text: str) -> list[float]:
        vector = np.zeros(len(self.vocabulary) + 1, dtype=np.float64)
        vector[-1] = 1e-3  # never the zero vector
        for word in text.lower().split():
            if word in self.vocabulary:
                vector[self.vocabulary[word]] += 1.0
        return vector.tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.calls += 1
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._embed(text)


class TruncatingKeywordCrossEncoder(BaseCrossEncoder):
    """Reads only the first `window` words of each (query + text) pair, as a real
    cross-encoder reads only its token window, and scores 1.0 per keyword seen.
    """

    def __init__(self, keyword: str, window: int = 512) -> None:
        self.keyword = keyword
        self.window = window
        self.received: list[str] = []

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        scores = []
        for query, text in text_pairs:
            self.received.append(text)
            words = (query.split() + text.split())[: self.window]
            scores.append(float(words.count(self.keyword)))
        return scores


class TableEmbeddings(Embeddings):
    """Texts "v0".."vN" embed to fixed random unit vectors; anything else fails."""

    def __init__(self, count: int, dimension: int = 32, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        vectors = rng.standard_normal((count, dimension))
        self.vectors = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)

    def _embed(self, text: str) -> list[float]:
        return self.vectors[int(text[1:])].tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._embed(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        if text == "dimension check":
            return self.vectors[0].tolist()
        return self._embed(text)


class FakeClock:
    """A monotonic clock that only moves when told.

    For `Reranker(clock=...)` and `evaluate(clock=...)`.
    """

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class SlowCrossEncoder(BaseCrossEncoder):
    """Takes `seconds_per_pair` of a `FakeClock` per pair; records every call.

    Scores each text by `table` (default: its length), so orders are known.
    """

    def __init__(
        self,
        clock: FakeClock,
        seconds_per_pair: float,
        table: dict[str, float] | None = None,
    ) -> None:
        self.clock = clock
        self.seconds_per_pair = seconds_per_pair
        self.table = dict(table or {})
        self.calls: list[list[tuple[str, str]]] = []

    def _scores(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        self.calls.append(list(text_pairs))
        self.clock.advance(self.seconds_per_pair * len(text_pairs))
        return [self.table.get(text, float(len(text))) for _, text in text_pairs]

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        return self._scores(text_pairs)


class AsyncSlowCrossEncoder(SlowCrossEncoder):
    """`SlowCrossEncoder` that can be awaited (as `RemoteCrossEncoder` can)."""

    async def ascore(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        return self._scores(text_pairs)


class InstructedCrossEncoder:
    """Reads an instruction: scores a pair by the words the text shares with
    the query and the instruction together; records each call's instruction.

    Says so with `takes_instruction = True`, the opt-in of
    `engine.instructions`; `score_within`, `ascore` and `ascore_within` take
    it too, as `RemoteCrossEncoder`'s do.
    """

    takes_instruction = True

    def __init__(self) -> None:
        self.calls: list[tuple[str | None, list[tuple[str, str]]]] = []

    def score(
        self, text_pairs: list[tuple[str, str]], instruction: str | None = None
    ) -> list[float]:
        self.calls.append((instruction, list(text_pairs)))
        words = set((instruction or "").lower().split())
        return [
            float(len((words | set(query.lower().split())) & set(text.lower().split())))
            for query, text in text_pairs
        ]

    def score_within(
        self,
        text_pairs: list[tuple[str, str]],
        seconds: float,
        /,
        instruction: str | None = None,
    ) -> list[float | None]:
        return list(self.score(text_pairs, instruction=instruction))

    async def ascore(
        self, text_pairs: list[tuple[str, str]], instruction: str | None = None
    ) -> list[float]:
        return self.score(text_pairs, instruction=instruction)
