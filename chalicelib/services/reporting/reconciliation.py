"""Reconciliation: every card's balance against its ledger, for one owner or all of them.

Run nightly (the `nightly_reconciliation` schedule queues one job per card
scope of every active tenant on the jobs queue: each scope is its own Lambda
invocation, and a scope that fails or times out is redelivered by SQS on its
own), by operators (`python -m chalicelib.cli reconcile`), after the fault
tests and after the load test. Each nightly job emits the
`ReconciliationMismatches` metric (an alarm fires on any), and logs every
mismatch. The rules are in domain.reconciliation; this module only gathers
each card's rows (storage.loyalty.card_rows).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aws_lambda_powertools import single_metric
from aws_lambda_powertools.metrics import MetricUnit

from chalicelib.domain.reconciliation import Mismatch, ReconciliationReport, check_card
from chalicelib.observability import NAMESPACE, SERVICE, logger
from chalicelib.services.program import catalog
from chalicelib.settings import settings
from chalicelib.storage import loyalty, queues

__all__ = ["JOB", "METRIC", "Mismatch", "ReconciliationReport", "handle_job", "reconcile", "start_nightly"]

JOB = "reconcile.scope"
METRIC = "ReconciliationMismatches"
"""Mismatches found by one nightly scope job (0 when clean): the alarm in infra/template.py fires above 0."""
METRIC_DIMENSIONS = {"service": SERVICE}
"""The metric's only dimension, which the alarm names too (scopes are in the logs, not dimensions)."""
DIRECTORY_PAGE = 200


def reconcile(scope: str | None = None) -> ReconciliationReport:
    """Check every card of `scope` (a tenant id or `coalition.<id>`; None: every owner) against its ledger."""
    cards: dict[tuple[str, str], tuple[dict[str, Any], int]] = {}
    entries: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for owner, number, sk, doc, version in loyalty.card_rows(scope):
        if sk == loyalty.CARD_SK:
            cards[(owner, number)] = (doc, version)
        else:
            entries.setdefault((owner, number), []).append(doc)
    report = ReconciliationReport()
    for key in sorted(set(cards) | set(entries)):
        card_doc, version = cards.get(key, (None, 0))
        seen, found = check_card(key[0], key[1], card_doc, version, entries.get(key, []))
        report.cards += card_doc is not None
        report.entries += seen
        report.mismatches.extend(found)
    return report


def scopes() -> list[str]:
    """Every active tenant's own card scope and the coalition scopes it is a partner of, each once."""
    found: list[str] = []
    for tenant in catalog.active_tenants(DIRECTORY_PAGE):
        found.extend(scope for scope in catalog.card_scopes(tenant.tenant_id) if scope not in found)
    return found


def start_nightly(at: datetime) -> list[str]:
    """The scheduled entry: queue one reconciliation job per scope; returns the scopes queued."""
    queued = scopes()
    for scope in queued:
        queues.send(settings.jobs_queue, {"job": JOB, "scope": scope, "day": at.date().isoformat()})
    logger.info("nightly reconciliation queued", extra={"scopes": len(queued), "day": at.date().isoformat()})
    return queued


def handle_job(message: dict[str, Any]) -> None:
    """The jobs worker's entry: reconcile one scope, log each mismatch, emit the count (0 included)."""
    scope = str(message["scope"])
    report = reconcile(scope)
    for m in report.mismatches:
        logger.error("reconciliation mismatch", extra={"scope": m.scope, "card": m.number, "field": m.field,
                                                       "card_value": m.card_value, "ledger_value": m.ledger_value})
    with single_metric(name=METRIC, unit=MetricUnit.Count, value=len(report.mismatches),
                       namespace=NAMESPACE, default_dimensions=METRIC_DIMENSIONS) as metric:
        metric.add_metadata(key="scope", value=scope)
    logger.info("scope reconciled", extra={"scope": scope, "cards": report.cards, "entries": report.entries,
                                           "mismatches": len(report.mismatches)})
