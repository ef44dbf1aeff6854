"""Minting, listing, revoking and rotating API keys, and authenticating a presented key."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

from chalicelib.domain import keys as keyfmt
from chalicelib.domain.grammar import article
from chalicelib.domain.principal import Principal
from chalicelib.domain.roles import Role, ScopeKind, roles_mintable_in, scope_of
from chalicelib.errors import ApiError, ErrorDetail, field_error, not_found
from chalicelib.schemas.keys import KeyCreate, KeyCreated, KeyInfo
from chalicelib.services.tenancy.scopes import Scope
from chalicelib.storage import audit, directory, transactions
from chalicelib.storage import keys as key_store
from chalicelib.storage.tables import ApiKeyRecord, AuditRecord
from chalicelib.storage.transactions import TransactionFailed, Tx

_TENANT_STATUS_TTL = 30.0
_tenant_status_cache: dict[str, tuple[float, str | None, str | None]] = {}
_cache_lock = threading.Lock()


class AuthFailure(Exception):
    """Why a key was refused; the code goes to the client, never the key."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def new_key_record(scope: Scope, spec: KeyCreate, actor: str, at: datetime
                   ) -> tuple[ApiKeyRecord, keyfmt.NewKey]:
    """Validate a key request against its scope and build the record (not yet written)."""
    if spec.role not in roles_mintable_in(scope.kind):
        allowed = ", ".join(sorted(r.value for r in roles_mintable_in(scope.kind)))
        raise field_error("role", f"{article(scope.kind.value, capital=True)} key must have one of these roles: "
                                  f"{allowed}.")
    if spec.store_id is not None and spec.role is not Role.POS:
        raise field_error("store_id", "Only a pos key can be bound to a store.")
    minted = keyfmt.mint(spec.role, scope.id)
    rec = key_store.new_record(
        scope.partition, key_id=minted.key_id, key_hash=minted.key_hash, role=spec.role.value, name=spec.name,
        prefix=minted.display_prefix, agency_id=scope.agency_id, store_id=spec.store_id, created_at=at,
        created_by=actor,
    )
    return rec, minted


def created_view(rec: ApiKeyRecord, minted: keyfmt.NewKey, at: datetime) -> KeyCreated:
    """A new key as answered once: its info plus the secret, which is never stored or shown again."""
    return KeyCreated(secret=minted.plaintext, **key_store.to_info(rec, at).model_dump())


def key_audit(scope: Scope, action: str, actor: str, key_id: str, at: datetime, **detail: str) -> AuditRecord:
    """The audit record of a change to one key."""
    return audit.entry(scope.partition, action=action, actor=actor, at=at, target=f"key:{key_id}", detail=detail)


def create(scope: Scope, spec: KeyCreate, actor: str) -> KeyCreated:
    """Mint a key for the scope; only its hash is stored, the secret is in this answer only."""
    at = _now()
    rec, minted = new_key_record(scope, spec, actor, at)  # refuses a store on anything but a tenant's pos key first
    if spec.store_id is not None and directory.get_store(scope.id, spec.store_id) is None:
        raise ApiError(422, "unknown_store", f"Store {spec.store_id!r} does not exist in this tenant.",
                       [ErrorDetail("store_id", "no such store")])

    def build(tx: Tx) -> None:
        key_store.add_new(tx, rec)
        audit.add(tx, key_audit(scope, "key.created", actor, rec.sk, at, role=spec.role.value, name=spec.name))

    transactions.write(build)
    return created_view(rec, minted, at)


def list_keys(scope: Scope, limit: int, cursor: str | None) -> tuple[list[KeyInfo], str | None]:
    """The scope's keys with their status as of now (expiry is computed, not stored)."""
    records, next_cursor = key_store.list_keys(scope.partition, limit, cursor)
    at = _now()
    return [key_store.to_info(r, at) for r in records], next_cursor


def ensure_key(scope: Scope, role: Role, name: str, actor: str) -> KeyCreated | None:
    """Mint a key of `role` in `scope` only if no active one exists, so a bootstrap that runs on every start (the
    local stack's example tenants) adds each key once. Returns the new key (its secret is shown only now)."""
    cursor: str | None = None
    while True:
        keys, cursor = list_keys(scope, 200, cursor)
        if any(k.status == key_store.ACTIVE and k.role is role for k in keys):
            return None
        if not cursor:
            break
    return create(scope, KeyCreate(role=role, name=name), actor)


