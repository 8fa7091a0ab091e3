"""Optional dependencies: one guard that imports one and names its extra.

Each integration (the server, Ray, LlamaIndex, the remote client, the
accelerated backends, the bundled models) lives behind a pip extra and is
imported only when used; if it is missing, the error says what needed it and
the one install line that brings it.
"""

from __future__ import annotations

import importlib
import json
from importlib import metadata
from types import ModuleType
from urllib.parse import urlparse
from urllib.request import url2pathname

__all__ = ["install_hint", "require"]

_DISTRIBUTION = "langchain-ce-rerank"


def install_hint(extra: str) -> str:
    """The command that adds `extra` to this environment, as it was installed.

    The package is installed from a clone or a Git URL (see the README,
    Install), so the line names where this copy came from, as pip recorded it
    (PEP 610's `direct_url.json`): `pip install -e "/path/to/clone[serve]"`
    after `pip install -e .` in a clone (as `make` does);
    `pip install "langchain-ce-rerank[serve] @ git+URL"` after a Git URL;
    `pip install "langchain-ce-rerank[serve]"` from a package index. A source
    tree that was never installed gets `pip install -e ".[serve]"`, to run in
    the clone.

    Args:
        extra: A pip extra of this package (`serve`, `ray`, `onnx`, ...), or a
            plain package name for a dependency that no extra carries.

    Returns:
        One shell command.

    Example:
        ```python
        from langchain_ce_rerank.optional import install_hint

        print(install_hint("serve"))  # e.g. pip install -e "/src/clone[serve]"
        print(install_hint("pandas"))  # pip install pandas
        ```
    """
    if extra in {"matplotlib", "pandas"}:
        return f"pip install {extra}"
    try:
        recorded = metadata.distribution(_DISTRIBUTION).read_text("direct_url.json")
        origin = json.loads(recorded) if recorded else {}
    except metadata.PackageNotFoundError:
        return f'pip install -e ".[{extra}]" (in the {_DISTRIBUTION} clone)'
    except ValueError:  # an unreadable record: say what an index install says
        origin = {}
    url = str(origin.get("url", ""))
    vcs = origin.get("vcs_info", {}).get("vcs")
    if vcs:
        return f'pip install "{_DISTRIBUTION}[{extra}] @ {vcs}+{url}"'
    if "dir_info" in origin and url.startswith("file:"):
        folder = url2pathname(urlparse(url).path)
        editable = "-e " if origin["dir_info"].get("editable") else ""
        return f'pip install {editable}"{folder}[{extra}]"'
    return f'pip install "{_DISTRIBUTION}[{extra}]"'


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
