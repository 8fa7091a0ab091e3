"""Requests to a reranking server: planned, sent with retries, scores put back.

`Exchange` holds everything one request needs (where it goes, how to retry)
and sends it over a sync or an async `httpx` client, each attempt within one
`timeout` deadline (`_deadline.py`); both paths share the decisions of
`_handle` and `_transport_failure`, so they behave alike. A request may also
be given an overall deadline (`score_within`): then no attempt runs past it,
no retry waits past it, and the request raises `DeadlinePassedError` instead.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from langchain_ce_rerank.serving._deadline import Answer, apost_within, post_within
from langchain_ce_rerank.serving._retry import (
    RETRY_STATUSES,
    DeadlinePassedError,
    RemoteRerankError,
    RemoteRerankTimeoutError,
    backoff_delay,
    retry_after_seconds,
)
from langchain_ce_rerank.serving.remote_apis import ApiSpec, error_message, read_scores

if TYPE_CHECKING:
    import httpx

__all__ = ["Exchange", "Request", "assemble", "by_rank", "plan_requests"]

logger = logging.getLogger("langchain_ce_rerank.serving.client")


@dataclass(frozen=True)
class Request:
    """One HTTP request: a query and a slice of its texts."""

    query: str
    positions: list[int]
    """Where each text's score goes in the caller's list."""
    texts: list[str]


def plan_requests(
    text_pairs: Sequence[tuple[str, str]], limit: int | None
) -> list[Request]:
    """One request per query (in order of first appearance), split by `limit`."""
    groups: dict[str, tuple[list[int], list[str]]] = {}
    for position, pair in enumerate(text_pairs):
        if (
            not isinstance(pair, tuple | list)
            or len(pair) != 2
            or not all(isinstance(part, str) for part in pair)
        ):
            msg = (
                "RemoteCrossEncoder.score takes (query, text) pairs of strings; "
                f"pair {position} is {pair!r}"
            )
            raise TypeError(msg)
        positions, texts = groups.setdefault(pair[0], ([], []))
        positions.append(position)
        texts.append(pair[1])
    requests = []
    for query, (positions, texts) in groups.items():
        step = limit or len(texts)
        for start in range(0, len(texts), step):
            stop = start + step
            requests.append(Request(query, positions[start:stop], texts[start:stop]))
    return requests


def by_rank(requests: list[Request]) -> list[Request]:
    """`requests` reordered rank by rank across queries.

    Every query's first request, then every query's second, and so on (query
    order kept within a rank), so that under a deadline each query's first
    texts are sent first.
    """
    seen: Counter[str] = Counter()
    keyed = []
    for number, request in enumerate(requests):
        keyed.append((seen[request.query], number, request))
        seen[request.query] += 1
    return [request for _, _, request in sorted(keyed, key=lambda k: k[:2])]


def assemble(
    n_pairs: int, requests: list[Request], results: list[list[float]]
) -> list[float]:
    """The requests' scores placed back at their pairs' positions."""
    scores = [0.0] * n_pairs
    for request, request_scores in zip(requests, results, strict=True):
        for position, score in zip(request.positions, request_scores, strict=True):
            scores[position] = score
    return scores


_HINTS = {
    401: "; check api_key (or the RERANK_API_KEY environment variable)",
    403: "; check api_key (or the RERANK_API_KEY environment variable)",
    404: "; check the URL and api=",
    413: "; send fewer documents per request: lower max_batch_size "
    "(TEI's limit is its --max-client-batch-size, 32 by default)",
}


@dataclass(frozen=True)
class Exchange:
    """How to send requests to one server and read its answers."""

    spec: ApiSpec
    endpoint: str
    model: str | None
    raw_scores: bool
    timeout: float
    max_retries: int
    backoff: float
    max_backoff: float
    instruction: str | None = None
    """Sent with every request (only where the API has a field for it)."""

    @property
    def where(self) -> str:
        """The server, as error messages name it."""
        return f"{self.spec.name} server at {self.endpoint}"

    def _error(self, message: str, answer: Answer | None = None) -> RemoteRerankError:
        if answer is None:
            return RemoteRerankError(message, url=self.endpoint)
        return RemoteRerankError(
            message, status=answer.status, body=answer.text, url=self.endpoint
        )

    def _handle(
        self,
        answer: Answer,
        request: Request,
        label: str,
        attempt: int,
        deadline: float | None = None,
    ) -> list[float] | float:
        """Scores, or the seconds to wait before retrying; raises otherwise."""
        status, text = answer.status, answer.text
        if status in RETRY_STATUSES:
            problem = f"HTTP {status}: {error_message(text)}"
            retry_after = retry_after_seconds(answer.retry_after)
            return self._retry_or_raise(
                attempt, label, problem, retry_after, answer, deadline
            )
        if not 200 <= status < 300:
            hint = _HINTS.get(status, "")
            if status == 404:
                hint += repr(self.spec.name)
            msg = (
                f"{self.where} rejected {label} with HTTP {status}: "
                f"{error_message(text)}{hint}"
            )
            raise self._error(msg, answer)
        try:
            payload = json.loads(text)
        except ValueError:
            msg = (
                f"{self.where} answered {label} with malformed JSON: "
                f"{error_message(text, limit=120)!r}; no scores were attached"
            )
            raise self._error(msg, answer) from None
        try:
            return read_scores(self.spec, payload, len(request.texts))
        except ValueError as exc:
            msg = f"{self.where} answered {label} unusably: {exc}; no scores attached"
            raise self._error(msg, answer) from None

    def _retry_or_raise(
        self,
        attempt: int,
        label: str,
        problem: str,
        retry_after: float | None,
        answer: Answer | None,
        deadline: float | None = None,
    ) -> float:
        if attempt >= self.max_retries:
            msg = (
                f"{self.where} failed {label} {attempt + 1} times, last with "
                f"{problem}; gave up after max_retries={self.max_retries}"
            )
            raise self._error(msg, answer)
        delay = backoff_delay(attempt, self.backoff, self.max_backoff, retry_after)
        if deadline is not None and time.monotonic() + delay >= deadline:
            logger.info(
                "%s: %s failed with %s; not retried: the deadline comes first",
                self.where,
                label,
                problem,
            )
            raise DeadlinePassedError(label)
        logger.warning(
            "%s: %s failed with %s; retry %d of %d in %.2f s%s",
            self.where,
            label,
            problem,
            attempt + 1,
            self.max_retries,
            delay,
            " (Retry-After)" if retry_after is not None else "",
        )
        return delay

    def _transport_failure(
        self,
        exc: httpx.TransportError,
        attempt: int,
        label: str,
        capped: bool = False,
        deadline: float | None = None,
    ) -> float:
        """Seconds to wait before retrying a failed connection; raises otherwise.

        `capped`: the attempt's time was cut to the overall deadline, so its
        timeout is the deadline passing (`DeadlinePassedError`), not the server's.
        """
        import httpx

        if capped and isinstance(exc, httpx.TimeoutException):
            raise DeadlinePassedError(label) from exc
        if isinstance(exc, httpx.TimeoutException) and not isinstance(
            exc, httpx.ConnectTimeout
        ):
            msg = (
                f"{self.where} did not answer {label} within timeout="
                f"{self.timeout} s (connecting, sending and reading the whole "
                "answer); pass a larger timeout=, e.g. RemoteCrossEncoder(..., "
                f"timeout={2 * self.timeout:g}), or lower max_batch_size"
            )
            raise RemoteRerankTimeoutError(msg, url=self.endpoint) from exc
        retryable = (
            httpx.NetworkError,
            httpx.RemoteProtocolError,
            httpx.ConnectTimeout,
        )
        problem = f"{type(exc).__name__}: {exc or 'connection failed'}"
        if not isinstance(exc, retryable):
            msg = f"{self.where} could not be reached for {label}: {problem}"
            raise self._error(msg) from exc
        try:
            return self._retry_or_raise(attempt, label, problem, None, None, deadline)
        except RemoteRerankError as final:
            raise final from exc

    def _start(
        self, request: Request, number: int, total: int
    ) -> tuple[str, dict[str, object]]:
        n = len(request.texts)
        label = f"request {number} of {total} ({n} document{'s' if n != 1 else ''})"
        body = self.spec.build_body(
            request.query, request.texts, self.model, self.raw_scores, self.instruction
        )
        return label, body

    def _attempt_timeout(
        self, deadline: float | None, label: str
    ) -> tuple[float, bool]:
        """The next attempt's timeout, and whether the deadline cut it."""
        if deadline is None:
            return self.timeout, False
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlinePassedError(label)
        return (left, True) if left < self.timeout else (self.timeout, False)

    def send(
        self,
        client: httpx.Client,
        request: Request,
        number: int,
        total: int,
        deadline: float | None = None,
    ) -> list[float]:
        """Post one request, retrying as configured; its scores in text order.

        Raises:
            DeadlinePassedError: `deadline` (a `time.monotonic()` time) came first.
        """
        import httpx

        label, body = self._start(request, number, total)
        attempt = 0
        while True:
            timeout, capped = self._attempt_timeout(deadline, label)
            try:
                answer = post_within(client, self.endpoint, body, timeout)
            except httpx.TransportError as exc:
                outcome: list[float] | float = self._transport_failure(
                    exc, attempt, label, capped, deadline
                )
            else:
                outcome = self._handle(answer, request, label, attempt, deadline)
            if isinstance(outcome, list):
                return outcome
            time.sleep(outcome)
            attempt += 1

    async def asend(
        self,
        client: httpx.AsyncClient,
        request: Request,
        number: int,
        total: int,
        deadline: float | None = None,
    ) -> list[float]:
        """Async `send`."""
        import httpx

        label, body = self._start(request, number, total)
        attempt = 0
        while True:
            timeout, capped = self._attempt_timeout(deadline, label)
            try:
                answer = await apost_within(client, self.endpoint, body, timeout)
            except httpx.TransportError as exc:
                outcome: list[float] | float = self._transport_failure(
                    exc, attempt, label, capped, deadline
                )
            else:
                outcome = self._handle(answer, request, label, attempt, deadline)
            if isinstance(outcome, list):
                return outcome
            await asyncio.sleep(outcome)
            attempt += 1
