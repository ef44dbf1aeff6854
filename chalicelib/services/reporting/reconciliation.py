"""Reconciliation: every card's balance against its ledger, for one owner or all of them.

Run by operators (`python -m chalicelib.cli reconcile`), after the fault
tests and after the load test. The rules are in domain.reconciliation; this
module only gathers each card's rows (storage.loyalty.card_rows).
"""

from __future__ import annotations

from typing import Any

from chalicelib.domain.reconciliation import Mismatch, ReconciliationReport, check_card
from chalicelib.storage import loyalty

__all__ = ["Mismatch", "ReconciliationReport", "reconcile"]


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
