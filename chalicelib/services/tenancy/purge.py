"""Deleting a tenant's data, page by page, resumable: run by the jobs worker."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chalicelib.domain.roles import ScopeKind
from chalicelib.observability import logger
from chalicelib.services.tenancy import keys as key_service
from chalicelib.settings import settings
from chalicelib.storage import assets, audit, directory, identity, loyalty, people, queues
from chalicelib.storage import keys as api_keys
from chalicelib.storage.tables import tenant_partition

PAGE = 200


@dataclass(frozen=True)
class Progress:
    done: bool
    cursor: dict[str, Any] | None = None
    """Which table's scan resumes where: `{"table": "people"|"loyalty"|"files", "key": ...}` (not keyed by
    tenant; the image files are listed by their prefix, so they need no key)."""


def handle_job(message: dict[str, Any]) -> None:
    """One page of a purge job; the rest goes back on the jobs queue with its position, until nothing is left."""
    tenant_id = str(message["tenant_id"])
    progress = purge_tenant_page(tenant_id, cursor=message.get("cursor"))
    if progress.done:
        logger.info("tenant purged", extra={"tenant_id": tenant_id})
    else:
        queues.send(settings.jobs_queue, {**message, "cursor": progress.cursor})


def purge_tenant_page(tenant_id: str, max_items: int | None = None, cursor: dict[str, Any] | None = None) -> Progress:
    """Delete up to `max_items` rows of the tenant; `done` when nothing is left.

    Order: keys and memberships (nothing can authenticate meanwhile), the personal-data
    table, then cards, ledgers, receipts, customers and series, the image files of the
    e-mail library and the member site, the audit trail, then the
    directory, the tenant row last, so an interrupted purge is found and
    resumed by the next message. Refuses a tenant not marked for deletion.
    """
    tenant = directory.get_tenant(tenant_id)
    if tenant is None:
        return Progress(done=True)
    if tenant.status.value != "deleting":
        raise RuntimeError(f"tenant {tenant_id} is not marked for deletion")
    partition = tenant_partition(tenant_id)
    budget = max_items or PAGE
    budget -= api_keys.delete_partition_page(partition, budget)
    if budget > 0:
        budget -= identity.delete_scope_page(ScopeKind.TENANT, tenant_id, budget)  # its people's memberships
    if budget <= 0:
        return Progress(done=False, cursor=cursor)
    table = (cursor or {}).get("table", "people")
    key = (cursor or {}).get("key")
    if table == "people":
        deleted, key, finished = people.delete_tenant_page(tenant_id, budget, key)
        budget -= deleted
        if not finished:
            return Progress(done=False, cursor={"table": "people", "key": key})
        key = None
        if budget <= 0:
            return Progress(done=False, cursor={"table": "loyalty", "key": None})
    if table in ("people", "loyalty"):
        deleted, key, finished = loyalty.delete_tenant_page(tenant_id, budget, key)
        budget -= deleted
        if not finished:
            return Progress(done=False, cursor={"table": "loyalty", "key": key})
        if budget <= 0:
            return Progress(done=False, cursor={"table": "files", "key": None})
    deleted, finished = assets.delete_tenant_files_page(tenant_id, budget)
    budget -= deleted
    if not finished or budget <= 0:
        return Progress(done=False, cursor={"table": "files", "key": None})
    budget -= audit.delete_partition_page(partition, budget)
    if budget > 0:
        budget -= directory.delete_tenant_page(tenant_id, budget)
    key_service.forget_tenant_status(tenant_id)
    return Progress(done=budget > 0 and directory.get_tenant(tenant_id) is None)
