"""Integrations (issue 21, page group 7): API keys, webhook endpoints, the team and the audit trail.

Every page acts in the person's own scope exactly as the API routes do
(`/v1/keys`, `/v1/members`, `/v1/invitations` and `/v1/audit` for the admins
of any scope; `/v1/webhooks` for a tenant's admins only), with the same
services and the same input models: the same rules, limits, validation and
audit. An id of another scope in a path is the service's 404. A refused form
is shown again with the API's message at its field and what was typed kept.
A secret (a new key, a webhook's signing secret) is in the answer to the
post that made it and nowhere else: never stored, never shown again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlencode

from chalice.app import Response
from pydantic import BaseModel, ValidationError

from chalicelib.console.pages import PageRequest, PageRouter, gettext, redirect
from chalicelib.domain.identity import PERSON_ROLES, role_fits_scope
from chalicelib.domain.roles import Role, ScopeKind, roles_mintable_in
from chalicelib.domain.webhooks import EVENT_TYPES
from chalicelib.errors import ApiError, not_found
from chalicelib.lazy import lazy_module
from chalicelib.schemas.audit import AuditQuery
from chalicelib.schemas.common import PageQuery
from chalicelib.schemas.identity import InvitationCreate, MemberUpdate
from chalicelib.schemas.keys import KeyCreate, KeyInfo, KeyRotate
from chalicelib.schemas.webhooks import WebhookCreate, WebhookUpdate
from chalicelib.services.tenancy.scopes import Scope, own_scope

if TYPE_CHECKING:
    from chalicelib.services.identity import members
    from chalicelib.services.integrations import webhooks
    from chalicelib.services.tenancy import keys, listings, tenancy
else:
    members = lazy_module("chalicelib.services.identity.members")
    webhooks = lazy_module("chalicelib.services.integrations.webhooks")
    keys = lazy_module("chalicelib.services.tenancy.keys")
    listings = lazy_module("chalicelib.services.tenancy.listings")
    tenancy = lazy_module("chalicelib.services.tenancy.tenancy")

router = PageRouter("integrations")
ADMINS = frozenset({Role.PLATFORM, Role.AGENCY, Role.TENANT_ADMIN})
"""Keys, team and audit: the admins of any scope, in their own scope (as /v1/keys, /v1/members, /v1/audit)."""
TENANT_ADMIN = frozenset({Role.TENANT_ADMIN})
"""Webhooks: a tenant's admins only (as /v1/webhooks)."""
BASE = "/console/integrations"
PAGE_SIZE = 50
router.section(BASE, "Integrations", roles=ADMINS, order=70)

ROLE_NAMES = {"platform": "platform operator", "agency": "agency staff", "tenant_admin": "administrator",
              "support": "support operator", "pos": "point of sale (till)"}
KEY_STATUS = {"active": "active", "revoked": "revoked", "expiring": "expiring"}
MEMBER_STATUS = {"active": "active", "disabled": "disabled"}
INVITATION_STATUS = {"pending": "pending", "accepted": "accepted", "revoked": "revoked", "expired": "expired"}
DELIVERY_STATUS = {"pending": "pending", "delivered": "delivered", "retrying": "retrying", "failed": "failed",
                   "queued": "queued", "sent": "sent"}
GRACE_CHOICES = ((0, "Now: the old key stops at once"), (3600, "After 1 hour"), (86400, "After 1 day"),
                 (604800, "After 7 days"))
LABELS = (set(ROLE_NAMES.values()) | set(KEY_STATUS.values()) | set(MEMBER_STATUS.values())
          | set(INVITATION_STATUS.values()) | set(DELIVERY_STATUS.values()) | {label for _, label in GRACE_CHOICES})
"""Every msgid these pages show by value (tests check each has its Russian)."""
TABS = ((f"{BASE}/keys", "API keys", ADMINS), (f"{BASE}/webhooks", "Webhooks", TENANT_ADMIN),
        (f"{BASE}/team", "Team", ADMINS), (f"{BASE}/audit", "Audit trail", ADMINS))
MAX_ID = 80
M = TypeVar("M", bound=BaseModel)


# --- the hub ------------------------------------------------------------------------------------------------------

@router.page("GET", BASE, roles=ADMINS)
def hub(req: PageRequest) -> Response:
    return _render(req, "integrations/index.html", "")


