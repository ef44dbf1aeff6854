"""Browser sessions of staff: started after MFA, checked on every request, ended everywhere at once.

The browser holds only the HttpOnly session cookie; a page of ours holds the
CSRF token and sends it as `Authorization: Session <token>` (or in a form).
The authorizer finds the session by the token (its MAC proves we issued it),
the route layer then checks that the cookie names the same session: a
cross-site request has the cookie but not the token, a stolen token lacks
the cookie. Each check reads one partition (the person's account,
memberships and this session) in one query.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from chalicelib.domain import identity as rules
from chalicelib.domain.identity import Membership, SessionToken, UserStatus
from chalicelib.domain.ids import new_id
from chalicelib.domain.principal import Principal
from chalicelib.domain.roles import ScopeKind
from chalicelib.errors import ApiError, ErrorDetail
from chalicelib.schemas.identity import MembershipView, SessionInfo, SessionView, UserView
from chalicelib.services.identity import crypto
from chalicelib.services.tenancy.keys import AuthFailure, tenant_state
from chalicelib.storage import directory, pagination, staff_pool
from chalicelib.storage import identity as store
from chalicelib.storage.documents.identity import MembershipDoc, SessionDoc, UserDoc

_ENDED = ("session_ended", "The session has ended; sign in again.")


@dataclass(frozen=True)
class Started:
    set_cookie: str
    view: SessionView


def start(user_id: str, user: UserDoc, memberships: list[MembershipDoc], refresh_token: str, source_ip: str,
          user_agent: str) -> Started:
    """A new session in the person's first scope (platform, then agencies, then tenants)."""
    at = _now()
    session_id = new_id(16)
    token = rules.new_session_token(user_id, session_id)
    first = sorted(memberships, key=_scope_order)[0]
    doc = SessionDoc(cookie_hash=rules.secret_hash(token.secret), created_at=at.isoformat(),
                     last_used_at=at.isoformat(), scope_key=store.membership_of(first).key,
                     refresh_sealed=crypto.seal(refresh_token, session_id), user_agent=user_agent[:200],
                     source_ip=source_ip[:60])
    store.add_session(user_id, session_id, doc, at, _ttl(at, at))
    max_age = int(rules.ABSOLUTE_TIMEOUT.total_seconds())
    return Started(rules.cookie_header(token, max_age), _view(user_id, user, memberships, session_id, doc))


def authenticate(csrf: str) -> tuple[Principal, str]:
    """The principal of a session named by its CSRF token, and the hash its cookie must match; or AuthFailure."""
    parsed = rules.parse_csrf_token(crypto.csrf_key(), csrf)
    if parsed is None:
        raise AuthFailure("invalid_session", "The session token is not valid; sign in again.")
    principal, cookie_hash, _ = _principal(*parsed)
    return principal, cookie_hash


def authenticate_cookie(cookie_header: str | None) -> tuple[Principal, str]:
    """The principal of the session a page request's cookie names (pages have no token header), and the
    person's chosen language ("" if none); or AuthFailure. A page's form also carries the CSRF token
    (check_form_token)."""
    token = rules.session_cookie_from_header(cookie_header)
    if token is None:
        raise AuthFailure("invalid_session", "Sign in to continue.")
    principal, cookie_hash, locale = _principal(token.user_id, token.session_id)
    if not hmac.compare_digest(rules.secret_hash(token.secret), cookie_hash):
        raise AuthFailure("invalid_session", "Sign in to continue.")
    return principal, locale


def check_form_token(principal: Principal, csrf: str | None) -> bool:
    """Does a submitted form's CSRF token belong to the session that submits it?"""
    parsed = rules.parse_csrf_token(crypto.csrf_key(), csrf)
    return parsed is not None and parsed == (principal.user_id, principal.key_id)


def csrf_of(principal: Principal) -> str:
    assert principal.user_id is not None
    return rules.csrf_token(crypto.csrf_key(), principal.user_id, principal.key_id)


