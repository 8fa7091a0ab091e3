"""The timing rules every benchmark uses."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_ms(fn: Callable[[], object], repeats: int = 20) -> float:
    """Median wall time of `fn` in milliseconds over `repeats` calls.

    One untimed warm-up call comes first, so first-call allocations and lazy
    loading are not measured.
    """
    return interleaved_median_ms({"fn": fn}, repeats)["fn"]


def interleaved_median_ms(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    setup: dict[str, Callable[[], object]] | None = None,
) -> dict[str, float]:
    """Median wall time in milliseconds of each of `fns`, timed in rounds.

    Every round calls each function once, the starting one rotating, so a slow
    spell on a shared machine lands on all of them rather than on whichever
    happened to be running; ratios between them are then fairer than those of
    back-to-back medians. Each gets one untimed warm-up call first. `setup`
    maps a name to a function run, untimed, before each call of that one
    (a write whose cost on the next search is what is timed).
    """
    names = list(fns)
    setup = setup or {}
    for name in names:
        if name in setup:
            setup[name]()
        fns[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for round_ in range(repeats):
        start_at = round_ % len(names)
        for name in names[start_at:] + names[:start_at]:
            if name in setup:
                setup[name]()
            start = time.perf_counter()
            fns[name]()
            times[name].append(time.perf_counter() - start)
    return {name: 1000 * statistics.median(t) for name, t in times.items()}
