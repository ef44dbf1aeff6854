"""Message templates in the `loyalty` table. Every call takes the tenant.

    <tid>#templates / template#<id>   a template: name, channel, subject, body, blocks; version, created_at
    <tid>#template-test#<person hash> / window#<n>   test sends of one person in one hour (TTL)

One partition per tenant (tens of templates), so the list is one query.
Changes are conditional on the version read, so two admins editing one
template never silently overwrite each other.
"""

from __future__ import annotations

from datetime import datetime

from pynamodb.exceptions import DoesNotExist

from chalicelib.storage import pagination
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.template import TemplateDoc
from chalicelib.storage.pagination import StoredPage
from chalicelib.storage.tables import LoyaltyRecord, count_in_window
from chalicelib.storage.transactions import Tx

TEMPLATE_KIND = "template"


def templates_pk(tenant_id: str) -> str:
    return f"{tenant_id}#templates"


def _sk(template_id: str) -> str:
    return f"template#{template_id}"


def _template(rec: LoyaltyRecord) -> Versioned[TemplateDoc]:
    """The stored template with `template_id` and `updated_at` from the record, and its version."""
    doc = TemplateDoc.of(rec.doc)
    doc.template_id, doc.updated_at = rec.sk.split("#", 1)[1], rec.at
    return Versioned(doc, int(rec.version))


def get(tenant_id: str, template_id: str) -> Versioned[TemplateDoc] | None:
    """The template (with `template_id` and `updated_at`) and its version, or None."""
    try:
        rec = LoyaltyRecord.get(templates_pk(tenant_id), _sk(template_id), consistent_read=True)
    except DoesNotExist:
        return None
    return _template(rec)


def add(tx: Tx, tenant_id: str, template_id: str, doc: TemplateDoc, at: datetime) -> None:
    """A new template; fails the transaction if the id is taken."""
    tx.save(LoyaltyRecord(templates_pk(tenant_id), _sk(template_id), kind=TEMPLATE_KIND, doc=doc.dump(), version=1,
                          at=at), condition=LoyaltyRecord.pk.does_not_exist())


def replace(tx: Tx, tenant_id: str, template_id: str, doc: TemplateDoc, version: int, at: datetime) -> None:
    """Replace a template read at `version`; fails the transaction if it changed since."""
    tx.save(LoyaltyRecord(templates_pk(tenant_id), _sk(template_id), kind=TEMPLATE_KIND, doc=doc.dump(),
                          version=version + 1, at=at), condition=LoyaltyRecord.version == version)


def list_page(tenant_id: str, limit: int, cursor: str | None) -> StoredPage[Versioned[TemplateDoc]]:
    """The tenant's templates by id."""
    pk = templates_pk(tenant_id)
    records, next_cursor = pagination.page_of(
        lambda size, start: LoyaltyRecord.query(pk, LoyaltyRecord.sk.startswith("template#"), limit=size,
                                                page_size=size, last_evaluated_key=start, consistent_read=True),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=pk, key_attrs=("pk", "sk"),
    )
    return StoredPage([_template(r) for r in records], next_cursor)


def count_test_send(tenant_id: str, person_hash: str, window: int, limit: int, expires_at_epoch: int,
                    at: datetime) -> bool:
    """Count one test send of a person in a fixed window; False (nothing counted) once `limit` is reached."""
    return count_in_window(f"{tenant_id}#template-test#{person_hash}", window, "template_test_rate", limit,
                           expires_at_epoch, at)
