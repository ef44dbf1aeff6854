"""Structured JSON logs and per-tenant metrics (AWS Lambda Powertools).

Metrics are emitted in CloudWatch Embedded Metric Format with a `tenant_id`
dimension, so per-tenant request counts and latency can be metered without
another pipeline.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, single_metric
from aws_lambda_powertools.metrics import MetricUnit

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "loyalty")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Loyalty")

logger = Logger(service=SERVICE)


def record_request_metrics(tenant_id: str | None, route: str, status: int, latency_ms: float) -> None:
    """One EMF document per request: count and latency, dimensioned by tenant and route."""
    with single_metric(name="Requests", unit=MetricUnit.Count, value=1, namespace=NAMESPACE) as metric:
        metric.add_dimension(name="tenant_id", value=tenant_id or "-")
        metric.add_dimension(name="route", value=route)
        metric.add_dimension(name="status_class", value=f"{status // 100}xx")
        metric.add_metric(name="Latency", unit=MetricUnit.Milliseconds, value=round(latency_ms, 2))
