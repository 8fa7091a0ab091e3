"""Exceptions raised by `langchain_ce_rerank`.

Each error message says what was wrong, with the offending value, and what to do.
"""

from __future__ import annotations

__all__ = ["ModelNotFoundError", "StoreLoadError"]


class ModelNotFoundError(OSError):
    """A model id or folder could not be resolved to loadable weights.

    The message names the model, every place that was looked in, and how to pass
    a local folder instead. The library never falls back to another model.

    Example:
        ```python
        from langchain_ce_rerank import CrossEncoderCompressor, ModelNotFoundError

        try:
            CrossEncoderCompressor(model="/no/such/folder").load_model()
        except ModelNotFoundError as err:
            print(err)
        ```
    """


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
