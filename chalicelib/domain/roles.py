"""Roles, the scopes they live in, and who may mint keys for whom."""

from __future__ import annotations

from chalicelib.schemas.roles import Role as Role
from chalicelib.schemas.roles import ScopeKind as ScopeKind

# Readable role marker in every key: `lp_pos_...` is a till's key at a glance.
ROLE_CODES: dict[Role, str] = {
    Role.PLATFORM: "plt",
    Role.AGENCY: "agy",
    Role.TENANT_ADMIN: "adm",
    Role.POS: "pos",
    Role.SUPPORT: "sup",
}
ROLE_BY_CODE: dict[str, Role] = {code: role for role, code in ROLE_CODES.items()}

SCOPE_OF_ROLE: dict[Role, ScopeKind] = {
    Role.PLATFORM: ScopeKind.PLATFORM,
    Role.AGENCY: ScopeKind.AGENCY,
    Role.TENANT_ADMIN: ScopeKind.TENANT,
    Role.POS: ScopeKind.TENANT,
    Role.SUPPORT: ScopeKind.TENANT,
}

TENANT_ROLES: frozenset[Role] = frozenset(r for r, s in SCOPE_OF_ROLE.items() if s is ScopeKind.TENANT)
ALL_ROLES: frozenset[Role] = frozenset(Role)


def scope_of(role: Role) -> ScopeKind:
    return SCOPE_OF_ROLE[role]


def roles_mintable_in(scope: ScopeKind) -> frozenset[Role]:
    """Roles a key of a given scope may hold."""
    return frozenset(r for r, s in SCOPE_OF_ROLE.items() if s is scope)


def can_manage_scope(caller: Role, target: ScopeKind, own_scope: bool) -> bool:
    """Whether a caller may create, list, revoke or rotate keys in a scope.

    Platform operators manage platform keys and agencies' keys; an agency
    manages its own keys and its tenants' keys; a tenant admin manages its
    tenant's keys. POS and support keys manage nothing.
    """
    if caller is Role.PLATFORM:
        return target in (ScopeKind.PLATFORM, ScopeKind.AGENCY)
    if caller is Role.AGENCY:
        return (target is ScopeKind.AGENCY and own_scope) or target is ScopeKind.TENANT
    if caller is Role.TENANT_ADMIN:
        return target is ScopeKind.TENANT and own_scope
    return False


def is_allowed(role: Role, allowed: frozenset[Role]) -> bool:
    return role in allowed
