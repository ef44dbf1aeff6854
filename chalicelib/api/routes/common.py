"""Helpers shared by route modules: pages, scopes of the caller."""

from __future__ import annotations

from typing import TypeVar

from chalicelib.domain.principal import Principal
from chalicelib.domain.roles import ScopeKind
from chalicelib.schemas.common import Page
from chalicelib.services.scopes import Scope

T = TypeVar("T")


def page(items: list[T], cursor: str | None) -> Page[T]:
    return Page[T](items=items, has_more=cursor is not None, cursor=cursor)


def own_scope(principal: Principal) -> Scope:
    """The scope a caller's own keys and audit trail live in."""
    if principal.scope is ScopeKind.PLATFORM:
        return Scope.platform()
    if principal.scope is ScopeKind.AGENCY:
        return Scope.agency(principal.owner)
    return Scope.tenant(principal.owner, principal.agency_id)


def tenant_id_of(principal: Principal) -> str:
    tenant_id = principal.tenant_id
    assert tenant_id is not None, "route declared for tenant roles only"
    return tenant_id
