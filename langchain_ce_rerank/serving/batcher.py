"""Dynamic batching: concurrent rerank requests share one model call.

Requests are queued by the event loop; one scoring thread owns the model. It
takes the oldest request, adds every request already waiting (and those that
arrive within `max_wait_ms`) while the batch stays within `max_batch_pairs`,
and scores them all with `jobs.score_jobs` (one `Reranker.score_batch` call,
which feeds every pair to the model in one length-sorted stream; the Ray
replicas score through it too). The event loop never waits on the model, and
the model is never entered from two threads at once.

Overload is refused, not queued forever: past `max_queued_pairs` waiting pairs
a new request gets `QueueFullError` (the app's 503 with a `Retry-After` drawn
from the measured throughput), and a request whose caller went away before
its turn is dropped from the queue instead of scored for nobody.
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from langchain_ce_rerank.errors import InstructionNotSupportedError
from langchain_ce_rerank.serving.jobs import Outcome, ScoreJob, score_jobs

if TYPE_CHECKING:
    from langchain_ce_rerank.engine import Reranker
    from langchain_ce_rerank.serving.metrics import ServeMetrics

__all__ = [
    "BatcherClosedError",
    "DynamicBatcher",
    "ModelNotReadyError",
    "QueueFullError",
]

logger = logging.getLogger(__name__)


class BatcherClosedError(RuntimeError):
    """The batcher is shutting down and takes no new requests."""


class ModelNotReadyError(RuntimeError):
    """The model is still loading, or failed to load."""


class QueueFullError(RuntimeError):
    """Too many pairs are already waiting; the caller should retry later."""

    def __init__(self, queued: int, adding: int, limit: int, retry_after: int) -> None:
        """Say how full the queue is and when to come back.

        Args:
            queued: Pairs waiting now.
            adding: Pairs of the refused request.
            limit: The most pairs that may wait (`max_queued_pairs`).
            retry_after: Seconds until the queue has likely drained.
        """
        self.queued = queued
        self.limit = limit
        self.retry_after = retry_after
        super().__init__(
            f"the server is busy: {queued} pairs are waiting and this request's "
            f"{adding} would pass the limit of {limit} (--max-queued-pairs); "
            f"retry in about {retry_after} s"
        )


@dataclass
class _Job:
    work: ScoreJob
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[list[float]]
    enqueued: float = field(default_factory=time.perf_counter)


def _settle(future: asyncio.Future[list[float]], outcome: Outcome) -> None:
    if future.done():  # the client went away and its request was cancelled
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


class DynamicBatcher:
    """Coalesce concurrent requests into shared model calls on one thread.

    Example:
        ```python
        import asyncio

        from langchain_ce_rerank.engine import Reranker
        from langchain_ce_rerank.serving.batcher import DynamicBatcher


        class Length:
            def score(self, pairs):
                return [float(len(text)) for _, text in pairs]


        batcher = DynamicBatcher(Reranker(model=Length()), max_wait_ms=2)
        batcher.start()
        print(asyncio.run(batcher.score("query", ["a", "abc"])))
        batcher.close()
        ```
    """

    def __init__(
        self,
        engine: Reranker,
        *,
        max_wait_ms: float = 5.0,
        max_batch_pairs: int = 256,
        max_queued_pairs: int = 0,
        use_cache: bool = True,
        metrics: ServeMetrics | None = None,
        on_load_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        """Prepare the batcher; `start()` loads the model and begins scoring.

        Args:
            engine: The engine that scores; only the batcher's thread calls it.
            max_wait_ms: How long the oldest request may wait for others to
                join its batch. 0 takes only the requests already waiting.
            max_batch_pairs: Most pairs per model call; a request larger than
                this is scored alone. 0 scores one request per call (no
                batching, the benchmark's baseline).
            max_queued_pairs: Most pairs that may wait for the model; a request
                that would pass it gets `QueueFullError` (a request alone in
                the queue is always taken). 0 means no limit.
            use_cache: Let the engine answer repeated pairs from its cache.
            metrics: Where to record queue waits, model times and batch sizes.
            on_load_error: Called (on the scoring thread) if the model fails
                to load.
        """
        if min(max_wait_ms, max_batch_pairs, max_queued_pairs) < 0:
            msg = (
                f"max_wait_ms ({max_wait_ms}), max_batch_pairs "
                f"({max_batch_pairs}) and max_queued_pairs ({max_queued_pairs}) "
                "must be 0 or more"
            )
            raise ValueError(msg)
        self.engine = engine
        self.max_wait = max_wait_ms / 1000
        self.max_batch_pairs = max_batch_pairs
        self.max_queued_pairs = max_queued_pairs
        self.use_cache = use_cache
        self.metrics = metrics
        self.on_load_error = on_load_error
        self.ready = threading.Event()
        """Set once the model is loaded."""
        self.load_error: BaseException | None = None
        """Why the model failed to load, if it did."""
        self.instruction_parameter = "instruction="
        """How the engine's instruction is named when the model refuses it
        at start (`ce-rerank serve` says `--instruction`)."""
        self._queue: deque[_Job] = deque()
        self._queued_pairs = 0
        # Pairs a second of recent model calls (an average that forgets),
        # for the Retry-After of a refused request.
        self._throughput: float | None = None
        self._cond = threading.Condition()
        self._closing = False
        self._flushing = False
        self._thread = threading.Thread(
            target=self._run, name="ce-rerank-scorer", daemon=True
        )

    # -- the event loop's side ------------------------------------------------

    def start(self) -> None:
        """Start the scoring thread, which loads the model first."""
        self._thread.start()

    async def score(
        self,
        query: str,
        texts: Sequence[str],
        max_tokens: int | None = None,
        instruction: str | None = None,
    ) -> list[float]:
        """Scores of `texts` against `query`, in input order (plain floats).

        Args:
            query: The query.
            texts: The documents.
            max_tokens: Cut each document to this many tokens first.
            instruction: Score under this instruction; None: the engine's.

        Raises:
            BatcherClosedError: The batcher is shutting down.
            ModelNotReadyError: The model has not loaded (yet).
        """
        if not self.ready.is_set():
            raise ModelNotReadyError(self.status_message())
        if not texts:
            return []
        loop = asyncio.get_running_loop()
        work = ScoreJob(query, list(texts), max_tokens, instruction)
        job = _Job(work, loop, loop.create_future())
        with self._cond:
            if self._closing:
                msg = "the server is shutting down"
                raise BatcherClosedError(msg)
            limit = self.max_queued_pairs
            if limit and self._queue and self._queued_pairs + len(texts) > limit:
                raise QueueFullError(
                    self._queued_pairs, len(texts), limit, self._retry_after()
                )
            self._queue.append(job)
            self._queued_pairs += len(texts)
            self._cond.notify_all()
        try:
            return await job.future
        except asyncio.CancelledError:
            self._forget(job)
            raise

    def _forget(self, job: _Job) -> None:
        """Drop a request whose caller went away, if it has not reached the model."""
        with self._cond:
            try:
                self._queue.remove(job)
            except ValueError:  # already taken into a batch
                return
            self._queued_pairs -= len(job.work.texts)
        if self.metrics is not None:
            self.metrics.abandoned.inc()
        logger.debug("Dropped a queued request whose caller went away.")

    def _retry_after(self) -> int:
        """Seconds until the pairs now waiting are likely scored (1 to 60)."""
        if not self._throughput:
            return 1
        return max(1, min(60, math.ceil(self._queued_pairs / self._throughput)))

    def status_message(self) -> str:
        """Why scoring is not possible yet, or "ready"."""
        if self.load_error is not None:
            return f"the model failed to load: {self.load_error}"
        if not self.ready.is_set():
            return "the model is still loading; retry shortly (see GET /readyz)"
        return "ready"

    def queued(self) -> int:
        """Requests waiting for the scoring thread."""
        with self._cond:
            return len(self._queue)

    def queued_pairs(self) -> int:
        """(query, document) pairs waiting for the scoring thread."""
        with self._cond:
            return self._queued_pairs

    def wait_queued(self, count: int, timeout: float) -> bool:
        """Block until at least `count` requests wait (for tests); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._queue) >= count, timeout)

    def flush(self) -> None:
        """Stop waiting for requests to join a batch (no more are coming)."""
        with self._cond:
            self._flushing = True
            self._cond.notify_all()

    def close(self, timeout: float | None = None) -> None:
        """Score what is queued, then stop the thread; later `score` calls fail."""
        with self._cond:
            self._closing = self._flushing = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    # -- the scoring thread ---------------------------------------------------

    def _failed(self, err: BaseException) -> None:
        """Record why the model cannot serve, and say so."""
        self.load_error = err
        logger.error("The model failed to load: %s", err)
        if self.on_load_error is not None:
            self.on_load_error(err)

    def _run(self) -> None:
        try:
            self.engine.load_model()
            # A default instruction the model cannot read fails the start,
            # not every request.
            self.engine.instruction_for_call()
        except InstructionNotSupportedError as refused:
            self._failed(refused.with_parameter(self.instruction_parameter))
            return
        except Exception as err:
            self._failed(err)
            return
        if self.metrics is not None:
            self.metrics.ready.set(1)
        self.ready.set()
        logger.info("Model loaded; scoring requests.")
        while (batch := self._next_batch()) is not None:
            self._score(batch)

    def _next_batch(self) -> list[_Job] | None:
        with self._cond:
            while not self._queue and not self._closing:
                self._cond.wait()
            if not self._queue:
                return None
            batch = [self._take()]
            if self.max_batch_pairs == 0:
                return batch
            pairs = len(batch[0].work.texts)
            deadline = time.monotonic() + self.max_wait
            while pairs < self.max_batch_pairs:
                if self._queue:
                    size = len(self._queue[0].work.texts)
                    if pairs + size > self.max_batch_pairs:
                        break
                    batch.append(self._take())
                    pairs += size
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._flushing:
                    break
                self._cond.wait(remaining)
            return batch

    def _take(self) -> _Job:
        """The oldest waiting request (the caller holds `_cond`)."""
        job = self._queue.popleft()
        self._queued_pairs -= len(job.work.texts)
        return job

    def _score(self, batch: list[_Job]) -> None:
        started = time.perf_counter()
        outcomes = score_jobs(
            self.engine, [job.work for job in batch], use_cache=self.use_cache
        )
        elapsed = time.perf_counter() - started
        pairs = sum(len(job.work.texts) for job in batch)
        if elapsed > 0:
            rate = pairs / elapsed
            last = self._throughput
            self._throughput = rate if last is None else 0.8 * last + 0.2 * rate
        if self.metrics is not None:
            for job in batch:
                self.metrics.queue_wait.observe(started - job.enqueued)
            self.metrics.batch_scored(pairs, len(batch), elapsed)
        logger.debug(
            "Scored %d requests (%d pairs) in %.1f ms",
            len(batch),
            pairs,
            elapsed * 1000,
        )
        for job, outcome in zip(batch, outcomes, strict=True):
            try:
                job.loop.call_soon_threadsafe(_settle, job.future, outcome)
            except RuntimeError:  # the loop closed (the server stopped)
                logger.debug("Dropped the answer to a request whose loop closed.")
