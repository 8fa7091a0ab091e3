"""Test helpers: an offline stand-in model and the document compressor contract.

- `build_standin_cross_encoder` writes an untrained cross-encoder with the
  architecture of `cross-encoder/ms-marco-MiniLM-L6-v2`, for offline tests and
  air-gapped demos (never for quality).
- `CompressorContractTests` is a pytest base class: subclass it, provide a
  `compressor_factory` fixture, and pytest checks the promises every reranker
  (any `BaseDocumentCompressor`) should keep. It is imported on first use, so
  `import langchain_ce_rerank.testing` does not need pytest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_ce_rerank.testing.standin import build_standin_cross_encoder

if TYPE_CHECKING:
    from langchain_ce_rerank.testing.compressor_contract import (
        CompressorContractTests,
        CompressorFactory,
    )

__all__ = [
    "CompressorContractTests",
    "CompressorFactory",
    "build_standin_cross_encoder",
]

_LAZY = frozenset({"CompressorContractTests", "CompressorFactory"})


def __getattr__(name: str) -> object:
    """Import the pytest-based contract only when it is asked for."""
    if name in _LAZY:
        from langchain_ce_rerank.testing import compressor_contract

        return getattr(compressor_contract, name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
