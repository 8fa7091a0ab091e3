"""The one timing rule every benchmark uses."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def median_ms(fn: Callable[[], object], repeats: int = 20) -> float:
    """Median wall time of `fn` in milliseconds over `repeats` calls.

    One untimed warm-up call comes first, so first-call allocations and lazy
    loading are not measured.
    """
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)
