"""What a rerank request must pass before it reaches the model.

The API key, the body's size, JSON, Cohere's v2 schema, the model name, the
per-request limits and text the tokenizer can encode. Each check returns the
JSON error response (`error_response`) that names the limit, field or flag
at fault, or lets the request through.
"""

from __future__ import annotations

import hmac
import json
from typing import TYPE_CHECKING

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from langchain_ce_rerank.engine import check_text
from langchain_ce_rerank.serving.schemas import ErrorBody, FieldError, RerankRequest

if TYPE_CHECKING:
    from langchain_ce_rerank.serving.app import ServeSettings

__all__ = ["error_response", "parse_request", "read_body", "unauthorized"]


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


def unauthorized(settings: ServeSettings, request: Request) -> Response | None:
    """401 unless the request carries the server's key (None: let it in)."""
    key = settings.api_key
    if key is None:
        return None
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = key.get_secret_value().encode()
    if scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), expected
    ):
        return None
    return error_response(
        401,
        "missing or wrong API key; send the header 'Authorization: Bearer <key>' "
        "with the key the server was started with (--api-key or CE_RERANK_API_KEY)",
        headers={"WWW-Authenticate": 'Bearer realm="ce-rerank"'},
    )


async def read_body(settings: ServeSettings, request: Request) -> bytes | Response:
    """The body, or 400/413 if its length is bad or over `max_body_bytes`."""
    limit = settings.max_body_bytes
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
                f"{limit} bytes (--max-body-bytes); send fewer or shorter documents",
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
                f"request body exceeds the limit of {limit} bytes "
                f"(--max-body-bytes; {received} bytes received so far); send "
                "fewer or shorter documents",
                limit=limit,
                value=received,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def parse_request(settings: ServeSettings, raw: bytes) -> RerankRequest | Response:
    """The validated request, or the 400/404/413/422 that says what is wrong."""
    try:
        payload = json.loads(raw)
    except UnicodeDecodeError as err:
        return error_response(400, f"the request body is not UTF-8 text: {err}")
    except json.JSONDecodeError as err:
        return error_response(
            400,
            f"the request body is not valid JSON: {err.msg} at line {err.lineno} "
            f"column {err.colno}; send a JSON object such as "
            '{"query": "...", "documents": ["..."]}',
        )
    try:
        body = RerankRequest.model_validate(payload)
    except ValidationError as err:
        return _validation_error(err)
    if body.model is not None and body.model != settings.model_name:
        return error_response(
            404,
            f"model {body.model!r} is not served here; this server serves "
            f"{settings.model_name!r} (send that name, or leave model out)",
        )
    if len(body.documents) > settings.max_documents:
        return error_response(
            413,
            f"documents has {len(body.documents)} items, over the limit of "
            f"{settings.max_documents} per request (--max-documents); split "
            "them over several requests",
            limit=settings.max_documents,
            value=len(body.documents),
        )
    for i, text in enumerate(body.documents):
        if len(text) > settings.max_document_chars:
            return error_response(
                413,
                f"documents[{i}] has {len(text)} characters, over the limit of "
                f"{settings.max_document_chars} (--max-document-chars); send a "
                "shorter passage",
                limit=settings.max_document_chars,
                value=len(text),
            )
    try:
        check_text(body.query, "query")
        for i, text in enumerate(body.documents):
            check_text(text, f"documents[{i}]")
    except ValueError as err:
        field = str(err).split(" ", 1)[0]
        return error_response(
            422,
            f"invalid request: {err}",
            errors=[FieldError(field=field, message=str(err))],
        )
    return body
