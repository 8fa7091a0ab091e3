"""Offline calibration pairs for static int8 quantization.

Static int8 (OpenVINO through NNCF) measures the range of every activation on
sample inputs before choosing its int8 scale. sentence-transformers' helper
only calibrates on a Hugging Face Hub dataset (GLUE SST-2 by default), which
cannot be downloaded offline, so the samples are built here from what every
Python installation ships: the standard library's docstrings, real English
prose of mixed length. Deterministic, so the same Python gives the same
quantized model.
"""

from __future__ import annotations

import importlib
import inspect
import random
import warnings
from typing import Any

# Kept apart from the modules benchmarks/_texts.py reads (numpy, scipy, json,
# collections, argparse, email), so benchmarks never score calibration text.
_MODULES = (
    "asyncio",
    "datetime",
    "functools",
    "itertools",
    "logging",
    "os",
    "pathlib",
    "re",
    "subprocess",
    "threading",
    "typing",
    "unittest",
)


def _docstrings() -> list[str]:
    texts: set[str] = set()
    for name in _MODULES:
        module = importlib.import_module(name)
        for attribute in sorted(dir(module)):
            with warnings.catch_warnings():  # typing.io and the like are deprecated
                warnings.simplefilter("ignore", DeprecationWarning)
                value = getattr(module, attribute, None)
            doc = inspect.getdoc(value) or ""
            text = " ".join(doc.split())
            if len(text.split()) >= 20:
                texts.add(text)
    return sorted(texts)


def calibration_pairs(count: int = 300, seed: int = 0) -> list[tuple[str, str]]:
    """(query, passage) pairs of real English text, deterministic for a seed.

    Queries are the first words of other docstrings (short, like search
    queries); passages are whole docstrings (20 to a few hundred words).

    Args:
        count: Pairs wanted; fewer come back if the docstrings run out.
        seed: Shuffling seed.

    Returns:
        The pairs.
    """
    texts = _docstrings()
    random.Random(seed).shuffle(texts)
    pairs = []
    for i, passage in enumerate(texts[:count]):
        query = " ".join(texts[(i * 7 + 1) % len(texts)].split()[:10])
        pairs.append((query, passage))
    return pairs


def calibration_inputs(model: Any, names: set[str]) -> list[dict[str, Any]]:
    """Tokenized calibration samples: pairs for a cross-encoder, else passages.

    A causal-LM reranker (a `LogitScore` module) is fed its pairs as it reads
    them, through sentence-transformers' own preprocessing (the chat
    template), so the activations measured are the ones it will see. A graph
    that takes `position_ids` gets them as optimum computes them at inference
    (positions of the attended tokens, 1 where padded).

    Args:
        model: A sentence-transformers `CrossEncoder` (tokenizes each pair) or
            `SentenceTransformer` (tokenizes each passage).
        names: The input names the quantized graph takes; other tokenizer
            outputs are dropped.

    Returns:
        One dict of numpy arrays per sample, keyed by input name.
    """
    import numpy as np
    from sentence_transformers import CrossEncoder

    pair_model = isinstance(model, CrossEncoder)
    templated = pair_model and any(
        type(module).__name__ == "LogitScore" for module in model
    )
    samples = []
    for query, passage in calibration_pairs():
        if templated:
            features = model.preprocess([(query, passage)])
            encoded = {
                key: value.numpy()
                for key, value in features.items()
                if hasattr(value, "numpy")
            }
        else:
            texts = (query, passage) if pair_model else (passage,)
            encoded = model.tokenizer(
                *texts,
                truncation=True,
                max_length=model.max_seq_length,
                return_tensors="np",
            )
        sample = {k: v for k, v in encoded.items() if k in names}
        if "position_ids" in names and "position_ids" not in sample:
            mask = sample["attention_mask"]
            sample["position_ids"] = np.where(mask == 1, np.cumsum(mask, -1) - 1, 1)
        samples.append(sample)
    return samples
