"""The inference backends, in one registry.

Each backend is one module here (`pytorch.py`, `openvino.py`, `onnx.py`) that
declares a `Backend` record: its name, pip extra, quantizations and loaders.
`BACKENDS` lists them, and everything else is derived from it: the engine's
settings validation, the loaders' dispatch, the error messages and the CLI's
`--backend` choices. Adding a backend is one new module and one line in
`BACKENDS`.

Importing this package imports no model library (no torch, transformers,
sentence-transformers, numpy, FAISS or LangChain), so the CLI can build its
parser from `BACKEND_NAMES` cheaply; the loaders import what they need.

Example:
    ```python
    from langchain_ce_rerank.models.backends import BACKEND_NAMES, check_options

    print(BACKEND_NAMES)  # ('torch', 'openvino', 'onnx')
    check_options("torch", None)  # fine; quantization="int8" would raise
    ```
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from langchain_ce_rerank.models.backends import onnx, openvino, pytorch
from langchain_ce_rerank.models.backends.base import Backend

__all__ = [
    "BACKENDS",
    "BACKEND_NAMES",
    "DEFAULT_BACKEND",
    "QUANTIZATIONS",
    "Backend",
    "check_options",
    "get_backend",
    "quantization_error",
]

BACKENDS: Mapping[str, Backend] = MappingProxyType(
    {
        backend.name: backend
        for backend in (
            pytorch.BACKEND,
            openvino.BACKEND,  # first after torch: the fastest on CPU
            onnx.BACKEND,
        )
    }
)
"""Every backend by name, in the order help texts and messages list them."""

BACKEND_NAMES: tuple[str, ...] = tuple(BACKENDS)
"""What `backend=` and `--backend` accept."""

DEFAULT_BACKEND = pytorch.BACKEND.name
"""The backend used when none is given."""

QUANTIZATIONS: tuple[str, ...] = tuple(
    dict.fromkeys(
        name for backend in BACKENDS.values() for name in backend.quantizations
    )
)
"""Every quantization some backend offers (`quantization=` also takes None)."""


def _listed(names: tuple[str, ...] | list[str]) -> str:
    return ", ".join(repr(name) for name in names)


def get_backend(name: str) -> Backend:
    """The registered backend called `name`.

    Args:
        name: A backend name, e.g. `"onnx"`.

    Returns:
        Its record.

    Raises:
        ValueError: `name` is not registered; lists the names that are.
    """
    backend = BACKENDS.get(name) if isinstance(name, str) else None
    if backend is None:
        msg = f"backend={name!r} is unknown; choose one of {_listed(BACKEND_NAMES)}"
        raise ValueError(msg)
    return backend


def quantization_error(quantization: str, *, cli: bool = False) -> str:
    """Why the backend chosen cannot give `quantization`, and which ones can.

    Args:
        quantization: The quantization asked for, e.g. `"int8"`.
        cli: Say it in `ce-rerank`'s words (`--int8 needs --backend openvino
            ...`) instead of the library's (`quantization='int8' needs
            backend='openvino' ...`).

    Returns:
        The message, naming every backend that offers `quantization`.
    """
    able = [b for b in BACKENDS.values() if quantization in b.quantizations]
    asked = f"--{quantization}" if cli else f"quantization={quantization!r}"
    if not able:
        return f"{asked} is unknown; choose one of {_listed(QUANTIZATIONS)} or None"
    choices = " or ".join(
        (f"--backend {b.name}" if cli else f"backend={b.name!r}")
        + f" ({b.quantizations[quantization]})"
        for b in able
    )
    return f"{asked} needs {choices}"


def check_options(backend: str, quantization: str | None) -> Backend:
    """The backend for these settings, once they are known to work together.

    Cheap: nothing is imported or loaded, only looked for.

    Args:
        backend: A name in `BACKEND_NAMES`.
        quantization: None or a quantization `backend` offers.

    Returns:
        The backend's record.

    Raises:
        ValueError: An unknown backend, or a quantization the backend lacks;
            the message lists what would work.
        ImportError: The backend's extra is not installed; names it.
    """
    found = get_backend(backend)
    if quantization is not None and quantization not in found.quantizations:
        raise ValueError(quantization_error(quantization))
    found.check_installed()
    return found
