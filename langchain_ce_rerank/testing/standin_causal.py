"""A stand-in LLM reranker: a tiny random Qwen3 scored by its "yes" logit.

Built the way sentence-transformers 6.x builds a CrossEncoder on a causal LM
(`Qwen/Qwen3-Reranker-0.6B`, `mixedbread-ai/mxbai-rerank-base-v2`): a
`Qwen3ForCausalLM` read by the `Transformer` module with
`transformer_task="text-generation"` (left padding, the last position's
logits), then sentence-transformers' own `LogitScore` module, which scores a
pair as `logit("yes") - logit("no")` at the last position. It is saved with
`CrossEncoder.save_pretrained`, so the folder holds what a converted Hub model
holds: `modules.json`, `sentence_bert_config.json`,
`config_sentence_transformers.json` (with the saved prompts), `1_LogitScore/`,
the weights and a tokenizer with `chat_template.jinja`.

The chat template is Qwen3-Reranker's prompt: the query and document arrive as
the `query` and `document` roles sentence-transformers gives a pair, and the
instruction as the `system` message sentence-transformers makes of a
`prompt` (`predict(pairs, prompt=...)` or a saved prompt by `prompt_name`);
without one, the template uses Qwen3-Reranker's default instruction.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from langchain_ce_rerank.testing.standin_encoders import is_built, save_standin
from langchain_ce_rerank.testing.standin_tokenizers import train_chatml_bpe

__all__ = [
    "CAUSAL_STANDIN_MAX_LENGTH",
    "DEFAULT_INSTRUCTION",
    "RERANKER_CHAT_TEMPLATE",
    "RERANKER_SYSTEM_PROMPT",
    "build_causal_lm_standin",
]

CAUSAL_STANDIN_MAX_LENGTH = 2048
"""Token window of the causal-LM stand-in (instruction, query, document and
the template's fixed tokens together)."""

DEFAULT_INSTRUCTION = (
    "Given a web search query, retrieve relevant passages that answer the query"
)
"""The instruction Qwen3-Reranker uses when none is given; also saved as the
stand-in's prompt named `"web_search"`."""

RERANKER_SYSTEM_PROMPT = (
    "Judge whether the Document meets the requirements based on the Query and "
    'the Instruct provided. Note that the answer can only be "yes" or "no".'
)
"""Qwen3-Reranker's fixed system turn (not the instruction, which goes in the
user turn after `<Instruct>: `)."""

# Flat messages (content is a string): sentence-transformers infers the "flat"
# message format from a template that never indexes into `content`.
RERANKER_CHAT_TEMPLATE = (
    "{%- set ns = namespace(instruction='" + DEFAULT_INSTRUCTION + "', "
    "query='', document='') -%}\n"
    "{%- for message in messages -%}\n"
    "{%- if message.role == 'system' -%}{%- set ns.instruction = message.content -%}\n"
    "{%- elif message.role == 'query' -%}{%- set ns.query = message.content -%}\n"
    "{%- elif message.role == 'document' -%}{%- set ns.document = message.content -%}\n"
    "{%- endif -%}\n"
    "{%- endfor -%}\n"
    "{{- '<|im_start|>system\\n" + RERANKER_SYSTEM_PROMPT + ""
    "<|im_end|>\\n<|im_start|>user\\n' -}}\n"
    "{{- '<Instruct>: ' + ns.instruction + '\\n<Query>: ' + ns.query -}}\n"
    "{{- '\\n<Document>: ' + ns.document + '<|im_end|>\\n' -}}\n"
    "{{- '<|im_start|>assistant\\n<think>\\n\\n</think>\\n\\n' -}}\n"
)
"""Qwen3-Reranker's prompt as a chat template over sentence-transformers'
pair roles: `system` (the instruction), `query` and `document`. It ends with
the assistant turn's empty thinking block, so the next token is the answer."""

_HIDDEN = 32
_LAYERS = 2
# Wider than the usual 0.02, so random weights still give pairs clearly
# different scores (with 0.02 they agree to five decimals).
_INIT_RANGE = 0.4
_HEADS = 4
_KV_HEADS = 2


def build_causal_lm_standin(folder: str | os.PathLike[str], seed: int = 0) -> Path:
    """Write a tiny random Qwen3 yes/no reranker as a sentence-transformers folder.

    `Qwen3ForCausalLM` (2 layers of width 32, grouped-query attention, tied
    embeddings as in Qwen3-0.6B), a byte-level BPE tokenizer with ChatML
    tokens, "yes" and "no" as single tokens, and Qwen3-Reranker's prompt as
    its chat template; scored by sentence-transformers' `LogitScore`
    (`logit("yes") - logit("no")`). The prompt named `"web_search"` holds the
    default instruction; no default prompt name is set, so a call without a
    prompt gets the template's default (the same instruction).

    Args:
        folder: Where to save (created if needed). Reused if already built.
        seed: Seed of the random weights.

    Returns:
        The folder, ready for `Reranker(model=folder)`.

    Example:
        ```python
        from langchain_ce_rerank.testing import build_causal_lm_standin

        path = build_causal_lm_standin("standin-causal-lm")
        ```
    """
    target = Path(folder)
    if is_built(target, "modules.json", "1_LogitScore/config.json"):
        return target
    import torch
    from sentence_transformers import CrossEncoder
    from transformers import Qwen3Config, Qwen3ForCausalLM

    from langchain_ce_rerank.models.hub import quiet_loading

    tokenizer = train_chatml_bpe()
    tokenizer.model_max_length = CAUSAL_STANDIN_MAX_LENGTH
    tokenizer.chat_template = RERANKER_CHAT_TEMPLATE
    config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=_HIDDEN,
        intermediate_size=3 * _HIDDEN,
        num_hidden_layers=_LAYERS,
        initializer_range=_INIT_RANGE,
        num_attention_heads=_HEADS,
        num_key_value_heads=_KV_HEADS,
        head_dim=_HIDDEN // _HEADS,
        max_position_embeddings=CAUSAL_STANDIN_MAX_LENGTH,
        tie_word_embeddings=True,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Qwen3ForCausalLM(config)
    # The backbone goes through CrossEncoder(...) exactly as a plain causal LM
    # from the Hub would: sentence-transformers adds its Transformer and
    # LogitScore modules, and its save writes the converted layout.
    with tempfile.TemporaryDirectory(prefix="standin-causal-") as backbone:
        save_standin(model, tokenizer, Path(backbone), "Qwen2Tokenizer")
        with quiet_loading():
            cross_encoder = CrossEncoder(
                backbone,
                device="cpu",
                local_files_only=True,
                prompts={"web_search": DEFAULT_INSTRUCTION},
            )
            target.mkdir(parents=True, exist_ok=True)
            cross_encoder.save_pretrained(str(target), create_model_card=False)
    return target