# --- API keys -----------------------------------------------------------------------------------------------------

@router.page("GET", f"{BASE}/keys", roles=ADMINS)
def key_list(req: PageRequest) -> Response:
    notice = {"revoked": gettext(req.locale, "The key is revoked: it fails from the next request on.")
              }.get(req.query.get("done", ""))
    return _keys_page(req, 200, {}, None, {"role": "", "name": "", "store_id": ""}, notice)


@router.page("POST", f"{BASE}/keys", roles=ADMINS)
def key_create(req: PageRequest) -> Response:
    scope = _scope(req)
    typed = {"role": req.form.get("role", ""), "name": req.form.get("name", ""),
             "store_id": req.form.get("store_id", "")}
    data: dict[str, Any] = {"role": typed["role"], "name": typed["name"]}
    if typed["store_id"].strip():
        data["store_id"] = typed["store_id"].strip()
    parsed, errors = _parse(req, KeyCreate, data)
    if parsed is None:
        return _keys_page(req, 400, errors, None, typed, None)
    try:
        created = keys.create(scope, parsed, req.actor)
    except ApiError as err:
        errors, alert = _refusal(req, err, typed)
        return _keys_page(req, err.status, errors, alert, typed, None)
    return _render(req, "integrations/key_secret.html", "keys", status_code=201, key=created, rotated_from=None)


@router.page("GET", f"{BASE}/keys/{{key_id}}", roles=ADMINS)
def key_detail(req: PageRequest) -> Response:
    key = _find_key(_scope(req), req.path["key_id"])
    return _key_page(req, key, 200, {}, None, "0")


@router.page("POST", f"{BASE}/keys/{{key_id}}/rotate", roles=ADMINS)
def key_rotate(req: PageRequest) -> Response:
    scope = _scope(req)
    key = _find_key(scope, req.path["key_id"])
    grace = req.form.get("grace_seconds", "").strip()
    parsed, errors = _parse(req, KeyRotate, {"grace_seconds": int(grace) if grace.isdigit() else grace})
    if parsed is None:
        return _key_page(req, key, 400, errors, None, grace)
    try:
        created = keys.rotate(scope, key.key_id, parsed.grace_seconds, req.actor)
    except ApiError as err:
        errors, alert = _refusal(req, err, {"grace_seconds": grace})
        return _key_page(req, _find_key(scope, key.key_id), err.status, errors, alert, grace)
    return _render(req, "integrations/key_secret.html", "keys", status_code=201, key=created,
                   rotated_from=_find_key(scope, key.key_id))


@router.page("GET", f"{BASE}/keys/{{key_id}}/revoke", roles=ADMINS)
def key_revoke_confirm(req: PageRequest) -> Response:
    key = _find_key(_scope(req), req.path["key_id"])
    return _render(req, "integrations/key_revoke.html", "keys", key=key, error=None)


@router.page("POST", f"{BASE}/keys/{{key_id}}/revoke", roles=ADMINS)
def key_revoke(req: PageRequest) -> Response:
    scope = _scope(req)
    key = _find_key(scope, req.path["key_id"])
    try:
        keys.revoke(scope, key.key_id, req.actor)
    except ApiError as err:
        return _render(req, "integrations/key_revoke.html", "keys", status_code=err.status, key=key,
                       error=_said(req, err))
    return redirect(f"{BASE}/keys?done=revoked")


# --- webhooks -----------------------------------------------------------------------------------------------------

@router.page("GET", f"{BASE}/webhooks", roles=TENANT_ADMIN)
def webhook_list(req: PageRequest) -> Response:
    notice = {"deleted": gettext(req.locale, "The endpoint is deleted; its queued deliveries are dropped.")
              }.get(req.query.get("done", ""))
    return _webhooks_page(req, 200, {}, None, {"url": "", "description": "", "events": []}, notice)


@router.page("POST", f"{BASE}/webhooks", roles=TENANT_ADMIN)
def webhook_create(req: PageRequest) -> Response:
    tenant_id = _tenant_id(req)
    typed = _webhook_form(req)
    data: dict[str, Any] = {"url": typed["url"], "events": typed["events"]}
    if typed["description"].strip():
        data["description"] = typed["description"]
    parsed, errors = _parse(req, WebhookCreate, data)
    if parsed is None:
        return _webhooks_page(req, 400, errors, None, typed, None)
    try:
        created = webhooks.create(tenant_id, parsed, req.actor)
    except ApiError as err:
        errors, alert = _refusal(req, err, typed)
        return _webhooks_page(req, err.status, errors, alert, typed, None)
    return _render(req, "integrations/webhook_secret.html", "webhooks", status_code=201, hook=created,
                   rotated=False)


