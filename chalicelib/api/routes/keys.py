"""Key management in the caller's own scope, and the shared key handlers."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.api.registry import Request, Router
from chalicelib.api.routes.common import lazy_module, page
from chalicelib.domain.grammar import article
from chalicelib.domain.roles import Role, ScopeKind, can_manage_scope
from chalicelib.errors import forbidden
from chalicelib.schemas.common import Page, PageQuery
from chalicelib.schemas.keys import KeyCreate, KeyCreated, KeyInfo, KeyRotate, WhoAmI
from chalicelib.services.tenancy.scopes import Scope, own_scope

if TYPE_CHECKING:
    from chalicelib.services.tenancy import keys as api_keys
else:
    api_keys = lazy_module("chalicelib.services.tenancy.keys")

router = Router("Keys")
MANAGERS = {Role.PLATFORM, Role.AGENCY, Role.TENANT_ADMIN}


def check_manage(req: Request, scope: Scope) -> None:
    own = own_scope(req.caller) == scope
    if not can_manage_scope(req.caller.role, scope.kind, own):
        raise forbidden(f"{article(req.caller.role.value, capital=True)} key may not manage {scope.kind.value} keys.")


def list_in(req: Request, scope: Scope) -> Page[KeyInfo]:
    check_manage(req, scope)
    return page(*api_keys.list_keys(scope, req.query.limit, req.query.cursor))


def create_in(req: Request, scope: Scope) -> KeyCreated:
    check_manage(req, scope)
    return api_keys.create(scope, req.body, req.actor)


def revoke_in(req: Request, scope: Scope) -> KeyInfo:
    check_manage(req, scope)
    return api_keys.revoke(scope, req.path["key_id"], req.actor)


def rotate_in(req: Request, scope: Scope) -> KeyCreated:
    check_manage(req, scope)
    return api_keys.rotate(scope, req.path["key_id"], req.body.grace_seconds, req.actor)


@router.route("GET", "/v1/keys", roles=MANAGERS, query=PageQuery, response=Page[KeyInfo],
              summary="List the keys of your own scope (platform, agency or tenant), without secrets.")
def list_own_keys(req: Request) -> Page[KeyInfo]:
    return list_in(req, own_scope(req.caller))


@router.route("POST", "/v1/keys", roles=MANAGERS, body=KeyCreate, response=KeyCreated, status=201,
              errors=(422,), summary="Create a key in your own scope. The secret is shown only in this response.")
def create_own_key(req: Request) -> KeyCreated:
    return create_in(req, own_scope(req.caller))


@router.route("DELETE", "/v1/keys/{key_id}", roles=MANAGERS, response=KeyInfo, errors=(404,),
              summary="Revoke a key; it fails from the next request on. Revoking twice is harmless.")
def revoke_own_key(req: Request) -> KeyInfo:
    return revoke_in(req, own_scope(req.caller))


@router.route("POST", "/v1/keys/{key_id}/rotate", roles=MANAGERS, body=KeyRotate, response=KeyCreated,
              status=201, errors=(404, 409),
              summary="Replace a key with a new one of the same role; the old one stops now or after a grace period.")
def rotate_own_key(req: Request) -> KeyCreated:
    return rotate_in(req, own_scope(req.caller))


@router.route("GET", "/v1/whoami", roles=set(Role), response=WhoAmI,
              summary="The identity behind the presented key or session: check a credential without side effects.")
def whoami(req: Request) -> WhoAmI:
    p = req.caller
    return WhoAmI(role=p.role, key_id=p.key_id, owner=p.owner, tenant_id=p.tenant_id,
                  agency_id=p.agency_id if p.scope is not ScopeKind.PLATFORM else None, store_id=p.store_id,
                  user_id=p.user_id, email=p.email)
