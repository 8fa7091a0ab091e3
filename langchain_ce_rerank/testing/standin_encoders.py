"""Stand-in encoder cross-encoders: XLM-RoBERTa and ModernBERT, tiny and random.

Each is a `*ForSequenceClassification` with one output logit and the family's
own tokenizer kind (see `standin_tokenizers`), saved with `save_pretrained` the
way `BAAI/bge-reranker-v2-m3` and `Alibaba-NLP/gte-reranker-modernbert-base`
are published: a plain transformers folder that sentence-transformers'
`CrossEncoder` loads as a sequence classifier. The weights are random: the
scores mean nothing, but shapes, pair formats, loading and every code path
between a folder and a score are the real ones.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from langchain_ce_rerank.testing.standin_tokenizers import (
    train_byte_level_bpe,
    train_unigram,
)

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = [
    "STANDIN_MAX_LENGTH",
    "build_modernbert_standin",
    "build_xlm_roberta_standin",
    "is_built",
]

STANDIN_MAX_LENGTH = 512
"""Token window of the encoder stand-ins (as XLM-RoBERTa base and MiniLM)."""

_HIDDEN = 32
_LAYERS = 2
# Wider than the usual 0.02, so random weights still give pairs clearly
# different scores (with 0.02 they agree to five decimals).
_INIT_RANGE = 0.4
_HEADS = 2


def is_built(folder: Path, *names: str) -> bool:
    """Whether `folder` already holds a saved model (config, weights, `names`)."""
    wanted = ("config.json", "model.safetensors", "tokenizer.json", *names)
    return all((folder / name).is_file() for name in wanted)


def save_standin(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    folder: Path,
    tokenizer_class: str,
) -> Path:
    """Save a stand-in model and tokenizer quietly, as `save_pretrained` does.

    `tokenizer_class` is the class the family's real tokenizer names in its
    `tokenizer_config.json` (the stand-in's is a `PreTrainedTokenizerFast`,
    which transformers 5 saves as `TokenizersBackend`, a name transformers 4,
    the onnx/openvino environment's, does not know); both versions then load
    the family's class from the saved `tokenizer.json`.
    """
    from langchain_ce_rerank.models.hub import quiet_loading

    with quiet_loading():
        folder.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    settings = folder / "tokenizer_config.json"
    saved = json.loads(settings.read_text())
    saved["tokenizer_class"] = tokenizer_class
    settings.write_text(json.dumps(saved, indent=2) + "\n")
    return folder


def build_xlm_roberta_standin(folder: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write a tiny random XLM-RoBERTa cross-encoder (bge-reranker-v2-m3's kind).

    `XLMRobertaForSequenceClassification` with `num_labels=1`, 2 layers of
    width 32, and a SentencePiece Unigram tokenizer (`XLMRobertaTokenizer`):
    a pair is `<s> query </s></s> document </s>`, without token type ids.

    Args:
        folder: Where to save (created if needed). Reused if already built.
        seed: Seed of the random weights.

    Returns:
        The folder, ready for `Reranker(model=folder)`.

    Example:
        ```python
        from langchain_ce_rerank.testing import build_xlm_roberta_standin

        path = build_xlm_roberta_standin("standin-xlm-roberta")
        ```
    """
    target = Path(folder)
    if is_built(target):
        return target
    import torch
    from transformers import XLMRobertaConfig, XLMRobertaForSequenceClassification

    tokenizer = train_unigram()
    tokenizer.model_max_length = STANDIN_MAX_LENGTH
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=_HIDDEN,
        num_hidden_layers=_LAYERS,
        initializer_range=_INIT_RANGE,
        num_attention_heads=_HEADS,
        intermediate_size=2 * _HIDDEN,
        # Positions start after the padding index (1), as in XLM-RoBERTa.
        max_position_embeddings=STANDIN_MAX_LENGTH + 2,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    config.num_labels = 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = XLMRobertaForSequenceClassification(config)
    return save_standin(model, tokenizer, target, "XLMRobertaTokenizer")


def build_modernbert_standin(folder: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write a tiny random ModernBERT cross-encoder (gte-reranker-modernbert's kind).

    `ModernBertForSequenceClassification` with `num_labels=1`, 2 layers of
    width 32 (one global, one local sliding-window attention layer, as the
    real model alternates them) and a byte-level BPE tokenizer: a pair is
    `[CLS] query [SEP] document [SEP]`, without token type ids.

    Args:
        folder: Where to save (created if needed). Reused if already built.
        seed: Seed of the random weights.

    Returns:
        The folder, ready for `Reranker(model=folder)`.

    Example:
        ```python
        from langchain_ce_rerank.testing import build_modernbert_standin

        path = build_modernbert_standin("standin-modernbert")
        ```
    """
    target = Path(folder)
    if is_built(target):
        return target
    import torch
    from transformers import ModernBertConfig, ModernBertForSequenceClassification

    tokenizer = train_byte_level_bpe()
    tokenizer.model_max_length = STANDIN_MAX_LENGTH
    config = ModernBertConfig(
        vocab_size=len(tokenizer),
        hidden_size=_HIDDEN,
        num_hidden_layers=_LAYERS,
        initializer_range=_INIT_RANGE,
        num_attention_heads=_HEADS,
        intermediate_size=2 * _HIDDEN,
        max_position_embeddings=STANDIN_MAX_LENGTH,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id,
        cls_token_id=tokenizer.cls_token_id,
        sep_token_id=tokenizer.sep_token_id,
        layer_types=["full_attention", "sliding_attention"],
    )
    config.num_labels = 1
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = ModernBertForSequenceClassification(config)
    # The real ModernBERT ships a plain PreTrainedTokenizerFast.
    return save_standin(model, tokenizer, target, "PreTrainedTokenizerFast")
