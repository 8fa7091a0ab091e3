"""Which family a cross-encoder belongs to, and what each family needs.

Rerankers people use today come in four families that differ in more than
weights: their tokenizer, how a (query, document) pair becomes one input,
whether they take an instruction, and what their raw score is. This module is
the one place that says which family a model is (from its `config.json`
`model_type` and `architectures`, and its sentence-transformers modules) and
what each family is like. A model of no known family is still loadable: it is
family `"other"`, scored as sentence-transformers scores it.

How sentence-transformers (6.x) feeds each family a pair, and where a prompt
(`CrossEncoder.predict(..., prompt=...)`, or a saved prompt by `prompt_name`)
goes:

- encoders (`bert`, `xlm-roberta`, `modernbert`): the tokenizer's own pair
  template; a prompt is glued in front of the query text (`prompt + query`),
  which these models were never trained on, so they take no instruction.
- `causal-lm` (a `*ForCausalLM`): the pair becomes chat messages with roles
  `query` and `document`, a prompt becomes a `system` message before them, and
  the tokenizer's chat template renders all three (Qwen3-Reranker's puts it
  after `<Instruct>: `); padding is on the left and the score is
  `logit("yes") - logit("no")` at the last position (`LogitScore`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from transformers import PretrainedConfig

__all__ = [
    "FAMILIES",
    "FAMILY_NAMES",
    "FamilyName",
    "InstructionStyle",
    "ModelFamily",
    "family_from_config",
    "family_of",
    "supported_families",
]

logger = logging.getLogger(__name__)

FamilyName = Literal["bert", "xlm-roberta", "modernbert", "causal-lm", "other"]
"""A model family's name, as errors, the CLI and the README spell it."""

InstructionStyle = Literal["query-prefix", "system-message"]
"""Where sentence-transformers puts an instruction (its `prompt`) for a family:
glued in front of the query text, or in the `system` message the chat template
renders. Whether a given model takes one is not the family's call but
`engine.instructions.instruction_refusal`'s (see `ModelFamily.instruction`)."""

Activation = Literal["none", "sigmoid"]


@dataclass(frozen=True)
class ModelFamily:
    """What a family of cross-encoders is like.

    Example:
        ```python
        from langchain_ce_rerank.models.families import FAMILIES

        family = FAMILIES["causal-lm"]
        print(family.example_model, family.instruction, family.pair_format)
        ```
    """

    name: FamilyName
    """The family's name."""

    example_model: str | None
    """A Hugging Face model of the family people use (None for `"other"`)."""

    architecture: str | None
    """The transformers class the family's checkpoints load as."""

    tokenizer_kind: str
    """The tokenizer's model kind, as `tokenizer.json` names it (`"WordPiece"`,
    `"Unigram"`, `"BPE"`), with "byte-level" where bytes are pre-tokenized."""

    pair_format: str
    """How one (query, document) pair reads to the model, with `{query}`,
    `{document}` and (for families that take one) `{instruction}`."""

    instruction: InstructionStyle
    """Where sentence-transformers puts an instruction for this family's
    models. It describes; it does not decide: one rule,
    `langchain_ce_rerank.engine.instructions.instruction_refusal`, decides for
    each loaded model, since models of one family differ (a `"query-prefix"`
    model takes one only when saved with, or given, sentence-transformers
    `prompts`; a `"system-message"` model only when its chat template renders
    that message). The family's published models (its `example_model`)
    take one exactly when this is `"system-message"`."""

    default_activation: Activation
    """The activation that makes the family's score mean what its authors
    meant: raw logits (`"none"`) for encoders, the probability of "yes"
    (`"sigmoid"` of `logit(yes) - logit(no)`) for yes/no causal LMs."""


FAMILIES: Mapping[FamilyName, ModelFamily] = {
    "bert": ModelFamily(
        name="bert",
        example_model="cross-encoder/ms-marco-MiniLM-L6-v2",
        architecture="BertForSequenceClassification",
        tokenizer_kind="WordPiece",
        pair_format="[CLS] {query} [SEP] {document} [SEP]",
        instruction="query-prefix",
        default_activation="none",
    ),
    "xlm-roberta": ModelFamily(
        name="xlm-roberta",
        example_model="BAAI/bge-reranker-v2-m3",
        architecture="XLMRobertaForSequenceClassification",
        tokenizer_kind="Unigram",
        pair_format="<s> {query} </s></s> {document} </s>",
        instruction="query-prefix",
        default_activation="none",
    ),
    "modernbert": ModelFamily(
        name="modernbert",
        example_model="Alibaba-NLP/gte-reranker-modernbert-base",
        architecture="ModernBertForSequenceClassification",
        tokenizer_kind="BPE (byte-level)",
        pair_format="[CLS]{query}[SEP]{document}[SEP]",
        instruction="query-prefix",
        default_activation="none",
    ),
    "causal-lm": ModelFamily(
        name="causal-lm",
        example_model="Qwen/Qwen3-Reranker-0.6B",
        architecture="Qwen3ForCausalLM",
        tokenizer_kind="BPE (byte-level)",
        pair_format=(
            "<|im_start|>system\n...<|im_end|>\n<|im_start|>user\n"
            "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"
            "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
        ),
        instruction="system-message",
        default_activation="sigmoid",
    ),
    "other": ModelFamily(
        name="other",
        example_model=None,
        architecture=None,
        tokenizer_kind="unknown",
        pair_format="as the model's tokenizer makes it",
        instruction="query-prefix",
        default_activation="none",
    ),
}
"""Every family by name."""

