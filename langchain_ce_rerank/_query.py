"""Validation of the query text shared by the retriever and the compressor."""

from __future__ import annotations


def check_query(query: object) -> str:
    """Return `query` if it is a non-blank string, else raise a clear error.

    Raises:
        TypeError: `query` is not a string.
        ValueError: `query` is empty or only whitespace.
    """
    if not isinstance(query, str):
        msg = f"query must be a string, got {type(query).__name__}: {query!r}"
        raise TypeError(msg)
    if not query.strip():
        msg = f"query is empty or only whitespace ({query!r}); pass the question text"
        raise ValueError(msg)
    return query