@router.page("GET", f"{BASE}/webhooks/{{webhook_id}}", roles=TENANT_ADMIN)
def webhook_detail(req: PageRequest) -> Response:
    notice = {"saved": gettext(req.locale, "The endpoint is saved."),
              "pinged": gettext(req.locale, "A test ping is queued; its delivery appears in the log below."),
              "enabled": gettext(req.locale, "The endpoint is enabled; its failure state is reset."),
              "disabled": gettext(req.locale, "The endpoint is disabled: nothing is delivered to it.")
              }.get(req.query.get("done", ""))
    return _webhook_page(req, _webhook_id(req), 200, {}, None, None, notice)


@router.page("POST", f"{BASE}/webhooks/{{webhook_id}}", roles=TENANT_ADMIN)
def webhook_update(req: PageRequest) -> Response:
    tenant_id, webhook_id = _tenant_id(req), _webhook_id(req)
    webhooks.get(tenant_id, webhook_id)
    typed = _webhook_form(req)
    parsed, errors = _parse(req, WebhookUpdate, {"url": typed["url"], "events": typed["events"],
                                                 "description": typed["description"].strip() or None})
    if parsed is None:
        return _webhook_page(req, webhook_id, 400, errors, None, typed, None)
    try:
        webhooks.update(tenant_id, webhook_id, parsed, req.actor)
    except ApiError as err:
        errors, alert = _refusal(req, err, typed)
        return _webhook_page(req, webhook_id, err.status, errors, alert, typed, None)
    return redirect(f"{BASE}/webhooks/{webhook_id}?done=saved")


@router.page("POST", f"{BASE}/webhooks/{{webhook_id}}/enabled", roles=TENANT_ADMIN)
def webhook_enable(req: PageRequest) -> Response:
    tenant_id, webhook_id = _tenant_id(req), _webhook_id(req)
    webhooks.get(tenant_id, webhook_id)
    enabled = {"true": True, "false": False}.get(req.form.get("enabled", ""))
    if enabled is None:
        raise ApiError(400, "validation_error", "")
    try:
        webhooks.update(tenant_id, webhook_id, WebhookUpdate(enabled=enabled), req.actor)
    except ApiError as err:
        return _webhook_page(req, webhook_id, err.status, {}, _said(req, err), None, None)
    return redirect(f"{BASE}/webhooks/{webhook_id}?done={'enabled' if enabled else 'disabled'}")


@router.page("POST", f"{BASE}/webhooks/{{webhook_id}}/ping", roles=TENANT_ADMIN)
def webhook_ping(req: PageRequest) -> Response:
    tenant_id, webhook_id = _tenant_id(req), _webhook_id(req)
    try:
        webhooks.ping(tenant_id, webhook_id)
    except ApiError as err:
        if err.status == 404:
            raise
        return _webhook_page(req, webhook_id, err.status, {}, _said(req, err), None, None)
    return redirect(f"{BASE}/webhooks/{webhook_id}?done=pinged")


@router.page("POST", f"{BASE}/webhooks/{{webhook_id}}/rotate-secret", roles=TENANT_ADMIN)
def webhook_rotate(req: PageRequest) -> Response:
    rotated = webhooks.rotate(_tenant_id(req), _webhook_id(req), req.actor)
    return _render(req, "integrations/webhook_secret.html", "webhooks", status_code=201, hook=rotated, rotated=True)


@router.page("GET", f"{BASE}/webhooks/{{webhook_id}}/delete", roles=TENANT_ADMIN)
def webhook_delete_confirm(req: PageRequest) -> Response:
    hook = webhooks.get(_tenant_id(req), _webhook_id(req))
    return _render(req, "integrations/webhook_delete.html", "webhooks", hook=hook)


@router.page("POST", f"{BASE}/webhooks/{{webhook_id}}/delete", roles=TENANT_ADMIN)
def webhook_delete(req: PageRequest) -> Response:
    webhooks.delete(_tenant_id(req), _webhook_id(req), req.actor)
    return redirect(f"{BASE}/webhooks?done=deleted")


