"""`Backend`: what the registry knows about one inference backend.

A record, not a base class: a backend module builds one `Backend` with its
name, its pip extra, the modules that extra installs, the quantizations it
offers and its two loaders, and the registry (`models/backends/__init__.py`)
lists it. Nothing here imports torch or a model library; the loaders do, when
called.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from langchain_ce_rerank.optional import install_hint

if TYPE_CHECKING:
    from langchain_huggingface import HuggingFaceEmbeddings
    from sentence_transformers import CrossEncoder

__all__ = ["Backend", "CrossEncoderLoader", "EmbeddingsLoader"]


class CrossEncoderLoader(Protocol):
    """Builds a `sentence_transformers.CrossEncoder` from a resolved model."""

    def __call__(
        self,
        path: str,
        *,
        device: str,
        quantization: str | None,
        cache: Path,
        kwargs: dict[str, Any],
    ) -> CrossEncoder:
        """Load `path` (a folder or hub id) on `device`.

        Args:
            path: The resolved model folder or hub id.
            device: The torch device string.
            quantization: None, or one of the backend's quantizations.
            cache: The export cache folder (unused by backends that export
                nothing).
            kwargs: Extra keyword arguments for `CrossEncoder(...)`.
        """
        ...


class EmbeddingsLoader(Protocol):
    """Builds LangChain `HuggingFaceEmbeddings` from a resolved bi-encoder."""

    def __call__(
        self,
        path: str,
        *,
        device: str,
        quantization: str | None,
        cache: Path,
        encode_kwargs: dict[str, Any],
    ) -> HuggingFaceEmbeddings:
        """Load `path` (a folder or hub id) on `device`.

        Args:
            path: The resolved model folder or hub id.
            device: The torch device string.
            quantization: None, or one of the backend's quantizations.
            cache: The export cache folder (unused by backends that export
                nothing).
            encode_kwargs: `HuggingFaceEmbeddings(encode_kwargs=...)`.
        """
        ...


@dataclass(frozen=True, eq=False)
class Backend:
    """One inference backend, as the registry, the checks and the CLI see it.

    Example:
        ```python
        from langchain_ce_rerank.models.backends import get_backend

        onnx = get_backend("onnx")
        print(onnx.install)  # e.g. pip install -e "/src/langchain-ce-rerank[onnx]"
        print(sorted(onnx.quantizations))  # ['int8']
        ```
    """

    name: str
    """What users pass: `backend="onnx"`, `--backend onnx`."""

    extra: str | None
    """The pip extra that installs it; None when the package itself does."""

    modules: tuple[str, ...]
    """The modules its loaders import, checked before anything is loaded so a
    missing extra fails at construction, naming what is missing."""

    quantizations: Mapping[str, str]
    """Quantization name -> a few words on what it is here, used in messages
    (`"int8"` -> `"dynamic int8"`). Empty when the backend has none."""

    load_cross_encoder: CrossEncoderLoader
    """Loads a cross-encoder with this backend."""

    load_embeddings: EmbeddingsLoader
    """Loads a bi-encoder as LangChain embeddings with this backend."""

    dtypes: tuple[str, ...] = ("float32",)
    """The precisions `dtype=` may ask of it, float32 first. A backend that
    offers more than float32 loads with `model_kwargs["dtype"]` set to the
    torch dtype (sentence-transformers' way); one that offers only float32
    gets no dtype and refuses any other (`models.precision.check_dtype`)."""

    exports: bool = False
    """Whether loading writes an export to the cache folder, so the cache
    folder is part of what identifies a loaded model."""

    @property
    def install(self) -> str:
        """The pip command that installs this backend's extra ("" for none)."""
        return install_hint(self.extra) if self.extra else ""

    def missing_modules(self) -> list[str]:
        """The modules of `modules` that cannot be imported here."""
        return [name for name in self.modules if _find_spec(name) is None]

    def check_installed(self) -> None:
        """Raise when a module this backend needs is not installed.

        Raises:
            ImportError: Names the missing modules and the pip extra to install.
        """
        missing = self.missing_modules()
        if missing:
            msg = f"backend={self.name!r} needs {', '.join(missing)}: {self.install}"
            raise ImportError(msg)


def _find_spec(name: str) -> object:
    """`importlib.util.find_spec`, None also when the parent package is missing."""
    try:
        return importlib.util.find_spec(name)
    except ModuleNotFoundError:
        return None
