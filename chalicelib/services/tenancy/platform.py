"""The platform operator's bootstrap: the first platform key, from which agencies are created through the API."""

from __future__ import annotations

from chalicelib.schemas.keys import KeyCreated


def ensure_platform_key(name: str = "platform key", *, actor: str = "cli") -> KeyCreated | None:
    """Mint a platform key only if no active one exists, so re-running a deploy or `make local` never piles up keys.

    Returns the new key (its secret is shown only now) or None when an active
    platform key already exists. Keys that are revoked or expiring after a
    rotation do not count: they stop working. Two concurrent first runs can
    both mint a key; both are valid, and either can be revoked.
    """
    from chalicelib.domain.rate_limits import ANONYMOUS, ANONYMOUS_PLAN, PLATFORM_PLAN
    from chalicelib.domain.roles import Role
    from chalicelib.schemas.keys import KeyCreate
    from chalicelib.services.tenancy import keys as api_keys
    from chalicelib.services.tenancy.scopes import Scope
    from chalicelib.storage import keys as key_store
    from chalicelib.storage import usage_keys

    # Deployed, a request is metered on a usage key; the platform's and the anonymous one exist from the first run.
    usage_keys.ensure_key("platform", "platform", PLATFORM_PLAN)
    usage_keys.ensure_key(*ANONYMOUS, ANONYMOUS_PLAN)
    scope = Scope.platform()
    cursor: str | None = None
    while True:
        keys, cursor = api_keys.list_keys(scope, 200, cursor)
        if any(k.status == key_store.ACTIVE and k.role is Role.PLATFORM for k in keys):
            return None
        if not cursor:
            break
    return api_keys.create(scope, KeyCreate(role=Role.PLATFORM, name=name), actor)