FAMILY_NAMES: tuple[FamilyName, ...] = tuple(FAMILIES)
"""The families' names, `"other"` last."""


def supported_families() -> str:
    """The supported families, each with its example model, in one phrase.

    What `--reranker`'s help and a cross-encoder's load error say, so both
    name the families from this table, never from a copy.

    Returns:
        `"bert (e.g. cross-encoder/ms-marco-MiniLM-L6-v2), xlm-roberta (e.g.
        BAAI/bge-reranker-v2-m3), ..."`, without `"other"`.

    Example:
        ```python
        from langchain_ce_rerank.models.families import supported_families

        print(supported_families())
        ```
    """
    return ", ".join(
        f"{name} (e.g. {family.example_model})"
        for name, family in FAMILIES.items()
        if family.example_model is not None
    )


_BY_MODEL_TYPE: Mapping[str, FamilyName] = {
    "bert": "bert",
    "xlm-roberta": "xlm-roberta",
    "modernbert": "modernbert",
}

_BY_EXAMPLE: Mapping[str, FamilyName] = {
    family.example_model: name
    for name, family in FAMILIES.items()
    if family.example_model is not None
}


class _HasConfig(Protocol):
    """A loaded model: sentence-transformers' `CrossEncoder` (any backend)."""

    @property
    def config(self) -> PretrainedConfig: ...


def family_from_config(
    model_type: str | None,
    architectures: Sequence[str] | None,
    modules: Sequence[str] = (),
) -> ModelFamily:
    """The family of a model with this `config.json` and these ST modules.

    sentence-transformers' own rule decides the causal LMs: a first
    architecture ending in `ForCausalLM` (or a `LogitScore` module, which only
    they have). Otherwise `model_type` decides; any other is `"other"`.

    Args:
        model_type: `config.json`'s `model_type`.
        architectures: `config.json`'s `architectures`.
        modules: The sentence-transformers module class names (or the `type`
            paths in `modules.json`), if any.

    Returns:
        The family.

    Example:
        ```python
        from langchain_ce_rerank.models.families import family_from_config

        print(family_from_config("qwen3", ["Qwen3ForCausalLM"]).name)  # causal-lm
        print(family_from_config("bert", ["BertForSequenceClassification"]).name)
        ```
    """
    if (architectures and architectures[0].endswith("ForCausalLM")) or any(
        module.rsplit(".", 1)[-1] == "LogitScore" for module in modules
    ):
        return FAMILIES["causal-lm"]
    return FAMILIES[_BY_MODEL_TYPE.get(model_type or "", "other")]


def family_of(model: str | os.PathLike[str] | _HasConfig) -> ModelFamily:
    """The family of a loaded cross-encoder, a saved folder or a Hub id.

    A folder (or a Hub id found on disk: the Hugging Face cache or a bundled
    copy) is read without loading weights. A Hub id not on disk is matched
    against the families' example models, and is `"other"` otherwise.

    Args:
        model: A loaded `sentence_transformers.CrossEncoder` (any backend), a
            model folder, or a Hugging Face model id.

    Returns:
        The family; `FAMILIES["other"]` when none matches.

    Example:
        ```python
        from langchain_ce_rerank.models.families import family_of
        from langchain_ce_rerank.testing import build_standin

        folder = build_standin("modernbert", "standin-modernbert")
        print(family_of(folder).name)  # modernbert
        ```
    """
    if isinstance(model, str | os.PathLike):
        return _family_of_name(os.fspath(model))
    config = model.config
    # A CrossEncoder is a sequence of modules (Transformer, then LogitScore).
    modules = (
        [type(module).__name__ for module in model]
        if isinstance(model, Iterable)
        else []
    )
    return family_from_config(
        getattr(config, "model_type", None),
        getattr(config, "architectures", None),
        modules,
    )


def _family_of_name(name: str) -> ModelFamily:
    from langchain_ce_rerank.errors import ModelNotFoundError
    from langchain_ce_rerank.models.resolve import resolve_model

    try:
        resolved = Path(resolve_model(name))
    except ModelNotFoundError:
        resolved = None
    if resolved is None or not resolved.is_dir():
        known = _BY_EXAMPLE.get(name, "other")
        logger.info("Family of %s (not on disk): %s, by its name", name, known)
        return FAMILIES[known]
    return _family_of_folder(resolved)


def _family_of_folder(folder: Path) -> ModelFamily:
    config_path = folder / "config.json"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    modules_path = folder / "modules.json"
    modules = (
        [str(entry.get("type", "")) for entry in json.loads(modules_path.read_text())]
        if modules_path.is_file()
        else []
    )
    return family_from_config(
        config.get("model_type"), config.get("architectures"), modules
    )
