"""The HTTP request contract both server doors keep: one set of rules, once.

`ce-rerank serve` (FastAPI, `app.py`) and the Ray Serve ingress
(`ray_serve/ingress.py`) answer `POST /v2/rerank` through `answer_rerank`, so
the API key, the body's size, JSON, Cohere's v2 schema, the model name, the
per-request limits, the error bodies and the status codes are the same on
both: 400 (not JSON, not UTF-8, a bad Content-Length), 401 (missing or wrong
key, compared in constant time), 404 (another model's name, or no such
route), 413 (over a limit, with `limit` and `value`), 422 (schema, text the
model cannot read, or an `instruction` for a model that reads none), 499
(the client left before its answer), 500 (the model failed) and 503 with
`Retry-After` (loading, draining or overloaded). Each door says how its
operator spells a setting (`--max-documents` on the command line,
`args.max_documents` in a Serve config), so every message names the knob in
the words of the door the operator used.

Only starlette is imported, which both `[serve]` (FastAPI) and `[ray]`
(Ray Serve) install.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from langchain_ce_rerank.engine import check_text
from langchain_ce_rerank.errors import InstructionNotSupportedError
from langchain_ce_rerank.serving.schemas import (
    ErrorBody,
    FieldError,
    RerankRequest,
    ranked_response,
)

if TYPE_CHECKING:
    from langchain_ce_rerank.engine import Reranker

__all__ = [
    "CLI_FLAGS",
    "ROUTES",
    "SERVE_CONFIG_ARGS",
    "RequestContract",
    "RequestLimits",
    "RequestMetrics",
    "ServiceUnavailableError",
    "answer_rerank",
    "error_response",
    "no_route",
]

logger = logging.getLogger(__name__)

CLI_FLAGS: Mapping[str, str] = {
    "calibration": "start it with --calibration FILE",
    "instruction": "--instruction",
    "api_key": "--api-key or CE_RERANK_API_KEY",
    "max_documents": "--max-documents",
    "max_document_chars": "--max-document-chars",
    "max_body_bytes": "--max-body-bytes",
}
"""How `ce-rerank serve`'s operator spells each limit: its command-line flag."""

SERVE_CONFIG_ARGS: Mapping[str, str] = {
    "calibration": "this Ray Serve application was built without one",
    "instruction": "args.instruction in the Serve config",
    "api_key": "args.api_key in the Serve config, or CE_RERANK_API_KEY",
    "max_documents": "args.max_documents in the Serve config",
    "max_document_chars": "args.max_document_chars in the Serve config",
    "max_body_bytes": "args.max_body_bytes in the Serve config",
}
"""How a Ray Serve operator spells each limit: the `args:` of the Serve config."""


class RequestLimits(BaseModel):
    """What a rerank request must stay within, on every HTTP door.

    Example:
        ```python
        from langchain_ce_rerank.serving.contract import RequestLimits

        limits = RequestLimits(max_documents=200)
        print(limits.max_documents, limits.max_body_bytes)
        ```
    """

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr | None = None
    """Required as `Authorization: Bearer <key>` on `/v2/rerank` and
    `/metrics` when set; None leaves them open."""

    max_documents: int = Field(default=1000, ge=1)
    """Most documents per request (Cohere recommends at most 1,000); more is 413."""

    max_document_chars: int = Field(default=100_000, ge=1)
    """Most characters per document; a longer one is 413."""

    max_body_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    """Most bytes per request body, by Content-Length and as streamed; more is 413."""


