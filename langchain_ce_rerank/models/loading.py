"""The steps every loader shares: resolve, build quietly, share; the device."""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TypeVar

from langchain_ce_rerank.errors import ModelNotFoundError
from langchain_ce_rerank.models.families import supported_families
from langchain_ce_rerank.models.hub import quiet_loading
from langchain_ce_rerank.models.registry import shared_model
from langchain_ce_rerank.models.resolve import hf_cache_dir, not_found, resolve_name

__all__ = ["pick_device"]

_T = TypeVar("_T")

_FAMILIES_NOTE = (
    "Supported cross-encoder families: {}; another architecture works when "
    "sentence-transformers loads it as a CrossEncoder."
)


def load_shared(
    model: str | os.PathLike[str],
    factory: Callable[[str], _T],
    *,
    settings: Hashable,
    cross_encoder: bool,
    shared: bool,
) -> _T:
    """Resolve `model`, then build it quietly (or reuse it), with clear errors."""
    name = os.fspath(model)
    path = resolve_name(name, cross_encoder=cross_encoder)

    def build() -> _T:
        try:
            with quiet_loading():
                return factory(path)
        except ModelNotFoundError:
            raise
        except (OSError, ValueError) as err:
            cause = str(err).splitlines()[0] if str(err) else type(err).__name__
            if Path(path).is_dir():
                looked = [f"local folder {path!r} (exists but is not a loadable model)"]
            else:
                looked = [
                    f"Hugging Face cache {hf_cache_dir()!r}",
                    "the Hugging Face Hub",
                ]
            note = _FAMILIES_NOTE.format(supported_families()) if cross_encoder else ""
            raise not_found(name, looked, cause=cause, note=note) from err

    if not shared:
        return build()
    return shared_model((path, settings), build)


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
