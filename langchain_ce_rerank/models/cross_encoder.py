"""Loading cross-encoders, with the torch, ONNX or OpenVINO backend."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from langchain_ce_rerank._export import (
    Backend,
    Quantization,
    check_options,
    default_cache_folder,
    load_exported,
)
from langchain_ce_rerank.models.hub import import_tqdm_quietly
from langchain_ce_rerank.models.loading import _load, pick_device
from langchain_ce_rerank.models.registry import _freeze

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

__all__ = ["DEFAULT_CROSS_ENCODER", "load_cross_encoder"]

DEFAULT_CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L6-v2"
"""The cross-encoder used when none is given."""


def load_cross_encoder(
    model: str | os.PathLike[str] = DEFAULT_CROSS_ENCODER,
    *,
    device: str | None = None,
    max_length: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
    backend: Backend = "torch",
    quantization: Quantization = None,
    cache_folder: str | os.PathLike[str] | None = None,
    shared: bool = True,
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
        shared: Reuse the model already loaded in this process with the same
            resolved folder or id and the same settings (the default); False
            always loads a private copy. A shared model stays loaded while
            anyone holds it; hold `model_lock(model)` around each call into it.

    Returns:
        The loaded model.

    Raises:
        ModelNotFoundError: The model cannot be found on disk or downloaded.
        ImportError: The backend's pip extra is not installed.
        ValueError: `quantization` with the torch backend.
    """
    import_tqdm_quietly()
    from sentence_transformers import CrossEncoder

    kwargs: dict[str, Any] = dict(model_kwargs or {})
    if max_length is not None:
        kwargs["max_length"] = max_length
    chosen = pick_device(device)
    check_options(backend, quantization)
    cache = Path(cache_folder) if cache_folder else default_cache_folder()
    settings = (
        "cross-encoder",
        chosen,
        backend,
        quantization,
        _freeze(kwargs),
        None if backend == "torch" else str(cache.expanduser().resolve()),
    )

    def build(path: str) -> Any:
        if backend == "torch":
            return CrossEncoder(path, device=chosen, **kwargs)
        return load_exported(
            path, backend, quantization, cache=cache, device=chosen, kwargs=kwargs
        )

    loaded = _load(model, build, settings=settings, cross_encoder=True, shared=shared)
    return cast("CrossEncoder", loaded)
