"""Checks on what callers pass in: the query, texts and the per-call options.

Each raises a clear error naming the bad value, before anything reaches the
model, so every door reports a bad input the same way.
"""

from __future__ import annotations

import math

__all__ = [
    "check_deadline_ms",
    "check_diversity",
    "check_instruction",
    "check_min_probability",
    "check_query",
    "check_text",
    "check_threshold",
    "check_top_n",
]


def check_query(query: object) -> str:
    """Return `query` if it is a non-blank string, else raise a clear error.

    The engine runs it once per query it scores; the FAISS first stage runs
    it on the queries it searches.

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


def check_text(text: object, label: str) -> str:
    """Return `text` if a tokenizer can encode it, else raise a clear error.

    Args:
        text: The query or candidate text.
        label: How to name it in the error, e.g. `"document 3 (id='a')"`.

    Raises:
        TypeError: `text` is not a string.
        ValueError: `text` holds a lone surrogate (not valid Unicode text).
    """
    if not isinstance(text, str):
        msg = f"{label} must be a string, got {type(text).__name__}: {text!r:.80}"
        raise TypeError(msg)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        bad = text[err.start : err.end]
        msg = (
            f"{label} contains a lone surrogate {bad!r} at character {err.start}, "
            "which is not valid Unicode and no tokenizer can encode; clean the "
            "text first, e.g. text.encode('utf-8', 'replace').decode()"
        )
        raise ValueError(msg) from None
    return text


def check_top_n(top_n: object) -> None:
    """Reject a `top_n` that is not None or a positive integer.

    Raises:
        ValueError: `top_n` is below 1 or not an integer.
    """
    if top_n is None:
        return
    if not isinstance(top_n, int) or isinstance(top_n, bool) or top_n < 1:
        msg = f"top_n must be a positive integer or None (keep all), got {top_n!r}"
        raise ValueError(msg)


def check_threshold(threshold: object) -> None:
    """Reject a `score_threshold` that is not None or a number.

    Raises:
        ValueError: `threshold` is not a real number (or is NaN).
    """
    if threshold is None:
        return
    if (
        not isinstance(threshold, int | float)
        or isinstance(threshold, bool)
        or math.isnan(threshold)
    ):
        msg = f"score_threshold must be a number or None, got {threshold!r}"
        raise ValueError(msg)


def check_min_probability(value: object) -> None:
    """Reject a `min_probability` that is not None or a number in [0, 1].

    Raises:
        ValueError: `value` is not a real number from 0 to 1.
    """
    if value is None:
        return
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not 0.0 <= value <= 1.0
    ):
        msg = (
            "min_probability must be a probability from 0 to 1 or None (no cut), "
            f"got {value!r}"
        )
        raise ValueError(msg)


def check_diversity(diversity: object) -> None:
    """Reject a `diversity` that is not a number from 0 (off) to 1.

    Raises:
        ValueError: `diversity` is not a number in [0, 1].
    """
    if (
        not isinstance(diversity, int | float)
        or isinstance(diversity, bool)
        or not 0.0 <= diversity <= 1.0
    ):
        msg = (
            "diversity must be a number from 0 (off) to 1 (only avoid "
            f"repetition), got {diversity!r}; 0.3 to 0.5 is a usual trade-off"
        )
        raise ValueError(msg)


def check_deadline_ms(deadline_ms: object) -> None:
    """Reject a `deadline_ms` that is not None or a positive number.

    Raises:
        ValueError: `deadline_ms` is not a finite number above 0, nor None.
    """
    if deadline_ms is None:
        return
    if (
        not isinstance(deadline_ms, int | float)
        or isinstance(deadline_ms, bool)
        or not math.isfinite(deadline_ms)
        or deadline_ms <= 0
    ):
        msg = (
            "deadline_ms must be a number of milliseconds above 0, or None for "
            f"no deadline, got {deadline_ms!r}"
        )
        raise ValueError(msg)


def check_instruction(instruction: object, parameter: str = "instruction") -> None:
    """Raise unless `instruction` is None or text with something in it.

    Args:
        instruction: The value given.
        parameter: How to name it in the error.

    Raises:
        TypeError: Not a string (nor None).
        ValueError: Empty or only whitespace.
    """
    if instruction is None:
        return
    if not isinstance(instruction, str):
        msg = (
            f"{parameter} must be a string or None, got "
            f"{type(instruction).__name__}: {instruction!r:.80}"
        )
        raise TypeError(msg)
    if not instruction.strip():
        msg = (
            f"{parameter} is empty or only whitespace ({instruction!r}); pass the "
            "task text, or None for the model's own default"
        )
        raise ValueError(msg)
