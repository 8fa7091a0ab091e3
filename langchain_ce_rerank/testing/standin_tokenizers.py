"""Tokenizers of each family's real kind, trained locally for the stand-ins.

Each one is a `tokenizers` pipeline built the way its family's real
tokenizer is (normalizer, pre-tokenizer, model, pair template, decoder),
wrapped in `PreTrainedTokenizerFast` and saved (by `save_standin`) under the
class name the real model ships, so `AutoTokenizer` (and sentence-transformers)
load it as they would the real one, in transformers 4 and 5 alike:

- XLM-RoBERTa (`BAAI/bge-reranker-v2-m3`): SentencePiece Unigram with a
  `▁` metaspace, `<s> q </s></s> d </s>` pairs (`XLMRobertaTokenizer`).
- ModernBERT (`Alibaba-NLP/gte-reranker-modernbert-base`): byte-level BPE,
  `[CLS] q [SEP] d [SEP]` pairs, no token type ids (`PreTrainedTokenizerFast`,
  as the real model ships).
- Qwen3 (`Qwen/Qwen3-Reranker-0.6B`): byte-level BPE with ChatML special
  tokens, nothing added around a text (a chat template builds the prompt),
  left padding, `"yes"` and `"no"` single tokens (`Qwen2Tokenizer`).

Training is deterministic: the same text (`tokenizer_training_text`) and
settings always give the same vocabulary and ids.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from langchain_ce_rerank.testing.standin_text import tokenizer_training_text

if TYPE_CHECKING:
    from tokenizers import Tokenizer
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "STANDIN_VOCAB_SIZE",
    "train_byte_level_bpe",
    "train_chatml_bpe",
    "train_unigram",
]

STANDIN_VOCAB_SIZE = 2000
"""Vocabulary size of each trained stand-in tokenizer."""

# Lines of the words a yes/no reranker answers with, so byte-level BPE learns
# them as whole tokens (as every real LLM vocabulary has them): sentence-
# transformers looks up exactly the tokens "yes" and "no".
_ANSWER_WORDS = ("yes", "no") * 200


def wrap(backend: Tokenizer, **settings: str) -> PreTrainedTokenizerBase:
    """`backend` as a transformers tokenizer, in a form every version loads.

    `PreTrainedTokenizerFast` around the finished `tokenizers` pipeline: the
    same object in transformers 4 and 5 (the family classes' constructors
    differ between them), saved as a `tokenizer.json` each version reads as
    is. `save_standin` then names the family's class in `tokenizer_config.json`.
    The stand-ins take no token type ids (like XLM-RoBERTa, ModernBERT, Qwen).
    """
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend,
        model_input_names=["input_ids", "attention_mask"],
        clean_up_tokenization_spaces=False,
        **settings,
    )


def train_unigram(vocab_size: int = STANDIN_VOCAB_SIZE) -> PreTrainedTokenizerBase:
    """An XLM-RoBERTa tokenizer: SentencePiece Unigram, `<s> q </s></s> d </s>`.

    Args:
        vocab_size: Most pieces in the vocabulary, special tokens included
            (Unigram training may stop a little short of it).

    Returns:
        The tokenizer; saved by `save_standin` as an `XLMRobertaTokenizer`.

    Example:
        ```python
        from langchain_ce_rerank.testing.standin_tokenizers import train_unigram

        tokenizer = train_unigram()
        print(tokenizer("query", "document")["input_ids"])
        ```
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )

    special = ["<s>", "<pad>", "</s>", "<unk>"]
    backend = Tokenizer(models.Unigram())
    # What SentencePiece's nmt_nfkc normalizer does, minus its precompiled map.
    backend.normalizer = normalizers.Sequence(
        [normalizers.NFKC(), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    backend.pre_tokenizer = pre_tokenizers.Metaspace(
        replacement="▁", prepend_scheme="always"
    )
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    trainer = trainers.UnigramTrainer(
        vocab_size=vocab_size - 1,  # <mask> is appended last, as in XLM-R
        special_tokens=special,
        unk_token="<unk>",
        show_progress=False,
    )
    backend.train_from_iterator(tokenizer_training_text(), trainer)
    # The pieces with their scores: the trained model's JSON is the only place
    # the Python binding exposes the scores, which decide the segmentation.
    pieces = json.loads(backend.to_str())["model"]["vocab"]
    vocab = [(str(piece), float(score)) for piece, score in pieces[: len(special)]]
    learnt = _stable_scores(
        [(str(piece), float(score)) for piece, score in pieces[len(special) :]]
    )
    # The pipeline XLMRobertaTokenizer builds (transformers 5) around the pieces.
    backend.model = models.Unigram([*vocab, *learnt], unk_id=3, byte_fallback=False)
    backend.normalizer = None
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always"),
        ]
    )
    backend.add_special_tokens([AddedToken("<mask>", special=True)])
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    return wrap(
        backend,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )


