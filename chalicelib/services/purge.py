"""Deleting a tenant's data, page by page, resumable: run by the jobs worker."""

from __future__ import annotations

from chalicelib.services import api_keys as key_service
from chalicelib.storage import api_keys, audit, directory
from chalicelib.storage.tables import tenant_partition

PAGE = 200


def purge_tenant_page(tenant_id: str, max_items: int | None = None) -> bool:
    """Delete up to `max_items` rows of the tenant; True when nothing is left.

    Keys go first so nothing can authenticate while the rest is deleted; the
    tenant row goes last, so an interrupted purge is found and resumed by the
    next message. Refuses to touch a tenant that is not marked for deletion.
    """
    tenant = directory.get_tenant(tenant_id)
    if tenant is None:
        return True
    if tenant.status.value != "deleting":
        raise RuntimeError(f"tenant {tenant_id} is not marked for deletion")
    partition = tenant_partition(tenant_id)
    budget = max_items or PAGE
    budget -= api_keys.delete_partition_page(partition, budget)
    if budget > 0:
        budget -= audit.delete_partition_page(partition, budget)
    if budget > 0:
        budget -= directory.delete_tenant_page(tenant_id, budget)
    key_service.forget_tenant_status(tenant_id)
    return budget > 0 and directory.get_tenant(tenant_id) is None