def revoke(scope: Scope, key_id: str, actor: str) -> KeyInfo:
    """Revoke a key; revoking it again is a no-op, so a retry is safe."""
    rec = _require(scope, key_id)
    at = _now()
    if key_store.effective_status(rec, at) == key_store.REVOKED:
        return key_store.to_info(rec, at)  # Revoking twice is a no-op, so retries are safe.

    def build(tx: Tx) -> None:
        key_store.revoke(tx, scope.partition, key_id, at)
        audit.add(tx, key_audit(scope, "key.revoked", actor, key_id, at))

    try:
        transactions.write(build)
    except TransactionFailed:
        rec = _require(scope, key_id)
        if rec.status != key_store.REVOKED:
            raise
    return key_store.to_info(_require(scope, key_id), _now())


def rotate(scope: Scope, key_id: str, grace_seconds: int, actor: str) -> KeyCreated:
    """Issue a replacement with the same role, name and store; retire the old key now or after a grace period."""
    old = _require(scope, key_id)
    at = _now()
    if key_store.effective_status(old, at) != key_store.ACTIVE:
        raise _not_active(key_id)
    spec = KeyCreate.model_validate({"role": old.role, "name": old.name, "store_id": old.store_id}, strict=False)
    rec, minted = new_key_record(scope, spec, actor, at)

    def build(tx: Tx) -> None:
        key_store.add_new(tx, rec)
        if grace_seconds:
            key_store.expire_later(tx, scope.partition, key_id, at + timedelta(seconds=grace_seconds), rec.sk)
        else:
            key_store.revoke(tx, scope.partition, key_id, at, rotated_to=rec.sk)
        audit.add(tx, key_audit(scope, "key.rotated", actor, key_id, at, new_key_id=rec.sk,
                                grace_seconds=str(grace_seconds)))

    try:
        transactions.write(build)
    except TransactionFailed as err:
        if err.condition_failed(1):
            raise _not_active(key_id) from None
        raise
    return created_view(rec, minted, at)


# --- authentication -------------------------------------------------------------

def forget_tenant_status(tenant_id: str) -> None:
    """Drop the tenant's cached status so this process sees a status change at once (called on every change)."""
    with _cache_lock:
        _tenant_status_cache.pop(tenant_id, None)


def authenticate(token: str | None) -> Principal:
    """The principal a bearer key stands for, or an AuthFailure saying why it is refused."""
    if token is None:
        raise AuthFailure("unauthorized", "Send an API key as 'Authorization: Bearer <key>'.")
    parsed = keyfmt.parse(token)
    if parsed is None:
        raise AuthFailure("malformed_key", "The API key is malformed.")
    scope_kind = scope_of(parsed.role)
    if scope_kind is ScopeKind.PLATFORM:
        if parsed.owner != "platform":
            raise AuthFailure("malformed_key", "The API key is malformed.")
        scope = Scope.platform()
    elif scope_kind is ScopeKind.AGENCY:
        scope = Scope.agency(parsed.owner)
    else:
        scope = Scope.tenant(parsed.owner, None)
    rec = key_store.get(scope.partition, parsed.key_id)
    if rec is None or not keyfmt.matches(token, rec.key_hash) or rec.role != parsed.role.value:
        raise AuthFailure("invalid_key", "The API key is not valid.")
    if key_store.effective_status(rec, _now()) == key_store.REVOKED:
        raise AuthFailure("revoked_key", "The API key has been revoked.")
    agency_id: str | None = rec.agency_id
    if scope_kind is ScopeKind.TENANT:
        status, agency_id = tenant_state(parsed.owner)
        if status is None:
            raise AuthFailure("invalid_key", "The API key is not valid.")
        if status != "active":
            raise AuthFailure("tenant_suspended", "This tenant is suspended or being deleted.")
    return Principal(role=parsed.role, key_id=parsed.key_id, owner=parsed.owner,
                     agency_id=agency_id, store_id=rec.store_id)


# --- helpers --------------------------------------------------------------------------------------------

def _now() -> datetime:
    return datetime.now(UTC)


def _require(scope: Scope, key_id: str) -> ApiKeyRecord:
    rec = key_store.get(scope.partition, key_id)
    if rec is None:
        raise not_found("Key")
    return rec


def _not_active(key_id: str) -> ApiError:
    return ApiError(409, "key_not_active", f"Key {key_id!r} is already revoked or being rotated.",
                    [ErrorDetail("key_id", "not active")])


def tenant_state(tenant_id: str) -> tuple[str | None, str | None]:
    """(status, agency id) of a tenant, cached briefly: suspension takes effect within 30 s (keys and sessions)."""
    now = time.monotonic()
    with _cache_lock:
        hit = _tenant_status_cache.get(tenant_id)
    if hit and now - hit[0] < _TENANT_STATUS_TTL:
        return hit[1], hit[2]
    tenant = directory.get_tenant(tenant_id)
    value = (tenant.status.value, tenant.agency_id) if tenant else (None, None)
    with _cache_lock:
        _tenant_status_cache[tenant_id] = (now, *value)
    return value
