"""Pages of the directory and the audit trail, as the API lists them.

Plain reads with nothing to decide, here so the API reaches storage only
through services (the contract in .importlinter, checked by
tests/unit/test_architecture.py).
"""

from __future__ import annotations

from chalicelib.schemas.audit import AuditEntry
from chalicelib.schemas.tenancy import Agency, Program, Store, Tenant
from chalicelib.storage import audit, directory


def agencies(limit: int, cursor: str | None) -> tuple[list[Agency], str | None]:
    """The platform's agencies."""
    return directory.list_agencies(limit, cursor)


def tenants_of_agency(agency_id: str, limit: int, cursor: str | None) -> tuple[list[Tenant], str | None]:
    """The agency's tenants."""
    return directory.list_tenants_of_agency(agency_id, limit, cursor)


def programs(tenant_id: str, limit: int, cursor: str | None) -> tuple[list[Program], str | None]:
    """The tenant's programs."""
    return directory.list_programs(tenant_id, limit, cursor)


def stores(tenant_id: str, limit: int, cursor: str | None) -> tuple[list[Store], str | None]:
    """The tenant's stores."""
    return directory.list_stores(tenant_id, limit, cursor)


def audit_entries(partition: str, limit: int, cursor: str | None, actor: str | None = None,
                  action: str | None = None) -> tuple[list[AuditEntry], str | None]:
    """Newest first, optionally only one person's or key's, or one kind of action."""
    return audit.list_entries(partition, limit, cursor, actor, action)
