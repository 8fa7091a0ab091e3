"""One HTTP attempt, connect to last byte, bounded by one overall deadline.

httpx's timeouts bound each network operation (a connect, a write, a read),
not a request: a server that sends its answer one byte at a time never lets a
read time out, so it could hold a caller for as long as it likes. Here the
whole attempt (connecting, sending, the status line, the headers and the body)
must finish within `timeout` seconds, or it fails with an `httpx` timeout:

- async: the attempt runs under `asyncio.wait_for`, which cancels it (and
  closes its connection) at the deadline;
- sync: a blocked socket read cannot be interrupted from outside, so the
  attempt runs on a helper thread and the caller waits for it until the
  deadline, no longer. The helper streams the body, stops at the first chunk
  after the deadline and closes the connection; its httpx timeouts are the
  time left when it starts, so it ends at most one read after the caller has
  been told.

A deadline that passes while the connection is still being made fails as
`httpx.ConnectTimeout` (the server may be briefly unreachable: the caller
retries it, as a refused connection); any later one as `httpx.ReadTimeout`.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = ["Answer", "apost_within", "post_within"]


@dataclass(frozen=True)
class Answer:
    """A server's whole answer to one attempt."""

    status: int
    text: str
    retry_after: str | None
    """The `Retry-After` header, as sent."""


class _Progress:
    """How far an attempt got, from httpcore's `trace` extension."""

    def __init__(self) -> None:
        self.event = ""

    def trace(self, event: str, info: dict[str, Any]) -> None:
        self.event = event

    async def atrace(self, event: str, info: dict[str, Any]) -> None:
        self.event = event

    def overdue(self, timeout: float) -> httpx.TimeoutException:
        """The httpx error for an attempt stopped at its deadline."""
        import httpx

        # "connection.connect_tcp.started", "connection.start_tls.started", ...:
        # nothing was sent yet. (A reused pooled connection reports none.)
        if self.event.startswith("connection."):
            return httpx.ConnectTimeout(f"not connected within {timeout} s")
        return httpx.ReadTimeout(f"no whole answer within {timeout} s")


def post_within(client: httpx.Client, url: str, body: object, timeout: float) -> Answer:
    """POST `body` as JSON and read the whole answer within `timeout` seconds.

    Raises:
        httpx.TransportError: The attempt failed, or ran past its deadline
            (`httpx.ConnectTimeout` or `httpx.ReadTimeout`).
    """
    deadline = time.monotonic() + timeout
    progress = _Progress()
    future: Future[Answer] = Future()
    context = contextvars.copy_context()

    def attempt() -> None:
        try:
            answer = context.run(_read, client, url, body, timeout, deadline, progress)
        except BaseException as exc:  # handed to the caller
            future.set_exception(exc)
        else:
            future.set_result(answer)

    threading.Thread(target=attempt, name="rerank-http-attempt", daemon=True).start()
    try:
        return future.result(timeout=max(0.0, deadline - time.monotonic()))
    except FutureTimeout:
        raise progress.overdue(timeout) from None


def _read(
    client: httpx.Client,
    url: str,
    body: object,
    timeout: float,
    deadline: float,
    progress: _Progress,
) -> Answer:
    import httpx

    left = max(deadline - time.monotonic(), 0.001)
    with client.stream(
        "POST",
        url,
        json=body,
        timeout=httpx.Timeout(left),
        extensions={"trace": progress.trace},
    ) as response:
        chunks = []
        for chunk in response.iter_bytes():
            if time.monotonic() > deadline:
                raise progress.overdue(timeout)
            chunks.append(chunk)
        text = b"".join(chunks).decode(response.encoding or "utf-8", "replace")
        return Answer(response.status_code, text, response.headers.get("retry-after"))


async def apost_within(
    client: httpx.AsyncClient, url: str, body: object, timeout: float
) -> Answer:
    """Async `post_within`: the attempt is cancelled at its deadline."""
    progress = _Progress()
    try:
        response = await asyncio.wait_for(
            client.post(url, json=body, extensions={"trace": progress.atrace}),
            timeout,
        )
    except asyncio.TimeoutError:
        raise progress.overdue(timeout) from None
    return Answer(
        response.status_code, response.text, response.headers.get("retry-after")
    )