def _principal(user_id: str, session_id: str) -> tuple[Principal, str, str]:
    person = store.load_person(user_id, session_id)
    if person is None or person.session is None:
        raise AuthFailure(*_ENDED)
    session, at = person.session, _now()
    if person.user.doc.status != UserStatus.ACTIVE:
        raise AuthFailure(*_ENDED)
    created, last_used = _time(session.created_at), _time(session.last_used_at)
    if not rules.session_alive(created, last_used, at):
        store.delete_session(user_id, session_id)
        raise AuthFailure("session_expired", "The session has expired; sign in again.")
    membership = _membership(person.memberships, session.scope_key)
    if membership is None:
        raise AuthFailure("no_membership", "You are no longer a member of this scope; sign in again.")
    agency_id = membership.agency_id
    if membership.scope is ScopeKind.TENANT:
        status, agency_id = tenant_state(membership.scope_id)
        if status is None:
            raise AuthFailure(*_ENDED)
        if status != "active":
            raise AuthFailure("tenant_suspended", "This tenant is suspended or being deleted.")
    elif membership.scope is ScopeKind.AGENCY:
        agency_id = membership.scope_id
    if at - last_used >= rules.TOUCH_EVERY:
        session.last_used_at = at.isoformat()
        store.update_session(user_id, session_id, session, at, _ttl(created, at))
    principal = Principal(role=membership.role, key_id=session_id, owner=membership.scope_id, agency_id=agency_id,
                          user_id=user_id, email=person.user.doc.email)
    return principal, session.cookie_hash, person.user.doc.locale


def foreign_origin(headers: Mapping[str, str], stage: str, allowed: tuple[str, ...]) -> str | None:
    """The Origin of a browser request sent from another site (refuse it), else None.

    No Origin: not sent by a browser's cross-origin machinery. Our own origin is the request's host under
    the scheme it came in (`X-Forwarded-Proto`; plain http only on the local and test stages).
    """
    origin = (headers.get("origin") or "").rstrip("/")
    if not origin:
        return None
    proto = headers.get("x-forwarded-proto") or ("http" if stage in ("local", "test") else "https")
    return None if origin == f"{proto}://{headers.get('host') or ''}" or origin in allowed else origin


def cookie_matches(cookie_header: str | None, principal: Principal, cookie_hash: str) -> bool:
    """Does the request's session cookie name the session its CSRF token named?"""
    token: SessionToken | None = rules.session_cookie_from_header(cookie_header)
    return (token is not None and token.user_id == principal.user_id and token.session_id == principal.key_id
            and rules.secret_hash(token.secret) == cookie_hash)


def current(principal: Principal) -> SessionView:
    person = _person(principal)
    assert person.session is not None
    return _view(person.user_id, person.user.doc, person.memberships, principal.key_id, person.session)


def refresh(principal: Principal) -> SessionView:
    """Check with Cognito that the person may still sign in, and extend the idle timeout; else end the session."""
    person = _person(principal)
    session = person.session
    assert session is not None
    refresh_token = crypto.unseal(session.refresh_sealed, principal.key_id)
    if refresh_token is None or not staff_pool.still_valid(refresh_token):
        store.delete_session(person.user_id, principal.key_id)
        raise ApiError(401, "session_ended", "The session has ended; sign in again.")
    at = _now()
    session.last_used_at = at.isoformat()
    store.update_session(person.user_id, principal.key_id, session, at, _ttl(_time(session.created_at), at))
    return _view(person.user_id, person.user.doc, person.memberships, principal.key_id, session)


def switch_scope(principal: Principal, scope_key: str) -> SessionView:
    """Act in another of the person's scopes from the next request on."""
    person = _person(principal)
    session = person.session
    assert session is not None
    if _membership(person.memberships, scope_key) is None:
        raise ApiError(422, "not_a_member", "You are not a member of that scope.",
                       [ErrorDetail("scope", "not one of your memberships")])
    at = _now()
    session.scope_key = scope_key
    store.update_session(person.user_id, principal.key_id, session, at,
                         _ttl(_time(session.created_at), _time(session.last_used_at)))
    return _view(person.user_id, person.user.doc, person.memberships, principal.key_id, session)


def sign_out(principal: Principal) -> tuple[int, str]:
    """End every session of the person and revoke their Cognito tokens; returns (count, Set-Cookie clearing it)."""
    assert principal.user_id is not None and principal.email is not None
    ended = end_all(principal.user_id, principal.email)
    return ended, rules.cookie_header(None, 0)


def end_all(user_id: str, email: str) -> int:
    """Every session of a person ends now, and every refresh token Cognito gave them is revoked."""
    ended = store.delete_sessions(user_id)
    staff_pool.sign_out_everywhere(email)
    return ended


def end_in_scope(user_id: str, scope_key: str) -> int:
    """End the person's sessions acting in one scope only."""
    ended = 0
    for stored in store.list_sessions(user_id):
        if stored.doc.scope_key == scope_key:
            store.delete_session(user_id, stored.session_id)
            ended += 1
    return ended


