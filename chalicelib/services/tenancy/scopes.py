"""Key-owning scopes and how a caller reaches them."""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.domain.principal import Principal
from chalicelib.domain.roles import ScopeKind


@dataclass(frozen=True)
class Scope:
    kind: ScopeKind
    id: str
    agency_id: str | None = None
    """The agency a tenant belongs to (or the agency itself)."""

    @property
    def partition(self) -> str:
        from chalicelib.storage.tables import agency_partition, platform_partition, tenant_partition  # cold start

        if self.kind is ScopeKind.PLATFORM:
            return platform_partition()
        if self.kind is ScopeKind.AGENCY:
            return agency_partition(self.id)
        return tenant_partition(self.id)

    @classmethod
    def platform(cls) -> Scope:
        return cls(ScopeKind.PLATFORM, "platform")

    @classmethod
    def agency(cls, agency_id: str) -> Scope:
        return cls(ScopeKind.AGENCY, agency_id, agency_id)

    @classmethod
    def tenant(cls, tenant_id: str, agency_id: str | None) -> Scope:
        return cls(ScopeKind.TENANT, tenant_id, agency_id)


def own_scope(principal: Principal) -> Scope:
    """The scope a caller's own keys, audit trail and idempotency keys live in."""
    if principal.scope is ScopeKind.PLATFORM:
        return Scope.platform()
    if principal.scope is ScopeKind.AGENCY:
        return Scope.agency(principal.owner)
    return Scope.tenant(principal.owner, principal.agency_id)