# --- the team -----------------------------------------------------------------------------------------------------

@router.page("GET", f"{BASE}/team", roles=ADMINS)
def team(req: PageRequest) -> Response:
    notice = {"invited": gettext(req.locale, "The invitation is on its way; the link is valid 7 days."),
              "resent": gettext(req.locale, "The invitation is sent again with a new link; the old one stops "
                                            "working."),
              "revoked": gettext(req.locale, "The invitation is revoked."),
              "removed": gettext(req.locale, "The member is removed; every session of theirs has ended.")
              }.get(req.query.get("done", ""))
    return _team_page(req, 200, {}, None, {"email": "", "role": ""}, notice)


@router.page("POST", f"{BASE}/team/invitations", roles=ADMINS)
def invite(req: PageRequest) -> Response:
    scope = _scope(req)
    typed = {"email": req.form.get("email", "").strip(), "role": req.form.get("role", "")}
    parsed, errors = _parse(req, InvitationCreate, typed)
    if parsed is None:
        return _team_page(req, 400, errors, None, typed, None)
    try:
        members.invite(scope, parsed, req.actor)
    except ApiError as err:
        errors, alert = _refusal(req, err, typed)
        return _team_page(req, err.status, errors, alert, typed, None)
    return redirect(f"{BASE}/team?done=invited")


@router.page("POST", f"{BASE}/team/invitations/{{invitation_id}}/resend", roles=ADMINS)
def invitation_resend(req: PageRequest) -> Response:
    return _invitation_action(req, members.resend, "resent")


@router.page("POST", f"{BASE}/team/invitations/{{invitation_id}}/revoke", roles=ADMINS)
def invitation_revoke(req: PageRequest) -> Response:
    return _invitation_action(req, members.revoke_invitation, "revoked")


@router.page("GET", f"{BASE}/team/{{user_id}}", roles=ADMINS)
def member_detail(req: PageRequest) -> Response:
    notice = {"saved": gettext(req.locale, "The member is saved."),
              "disabled": gettext(req.locale, "The member is disabled; their sessions here have ended."),
              "enabled": gettext(req.locale, "The member is enabled again."),
              "mfa": gettext(req.locale, "Their authenticator is forgotten: they enrol a new one at their next "
                                         "sign-in."),
              "ended": gettext(req.locale, "Their sessions have ended; they can sign in again.")
              }.get(req.query.get("done", ""))
    return _member_page(req, _user_id(req), 200, {}, None, None, notice)


@router.page("POST", f"{BASE}/team/{{user_id}}/role", roles=ADMINS)
def member_role(req: PageRequest) -> Response:
    scope, user_id = _scope(req), _user_id(req)
    role = req.form.get("role", "")
    parsed, errors = _parse(req, MemberUpdate, {"role": role})
    if parsed is None:
        return _member_page(req, user_id, 400, errors, None, role, None)
    try:
        members.update_member(scope, user_id, parsed, req.actor)
    except ApiError as err:
        if err.status == 404:
            raise
        errors, alert = _refusal(req, err, {"role": role})
        return _member_page(req, user_id, err.status, errors, alert, role, None)
    return redirect(f"{BASE}/team/{user_id}?done=saved")


@router.page("POST", f"{BASE}/team/{{user_id}}/status", roles=ADMINS)
def member_status(req: PageRequest) -> Response:
    scope, user_id = _scope(req), _user_id(req)
    parsed, errors = _parse(req, MemberUpdate, {"status": req.form.get("status", "")})
    if parsed is None:
        return _member_page(req, user_id, 400, {}, next(iter(errors.values())), None, None)
    try:
        members.update_member(scope, user_id, parsed, req.actor)
    except ApiError as err:
        if err.status == 404:
            raise
        return _member_page(req, user_id, err.status, {}, _said(req, err), None, None)
    return redirect(f"{BASE}/team/{user_id}?done={'enabled' if parsed.status == 'active' else 'disabled'}")


@router.page("POST", f"{BASE}/team/{{user_id}}/mfa-reset", roles=ADMINS)
def member_mfa_reset(req: PageRequest) -> Response:
    return _member_action(req, members.reset_mfa, "mfa")


@router.page("POST", f"{BASE}/team/{{user_id}}/end-sessions", roles=ADMINS)
def member_end_sessions(req: PageRequest) -> Response:
    return _member_action(req, members.end_member_sessions, "ended")