def list_sessions(user_id: str, current_session: str | None = None, scope_key: str | None = None
                  ) -> list[SessionInfo]:
    """The person's live sessions, newest use first; only those acting in `scope_key` if given."""
    at = _now()
    out = []
    for stored in store.list_sessions(user_id):
        doc = stored.doc
        if scope_key is not None and doc.scope_key != scope_key:
            continue
        created, last_used = _time(doc.created_at), _time(doc.last_used_at)
        if not rules.session_alive(created, last_used, at):
            continue
        out.append(SessionInfo(session_id=stored.session_id, created_at=created, last_used_at=last_used,
                               expires_at=rules.session_expiry(created, last_used), scope=doc.scope_key,
                               source_ip=doc.source_ip, user_agent=doc.user_agent,
                               current=stored.session_id == current_session))
    return sorted(out, key=lambda s: s.last_used_at, reverse=True)


def page_of_sessions(user_id: str, limit: int, cursor: str | None, current_session: str | None = None,
                     scope_key: str | None = None) -> tuple[list[SessionInfo], str | None]:
    """One page of list_sessions (a person has a handful: paged by position, the cursor bound to the person)."""
    listed = list_sessions(user_id, current_session, scope_key)
    start = pagination.decode_position(f"user#{user_id}", cursor)
    end = start + limit
    return listed[start:end], pagination.encode_position(f"user#{user_id}", end) if end < len(listed) else None


def clear_cookie() -> str:
    return rules.cookie_header(None, 0)


def membership_views(memberships: list[MembershipDoc]) -> list[MembershipView]:
    active = (store.membership_of(doc) for doc in memberships if doc.status == "active")
    return [MembershipView(scope=m.key, kind=m.scope, scope_id=m.scope_id, role=m.role,
                           name=scope_name(m.scope, m.scope_id)) for m in sorted(active, key=_membership_order)]


# --- helpers ----------------------------------------------------------------------------------------------------

def _now() -> datetime:
    return datetime.now(UTC)


def _time(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _ttl(created: datetime, last_used: datetime) -> int:
    return int(rules.session_expiry(created, last_used).timestamp())


def _scope_order(doc: MembershipDoc) -> tuple[int, str]:
    return _membership_order(store.membership_of(doc))


def _membership_order(m: Membership) -> tuple[int, str]:
    return [ScopeKind.PLATFORM, ScopeKind.AGENCY, ScopeKind.TENANT].index(m.scope), m.scope_id


def _membership(memberships: list[MembershipDoc], scope_key: str) -> Membership | None:
    """The active membership of a scope (a disabled one no longer lets the person act there)."""
    for doc in memberships:
        m = store.membership_of(doc)
        if m.key == scope_key and doc.status == "active":
            return m
    return None


def _person(principal: Principal) -> store.Person:
    if principal.user_id is None:
        raise ApiError(403, "session_required", "Only a signed-in person has a session; an API key has none.")
    person = store.load_person(principal.user_id, principal.key_id)
    if person is None or person.session is None:
        raise ApiError(401, *_ENDED)
    return person


def scope_name(kind: ScopeKind, scope_id: str, platform: str = "Platform") -> str:
    """A scope as people know it: the tenant's or agency's name (its id if it is gone), or `platform`."""
    if kind is ScopeKind.TENANT:
        tenant = directory.get_tenant(scope_id)
        return tenant.name if tenant else scope_id
    if kind is ScopeKind.AGENCY:
        agency = directory.get_agency(scope_id)
        return agency.name if agency else scope_id
    return platform


def _view(user_id: str, user: UserDoc, memberships: list[MembershipDoc], session_id: str,
          doc: SessionDoc) -> SessionView:
    created, last_used = _time(doc.created_at), _time(doc.last_used_at)
    active = _membership(memberships, doc.scope_key)
    if active is None:
        raise ApiError(401, "no_membership", "You are no longer a member of this scope; sign in again.")
    return SessionView(
        user=UserView(user_id=user_id, email=user.email, mfa_enrolled=user.mfa_enrolled, locale=user.locale or None),
        memberships=membership_views(memberships), scope=doc.scope_key,
        role=active.role,
        csrf_token=rules.csrf_token(crypto.csrf_key(), user_id, session_id),
        expires_at=rules.session_expiry(created, last_used), absolute_expires_at=created + rules.ABSOLUTE_TIMEOUT)