class ServiceUnavailableError(Exception):
    """The door cannot score now: answered 503 with `Retry-After`.

    A door raises it (from its availability check or its scoring call) when
    the model is loading, the server drains, or its queue is full; `limit`
    and `value` say which queue limit was hit, when one was.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: int = 1,
        limit: int | None = None,
        value: int | None = None,
        close: bool = False,
    ) -> None:
        """Say why and when to come back.

        Args:
            message: What is wrong, and what the client or operator can do.
            retry_after: Seconds until a retry may succeed (at least 1).
            limit: The queue limit that was hit, if any.
            value: How full the queue was, if a limit was hit.
            close: Ask the client to close its connection (the server stops).
        """
        super().__init__(message)
        self.retry_after = max(1, retry_after)
        self.limit = limit
        self.value = value
        self.close = close

    def response(self) -> Response:
        """The 503 this error is answered with."""
        headers = {"Retry-After": str(self.retry_after)}
        if self.close:
            headers["Connection"] = "close"
        return error_response(
            503, str(self), limit=self.limit, value=self.value, headers=headers
        )


class RequestMetrics(Protocol):
    """Where a door records its requests (Prometheus, or Ray Serve's metrics)."""

    def request_started(self) -> None:
        """A rerank request arrived."""

    def request_finished(self, status: int, seconds: float) -> None:
        """A rerank request was answered with `status` after `seconds`."""


def error_response(
    status: int,
    message: str,
    *,
    errors: list[FieldError] | None = None,
    limit: int | None = None,
    value: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A JSON error in Cohere's shape: `{"message", "errors"?, "limit"?, "value"?}`."""
    body = ErrorBody(message=message, errors=errors, limit=limit, value=value)
    return JSONResponse(body.model_dump(exclude_none=True), status, headers=headers)


ROUTES: Mapping[str, str] = {
    "/v2/rerank": "POST",
    "/healthz": "GET",
    "/readyz": "GET",
    "/metrics": "GET",
}
"""Each door's paths and their method (Ray Serve exports `/metrics` through
Ray's own endpoint instead, and answers it 404)."""


def no_route(method: str, path: str) -> Response:
    """404 for an unknown path, 405 (with `Allow`) for a known one's wrong method."""
    allowed = ROUTES.get(path.rstrip("/") or "/")
    if allowed is not None and allowed != method:
        return error_response(
            405,
            f"{path} takes {allowed}, not {method}",
            headers={"Allow": allowed},
        )
    return error_response(404, f"no route {method} {path}; use POST /v2/rerank")


def _field_name(loc: tuple[int | str, ...]) -> str:
    name = ""
    for part in loc:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else part)
    return name or "body"


def _validation_error(err: ValidationError) -> Response:
    errors = [
        FieldError(
            field=_field_name(tuple(e["loc"])),
            message=str(e["msg"]).removeprefix("Value error, "),
        )
        for e in err.errors()
    ]
    shown = "; ".join(f"{e.field}: {e.message}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return error_response(422, f"invalid request: {shown}{more}", errors=errors)


@dataclass(frozen=True)
class RequestContract:
    """The request rules of one HTTP door: its limits, in its operator's words.

    Example:
        ```python
        from langchain_ce_rerank.serving.contract import (
            SERVE_CONFIG_ARGS,
            RequestContract,
            RequestLimits,
        )

        contract = RequestContract(
            RequestLimits(max_documents=2), "my-reranker", SERVE_CONFIG_ARGS
        )
        refused = contract.parse(b'{"query": "q", "documents": ["a", "b", "c"]}')
        print(refused.status_code, refused.body.decode())
        ```
    """

    limits: RequestLimits
    """The limits and the API key."""

    model_name: str
    """The name clients may send as `model`; any other name gets a 404."""

    names: Mapping[str, str] = field(default_factory=lambda: CLI_FLAGS)
    """How the operator spells each setting of `limits`, for the messages."""

    def unauthorized(self, request: Request) -> Response | None:
        """401 unless the request carries the server's key (None: let it in)."""
        key = self.limits.api_key
        if key is None:
            return None
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        # Constant time, so the answer's timing says nothing about the key.
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), key.get_secret_value().encode()
        ):
            return None
        return error_response(
            401,
            "missing or wrong API key; send the header 'Authorization: Bearer "
            f"<key>' with the key the server was started with "
            f"({self.names['api_key']})",
            headers={"WWW-Authenticate": 'Bearer realm="ce-rerank"'},
        )

    async def read_body(self, request: Request) -> bytes | Response:
        """The body, or 400/413 if its length is bad or over `max_body_bytes`."""
        limit = self.limits.max_body_bytes
        name = self.names["max_body_bytes"]
        declared = request.headers.get("content-length")
        if declared is not None:
            if not declared.strip().isdigit():
                return error_response(
                    400, f"Content-Length {declared!r} is not a byte count"
                )
            if int(declared) > limit:
                return error_response(
                    413,
                    f"request body of {int(declared)} bytes exceeds the limit of "
                    f"{limit} bytes ({name}); send fewer or shorter documents",
                    limit=limit,
                    value=int(declared),
                )
        chunks = []
        received = 0
        async for chunk in request.stream():
            received += len(chunk)
            if received > limit:
                return error_response(
                    413,
                    f"request body exceeds the limit of {limit} bytes ({name}; "
                    f"{received} bytes received so far); send fewer or shorter "
                    "documents",
                    limit=limit,
                    value=received,
                )
            chunks.append(chunk)
        return b"".join(chunks)

    def parse(self, raw: bytes) -> RerankRequest | Response:
        """The validated request, or the 400/404/413/422 that says what is wrong."""
        try:
            payload = json.loads(raw)
        except UnicodeDecodeError as err:
            return error_response(400, f"the request body is not UTF-8 text: {err}")
        except json.JSONDecodeError as err:
            return error_response(
                400,
                f"the request body is not valid JSON: {err.msg} at line "
                f"{err.lineno} column {err.colno}; send a JSON object such as "
                '{"query": "...", "documents": ["..."]}',
            )
        try:
            body = RerankRequest.model_validate(payload)
        except ValidationError as err:
            return _validation_error(err)
        return self._model_refused(body) or self._over_limits(body) or body

    def _model_refused(self, body: RerankRequest) -> Response | None:
        served = self.model_name
        if body.model is None or body.model == served:
            return None
        return error_response(
            404,
            f"model {body.model!r} is not served here; this server serves "
            f"{served!r} (send that name, or leave model out)",
        )

    def _over_limits(self, body: RerankRequest) -> Response | None:
        limits = self.limits
        if len(body.documents) > limits.max_documents:
            return error_response(
                413,
                f"documents has {len(body.documents)} items, over the limit of "
                f"{limits.max_documents} per request ({self.names['max_documents']})"
                "; split them over several requests",
                limit=limits.max_documents,
                value=len(body.documents),
            )
        for i, text in enumerate(body.documents):
            if len(text) > limits.max_document_chars:
                return error_response(
                    413,
                    f"documents[{i}] has {len(text)} characters, over the limit "
                    f"of {limits.max_document_chars} "
                    f"({self.names['max_document_chars']}); send a shorter passage",
                    limit=limits.max_document_chars,
                    value=len(text),
                )
        try:
            check_text(body.query, "query")
            for i, text in enumerate(body.documents):
                check_text(text, f"documents[{i}]")
        except ValueError as err:
            field_name = str(err).split(" ", 1)[0]
            return error_response(
                422,
                f"invalid request: {err}",
                errors=[FieldError(field=field_name, message=str(err))],
            )
        return None


