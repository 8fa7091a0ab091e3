"""Doors to reranking over HTTP: a client for the servers teams already run.

Nothing heavy is imported here; `httpx` loads when a client is made.
"""

from __future__ import annotations

from langchain_ce_rerank.serving.client import (
    RemoteCrossEncoder,
    RemoteRerankError,
    RemoteRerankTimeoutError,
)

__all__ = ["RemoteCrossEncoder", "RemoteRerankError", "RemoteRerankTimeoutError"]
