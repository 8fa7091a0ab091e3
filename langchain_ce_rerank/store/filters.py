"""Metadata filters: a dict of equalities or a predicate on the metadata."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

MetadataFilter: TypeAlias = Mapping[str, Any] | Callable[[dict[str, Any]], bool]
"""`{"source": "a.md"}` (every key equal; a list value means "any of") or a
callable that takes a document's metadata and returns True to keep it."""

Predicate: TypeAlias = Callable[[dict[str, Any]], bool]


def filter_key(filter: MetadataFilter | None) -> str | None:
    """A dict filter's canonical text (equal filters, equal keys); None else.

    Callables get no key: two calls of one callable may not keep the same
    documents (it can read state that changes). Nor do dicts holding values
    JSON would change (a tuple, an "equals" filter, would read as a list, an
    "any of" filter).
    """
    if not isinstance(filter, Mapping) or not _plain(dict(filter)):
        return None
    try:
        return json.dumps(dict(filter), sort_keys=True, allow_nan=False)
    except ValueError:  # NaN or infinity: no key
        return None


def _plain(value: Any) -> bool:
    """True for JSON data that JSON spells back exactly (no tuples, str keys)."""
    if value is None or isinstance(value, str | int | float):
        return True
    if type(value) is list:
        return all(_plain(item) for item in value)
    if type(value) is dict:
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def to_predicate(filter: MetadataFilter | None) -> Predicate | None:
    """Turn a user filter into a predicate; None means "keep everything".

    Raises:
        TypeError: `filter` is neither a mapping nor a callable.
    """
    if filter is None:
        return None
    if isinstance(filter, Mapping):
        wanted = dict(filter)

        def matches(metadata: dict[str, Any]) -> bool:
            for key, value in wanted.items():
                if key not in metadata:
                    return False
                actual = metadata[key]
                if isinstance(value, list) and not isinstance(actual, list):
                    if actual not in value:
                        return False
                elif actual != value:
                    return False
            return True

        return matches
    if callable(filter):
        return filter
    msg = (
        f"filter must be a dict of metadata values or a callable taking the "
        f"metadata dict, got {type(filter).__name__}: {filter!r}"
    )
    raise TypeError(msg)
