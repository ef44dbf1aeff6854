"""The `members` report: the program's customers who registered in the period, with their personal data.

Personal data, so tenant admins only (base.ADMIN_ONLY), as issue 7 asks: no
customer route with personal fields is open to an agency key either. A customer is a member of
the program when one of their cards is; erased and merged customers are left
out; fields the tenant switched off (minimal-data mode) stay empty even if a
value was stored before the switch. One pass over the scope's customer index
(16 shards); the card links and the personal record are read per customer.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain import reporting
from chalicelib.services.customers import customers
from chalicelib.services.reporting.reports import program_cards
from chalicelib.services.reporting.reports.base import ADMIN_ONLY, ReportContext, ReportType


def rows(ctx: ReportContext) -> Iterator[list[Any]]:
    scope = ctx.tenant_id
    disabled = customers.privacy(ctx.tenant_id).disabled_fields
    start = datetime(ctx.start.year, ctx.start.month, ctx.start.day, tzinfo=UTC)
    end = datetime(ctx.end.year, ctx.end.month, ctx.end.day, tzinfo=UTC)
    for customer_id, doc, cards in program_cards.members(scope, ctx.program.id):
        registered = program_cards.registered(doc)
        if registered is not None and start <= registered < end:
            yield reporting.member_row(customer_id, doc.plain(), customers.person(scope, customer_id).dump(), disabled,
                                       cards)


MEMBERS = ReportType(
    name="members",
    description="The program's customers registered in the period, with personal data (tenant admin only).",
    columns=reporting.MEMBER_COLUMNS,
    rows=rows,
    roles=ADMIN_ONLY,
)
