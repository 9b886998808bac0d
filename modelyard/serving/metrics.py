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
        self._version_metrics()

    def _version_metrics(self) -> None:
        """What each version did, by role: `served` (it answered clients: production, or a
        canary's challenger) or `shadow` (the challenger scored a copy nobody saw)."""
        self.version_predictions = Counter(
            "modelyard_version_predictions_total",
            "Texts each version scored, by role (served, shadow)",
            ["version", "role"],
            registry=self.registry,
        )
        self.version_errors = Counter(
            "modelyard_version_errors_total",
            "Texts each version failed on, by role (served, shadow)",
            ["version", "role"],
            registry=self.registry,
        )
        self.version_latency = Histogram(
            "modelyard_version_seconds",
            "Time to score a request (served) or a shadow batch, by version and role",
            ["version", "role"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
        )

    def request(self, route: str, status: int, seconds: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route, str(status)).observe(seconds)

    def scored(self, version: str, role: str, texts: int, seconds: float, failed: bool) -> None:
        """A version scored `texts` texts (or failed on them) in `seconds`, as `role`."""
        (self.version_errors if failed else self.version_predictions).labels(version, role).inc(
            texts
        )
        self.version_latency.labels(version, role).observe(seconds)

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

    def watch_pointer(self, follower: Any) -> None:
        """1 while the followed alias was moved outside ModelYard (the registry names another
        version than the audit trail's last move) and the server serves the recorded one."""
        Gauge(
            "modelyard_registry_tampered",
            "1 while the alias points where the audit trail does not record (not followed)",
            registry=self.registry,
        ).set_function(lambda: float(follower.tampered is not None))

    def watch_rollout(self, challenger: Any, shadow: Any) -> None:
        """The open rollout (challenger version, canary weight) and the shadow queue, read from
        the server's challenger follower and shadow scorer when scraped."""
        Gauge(
            "modelyard_rollout_open",
            "1 while a rollout of the model is open",
            registry=self.registry,
        ).set_function(lambda: float(challenger.rollout is not None))
        Gauge(
            "modelyard_rollout_weight",
            "Share of requests the challenger answers (a canary; 0 in a shadow or none)",
            registry=self.registry,
        ).set_function(lambda: _weight(challenger))
        Gauge(
            "modelyard_challenger_version",
            "The challenger version loaded (0: none)",
            registry=self.registry,
        ).set_function(lambda: _version_number(challenger.current))
        Gauge(
            "modelyard_shadow_queue_depth",
            "Texts waiting for the challenger's shadow scoring",
            registry=self.registry,
        ).set_function(lambda: shadow.depth)
        for name, attribute, text in (
            ("modelyard_shadow_dropped", "dropped", "Shadow texts not scored: the queue was full"),
            ("modelyard_shadow_scored", "scored", "Texts the challenger scored in the shadow"),
        ):
            Gauge(name, text, registry=self.registry).set_function(_reader(shadow, attribute))

    def render(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def _weight(challenger: Any) -> float:
    rollout = challenger.rollout
    return float(rollout.weight) if rollout is not None and challenger.current is not None else 0.0


def _version_number(model: Any) -> float:
    if model is None:
        return 0.0
    return float(model.version) if model.version.isdigit() else -1.0


def _reader(source: object, attribute: str) -> Callable[[], float]:
    """A gauge's reading of `source.attribute` when it is scraped."""
    return lambda: float(getattr(source, attribute))
