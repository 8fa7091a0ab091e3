"""The floating-point precision a cross-encoder runs in (`dtype=`), and its rules.

`dtype` is `"float32"` (the default), `"bfloat16"` or `"float16"`. It is given
to sentence-transformers the way it documents (`CrossEncoder(model_kwargs=
{"dtype": torch.bfloat16})`), so the weights are loaded in that precision:
float32 by default, also for a model saved in half precision (which
transformers would otherwise keep, slowly, on CPU). It only means something
for the torch backend: the onnx and openvino exports here run in float32
(their speed-up is `quantization="int8"`).

Half precision is refused where it is slower or makes no sense, checked
cheaply (no torch import) once the device is known. Measured with
`benchmarks/dtype.py` on this project's 2-core AMD EPYC (AVX-512 with
avx512_bf16, no AMX), MiniLM-L6 stand-in, torch (benchmarks/README.md):

- float16 on CPU: refused, 2.3x slower than float32 at 100 candidates
  (2.6x at 20): CPUs have no float16 matrix units here;
- bfloat16 on CPU: allowed where the processor has bfloat16 instructions
  (`avx512_bf16` or `amx_bf16`), where it was 1.5x faster at 100 candidates
  (1.2x at 20) with Spearman 0.9994 and the same top 5 as float32; refused
  on other processors, whose bfloat16 is emulated (see `CPU_MEASURED`);
- with `backend="onnx"` or `"openvino"`: any dtype but float32.

On CUDA (and MPS) every dtype is allowed; float16 can overflow in models
fine-tuned in float32 (sentence-transformers#3233), which the engine turns
into a clear error rather than NaN scores (`engine.finite`).

Example:
    ```python
    from langchain_ce_rerank.models.precision import check_dtype

    check_dtype("bfloat16", device="cuda", backend="torch")  # fine
    try:
        check_dtype("float16", device="cpu", backend="torch")
    except ValueError as err:
        print(err)  # dtype='float16' on device='cpu' is refused: ...
    ```
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from langchain_ce_rerank.models.backends import BACKENDS, get_backend

if TYPE_CHECKING:
    import torch

__all__ = [
    "BF16_CPU_FLAGS",
    "CPU_MEASURED",
    "DEFAULT_DTYPE",
    "DTYPES",
    "Dtype",
    "check_dtype",
    "cpu_flags",
    "torch_dtype",
    "with_dtype",
]

Dtype = Literal["float32", "bfloat16", "float16"]
"""What `dtype=` accepts."""

DTYPES: tuple[Dtype, ...] = ("float32", "bfloat16", "float16")
"""Every dtype, in the order messages list them."""

DEFAULT_DTYPE: Dtype = "float32"
"""The dtype used when none is given."""

BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
"""CPU flags (Linux `/proc/cpuinfo`) of processors with bfloat16 instructions,
on which bfloat16 is allowed on CPU."""

CPU_MEASURED: Mapping[str, str] = {
    "float16": (
        "it measured 2.3x slower than float32 on CPU (benchmarks/dtype.py, "
        "100 candidates)"
    ),
    "bfloat16": (
        "this processor has no bfloat16 instructions (avx512_bf16 or "
        "amx_bf16), so bfloat16 is emulated; it is allowed on CPUs that have "
        "them, where it measured 1.5x faster than float32"
    ),
}
"""Why each half precision is refused on CPU, quoted in the error."""

_KWARG_NAMES = ("dtype", "torch_dtype")


@functools.cache
def cpu_flags() -> frozenset[str]:
    """This processor's feature flags from `/proc/cpuinfo`; empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def _device_kind(device: str) -> str:
    """`"cuda"` for `"cuda:1"`; the part before any index."""
    return device.split(":", 1)[0].strip().lower()


