"""Message templates in the `loyalty` table. Every call takes the tenant.

    <tid>#templates / template#<id>   a template: name, channel, subject, body; version, created_at

One partition per tenant (tens of templates), so the list is one query.
Changes are conditional on the version read, so two admins editing one
template never silently overwrite each other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.exceptions import DoesNotExist

from chalicelib.storage import pagination
from chalicelib.storage.documents.template import TemplateDoc
from chalicelib.storage.tables import LoyaltyRecord
from chalicelib.storage.transactions import Tx

TEMPLATE_KIND = "template"


def templates_pk(tenant_id: str) -> str:
    return f"{tenant_id}#templates"


def _sk(template_id: str) -> str:
    return f"template#{template_id}"


def _as_dict(rec: LoyaltyRecord) -> dict[str, Any]:
    """The stored template (checked against its model) with `id`, `version` and `updated_at` from the record."""
    doc = TemplateDoc.of(rec.doc).dump()
    return {**doc, "id": rec.sk.split("#", 1)[1], "version": int(rec.version), "updated_at": rec.at}


def get(tenant_id: str, template_id: str) -> dict[str, Any] | None:
    """The template's doc with `id`, `version` and `updated_at`, or None."""
    try:
        rec = LoyaltyRecord.get(templates_pk(tenant_id), _sk(template_id), consistent_read=True)
    except DoesNotExist:
        return None
    return _as_dict(rec)


def add(tx: Tx, tenant_id: str, template_id: str, doc: dict[str, Any], at: datetime) -> None:
    """A new template; fails the transaction if the id is taken."""
    tx.save(LoyaltyRecord(templates_pk(tenant_id), _sk(template_id), kind=TEMPLATE_KIND, doc=doc, version=1, at=at),
            condition=LoyaltyRecord.pk.does_not_exist())


def replace(tx: Tx, tenant_id: str, template_id: str, doc: dict[str, Any], version: int, at: datetime) -> None:
    """Replace a template read at `version`; fails the transaction if it changed since."""
    tx.save(LoyaltyRecord(templates_pk(tenant_id), _sk(template_id), kind=TEMPLATE_KIND, doc=doc,
                          version=version + 1, at=at), condition=LoyaltyRecord.version == version)


def list_page(tenant_id: str, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """The tenant's templates by id."""
    pk = templates_pk(tenant_id)
    records, next_cursor = pagination.page_of(
        lambda size, start: LoyaltyRecord.query(pk, LoyaltyRecord.sk.startswith("template#"), limit=size,
                                                page_size=size, last_evaluated_key=start, consistent_read=True),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=pk, key_attrs=("pk", "sk"),
    )
    return [_as_dict(r) for r in records], next_cursor
