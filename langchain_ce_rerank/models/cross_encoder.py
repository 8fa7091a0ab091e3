"""Loading cross-encoders, with any backend of the registry (`models/backends/`)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_ce_rerank.models.backends import DEFAULT_BACKEND, check_options
from langchain_ce_rerank.models.backends.support import check_model
from langchain_ce_rerank.models.export import default_cache_folder
from langchain_ce_rerank.models.hub import import_tqdm_quietly
from langchain_ce_rerank.models.loading import load_shared, pick_device
from langchain_ce_rerank.models.precision import (
    DEFAULT_DTYPE,
    check_dtype,
    with_dtype,
)
from langchain_ce_rerank.models.registry import freeze

if TYPE_CHECKING:
    from sentence_transformers import CrossEncoder

__all__ = ["DEFAULT_CROSS_ENCODER", "load_cross_encoder"]

DEFAULT_CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L6-v2"
"""The cross-encoder used when none is given."""


def load_cross_encoder(
    model: str | os.PathLike[str] = DEFAULT_CROSS_ENCODER,
    *,
    device: str | None = None,
    dtype: str = DEFAULT_DTYPE,
    max_length: int | None = None,
    model_kwargs: dict[str, Any] | None = None,
    backend: str = DEFAULT_BACKEND,
    quantization: str | None = None,
    cache_folder: str | os.PathLike[str] | None = None,
    shared: bool = True,
) -> CrossEncoder:
    """Load a `sentence_transformers.CrossEncoder` from a hub id or a folder.

    Args:
        model: Hugging Face model id or local folder.
        device: Torch device; None picks cuda, then mps, then cpu.
        dtype: `"float32"`, `"bfloat16"` or `"float16"`: the precision the
            weights are loaded and run in (torch backend only); half
            precision is refused on CPU (see `models.precision`).
        max_length: Token window for each (query, document) pair; None keeps the
            model's own.
        model_kwargs: Extra keyword arguments for `CrossEncoder(...)`.
        backend: A name in `models.backends.BACKEND_NAMES`: `"torch"`,
            `"openvino"` (the `[openvino]` extra) or `"onnx"` (onnxruntime;
            the `[onnx]` extra).
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
        ValueError: An unknown backend, or a quantization it does not offer
            (`quantization` with the torch backend); a dtype refused on this
            device or backend, or a dtype also given in `model_kwargs`; or a
            backend the model's family is refused on (`models.backends.support`).
    """
    import_tqdm_quietly()
    kwargs: dict[str, Any] = dict(model_kwargs or {})
    if max_length is not None:
        kwargs["max_length"] = max_length
    chosen_backend = check_options(backend, quantization)
    check_model(model, backend, quantization)
    chosen = pick_device(device)
    check_dtype(dtype, device=chosen, backend=chosen_backend.name)
    if len(chosen_backend.dtypes) > 1:
        kwargs = with_dtype(dtype, kwargs)
    cache = Path(cache_folder) if cache_folder else default_cache_folder()
    settings = (
        "cross-encoder",
        chosen,
        dtype,
        backend,
        quantization,
        freeze(kwargs),
        str(cache.expanduser().resolve()) if chosen_backend.exports else None,
    )

    def build(path: str) -> CrossEncoder:
        return chosen_backend.load_cross_encoder(
            path, device=chosen, quantization=quantization, cache=cache, kwargs=kwargs
        )

    return load_shared(
        model, build, settings=settings, cross_encoder=True, shared=shared
    )
