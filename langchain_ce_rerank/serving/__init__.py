"""Doors to reranking over HTTP: a client, and a server of our own.

`RemoteCrossEncoder` reranks on the servers teams already run; `create_app`
is this package's own server (`ce-rerank serve`).

Nothing heavy is imported here; `httpx` loads when a client is made, FastAPI
when `create_app` or `ServeSettings` is first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from langchain_ce_rerank.serving.client import (
    RemoteCrossEncoder,
    RemoteRerankError,
    RemoteRerankTimeoutError,
)

if TYPE_CHECKING:
    from langchain_ce_rerank.serving.app import ServeSettings, create_app

__all__ = [
    "RemoteCrossEncoder",
    "RemoteRerankError",
    "RemoteRerankTimeoutError",
    "ServeSettings",
    "create_app",
]


def __getattr__(name: str) -> Any:
    if name in ("ServeSettings", "create_app"):
        from langchain_ce_rerank.serving import app

        return getattr(app, name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