@router.page("GET", f"{BASE}/team/{{user_id}}/remove", roles=ADMINS)
def member_remove_confirm(req: PageRequest) -> Response:
    member = _member(_scope(req), _user_id(req))
    return _render(req, "integrations/member_remove.html", "team", member=member, error=None)


@router.page("POST", f"{BASE}/team/{{user_id}}/remove", roles=ADMINS)
def member_remove(req: PageRequest) -> Response:
    scope, user_id = _scope(req), _user_id(req)
    member = _member(scope, user_id)
    try:
        members.remove_member(scope, user_id, req.actor)
    except ApiError as err:
        if err.status == 404:
            raise
        return _render(req, "integrations/member_remove.html", "team", status_code=err.status, member=member,
                       error=_said(req, err))
    if user_id == req.person.user_id:
        return redirect("/console/sign-in")  # they removed themselves: their sessions here have ended
    return redirect(f"{BASE}/team?done=removed")


# --- the audit trail ----------------------------------------------------------------------------------------------

@router.page("GET", f"{BASE}/audit", roles=ADMINS)
def audit(req: PageRequest) -> Response:
    typed = {"actor": req.query.get("actor", "").strip(), "action": req.query.get("action", "").strip()}
    query = {k: v for k, v in {**typed, "cursor": req.query.get("cursor", ""),
                               "limit": req.query.get("limit", "")}.items() if v}
    try:
        parsed = AuditQuery.model_validate(query)
    except ValidationError as err:
        return _render(req, "integrations/audit.html", "audit", status_code=400, errors=_errors(req, err),
                       typed=typed, entries=[], next_url=None)
    entries, cursor = listings.audit_entries(_scope(req).partition, parsed.limit, parsed.cursor, parsed.actor,
                                             parsed.action)
    rows = [{"entry": e, "who": _who(e.actor, e.actor_email)} for e in entries]
    next_url = None
    if cursor:
        kept = {k: v for k, v in (("actor", typed["actor"]), ("action", typed["action"]),
                                  ("limit", query.get("limit", ""))) if v}
        next_url = f"{BASE}/audit?" + urlencode({**kept, "cursor": cursor})
    return _render(req, "integrations/audit.html", "audit", errors={}, typed=typed, entries=rows, next_url=next_url)


# --- pages with their forms ---------------------------------------------------------------------------------------

def _keys_page(req: PageRequest, status: int, errors: dict[str, str], alert: str | None, typed: dict[str, str],
               notice: str | None) -> Response:
    scope = _scope(req)
    page = _page_query(req)
    items, cursor = keys.list_keys(scope, page.limit, page.cursor)
    roles = [r for r in (Role.TENANT_ADMIN, Role.POS, Role.SUPPORT, Role.AGENCY, Role.PLATFORM)
             if r in roles_mintable_in(scope.kind)]
    stores = listings.stores(scope.id, 200, None)[0] if scope.kind is ScopeKind.TENANT else []
    return _render(req, "integrations/keys.html", "keys", status_code=status, keys=items,
                   next_url=_next_url(f"{BASE}/keys", cursor), errors=errors, error=alert, typed=typed,
                   roles=[r.value for r in roles], stores=stores, notice_text=notice)


def _key_page(req: PageRequest, key: KeyInfo, status: int, errors: dict[str, str], alert: str | None,
              grace: str) -> Response:
    return _render(req, "integrations/key.html", "keys", status_code=status, key=key, errors=errors, error=alert,
                   grace=grace, grace_choices=GRACE_CHOICES)


def _webhooks_page(req: PageRequest, status: int, errors: dict[str, str], alert: str | None, typed: dict[str, Any],
                   notice: str | None) -> Response:
    page = _page_query(req)
    items, cursor = webhooks.list_all(_tenant_id(req), page.limit, page.cursor)
    return _render(req, "integrations/webhooks.html", "webhooks", status_code=status, hooks=items,
                   next_url=_next_url(f"{BASE}/webhooks", cursor), errors=errors, error=alert, typed=typed,
                   event_types=EVENT_TYPES, notice_text=notice)


