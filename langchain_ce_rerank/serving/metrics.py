"""Prometheus metrics of one `ce-rerank serve` app, on a registry of its own.

Each app gets its own `CollectorRegistry` (never the process-global one), so
two apps in one process (tests, or a server beside other instrumented code)
never share or clash over counters.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from langchain_ce_rerank.engine.cache import CacheInfo
from langchain_ce_rerank.optional import require

if TYPE_CHECKING:
    from prometheus_client.core import Metric

__all__ = [
    "CONTENT_TYPE",
    "LATENCY_BUCKETS",
    "SERIES",
    "SIZE_BUCKETS",
    "ServeMetrics",
    "require_prometheus",
]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The Prometheus text exposition format."""

LATENCY_BUCKETS = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
    10.0, 30.0, 60.0,
)  # fmt: skip
SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096)

SERIES: dict[str, str] = {
    "ce_rerank_requests": "Rerank requests answered, by HTTP status.",
    "ce_rerank_requests_in_flight": "Rerank requests received and not yet answered.",
    "ce_rerank_request_seconds": (
        "Time from receiving a rerank request to answering it."
    ),
    "ce_rerank_pairs_scored": "(query, document) pairs scored (cache hits included).",
    "ce_rerank_batch_pairs": "Pairs per model call (one coalesced batch).",
    "ce_rerank_batch_requests": "Requests coalesced into one model call.",
    "ce_rerank_model_seconds": "Time of one model call (one batch).",
}
"""The series both server doors record, by name: their help text.

`ce-rerank serve` shows them on its own `/metrics`; Ray Serve exports them
through Ray's metrics endpoint, as Ray prefixes them (`ray_ce_rerank_...`).
"""


def require_prometheus() -> None:
    """Raise an ImportError naming the `[serve]` extra without prometheus-client."""
    require("prometheus_client", extra="serve", feature="ce-rerank serve")


class _CacheCollector:
    """Reads the engine's score cache counters at scrape time."""

    def __init__(self, cache_info: Callable[[], CacheInfo]) -> None:
        self._cache_info = cache_info

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        info = self._cache_info()
        yield CounterMetricFamily(
            "ce_rerank_cache_hits",
            "Pairs answered from the score cache without the model.",
            value=info.hits,
        )
        yield CounterMetricFamily(
            "ce_rerank_cache_misses",
            "Pairs looked up in the score cache and not found.",
            value=info.misses,
        )
        yield GaugeMetricFamily(
            "ce_rerank_cache_entries", "Scores held in the cache.", value=info.currsize
        )


class ServeMetrics:
    """The counters and histograms `/metrics` shows.

    Example:
        ```python
        from langchain_ce_rerank.engine.cache import CacheInfo
        from langchain_ce_rerank.serving.metrics import ServeMetrics

        metrics = ServeMetrics(lambda: CacheInfo(0, 0, 10, 0))
        metrics.requests.labels(status="200").inc()
        text = metrics.render().decode()
        print([line for line in text.splitlines() if line.startswith("ce_rerank_req")])
        ```
    """

    def __init__(self, cache_info: Callable[[], CacheInfo]) -> None:
        """Create the metrics on a fresh registry.

        Args:
            cache_info: The engine's `cache_info`, read at each scrape.
        """
        require_prometheus()
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        registry = self.registry
        self.requests = Counter(
            "ce_rerank_requests",
            SERIES["ce_rerank_requests"],
            ["status"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "ce_rerank_requests_in_flight",
            SERIES["ce_rerank_requests_in_flight"],
            registry=registry,
        )
        self.pairs = Counter(
            "ce_rerank_pairs_scored",
            SERIES["ce_rerank_pairs_scored"],
            registry=registry,
        )
        self.batch_pairs = Histogram(
            "ce_rerank_batch_pairs",
            SERIES["ce_rerank_batch_pairs"],
            buckets=SIZE_BUCKETS,
            registry=registry,
        )
        self.batch_requests = Histogram(
            "ce_rerank_batch_requests",
            SERIES["ce_rerank_batch_requests"],
            buckets=SIZE_BUCKETS,
            registry=registry,
        )
        self.queue_wait = Histogram(
            "ce_rerank_queue_wait_seconds",
            "Time a request waited before its batch reached the model.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.model_time = Histogram(
            "ce_rerank_model_seconds",
            SERIES["ce_rerank_model_seconds"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.request_time = Histogram(
            "ce_rerank_request_seconds",
            SERIES["ce_rerank_request_seconds"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.queued_pairs = Gauge(
            "ce_rerank_queued_pairs",
            "(query, document) pairs waiting for the model (a scaling signal).",
            registry=registry,
        )
        self.abandoned = Counter(
            "ce_rerank_requests_abandoned",
            "Queued requests dropped unscored because their caller went away.",
            registry=registry,
        )
        self.ready = Gauge(
            "ce_rerank_model_ready",
            "1 once the model is loaded.",
            registry=registry,
        )
        registry.register(_CacheCollector(cache_info))

    def request_started(self) -> None:
        """A rerank request arrived (`RequestMetrics`)."""
        self.in_flight.inc()

    def request_finished(self, status: int, seconds: float) -> None:
        """A rerank request was answered (`RequestMetrics`)."""
        self.in_flight.dec()
        self.requests.labels(status=str(status)).inc()
        self.request_time.observe(seconds)

    def batch_scored(self, pairs: int, requests: int, seconds: float) -> None:
        """One model call scored `pairs` pairs of `requests` requests."""
        self.model_time.observe(seconds)
        self.batch_pairs.observe(pairs)
        self.batch_requests.observe(requests)
        self.pairs.inc(pairs)

    def render(self) -> bytes:
        """Every metric in the Prometheus text format."""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
