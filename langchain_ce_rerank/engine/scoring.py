"""Scoring mechanics: loading a model, feeding it pairs, and activation.

How the engine drives a model once it has one: pairs go in one length-sorted
stream, raw scores come back in input order (checked finite: `engine.finite`),
and `activation` maps them.
`Reranker` adds the cache, de-duplication and windows around these.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeAlias

from langchain_ce_rerank.engine.finite import require_finite
from langchain_ce_rerank.engine.instructions import scorer_keywords
from langchain_ce_rerank.engine.protocols import CrossEncoderLike, PairScorer
from langchain_ce_rerank.models import load_cross_encoder, model_lock

__all__ = [
    "LoadedModel",
    "Loader",
    "activate",
    "default_batch_size",
    "default_loader",
    "in_input_order",
    "length_order",
    "predict",
]

LoadedModel: TypeAlias = CrossEncoderLike | PairScorer
Loader: TypeAlias = Callable[..., LoadedModel]


def default_batch_size(model: object) -> int:
    """4 pairs a batch on CPU, 32 on an accelerator (see `batch_size`)."""
    device = str(getattr(model, "device", "cpu"))
    return 4 if device.startswith("cpu") else 32


def _sigmoid(value: float) -> float:
    # Split by sign so large logits of either sign never overflow exp().
    if value >= 0:
        return 1.0 / (1.0 + math.exp(-value))
    exp = math.exp(value)
    return exp / (1.0 + exp)


def default_loader(model: str | Path, **kwargs: Any) -> LoadedModel:
    """`langchain_ce_rerank.models.load_cross_encoder`: shared per process."""
    loaded: LoadedModel = load_cross_encoder(model, **kwargs)
    return loaded


def length_order(pairs: Sequence[tuple[str, str]]) -> list[int]:
    """Indices of `pairs`, shortest pair first."""
    # One length-sorted stream: neighbouring pairs pad to similar lengths.
    return sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))


def in_input_order(order: list[int], raw: Sequence[Any], model: object) -> list[float]:
    """Scores of pairs fed in `order`, put back in input order as floats.

    Args:
        order: The input positions of the pairs, in the order they were fed.
        raw: The model's scores, in that order.
        model: The model or scorer that returned them (named in errors).

    Raises:
        RuntimeError: The model returned a score count other than the pairs'.
        NonFiniteScoreError: A score is NaN, infinite or missing
            (`engine.finite.require_finite`).
    """
    if len(raw) != len(order):
        msg = f"the model returned {len(raw)} scores for {len(order)} pairs"
        raise RuntimeError(msg)
    checked = require_finite(raw, model)
    scores = [0.0] * len(order)
    for position, i in enumerate(order):
        scores[i] = checked[position]
    return scores


def predict(
    model: LoadedModel,
    pairs: list[tuple[str, str]],
    *,
    batch_size: int | None,
    show_progress_bar: bool,
    instruction: str | None = None,
) -> list[float]:
    """Raw model scores for `pairs`, fed to the model shortest first.

    Args:
        model: A loaded cross-encoder or pair scorer.
        pairs: (query, text) pairs.
        batch_size: Pairs per forward pass of a cross-encoder; None picks
            by device (see `batch_size`).
        show_progress_bar: Show sentence-transformers' progress bar.
        instruction: Passed to a cross-encoder as sentence-transformers'
            `prompt`, to a scorer as `instruction=`; None passes nothing
            (the caller has checked that the model takes one).

    Returns:
        One raw score per pair, in input order.

    Raises:
        NonFiniteScoreError: The model returned a NaN or infinite score.
    """
    order = length_order(pairs)
    ordered = [pairs[i] for i in order]
    if isinstance(model, CrossEncoderLike):
        import torch

        # Models are shared per process: every engine holds the model's one lock.
        with model_lock(model):
            raw = model.predict(
                ordered,
                batch_size=batch_size or default_batch_size(model),
                show_progress_bar=show_progress_bar,
                activation_fn=torch.nn.Identity(),
                convert_to_numpy=True,
                **({} if instruction is None else {"prompt": instruction}),
            ).tolist()
    else:
        raw = list(model.score(ordered, **scorer_keywords(instruction)))
    return in_input_order(order, raw, model)


def activate(scores: list[float], activation: str) -> list[float]:
    """`scores` after `activation`: `"sigmoid"` maps each to 0..1, else as is."""
    if activation == "sigmoid":
        return [_sigmoid(value) for value in scores]
    return scores
