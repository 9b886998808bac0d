"""Prometheus metrics of one server, in a registry of its own (not the process-global one), so
several apps in one process (tests, workers) never share counters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class ServerMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "modelyard_requests_total",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "modelyard_request_seconds",
            "HTTP request latency by route and status",
            ["route", "status"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )
        self.batch_size = Histogram(
            "modelyard_batch_size",
            "Texts per forward pass",
            registry=self.registry,
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
        )
        self.model_version = Gauge(
            "modelyard_model_version", "The version being served", registry=self.registry
        )
        self.swaps = Counter(
            "modelyard_model_swaps_total", "Model versions switched to", registry=self.registry
        )

    def request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route, str(status)).observe(seconds)

    def model_swapped(self, version: str) -> None:
        self.swaps.inc()
        self.model_version.set(float(version) if version.isdigit() else -1)

    def watch_log(self, predlog: Any) -> None:
        """Queue depth, dropped and written rows, read from the log when scraped."""
        Gauge(
            "modelyard_prediction_log_queue_depth",
            "Predictions waiting for the database",
            registry=self.registry,
        ).set_function(lambda: predlog.depth)
        for name, attribute, text in (
            (
                "modelyard_prediction_log_dropped",
                "dropped",
                "Predictions not logged: the queue was full (database slow or down)",
            ),
            ("modelyard_prediction_log_written", "written", "Predictions written"),
            ("modelyard_prediction_log_failures", "failures", "Failed database writes"),
        ):
            Gauge(name, text, registry=self.registry).set_function(_reader(predlog, attribute))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _reader(source: object, attribute: str) -> Callable[[], float]:
    """A gauge's reading of `source.attribute` when it is scraped."""
    return lambda: float(getattr(source, attribute))
