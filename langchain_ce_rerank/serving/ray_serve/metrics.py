"""The server series on Ray Serve: recorded with Ray Serve's own metrics.

The same names and help texts as `ce-rerank serve`'s `/metrics`
(`serving.metrics.SERIES`), recorded with `ray.serve.metrics`, so Ray adds
its deployment, replica and application tags and exports them through Ray's
metrics endpoint (as `ray_ce_rerank_...`), where a Ray cluster's Prometheus
already scrapes.
"""

from __future__ import annotations

from ray.serve import metrics

from langchain_ce_rerank.serving.metrics import LATENCY_BUCKETS, SERIES, SIZE_BUCKETS

__all__ = ["RayIngressMetrics", "RayReplicaMetrics"]


class RayIngressMetrics:
    """The ingress's request series (`RequestMetrics`): by status, in flight, time.

    Made inside the ingress replica, so Ray tags each with it.
    """

    def __init__(self) -> None:
        name = "ce_rerank_requests"
        self._requests = metrics.Counter(name, SERIES[name], tag_keys=("status",))
        name = "ce_rerank_requests_in_flight"
        self._in_flight = metrics.Gauge(name, SERIES[name])
        self._count = 0
        name = "ce_rerank_request_seconds"
        self._seconds = metrics.Histogram(
            name, SERIES[name], boundaries=list(LATENCY_BUCKETS)
        )

    def request_started(self) -> None:
        """A rerank request arrived."""
        self._count += 1
        self._in_flight.set(self._count)

    def request_finished(self, status: int, seconds: float) -> None:
        """A rerank request was answered with `status` after `seconds`."""
        self._count -= 1
        self._in_flight.set(self._count)
        self._requests.inc(tags={"status": str(status)})
        self._seconds.observe(seconds)


class RayReplicaMetrics:
    """A scoring replica's model-call series: pairs, batch sizes, model time."""

    def __init__(self) -> None:
        name = "ce_rerank_pairs_scored"
        self._pairs = metrics.Counter(name, SERIES[name])
        name = "ce_rerank_batch_pairs"
        self._batch_pairs = metrics.Histogram(
            name, SERIES[name], boundaries=list(SIZE_BUCKETS)
        )
        name = "ce_rerank_batch_requests"
        self._batch_requests = metrics.Histogram(
            name, SERIES[name], boundaries=list(SIZE_BUCKETS)
        )
        name = "ce_rerank_model_seconds"
        self._model_seconds = metrics.Histogram(
            name, SERIES[name], boundaries=list(LATENCY_BUCKETS)
        )

    def batch_scored(self, pairs: int, requests: int, seconds: float) -> None:
        """One model call scored `pairs` pairs of `requests` requests."""
        self._pairs.inc(pairs)
        self._batch_pairs.observe(pairs)
        self._batch_requests.observe(requests)
        self._model_seconds.observe(seconds)
