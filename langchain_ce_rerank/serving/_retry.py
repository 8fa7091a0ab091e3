"""Errors, retry decisions and waits shared by the sync and async request paths."""

from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime

__all__ = [
    "RETRY_STATUSES",
    "DeadlinePassedError",
    "RemoteRerankError",
    "RemoteRerankTimeoutError",
    "backoff_delay",
    "retry_after_seconds",
]

RETRY_STATUSES = frozenset({429, 502, 503, 504})
"""Statuses that mean "busy or briefly away, ask again": retried with backoff."""


class DeadlinePassedError(Exception):
    """A request given up because the caller's overall deadline came first.

    Raised by a request of `RemoteCrossEncoder.score_within` (and its async
    twin), which catch it and leave that request's pairs unscored: it never
    reaches a caller.
    """


class RemoteRerankError(RuntimeError):
    """A reranking server refused, failed or answered something unusable.

    The message names the server, the request and the problem, quoting the
    server's own error message. No score is ever returned from a request that
    raised this.

    Attributes:
        status: The HTTP status of the last answer, or `None` when none came.
        body: The start of the last answer's body (at most 1,000 characters).
        url: The endpoint that was called.

    Example:
        ```python
        import httpx
        from langchain_ce_rerank.serving import RemoteCrossEncoder, RemoteRerankError

        refuse = httpx.MockTransport(
            lambda request: httpx.Response(413, json={"error": "batch too large"})
        )
        reranker = RemoteCrossEncoder("http://tei:8080", "tei", transport=refuse)
        try:
            reranker.score([("q", "a text")])
        except RemoteRerankError as err:
            print(err.status, err)
        ```
    """

    def __init__(
        self, message: str, *, status: int | None = None, body: str = "", url: str = ""
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = body[:1000]
        self.url = url


class RemoteRerankTimeoutError(RemoteRerankError, TimeoutError):
    """The server did not send its whole answer within `timeout` seconds.

    `timeout` bounds each request from connecting to the last byte of the
    answer; a request that runs past it is stopped and never retried.

    Also a `TimeoutError`, so `except TimeoutError` catches it.

    Example:
        ```python
        import httpx
        from langchain_ce_rerank.serving import (
            RemoteCrossEncoder,
            RemoteRerankTimeoutError,
        )


        def slow(request: httpx.Request) -> httpx.Response:
            raise httpx.ReadTimeout("timed out", request=request)


        reranker = RemoteCrossEncoder(
            "http://tei:8080", "tei", transport=httpx.MockTransport(slow)
        )
        try:
            reranker.score([("q", "a text")])
        except RemoteRerankTimeoutError as err:
            print(err)
        ```
    """


def retry_after_seconds(value: str | None) -> float | None:
    """Seconds to wait from a `Retry-After` header (seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def backoff_delay(
    attempt: int, backoff: float, max_backoff: float, retry_after: float | None
) -> float:
    """Wait before retry number `attempt + 1`.

    A server's `Retry-After` is honoured as given; otherwise the wait doubles
    each retry from `backoff`, with "equal jitter" (half fixed, half random) so
    clients that failed together do not return together. Capped at `max_backoff`.
    """
    if retry_after is not None:
        return min(retry_after, max_backoff)
    base = backoff * 2.0**attempt
    return min(base / 2 + random.uniform(0, base / 2), max_backoff)
