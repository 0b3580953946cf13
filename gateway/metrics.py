"""Prometheus metrics, one registry per app (never the global one: tests build many apps)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

BREAKER_VALUES = {"closed": 0, "half_open": 1, "open": 2}


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.intake = Counter(
            "gateway_intake_items",
            "Inbound items by source system and result",
            ["system", "result"],
            registry=self.registry,
        )
        self.intake_requests = Counter(
            "gateway_intake_requests",
            "Inbound requests by system and HTTP status",
            ["system", "status"],
            registry=self.registry,
        )
        self.deliveries = Counter(
            "gateway_delivery_attempts",
            "Delivery attempts by destination and outcome",
            ["destination", "outcome"],
            registry=self.registry,
        )
        self.attempt_seconds = Histogram(
            "gateway_attempt_duration_seconds",
            "Duration of delivery attempts",
            ["destination"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
        )
        self.queue_depth = Gauge(
            "gateway_queue_depth", "Deliveries pending or in flight", registry=self.registry
        )
        self.in_flight = Gauge(
            "gateway_in_flight",
            "Attempts in flight by destination",
            ["destination"],
            registry=self.registry,
        )
        self.breaker = Gauge(
            "gateway_breaker_state",
            "Circuit breaker state (0 closed, 1 half-open, 2 open)",
            ["destination"],
            registry=self.registry,
        )
        self.dead = Counter(
            "gateway_dead_letters",
            "Deliveries dead-lettered by destination",
            ["destination"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
