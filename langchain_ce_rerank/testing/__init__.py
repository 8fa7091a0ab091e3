"""Test helpers: offline stand-in models and the document compressor contract.

- `build_standin(family, folder)` writes a tiny stand-in cross-encoder of one
  of `STANDIN_FAMILIES` (BERT, XLM-RoBERTa, ModernBERT, a Qwen3-style causal
  LM scored by its "yes" logit), with the family's architecture, tokenizer
  kind and pair format, for offline tests and air-gapped demos (never for
  quality). `build_standin_cross_encoder` is the BERT one (the architecture of
  `cross-encoder/ms-marco-MiniLM-L6-v2`); the per-family builders are here too.
- `CompressorContractTests` is a pytest base class: subclass it, provide a
  `compressor_factory` fixture, and pytest checks the promises every reranker
  (any `BaseDocumentCompressor`) should keep. It is imported on first use, so
  `import langchain_ce_rerank.testing` does not need pytest.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_ce_rerank.testing.standin import build_standin_cross_encoder
from langchain_ce_rerank.testing.standin_causal import (
    DEFAULT_INSTRUCTION,
    build_causal_lm_standin,
)
from langchain_ce_rerank.testing.standin_encoders import (
    build_modernbert_standin,
    build_xlm_roberta_standin,
)
from langchain_ce_rerank.testing.standins import STANDIN_FAMILIES, build_standin

if TYPE_CHECKING:
    from langchain_ce_rerank.testing.compressor_contract import (
        CompressorContractTests,
        CompressorFactory,
    )

__all__ = [
    "DEFAULT_INSTRUCTION",
    "STANDIN_FAMILIES",
    "CompressorContractTests",
    "CompressorFactory",
    "build_causal_lm_standin",
    "build_modernbert_standin",
    "build_standin",
    "build_standin_cross_encoder",
    "build_xlm_roberta_standin",
]

_LAZY = frozenset({"CompressorContractTests", "CompressorFactory"})


def __getattr__(name: str) -> object:
    """Import the pytest-based contract only when it is asked for."""
    if name in _LAZY:
        from langchain_ce_rerank.testing import compressor_contract

        return getattr(compressor_contract, name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
