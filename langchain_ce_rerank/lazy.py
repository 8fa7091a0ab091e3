"""Packages whose public names are imported on first use (PEP 562).

`langchain_ce_rerank`, `models` and `store` each list their public names in
one table (name -> submodule) and let `lazy_exports` build the module-level
`__getattr__` and `__dir__`, so importing a package stays cheap (the CLI's
`--help` loads no model library) and the three do it alike.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import Any

__all__ = ["lazy_exports"]


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """A package's `__getattr__` and `__dir__` for its table of public names.

    Args:
        package: The package's `__name__`.
        exports: Public name -> the submodule (relative to `package`) that
            defines it.
        namespace: The package's `globals()`: a name, once imported, is kept
            there, so later lookups skip `__getattr__`.

    Returns:
        `(__getattr__, __dir__)`, to assign at the package's top level.

    Example:
        ```python
        from langchain_ce_rerank.lazy import lazy_exports

        namespace: dict = {}
        getattr_, dir_ = lazy_exports("json", {"JSONDecoder": "decoder"}, namespace)
        print(getattr_("JSONDecoder") is namespace["JSONDecoder"])  # True
        print("JSONDecoder" in dir_())  # True
        ```
    """

    def get_attribute(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            msg = f"module {package!r} has no attribute {name!r}"
            raise AttributeError(msg)
        value = getattr(importlib.import_module(f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def list_names() -> list[str]:
        return sorted([*namespace, *exports])

    return get_attribute, list_names
