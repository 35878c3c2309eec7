"""Prometheus metrics, in a registry per app (several apps in one process, e.g. tests, never clash)."""

from __future__ import annotations


class ServeMetrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "tunesmith_requests",
            "Requests answered, by endpoint, model and HTTP status",
            ["endpoint", "model", "status"],
            registry=r,
        )
        self.prompt_tokens = Counter(
            "tunesmith_prompt_tokens", "Prompt tokens of answered requests", ["model"], registry=r
        )
        self.completion_tokens = Counter("tunesmith_completion_tokens", "Generated tokens", ["model"], registry=r)
        self.alerts = Counter("tunesmith_monitor_alerts", "Monitor alerts", ["monitor", "kind"], registry=r)
        self.redactions = Counter("tunesmith_pii_redactions", "PII spans redacted from answers", registry=r)
        self.latency = Histogram(
            "tunesmith_request_latency_seconds",
            "Time from request to last token",
            ["endpoint"],
            registry=r,
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.batch_size = Histogram(
            "tunesmith_batch_size", "Requests decoded together", registry=r, buckets=(1, 2, 4, 8, 16, 32, 64)
        )
        self.queue_depth = Gauge("tunesmith_queue_depth", "Requests waiting for the model", registry=r)
        self.monitor_gauge = Gauge("tunesmith_monitor_value", "Figures the monitors expose", ["name"], registry=r)

    def render(self, queue_depth: int, gauges: dict[str, float]) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        self.queue_depth.set(queue_depth)
        for name, value in gauges.items():
            self.monitor_gauge.labels(name=name).set(value)
        return generate_latest(self.registry), CONTENT_TYPE_LATEST

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """A sample's current value (0 when absent); for tests and the load bench."""
        got = self.registry.get_sample_value(name, labels or {})
        return float(got) if got is not None else 0.0
