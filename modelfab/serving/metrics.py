"""Prometheus metrics of the REST server: requests, latency, errors, per model."""

from __future__ import annotations

import re

_MODEL = re.compile(r"^/v1/models/([^/]+)/predict")


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self.registry = CollectorRegistry()
        self.requests = Counter("modelfab_requests_total", "HTTP requests", ["model", "status"], registry=self.registry)
        self.errors = Counter("modelfab_errors_total", "HTTP requests answered 4xx/5xx", ["model", "status"],
                              registry=self.registry)
        self.latency = Histogram("modelfab_request_seconds", "Request latency", ["model"], registry=self.registry,
                                 buckets=(0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5))

    def observe(self, path: str, status: int, seconds: float, served: dict) -> None:
        m = _MODEL.match(path)
        # label only with names actually served: a path is user input (unbounded label values)
        model = (m.group(1) if m.group(1) in served else "unknown") if m else "-"
        self.requests.labels(model, str(status)).inc()
        if status >= 400:
            self.errors.labels(model, str(status)).inc()
        if m:
            self.latency.labels(model).observe(seconds)

    @property
    def content_type(self) -> str:
        from prometheus_client import CONTENT_TYPE_LATEST

        return CONTENT_TYPE_LATEST

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
