"""API Gateway API keys that meter each tenant and agency on its plan's usage plan.

The only code that calls the `apigateway` API. Deployed, API Gateway throttles
requests by the usage key the authorizer returns (`usage_key(stage, kind,
owner)`, chalicelib/api/auth.py); that key must exist as an API key and belong
to exactly one of our usage plans, the one of its owner's plan. These functions
keep it so: idempotent, so provisioning can be retried and the `usage-keys`
CLI can re-register every owner.

When `settings.usage_plan_ids` is empty (the local stack and the tests: there
is no API Gateway) every function here does nothing and returns False; the
local gateway (infra/local/gateway.py) enforces the same limits itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.domain.rate_limits import usage_key
from chalicelib.errors import ApiError
from chalicelib.observability import logger
from chalicelib.settings import settings
from chalicelib.storage import aws

_PAGE = 500


def configured() -> bool:
    """Whether usage plans exist to register keys in (deployed), or not (local stack, tests)."""
    return bool(settings.usage_plan_ids)


def key_name(kind: str, owner_id: str) -> str:
    """The API key's name: readable in the console; the value (`usage_key`) is what API Gateway matches."""
    return f"loyalty-{settings.stage}-{kind}-{owner_id}"


def _unavailable(action: str) -> ApiError:
    return ApiError(503, "dependency_unavailable",
                    f"Request limits could not be {action} in API Gateway; retry (retrying is safe).",
                    headers={"Retry-After": "5"})


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _api_keys(**query: Any) -> Iterator[dict[str, Any]]:
    """Every API key matching `query`, all pages, values included."""
    position: str | None = None
    while True:
        page = aws.client("apigateway").get_api_keys(
            includeValues=True, limit=_PAGE, **query, **({"position": position} if position else {}))
        yield from page.get("items", [])
        position = page.get("position")
        if not position:
            return


def _find(name: str, value: str) -> dict[str, Any] | None:
    """Our key by its name (a prefix query, so checked exactly); by value if it was created under another name."""
    for item in _api_keys(nameQuery=name):
        if item.get("name") == name or item.get("value") == value:
            return item
    return None


def _find_by_value(value: str) -> dict[str, Any] | None:
    return next((item for item in _api_keys() if item.get("value") == value), None)


def _ensure_api_key(kind: str, owner_id: str) -> tuple[str, bool]:
    """The API key's id, created (enabled) if missing, enabled if it was disabled; and whether anything changed."""
    api = aws.client("apigateway")
    name, value = key_name(kind, owner_id), usage_key(settings.stage, kind, owner_id)
    found = _find(name, value)
    changed = False
    if found is None:
        try:
            found = api.create_api_key(name=name, value=value, enabled=True,
                                       description=f"Usage key of {kind} {owner_id} (request limits)")
            changed = True
        except ClientError as err:
            if _code(err) != "ConflictException":
                raise
            found = _find(name, value) or _find_by_value(value)  # created concurrently, or under another name
            if found is None:
                raise
    if not found.get("enabled", True):
        api.update_api_key(apiKey=found["id"], patchOperations=[{"op": "replace", "path": "/enabled", "value": "true"}])
        changed = True
    return str(found["id"]), changed


def _is_member(plan_id: str, key_id: str) -> bool:
    try:
        aws.client("apigateway").get_usage_plan_key(usagePlanId=plan_id, keyId=key_id)
    except ClientError as err:
        if _code(err) == "NotFoundException":
            return False
        raise
    return True


def _join(plan_id: str, key_id: str) -> bool:
    if _is_member(plan_id, key_id):
        return False
    try:
        aws.client("apigateway").create_usage_plan_key(usagePlanId=plan_id, keyId=key_id, keyType="API_KEY")
    except ClientError as err:
        if _code(err) != "ConflictException":  # joined concurrently
            raise
        return False
    return True


def _leave(plan_id: str, key_id: str) -> bool:
    if not _is_member(plan_id, key_id):
        return False
    try:
        aws.client("apigateway").delete_usage_plan_key(usagePlanId=plan_id, keyId=key_id)
    except ClientError as err:
        if _code(err) != "NotFoundException":  # left concurrently
            raise
        return False
    return True


def ensure_key(kind: str, owner_id: str, plan: str) -> bool:
    """Make `kind`/`owner_id`'s usage key exist, enabled, in `plan`'s usage plan and in none of our others.

    True if anything changed. Safe to repeat and to run concurrently. It leaves
    the other plans before joining the new one (API Gateway allows one usage
    plan per key and stage), so during a plan change the owner's requests are
    refused for the few milliseconds in between. A failure raises 503
    `dependency_unavailable`: callers call this before their own writes, so a
    retry of the whole call is safe. No-op where no usage plans are configured.
    """
    plan_ids = settings.usage_plan_ids
    if not plan_ids:
        return False
    target = plan_ids.get(plan)
    if target is None:
        logger.error("no usage plan configured for plan", extra={"plan": plan, "plans": sorted(plan_ids)})
        raise _unavailable("set up")
    try:
        key_id, changed = _ensure_api_key(kind, owner_id)
        for plan_id in sorted(set(plan_ids.values()) - {target}):
            changed = _leave(plan_id, key_id) or changed
        changed = _join(target, key_id) or changed
    except (ClientError, BotoCoreError) as err:
        logger.warning("usage key registration failed", extra={"kind": kind, "owner": owner_id, "error": str(err)})
        raise _unavailable("set up") from err
    return changed


def remove_key(kind: str, owner_id: str) -> bool:
    """Delete `kind`/`owner_id`'s usage key and its plan memberships (a deleted tenant); True if there was one.

    Safe to repeat. No-op where no usage plans are configured.
    """
    plan_ids = settings.usage_plan_ids
    if not plan_ids:
        return False
    try:
        found = _find(key_name(kind, owner_id), usage_key(settings.stage, kind, owner_id))
        if found is None:
            return False
        for plan_id in sorted(set(plan_ids.values())):
            _leave(plan_id, str(found["id"]))
        try:
            aws.client("apigateway").delete_api_key(apiKey=found["id"])
        except ClientError as err:
            if _code(err) != "NotFoundException":
                raise
    except (ClientError, BotoCoreError) as err:
        logger.warning("usage key removal failed", extra={"kind": kind, "owner": owner_id, "error": str(err)})
        raise _unavailable("released") from err
    return True

