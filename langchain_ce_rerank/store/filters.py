"""Metadata filters: a dict of equalities or a predicate on the metadata."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

MetadataFilter: TypeAlias = Mapping[str, Any] | Callable[[dict[str, Any]], bool]
"""`{"source": "a.md"}` (every key equal; a list value means "any of") or a
callable that takes a document's metadata and returns True to keep it."""

Predicate: TypeAlias = Callable[[dict[str, Any]], bool]


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