def _webhook_page(req: PageRequest, webhook_id: str, status: int, errors: dict[str, str], alert: str | None,
                  typed: dict[str, Any] | None, notice: str | None) -> Response:
    tenant_id = _tenant_id(req)
    hook = webhooks.get(tenant_id, webhook_id)
    if typed is None:
        typed = {"url": hook.url, "events": list(hook.events), "description": hook.description or ""}
    page = _page_query(req)
    log, cursor = webhooks.deliveries(tenant_id, webhook_id, page.limit, page.cursor)
    return _render(req, "integrations/webhook.html", "webhooks", status_code=status, hook=hook, errors=errors,
                   error=alert, typed=typed, event_types=EVENT_TYPES, log=log, notice_text=notice,
                   next_url=_next_url(f"{BASE}/webhooks/{webhook_id}", cursor))


def _team_page(req: PageRequest, status: int, errors: dict[str, str], alert: str | None, typed: dict[str, str],
               notice: str | None) -> Response:
    scope = _scope(req)
    people, cursor = members.list_members(scope, _page_query(req).limit, _page_query(req).cursor)
    invites_page = _page_query(req, "icursor")
    invitations, invites_cursor = members.list_invitations(scope, invites_page.limit, invites_page.cursor)
    return _render(req, "integrations/team.html", "team", status_code=status, people=people,
                   next_url=_next_url(f"{BASE}/team", cursor), invitations=invitations,
                   invites_next_url=_next_url(f"{BASE}/team", invites_cursor, "icursor"), errors=errors,
                   error=alert, typed=typed, roles=_person_roles(scope), notice_text=notice)


def _member_page(req: PageRequest, user_id: str, status: int, errors: dict[str, str], alert: str | None,
                 role: str | None, notice: str | None) -> Response:
    scope = _scope(req)
    member = _member(scope, user_id)
    page = _page_query(req)
    open_sessions, cursor = members.member_sessions(scope, user_id, page.limit, page.cursor)
    return _render(req, "integrations/member.html", "team", status_code=status, member=member, errors=errors,
                   error=alert, role=role if role is not None else member.role.value, roles=_person_roles(scope),
                   sessions=open_sessions, next_url=_next_url(f"{BASE}/team/{user_id}", cursor),
                   notice_text=notice, myself=user_id == req.person.user_id)


def _invitation_action(req: PageRequest, action: Callable[[Scope, str, str], Any], done: str) -> Response:
    invitation_id = req.path["invitation_id"]
    if len(invitation_id) > MAX_ID:
        raise not_found("Invitation")
    try:
        action(_scope(req), invitation_id, req.actor)
    except ApiError as err:
        if err.status == 404:
            raise
        return _team_page(req, err.status, {}, _said(req, err), {"email": "", "role": ""}, None)
    return redirect(f"{BASE}/team?done={done}")


def _member_action(req: PageRequest, action: Callable[[Scope, str, str], int], done: str) -> Response:
    scope, user_id = _scope(req), _user_id(req)
    _member(scope, user_id)
    try:
        action(scope, user_id, req.actor)
    except ApiError as err:
        if err.status == 404:
            raise
        return _member_page(req, user_id, err.status, {}, _said(req, err), None, None)
    if user_id == req.person.user_id and done == "ended":
        return redirect("/console/sign-in")  # their own sessions, this one included, have ended
    return redirect(f"{BASE}/team/{user_id}?done={done}")


# --- helpers ------------------------------------------------------------------------------------------------------

def _render(req: PageRequest, template: str, tab: str, status_code: int = 200, **context: Any) -> Response:
    """A page of this area: its tabs (those the person's role opens), the scope's time zone, the labels."""
    tabs = [(path, label, path == f"{BASE}/{tab}") for path, label, roles in TABS if req.person.role in roles]
    return req.render(template, status_code, tabs=tabs, tz=_timezone(req), role_names=ROLE_NAMES,
                      key_status=KEY_STATUS, member_status=MEMBER_STATUS, invitation_status=INVITATION_STATUS,
                      delivery_status=DELIVERY_STATUS, who=_who_of, **context)


def _scope(req: PageRequest) -> Scope:
    """Where the person acts, exactly as the API's own-scope routes (own_scope of the signed-in person)."""
    return own_scope(req.person)


def _tenant_id(req: PageRequest) -> str:
    tenant_id = req.person.tenant_id
    assert tenant_id is not None, "a page declared for tenant roles only"
    return tenant_id


