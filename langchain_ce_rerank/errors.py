"""Exceptions raised by `langchain_ce_rerank`.

Each error message says what was wrong, with the offending value, and what to do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = [
    "InstructionNotSupportedError",
    "ModelNotFoundError",
    "NonFiniteScoreError",
    "StoreLoadError",
]


DEFAULT_REMEDY = "model='/path/to/model'"
"""How the Python API's `model=` parameter is spelt in the default message."""


class ModelNotFoundError(OSError):
    """A model id or folder could not be resolved to loadable weights.

    The message names the model, every place that was looked in, and how to pass
    a local folder instead, in the words of the entry point the user called:
    each entry point re-words it with `with_remedy` (the CLI says
    `--reranker PATH`, `build_reranking_retriever` says
    `reranker='/path/to/model'`). The library never falls back to another model.

    Args:
        model: The model id or folder as the user gave it.
        looked: Every place that was looked in, each with what was found there.
        cause: Why loading failed, when a loader said so; "" otherwise.
        remedy: How to pass a local folder at this entry point.
        note: A further sentence for the end of the message (for example how to
            build the offline stand-in); "" for none.

    Example:
        ```python
        from langchain_ce_rerank import CrossEncoderCompressor, ModelNotFoundError

        try:
            CrossEncoderCompressor(model="/no/such/folder").load_model()
        except ModelNotFoundError as err:
            print(err.model, err.looked)
            print(err.with_remedy("--reranker PATH"))
        ```
    """

    def __init__(
        self,
        model: str,
        looked: Sequence[str],
        cause: str = "",
        remedy: str = DEFAULT_REMEDY,
        *,
        note: str = "",
    ) -> None:
        self.model = model
        self.looked: tuple[str, ...] = tuple(looked)
        self.cause = cause
        self.remedy = remedy
        self.note = note
        super().__init__(self._message())

    def _message(self) -> str:
        because = f" ({self.cause})" if self.cause else ""
        where = "; ".join(self.looked) or "nowhere"
        tail = f" {self.note}" if self.note else ""
        return (
            f"model {self.model!r} could not be loaded{because}. Looked in: "
            f"{where}. Pass a local folder that holds the model instead, e.g. "
            f"{self.remedy} (a folder written by save_pretrained or "
            f"huggingface-cli download).{tail}"
        )

    def with_remedy(self, remedy: str) -> ModelNotFoundError:
        """The same error, telling the user to pass a folder as `remedy`.

        Args:
            remedy: The entry point's own spelling, e.g. `"--reranker PATH"` or
                `"reranker='/path/to/model'"`.

        Returns:
            A new error with the same model, places, cause and note; raise it
            with `raise err.with_remedy(...) from err`.
        """
        return ModelNotFoundError(
            self.model, self.looked, self.cause, remedy, note=self.note
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its facts, so it crosses process pools intact.
        return (
            _rebuild_model_not_found,
            (self.model, self.looked, self.cause, self.remedy, self.note),
        )


def _rebuild_model_not_found(
    model: str, looked: Sequence[str], cause: str, remedy: str, note: str
) -> ModelNotFoundError:
    return ModelNotFoundError(model, looked, cause, remedy, note=note)


class StoreLoadError(ValueError):
    """A saved `FaissVectorStore` folder is truncated, tampered with or mismatched.

    The message names the file and the problem. A missing folder or manifest
    raises `FileNotFoundError` instead.

    Example:
        ```python
        from langchain_core.embeddings import DeterministicFakeEmbedding
        from langchain_ce_rerank import FaissVectorStore, StoreLoadError

        try:
            FaissVectorStore.load_local("index", DeterministicFakeEmbedding(size=8))
        except (FileNotFoundError, StoreLoadError) as err:
            print(err)
        ```
    """


class InstructionNotSupportedError(ValueError):
    """An instruction was given for a model that has no place to read it.

    Raised before any pair is scored, never by dropping the instruction: the
    message names the model, why it takes none, and what to do, in the words
    of the entry point the user called (each re-words it with
    `with_parameter`: the CLI says `--instruction`, the HTTP server the
    request's `instruction` field). See `langchain_ce_rerank.engine.instructions`
    for which models take one.

    Args:
        model: The model as the user gave it (an id, a folder, a scorer).
        reason: Why it takes no instruction.
        parameter: How the instruction is spelt at this entry point.

    Example:
        ```python
        from langchain_ce_rerank import InstructionNotSupportedError

        err = InstructionNotSupportedError("m", "it has no saved prompts")
        print(err.with_parameter("--instruction"))
        ```
    """

    def __init__(
        self, model: str, reason: str, parameter: str = "instruction="
    ) -> None:
        self.model = model
        self.reason = reason
        self.parameter = parameter
        super().__init__(self._message())

    def _message(self) -> str:
        return (
            f"model {self.model!r} takes no instruction ({self.reason}), so "
            f"{self.parameter} cannot be passed to it, and is not dropped "
            f"silently either. Leave {self.parameter} unset for this model, or "
            "use a reranker that reads one: a causal-LM reranker whose chat "
            "template has a place for it (e.g. Qwen/Qwen3-Reranker-0.6B), or a "
            "model saved with sentence-transformers prompts."
        )

    def with_parameter(self, parameter: str) -> InstructionNotSupportedError:
        """The same error, naming the instruction as `parameter` spells it.

        Args:
            parameter: The entry point's spelling, e.g. `"--instruction"`.
        """
        return InstructionNotSupportedError(self.model, self.reason, parameter)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its facts, so it crosses process pools (Ray) intact.
        return (InstructionNotSupportedError, (self.model, self.reason, self.parameter))


class NonFiniteScoreError(RuntimeError):
    """A model or scorer returned NaN or infinite scores; none are returned.

    Raised where raw scores come back (`engine.finite.require_finite`), before
    they are cached, activated or ranked, on any device and through every
    door. The message names the model, its backend, dtype and device, how
    many scores were NaN or infinite, and what to do: a model loaded in
    float16 that overflows (fine-tuned models can, sentence-transformers#3233)
    is told to use `dtype="bfloat16"` or `"float32"`.

    Attributes:
        model: How the model or scorer was described (name, backend, dtype,
            device).
        dtype: The model's precision (`"float16"`, ...), or None when it is
            not a torch model (a remote or custom scorer).
        nan: How many scores were NaN (or missing: None).
        inf: How many were infinite.
        total: How many scores the batch had.

    Example:
        ```python
        from langchain_ce_rerank import NonFiniteScoreError, Reranker


        class Broken:
            def score(self, pairs):
                return [float("nan") for _ in pairs]


        try:
            Reranker(model=Broken()).score("q", ["a", "b"])
        except NonFiniteScoreError as err:
            print(err.nan, err.total)  # 2 2
        ```
    """

    def __init__(
        self,
        message: str,
        *,
        model: str,
        dtype: str | None,
        nan: int,
        inf: int,
        total: int,
    ) -> None:
        self.model = model
        self.dtype = dtype
        self.nan = nan
        self.inf = inf
        self.total = total
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt from its facts, so it crosses process pools intact.
        return (
            _rebuild_non_finite,
            (str(self), self.model, self.dtype, self.nan, self.inf, self.total),
        )


def _rebuild_non_finite(
    message: str, model: str, dtype: str | None, nan: int, inf: int, total: int
) -> NonFiniteScoreError:
    return NonFiniteScoreError(
        message, model=model, dtype=dtype, nan=nan, inf=inf, total=total
    )
