"""Raw scores are finite numbers, or scoring fails saying which model and dtype.

Every raw score the engine gets back passes through `require_finite` once,
before it is cached, activated or ranked: the scores of a local model's
`predict` and of a scorer's `score`/`ascore` (`scoring.in_input_order`), and
those of a deadline scorer's `score_within` (`DeadlinePlan.record`). A NaN
or infinite score is never returned, nor a `None` where a number was
promised: the batch raises `NonFiniteScoreError`, naming the model, its
backend, dtype and device, and what to change. Models fine-tuned in float32
can overflow in float16 (sentence-transformers#3233), so a float16 model is
told to load in bfloat16 (float32's range in half the memory) or float32.

Example:
    ```python
    from langchain_ce_rerank.engine.finite import require_finite

    print(require_finite([1.5, -2.0], "my-scorer"))  # [1.5, -2.0]
    ```
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from langchain_ce_rerank.errors import NonFiniteScoreError

__all__ = ["describe_model", "model_dtype", "require_finite"]


def model_dtype(model: object) -> str | None:
    """The precision a loaded sentence-transformers model runs in (`"float16"`).

    None for a scorer that is not one (a remote or custom scorer). The onnx
    and openvino backends run their exports in float32 (the only dtype they
    offer; int8 quantization is a separate setting).
    """
    backend = getattr(model, "backend", None)
    if isinstance(backend, str) and backend != "torch":
        return "float32"
    try:
        dtype = getattr(model, "dtype", None)
    except Exception:  # a property that fails off the torch backend
        return None
    name = str(dtype) if dtype is not None else ""
    return name.removeprefix("torch.") if name.startswith("torch.") else None


def describe_model(model: object) -> str:
    """How the error names `model`: its name, backend, dtype and device.

    A sentence-transformers model says `'<folder or id>' (torch backend,
    float16 on cuda:0)`; any other scorer its class and, when it has one,
    its `model`/`model_name` and `url` (a `RemoteCrossEncoder`).
    """
    if isinstance(model, str):
        return model
    transformer = getattr(model, "transformers_model", None)
    source = getattr(transformer, "name_or_path", None) or getattr(
        getattr(transformer, "config", None), "_name_or_path", None
    )
    backend = getattr(model, "backend", None)
    if isinstance(backend, str) and isinstance(source, str):
        dtype = model_dtype(model) or "unknown precision"
        device = getattr(model, "device", None)
        where = f" on {device}" if device is not None else ""
        return f"model {source!r} ({backend} backend, {dtype}{where})"
    kind = type(model)
    name = f"{kind.__module__}.{kind.__qualname__}"
    details = [
        f"{attribute}={value!r}"
        for attribute in ("model", "model_name", "url")
        if isinstance(value := getattr(model, attribute, None), str) and value
    ]
    return f"scorer {name}" + (f" ({', '.join(details)})" if details else "")


def _remedy(dtype: str | None) -> str:
    if dtype == "float16":
        return (
            "float16 overflows in some fine-tuned models "
            "(sentence-transformers#3233): load it with dtype='bfloat16' "
            "(float32's range, on a GPU) or dtype='float32'"
        )
    if dtype == "bfloat16":
        return "load it with dtype='float32' to see whether precision is the cause"
    if dtype is not None:
        return (
            f"it ran in {dtype}, so the weights themselves produce them: check "
            "the model files (a diverged or corrupted checkpoint)"
        )
    return (
        "a scorer must return one finite number per pair; check the scorer "
        "or the server behind it"
    )


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:] + "."


def require_finite(raw: Sequence[object], model: object) -> list[float]:
    """`raw` as plain floats, or an error if any is NaN, infinite or missing.

    Args:
        raw: One batch's raw scores, as the model returned them (numpy
            floats, Python floats, `None` for a score that is missing).
        model: The model or scorer that returned them, or its description,
            for the message.

    Returns:
        The scores as Python floats, in the same order.

    Raises:
        NonFiniteScoreError: Some score is NaN, infinite or not a number;
            the message names the model, its dtype and what to do.
    """
    scores: list[float] = []
    nan = inf = 0
    for value in raw:
        try:
            score = float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            score = math.nan
        if math.isnan(score):
            nan += 1
        elif math.isinf(score):
            inf += 1
        scores.append(score)
    if not nan and not inf:
        return scores
    described = describe_model(model)
    dtype = model_dtype(model)
    counts = " and ".join(
        part
        for part in (
            f"{nan} NaN or missing" if nan else "",
            f"{inf} infinite" if inf else "",
        )
        if part
    )
    msg = (
        f"{described} returned {counts} score(s) among the {len(scores)} of "
        f"this batch; no scores were returned for it. {_sentence(_remedy(dtype))}"
    )
    raise NonFiniteScoreError(
        msg, model=described, dtype=dtype, nan=nan, inf=inf, total=len(scores)
    )