# The Unigram trainer gives characters it must keep but did not learn scores
# this far apart, in hash-set order (a different order on every run).
_KEPT_CHAR_STEP = 1e-4


def _stable_scores(pieces: list[tuple[str, float]]) -> list[tuple[str, float]]:
    """Unigram pieces with run-independent scores, sorted, so ids never vary.

    Two runs of the Unigram trainer on the same text learn the same pieces,
    but (its sums and sets run in hash order) the scores differ in their last
    digits, and the characters it had to keep unlearnt get a score ladder
    (`_KEPT_CHAR_STEP` apart) in a random order. Rounding the scores, giving
    every rung of the ladder the top rung's score and sorting by (score,
    piece) makes the same text give the same ids and the same segmentation.
    """
    singles = [(piece, score) for piece, score in pieces if len(piece) == 1]
    ladder = {
        piece
        for piece, score in singles
        if any(abs(abs(score - other) - _KEPT_CHAR_STEP) < 1e-7 for _, other in singles)
    }
    top = max((score for piece, score in singles if piece in ladder), default=0.0)
    stable = [
        (piece, round(top if piece in ladder else score, 6)) for piece, score in pieces
    ]
    return sorted(stable, key=lambda item: (-item[1], item[0]))


def train_byte_level_bpe(
    vocab_size: int = STANDIN_VOCAB_SIZE,
) -> PreTrainedTokenizerBase:
    """A ModernBERT tokenizer: byte-level BPE, `[CLS] q [SEP] d [SEP]`.

    Args:
        vocab_size: Tokens in the vocabulary, special tokens included.

    Returns:
        A `PreTrainedTokenizerFast`, the class the real ModernBERT ships, with
        `input_ids` and `attention_mask` only (ModernBERT takes no token types).

    Example:
        ```python
        from langchain_ce_rerank.testing.standin_tokenizers import train_byte_level_bpe

        tokenizer = train_byte_level_bpe()
        print(tokenizer.decode(tokenizer("query", "document")["input_ids"]))
        ```
    """
    from tokenizers import (
        Tokenizer,
        decoders,
        models,
        pre_tokenizers,
        processors,
        trainers,
    )

    special = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
    backend = Tokenizer(models.BPE(unk_token=None))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(tokenizer_training_text(), trainer)
    cls, sep = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", cls), ("[SEP]", sep)],
    )
    return wrap(
        backend,
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        pad_token="[PAD]",
        mask_token="[MASK]",
    )


def train_chatml_bpe(vocab_size: int = STANDIN_VOCAB_SIZE) -> PreTrainedTokenizerBase:
    """A Qwen3 tokenizer: byte-level BPE, ChatML special tokens, yes/no words.

    The chat template is not set here: the causal-LM stand-in sets the
    reranker's template.

    Args:
        vocab_size: Tokens in the vocabulary, special tokens included.

    Returns:
        The tokenizer, padding on the left; saved by `save_standin` as a
        `Qwen2Tokenizer` (the class Qwen3 models ship).

    Raises:
        RuntimeError: Training did not make "yes" and "no" single tokens.

    Example:
        ```python
        from langchain_ce_rerank.testing.standin_tokenizers import train_chatml_bpe

        tokenizer = train_chatml_bpe()
        print(tokenizer.convert_tokens_to_ids(["yes", "no"]))
        ```
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    backend = Tokenizer(models.BPE(unk_token=None))
    # Trained with the very normalizer and pre-tokenizer Qwen2Tokenizer builds
    # so its merges apply to the words they were learnt from.
    backend.normalizer = normalizers.NFC()
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(
                Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False
            ),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator((*tokenizer_training_text(), *_ANSWER_WORDS), trainer)
    missing = [word for word in ("yes", "no") if backend.token_to_id(word) is None]
    if missing:
        msg = f"the trained byte-level BPE has no single token for {missing}"
        raise RuntimeError(msg)
    # Qwen's pipeline: no special tokens added around a text (the chat
    # template writes them), the thinking tags as plain added tokens.
    backend.post_processor = processors.TemplateProcessing(single="$A", pair="$A $B:1")
    backend.add_tokens(
        [AddedToken(tag, normalized=True) for tag in ("<think>", "</think>")]
    )
    return wrap(
        backend,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        padding_side="left",
    )
