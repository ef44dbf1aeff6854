"""Helpers shared by route modules."""

from __future__ import annotations

from typing import TypeVar

from chalicelib.domain.principal import Principal
from chalicelib.lazy import LazyModule as LazyModule
from chalicelib.lazy import lazy_module as lazy_module
from chalicelib.schemas.common import Page

T = TypeVar("T")


def page(items: list[T], cursor: str | None) -> Page[T]:
    return Page[T](items=items, has_more=cursor is not None, cursor=cursor)


def tenant_id_of(principal: Principal) -> str:
    tenant_id = principal.tenant_id
    assert tenant_id is not None, "route declared for tenant roles only"
    return tenant_id