def check_dtype(
    dtype: str,
    *,
    device: str | None,
    backend: str,
    cli: bool = False,
    flags: frozenset[str] | None = None,
) -> None:
    """Raise unless `dtype` makes sense on `device` with `backend`.

    Args:
        dtype: One of `DTYPES`.
        device: A torch device string, or None when it is not chosen yet
            (then only the backend rule is checked).
        backend: A backend name (`"torch"`, `"onnx"`, `"openvino"`).
        cli: Word the error in `ce-rerank`'s flags (`--dtype`, `--device`,
            `--backend`) instead of the library's parameters.
        flags: The processor's feature flags; None reads this one's
            (`cpu_flags()`).

    Raises:
        ValueError: An unknown dtype; half precision with an exporting
            backend; half precision on CPU. The message names the dtype, the
            device or backend, and what to use instead.
    """
    said = _Words(cli)
    if dtype not in DTYPES:
        listed = ", ".join(repr(name) for name in DTYPES)
        msg = f"{said.dtype(dtype)} is unknown; choose one of {listed}"
        raise ValueError(msg)
    if dtype == DEFAULT_DTYPE:
        return
    if dtype not in get_backend(backend).dtypes:
        able = " or ".join(
            said.backend(b.name) for b in BACKENDS.values() if dtype in b.dtypes
        )
        msg = (
            f"{said.dtype(dtype)} needs {able}: {said.backend(backend)} runs "
            f"its export in float32, and its speed-up on CPU is int8 "
            f"({said.int8}); leave {said.dtype_name} at 'float32' with "
            f"{said.backend(backend)}"
        )
        raise ValueError(msg)
    if device is None or _device_kind(device) != "cpu":
        return
    native_bf16 = bool(BF16_CPU_FLAGS & (cpu_flags() if flags is None else flags))
    if dtype == "float16" or not native_bf16:
        msg = (
            f"{said.dtype(dtype)} on {said.device(device)} is refused: "
            f"{CPU_MEASURED[dtype]}. Use {said.dtype('float32')} on CPU (the "
            f"default), {said.backend('openvino')} with {said.int8} for "
            f"speed on CPU, or {said.dtype(dtype)} on a GPU "
            f"({said.device('cuda')})"
        )
        raise ValueError(msg)


def torch_dtype(dtype: str) -> torch.dtype:
    """The `torch.dtype` called `dtype` (`"bfloat16"` -> `torch.bfloat16`)."""
    import torch

    found = getattr(torch, dtype)
    if not isinstance(found, torch.dtype):  # pragma: no cover - DTYPES are dtypes
        msg = f"torch has no dtype {dtype!r}"
        raise TypeError(msg)
    return found


def with_dtype(dtype: str, kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments for `CrossEncoder(...)` that load the weights in `dtype`.

    sentence-transformers hands `model_kwargs` to transformers'
    `from_pretrained`, whose `dtype` sets the precision; without one,
    transformers keeps the precision the model was saved in.

    Args:
        dtype: One of `DTYPES`.
        kwargs: The other `CrossEncoder(...)` keyword arguments (the
            engine's `model_kwargs` setting).

    Returns:
        A copy with `model_kwargs["dtype"]` set to the torch dtype.

    Raises:
        ValueError: `kwargs["model_kwargs"]` already names a precision
            (`dtype` or `torch_dtype`): say it once, with `dtype=`.
    """
    inner = dict(kwargs.get("model_kwargs") or {})
    given = [f"{{{name!r}: ...}}" for name in _KWARG_NAMES if name in kwargs]
    given += [
        f"{{'model_kwargs': {{{name!r}: ...}}}}"
        for name in _KWARG_NAMES
        if name in inner
    ]
    if given:
        msg = (
            f"model_kwargs={given[0]} sets the precision; pass dtype='float32' | "
            "'bfloat16' | 'float16' instead (it is checked against the device "
            "and backend)"
        )
        raise ValueError(msg)
    return {**kwargs, "model_kwargs": {**inner, "dtype": torch_dtype(dtype)}}


class _Words:
    """How a setting is spelt at the entry point the user called."""

    def __init__(self, cli: bool) -> None:
        self.cli = cli
        self.dtype_name = "--dtype" if cli else "dtype"
        self.int8 = "--int8" if cli else "quantization='int8'"

    def dtype(self, value: str) -> str:
        return f"--dtype {value}" if self.cli else f"dtype={value!r}"

    def device(self, value: str) -> str:
        return f"--device {value}" if self.cli else f"device={value!r}"

    def backend(self, value: str) -> str:
        return f"--backend {value}" if self.cli else f"backend={value!r}"