def _timezone(req: PageRequest) -> str:
    tenant_id = req.person.tenant_id
    return tenancy.require_tenant(tenant_id).timezone if tenant_id else "UTC"


def _person_roles(scope: Scope) -> list[str]:
    return [r.value for r in (Role.TENANT_ADMIN, Role.SUPPORT, Role.AGENCY, Role.PLATFORM)
            if r in PERSON_ROLES and role_fits_scope(r, scope.kind)]


def _find_key(scope: Scope, key_id: str) -> KeyInfo:
    """One key of the scope (the services list keys by page; a scope has a few), or the API's 404."""
    cursor: str | None = None
    if len(key_id) <= MAX_ID:
        while True:
            items, cursor = keys.list_keys(scope, 200, cursor)
            found = next((k for k in items if k.key_id == key_id), None)
            if found is not None:
                return found
            if not cursor:
                break
    raise not_found("Key")


def _member(scope: Scope, user_id: str) -> Any:
    """One member of the scope as the API shows them, or the API's 404.

    An update that changes nothing is the service's read of one member
    (nothing is written, nothing audited): the same view PATCH answers with.
    """
    return members.update_member(scope, user_id, MemberUpdate(), "")


def _webhook_id(req: PageRequest) -> str:
    value = req.path["webhook_id"]
    if len(value) > MAX_ID:
        raise not_found("Webhook endpoint")
    return value


def _user_id(req: PageRequest) -> str:
    value = req.path["user_id"]
    if len(value) > MAX_ID:
        raise not_found("Member")
    return value


def _webhook_form(req: PageRequest) -> dict[str, Any]:
    """The endpoint form: one checkbox per event type (a form's repeated names would be lost in a dict)."""
    return {"url": req.form.get("url", "").strip(), "description": req.form.get("description", ""),
            "events": [t for t in EVENT_TYPES if req.form.get(f"event:{t}")]}


def _page_query(req: PageRequest, name: str = "cursor") -> PageQuery:
    """A page of a list: `?cursor=` (or another name for a second list on the page) as the API's PageQuery."""
    data = {"limit": req.query.get("limit") or PAGE_SIZE, **({"cursor": req.query[name]} if req.query.get(name)
                                                              else {})}
    try:
        return PageQuery.model_validate(data)
    except ValidationError:
        raise ApiError(400, "invalid_query", "") from None


def _next_url(path: str, cursor: str | None, name: str = "cursor") -> str | None:
    return f"{path}?{urlencode({name: cursor})}" if cursor else None


def _parse(req: PageRequest, model: type[M], data: dict[str, Any]) -> tuple[M | None, dict[str, str]]:
    """The form as the API's own model reads a JSON body (strict), or the model's errors by field."""
    try:
        return model.model_validate_json(json.dumps(data)), {}
    except ValidationError as err:
        return None, _errors(req, err)


def _errors(req: PageRequest, err: ValidationError) -> dict[str, str]:
    errors: dict[str, str] = {}
    for item in err.errors(include_url=False):
        name = str(item["loc"][0]) if item["loc"] else "form"
        errors.setdefault(name, gettext(req.locale, str(item["msg"])))
    return errors


def _refusal(req: PageRequest, err: ApiError, typed: dict[str, Any]) -> tuple[dict[str, str], str | None]:
    """The API's refusal at its field when the form has that field (`events[1]` is the events field), else above."""
    for detail in err.details:
        name = detail.field.split("[")[0].split(".")[0]
        if name in typed:
            return {name: _said(req, err)}, None
    return {}, _said(req, err)


def _said(req: PageRequest, err: ApiError) -> str:
    return gettext(req.locale, err.message)


def _who(actor: str, email: str | None) -> dict[str, str]:
    """Who did it: a person by e-mail, a key by its id (and role), anything else (the system) as recorded."""
    if email:
        return {"kind": "person", "label": email, "filter": email}
    role, _, key_id = actor.partition(":")
    if key_id and role in {r.value for r in Role}:
        return {"kind": "key", "label": key_id, "role": role, "filter": key_id}
    return {"kind": "system", "label": actor, "filter": actor}


def _who_of(actor: str | None) -> str:
    """A recorded actor string (`user:<id> <e-mail>`, `<role>:<key id>`) as a person reads it."""
    if not actor:
        return "—"
    if actor.startswith("user:") and " " in actor:
        return actor.partition(" ")[2]
    return actor
