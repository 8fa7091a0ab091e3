"""Optional dependencies: one guard that imports one and names its extra.

Each integration (the server, Ray, LlamaIndex, the remote client, the
accelerated backends, the bundled models) lives behind a pip extra and is
imported only when used; if it is missing, the error says what needed it and
the one install line that brings it.
"""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["install_hint", "require"]


def install_hint(extra: str) -> str:
    """The command that installs `extra`: `pip install "langchain-ce-rerank[x]"`.

    Args:
        extra: A pip extra of this package (`serve`, `ray`, `onnx`, ...), or a
            plain package name for a dependency that no extra carries.
    """
    if extra in {"matplotlib", "pandas"}:
        return f"pip install {extra}"
    return f'pip install "langchain-ce-rerank[{extra}]"'


def require(module: str, *, extra: str, feature: str) -> ModuleType:
    """Import `module`, or raise an ImportError naming `feature` and `extra`.

    Args:
        module: The module to import (`"fastapi"`, `"ray.serve"`).
        extra: The pip extra that installs it (see `install_hint`).
        feature: What needs it, as the user would name it
            (`"ce-rerank serve"`, `"EvaluationReport.plot()"`).

    Returns:
        The imported module.

    Raises:
        ImportError: `module` (or something it imports) is not installed.

    Example:
        ```python
        from langchain_ce_rerank.optional import require

        json = require("json", extra="serve", feature="this example")
        try:
            require("no_such_module", extra="serve", feature="ce-rerank serve")
        except ImportError as err:
            print(err)
        ```
    """
    try:
        return importlib.import_module(module)
    except ImportError as err:
        missing = err.name or module
        msg = (
            f"{feature} needs {missing.split('.')[0]}, which is not installed; "
            f"{install_hint(extra)}"
        )
        raise ImportError(msg) from err