Scorer = Callable[[RerankRequest], Awaitable["list[float] | None"]]
"""A door's scoring call: the request's scores in input order, or None when
the client left before they were ready."""


async def _answer(
    contract: RequestContract,
    request: Request,
    score: Scorer,
    ranker: Reranker,
    available: Callable[[], None],
) -> Response:
    refused = contract.unauthorized(request)
    if refused is not None:
        return refused
    available()
    raw = await contract.read_body(request)
    if not isinstance(raw, bytes):
        return raw
    body = contract.parse(raw)
    if not isinstance(body, RerankRequest):
        return body
    if body.min_probability is not None and ranker.calibration is None:
        message = (
            "min_probability needs a server with a calibration of its model's "
            f"scores; this one has none ({contract.names.get('calibration', '')})"
        )
        return error_response(
            422,
            f"invalid request: {message}",
            errors=[FieldError(field="min_probability", message=message)],
        )
    refused = _calibration_refuses(body, ranker)
    if refused is not None:
        return refused
    try:
        scores = await score(body)
    except ServiceUnavailableError:
        raise
    except InstructionNotSupportedError as err:  # checked where the model is
        message = str(err.with_parameter("the request's instruction field"))
        return error_response(
            422,
            f"invalid request: {message}",
            errors=[FieldError(field="instruction", message=message)],
        )
    except Exception as err:  # the model failed on this request's pairs
        logger.exception("Scoring a request failed")
        return error_response(500, f"scoring failed: {type(err).__name__}: {err}")
    if scores is None:
        # Nobody reads this answer; 499 (nginx's "client closed request")
        # keeps such requests apart in the metrics.
        return error_response(499, "the client closed the connection before its answer")
    if not all(math.isfinite(score) for score in scores):
        return error_response(
            500, "the model returned a non-finite score (NaN or infinity)"
        )
    served = contract.model_name
    answer = ranked_response(ranker, scores, body, served)
    # Cohere's exact shape unless a calibration adds relevance_probability.
    return JSONResponse(answer.model_dump(exclude_none=True))


