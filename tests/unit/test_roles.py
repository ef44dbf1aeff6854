"""Who may hold and manage which keys: the role rules on their own."""

from __future__ import annotations

import pytest

from chalicelib.domain.principal import Principal
from chalicelib.domain.roles import Role, ScopeKind, can_manage_scope, roles_mintable_in, scope_of


def test_each_role_lives_in_one_scope() -> None:
    assert {r: scope_of(r) for r in Role} == {
        Role.PLATFORM: ScopeKind.PLATFORM, Role.AGENCY: ScopeKind.AGENCY, Role.TENANT_ADMIN: ScopeKind.TENANT,
        Role.POS: ScopeKind.TENANT, Role.SUPPORT: ScopeKind.TENANT,
    }
    assert roles_mintable_in(ScopeKind.TENANT) == {Role.TENANT_ADMIN, Role.POS, Role.SUPPORT}


@pytest.mark.parametrize(("caller", "target", "own", "allowed"), [
    (Role.PLATFORM, ScopeKind.PLATFORM, True, True),
    (Role.PLATFORM, ScopeKind.AGENCY, False, True),
    (Role.PLATFORM, ScopeKind.TENANT, False, False),
    (Role.AGENCY, ScopeKind.AGENCY, True, True),
    (Role.AGENCY, ScopeKind.AGENCY, False, False),
    (Role.AGENCY, ScopeKind.TENANT, False, True),
    (Role.AGENCY, ScopeKind.PLATFORM, False, False),
    (Role.TENANT_ADMIN, ScopeKind.TENANT, True, True),
    (Role.TENANT_ADMIN, ScopeKind.TENANT, False, False),
    (Role.TENANT_ADMIN, ScopeKind.AGENCY, False, False),
    (Role.POS, ScopeKind.TENANT, True, False),
    (Role.SUPPORT, ScopeKind.TENANT, True, False),
])
def test_key_management_rights(caller: Role, target: ScopeKind, own: bool, allowed: bool) -> None:
    assert can_manage_scope(caller, target, own) is allowed


def test_principal_round_trips_through_the_flat_authorizer_context() -> None:
    p = Principal(role=Role.POS, key_id="abcdefghijkm", owner="coffee-house", agency_id="acme", store_id="msk-01")
    ctx = p.to_context()
    assert all(isinstance(v, str) for v in ctx.values())
    assert Principal.from_context(ctx) == p
    assert p.tenant_id == "coffee-house"
    assert Principal(role=Role.AGENCY, key_id="k", owner="acme").tenant_id is None
    assert Principal.from_context({"role": "root", "key_id": "k", "owner": "x"}) is None
    assert Principal.from_context({"auth_error": "invalid_key"}) is None
