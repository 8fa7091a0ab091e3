"""Instructions: the task description some rerankers read with every pair.

LLM-based rerankers (Qwen3-Reranker, mxbai-rerank-v2) score a pair under an
instruction such as "Given a web search query, retrieve relevant passages
that answer the query"; changing it changes what counts as relevant.
sentence-transformers calls it a `prompt` (`CrossEncoder.predict(pairs,
prompt=...)`); this package calls it `instruction` everywhere (engine,
doors, HTTP field, `--instruction`), the word the models' own cards use and
the one that cannot be mistaken for a LangChain prompt template, and hands
it to sentence-transformers as its `prompt`, so each model reads it the way
it was trained to: never glued into the query by this package.

Which models take one (`instruction_refusal`):

- A scorer object that says so itself: a `takes_instruction` attribute
  (`RemoteCrossEncoder` sets it from its API; a custom scorer may set it and
  then takes `instruction=` in `score`, `ascore`, `score_within` and
  `ascore_within`).
- A sentence-transformers `CrossEncoder` whose first module reads chat
  messages (a causal-LM reranker): sentence-transformers puts the prompt in
  a `system` message before the `query`/`document` pair, so the model takes
  an instruction when its chat template renders that message. This is
  decided by rendering one probe pair under two different instructions and
  comparing (as sentence-transformers itself probes the pair roles): a
  template that drops the system message would silently ignore it.
- A `CrossEncoder` that reads plain text pairs (BERT, XLM-RoBERTa,
  ModernBERT): sentence-transformers would prepend the prompt to the query,
  which only means something to a model trained that way, i.e. one saved
  with `prompts` (`config_sentence_transformers.json`) or given
  `prompts=` when loaded (`model_kwargs={"prompts": {...}}`).
- Anything else takes none. Given one anyway, the engine raises
  `InstructionNotSupportedError` before scoring, never drops it.

This is the one rule. `models.families` describes each family (where
sentence-transformers would put an instruction for it, `ModelFamily.instruction`)
and names the family in a refusal, but decides nothing: models of one family
differ (an encoder saved with prompts, a causal LM whose template drops the
system message), and only the loaded model can say.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_ce_rerank.errors import InstructionNotSupportedError
from langchain_ce_rerank.models.families import family_of

__all__ = [
    "instruction_refusal",
    "model_label",
    "require_instruction_support",
    "scorer_keywords",
]

_PROBES = (
    "Judge relevance for a first, unusual task.",
    "Judge relevance for a second, different task.",
)
"""Two instructions whose renders must differ if the template reads one."""

_NOT_RENDERED = frozenset(
    {
        "restore_suffix",
        "padding",
        "truncation",
        "max_length",
        "return_tensors",
        "return_dict",
        "tokenize",
    }
)
"""`chat_template` processing kwargs that size or tokenize, not render."""


def _chat_module(model: object) -> Any:
    """The sentence-transformers module that renders chat messages, or None."""
    try:
        first = model[0]  # type: ignore[index]
    except (TypeError, IndexError, KeyError):
        return None
    config = getattr(first, "modality_config", None)
    formatter = getattr(first, "input_formatter", None)
    if not isinstance(config, Mapping) or "message" not in config or not formatter:
        return None
    return first


def _chat_refusal(module: Any) -> str | None:
    """Why a chat-template model's template cannot carry an instruction."""
    formatter = module.input_formatter
    processor: Any = getattr(formatter, "processor", None)
    if processor is None or getattr(processor, "chat_template", None) is None:
        return "it reads chat messages but has no chat template"
    kwargs = dict(getattr(module, "processing_kwargs", None) or {})
    render_kwargs = {
        key: value
        for key, value in dict(kwargs.get("chat_template") or {}).items()
        if key not in _NOT_RENDERED
    }
    pair = formatter.pair_to_messages(("probe query", "probe document"))
    try:
        renders = [
            str(
                processor.apply_chat_template(
                    formatter.prepend_prompt_to_messages([pair], probe)[0],
                    tokenize=False,
                    **render_kwargs,
                )
            )
            for probe in _PROBES
        ]
    except Exception as err:  # a template that cannot take a system message
        return (
            "its chat template fails on the system message sentence-transformers "
            f"puts the instruction in ({type(err).__name__}: {err})"
        )
    if renders[0] == renders[1]:
        return (
            "its chat template does not render the system message "
            "sentence-transformers puts the instruction in"
        )
    return None


def _which(model: object) -> str:
    """`it`, with the model's family when it is one `models.families` knows."""
    if getattr(model, "config", None) is None:
        return "it"
    family = family_of(model)  # type: ignore[arg-type]
    return "it" if family.name == "other" else f"it (a {family.name} cross-encoder)"


def instruction_refusal(model: object) -> str | None:
    """Why `model` takes no instruction, or None when it takes one.

    The rule is the module docstring's: a scorer's own `takes_instruction`;
    for a sentence-transformers `CrossEncoder`, a chat template that renders
    the system message, or saved `prompts` for a plain text-pair model.

    Args:
        model: A loaded model or scorer.

    Returns:
        None, or the reason, for `InstructionNotSupportedError`.

    Example:
        ```python
        from langchain_ce_rerank.engine.instructions import instruction_refusal


        class Overlap:
            def score(self, pairs):
                return [0.0 for _ in pairs]


        print(instruction_refusal(Overlap()))
        ```
    """
    says = getattr(model, "takes_instruction", None)
    if isinstance(says, bool):
        if says:
            return None
        reason = getattr(model, "instruction_refusal", None)
        return reason if isinstance(reason, str) else "it says it takes none"
    chat = _chat_module(model)
    if chat is not None:
        return _chat_refusal(chat)
    prompts = getattr(model, "prompts", None)
    if isinstance(prompts, Mapping):
        if prompts:
            return None
        return (
            f"{_which(model)} reads plain (query, document) text pairs and was "
            "saved without sentence-transformers prompts, so an instruction "
            "would only be glued onto the query, which it was not trained to read"
        )
    return (
        f"a {type(model).__name__} has no instruction parameter (give a custom "
        "scorer takes_instruction = True and an instruction= keyword to opt in)"
    )


def model_label(model: object) -> str:
    """How to name `model` in an error: its id, folder or class."""
    if isinstance(model, str | Path):
        return str(model)
    config = getattr(model, "config", None)
    name = getattr(config, "name_or_path", None) or getattr(
        config, "_name_or_path", None
    )
    if isinstance(name, str) and name:
        return name
    api = getattr(model, "api", None)
    if isinstance(api, str):
        return f"{type(model).__name__}(api={api!r})"
    return type(model).__name__


def require_instruction_support(given: object, model: object) -> None:
    """Raise `InstructionNotSupportedError` unless `model` takes an instruction.

    Args:
        given: The model as the user gave it (named in the error).
        model: The loaded model or scorer (examined).
    """
    reason = instruction_refusal(model)
    if reason is not None:
        label = model_label(given if isinstance(given, str | Path) else model)
        raise InstructionNotSupportedError(label, reason)


def scorer_keywords(instruction: str | None) -> dict[str, str]:
    """The keywords that carry `instruction` to a scorer: none without one.

    Scorers that take no instruction are never passed the keyword, so every
    existing `score(pairs)` scorer keeps working unchanged.
    """
    return {} if instruction is None else {"instruction": instruction}