def _calibration_refuses(body: RerankRequest, ranker: Reranker) -> Response | None:
    """422 for an instruction the server's calibration was not fitted under.

    Its `relevance_probability` maps the scores of one instruction; under
    another the answer would carry probabilities that do not hold.
    """
    calibration = ranker.calibration
    if calibration is None or body.instruction is None:
        return None
    fitted = calibration.fitted_for.instruction
    if body.instruction == fitted:
        return None
    message = (
        f"this server's calibration was fitted on scores under the instruction "
        f"{fitted!r}, so its relevance_probability would not hold under "
        f"{body.instruction!r}; leave instruction out, or send {fitted!r}"
        if fitted is not None
        else "this server's calibration was fitted on scores without an "
        "instruction, so its relevance_probability would not hold under one; "
        "leave instruction out"
    )
    return error_response(
        422,
        f"invalid request: {message}",
        errors=[FieldError(field="instruction", message=message)],
    )


def _always_available() -> None:
    return None


async def answer_rerank(
    contract: RequestContract,
    request: Request,
    score: Scorer,
    ranker: Reranker,
    *,
    metrics: RequestMetrics | None = None,
    available: Callable[[], None] = _always_available,
) -> Response:
    """Answer one `POST /v2/rerank` by the contract, whichever door it came in.

    The key is checked first, then the door's availability, then the body's
    size, JSON, schema, model name and limits; only a request that passes
    them all reaches `score`. Every outcome is recorded in `metrics`.

    Args:
        contract: The door's limits and how its operator spells them.
        request: The HTTP request.
        score: The door's scoring call (its batcher, or its replicas).
        ranker: The engine whose ordering rules apply (its model is not used).
        metrics: Where the door counts requests by status and times them.
        available: Raises `ServiceUnavailableError` while the door cannot
            score (the model loads, the server drains).

    Returns:
        The Cohere v2 response, or the error that says what was wrong.
    """
    started = time.perf_counter()
    if metrics is not None:
        metrics.request_started()
    # A request cancelled on the way (its client left) is counted as 499.
    status = 499
    try:
        try:
            response = await _answer(contract, request, score, ranker, available)
        except ServiceUnavailableError as err:
            response = err.response()
        except Exception:
            logger.exception("Unexpected error while reranking")
            response = error_response(
                500, "internal error while reranking; see the server log"
            )
        status = response.status_code
        return response
    finally:
        if metrics is not None:
            metrics.request_finished(status, time.perf_counter() - started)
