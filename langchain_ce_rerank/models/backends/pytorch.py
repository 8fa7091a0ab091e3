"""The torch backend: sentence-transformers as installed, no export, no extra.

Named `pytorch` so that `import torch` inside this package still means torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from langchain_ce_rerank.models.backends.base import Backend

if TYPE_CHECKING:
    from langchain_huggingface import HuggingFaceEmbeddings
    from sentence_transformers import CrossEncoder

__all__ = ["BACKEND"]


def _cross_encoder(
    path: str,
    *,
    device: str,
    quantization: str | None,
    cache: Path,
    kwargs: dict[str, Any],
) -> CrossEncoder:
    from sentence_transformers import CrossEncoder

    return cast("CrossEncoder", CrossEncoder(path, device=device, **kwargs))


def _embeddings(
    path: str,
    *,
    device: str,
    quantization: str | None,
    cache: Path,
    encode_kwargs: dict[str, Any],
) -> HuggingFaceEmbeddings:
    from langchain_huggingface import HuggingFaceEmbeddings

    return HuggingFaceEmbeddings(
        model_name=path,
        model_kwargs={"device": device},
        encode_kwargs=encode_kwargs,
    )


BACKEND = Backend(
    name="torch",
    extra=None,
    modules=(),
    quantizations={},
    load_cross_encoder=_cross_encoder,
    load_embeddings=_embeddings,
    dtypes=("float32", "bfloat16", "float16"),
)
"""PyTorch through sentence-transformers: the default, on CPU, CUDA or MPS."""
