"""People: signing in and out, the session, and the members and invitations of a scope.

Sign-in routes are public (the person has no credential yet) and refuse a
foreign Origin. Session routes need a signed-in person (`Authorization:
Session <csrf token>` plus the session cookie). Member routes act in the
caller's own scope, an agency's tenant, or (for the platform) an agency,
with the same rules as the key routes: only that scope's admin role.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.api.registry import PUBLIC, Request, Router
from chalicelib.api.routes.common import lazy_module, page
from chalicelib.domain.identity import PERSON_ROLES
from chalicelib.domain.roles import Role
from chalicelib.schemas.common import Page, PageQuery
from chalicelib.schemas.identity import (
    Accepted,
    InvitationAccept,
    InvitationCreate,
    InvitationView,
    MemberUpdate,
    MemberView,
    PasswordForgot,
    PasswordReset,
    ScopeSwitch,
    SessionInfo,
    SessionsEnded,
    SessionView,
    SignIn,
    SignInCode,
    SignInStep,
)
from chalicelib.services.tenancy.scopes import Scope, own_scope

if TYPE_CHECKING:
    from chalicelib.services.identity import members, passwords, sessions, sign_in
    from chalicelib.services.tenancy import tenancy
else:
    members = lazy_module("chalicelib.services.identity.members")
    passwords = lazy_module("chalicelib.services.identity.passwords")
    sessions = lazy_module("chalicelib.services.identity.sessions")
    sign_in = lazy_module("chalicelib.services.identity.sign_in")
    tenancy = lazy_module("chalicelib.services.tenancy.tenancy")

router = Router("People")
PEOPLE = PERSON_ROLES
ADMINS = {Role.PLATFORM, Role.AGENCY, Role.TENANT_ADMIN}
NO_STORE = {"Cache-Control": "no-store"}


def _client(req: Request) -> tuple[str, str]:
    return req.source_ip, req.headers.get("user-agent", "")[:200]


def _outcome(outcome: Any) -> tuple[int, SignInStep, dict[str, str]]:
    headers = dict(NO_STORE)
    if outcome.set_cookie:
        headers["Set-Cookie"] = outcome.set_cookie
    return 200, outcome.step, headers


# --- signing in --------------------------------------------------------------------------------------------------

@router.route("POST", "/v1/auth/sign-in", roles=PUBLIC, body=SignIn, response=SignInStep, errors=(401, 429),
              browser=True, summary="Sign in with e-mail and password; the answer says what comes next (the MFA "
                                    "code, enrolling an authenticator, or the session).")
def sign_in_password(req: Request) -> tuple[int, SignInStep, dict[str, str]]:
    return _outcome(sign_in.password_step(req.body.email, req.body.password, *_client(req)))


@router.route("POST", "/v1/auth/sign-in/code", roles=PUBLIC, body=SignInCode, response=SignInStep,
              errors=(401, 429), browser=True,
              summary="Finish signing in with the authenticator's 6-digit code; sets the session cookie.")
def sign_in_code(req: Request) -> tuple[int, SignInStep, dict[str, str]]:
    return _outcome(sign_in.code_step(req.body.sign_in_id, req.body.code, *_client(req)))


@router.route("POST", "/v1/auth/password/forgot", roles=PUBLIC, body=PasswordForgot, status=202, errors=(429,),
              browser=True, summary="E-mail a password-reset link (the same answer whether the address has an "
                                    "account or not).")
def forgot_password(req: Request) -> tuple[int, dict[str, str], dict[str, str]]:
    passwords.request_reset(req.body.email, req.source_ip)
    return 202, {"status": "If this address has an account, a link is on its way."}, NO_STORE


@router.route("POST", "/v1/auth/password/reset", roles=PUBLIC, body=PasswordReset, status=204,
              errors=(404, 410, 422), browser=True,
              summary="Set a new password with the e-mailed link; every session of the account ends.")
def reset_password(req: Request) -> tuple[int, None, dict[str, str]]:
    passwords.complete_reset(req.body.token, req.body.password)
    return 204, None, NO_STORE


@router.route("POST", "/v1/auth/invitations/accept", roles=PUBLIC, body=InvitationAccept, response=Accepted,
              status=201, errors=(404, 409, 410, 422), browser=True,
              summary="Accept an invitation: a new account chooses its password here; then sign in.")
def accept_invitation(req: Request) -> tuple[int, Accepted, dict[str, str]]:
    return 201, members.accept(req.body, req.source_ip), NO_STORE


# --- the session -------------------------------------------------------------------------------------------------

@router.route("GET", "/v1/auth/session", roles=PEOPLE, sessions_only=True, response=SessionView,
              summary="The signed-in person, their memberships, the scope they act in and the session's expiry.")
def current_session(req: Request) -> SessionView:
    return sessions.current(req.caller)


@router.route("POST", "/v1/auth/session/refresh", roles=PEOPLE, sessions_only=True, response=SessionView, errors=(401,),
              summary="Keep the session alive (idle timeout from now), after checking the account with Cognito.")
def refresh_session(req: Request) -> SessionView:
    return sessions.refresh(req.caller)


@router.route("PUT", "/v1/auth/session/scope", roles=PEOPLE, sessions_only=True, body=ScopeSwitch, response=SessionView,
              errors=(422,), summary="Act in another of your scopes (platform, an agency, a tenant).")
def switch_scope(req: Request) -> SessionView:
    return sessions.switch_scope(req.caller, req.body.scope)


@router.route("GET", "/v1/auth/sessions", roles=PEOPLE, sessions_only=True, query=PageQuery,
              response=Page[SessionInfo], summary="Your own open sessions (devices), the current one marked.")
def my_sessions(req: Request) -> Page[SessionInfo]:
    assert req.caller.user_id is not None
    return page(*sessions.page_of_sessions(req.caller.user_id, req.query.limit, req.query.cursor, req.caller.key_id))


@router.route("POST", "/v1/auth/sign-out", roles=PEOPLE, sessions_only=True, response=SessionsEnded,
              summary="Sign out everywhere: every session of yours ends and Cognito revokes your refresh tokens.")
def sign_out(req: Request) -> tuple[int, SessionsEnded, dict[str, str]]:
    ended, clear = sessions.sign_out(req.caller)
    return 200, SessionsEnded(ended=ended), {**NO_STORE, "Set-Cookie": clear}


# --- members of a scope ------------------------------------------------------------------------------------------

def _own(req: Request) -> Scope:
    return own_scope(req.caller)


def _agency_tenant(req: Request) -> Scope:
    tenant = tenancy.require_tenant_of_agency(req.caller.owner, req.path["tenant_id"])
    return Scope.tenant(tenant.tenant_id, tenant.agency_id)


def _platform_agency(req: Request) -> Scope:
    agency = tenancy.require_agency(req.path["agency_id"])
    return Scope.agency(agency.agency_id)


@router.route("GET", "/v1/members", roles=ADMINS, query=PageQuery, response=Page[MemberView],
              summary="The people of your own scope with their role, status, MFA and open sessions.")
def list_members(req: Request) -> Page[MemberView]:
    return page(*members.list_members(_own(req), req.query.limit, req.query.cursor))


@router.route("PATCH", "/v1/members/{user_id}", roles=ADMINS, body=MemberUpdate, response=MemberView,
              errors=(404, 409, 422), summary="Change a member's role, or disable/enable them in your scope.")
def update_member(req: Request) -> MemberView:
    return members.update_member(_own(req), req.path["user_id"], req.body, req.actor)


@router.route("DELETE", "/v1/members/{user_id}", roles=ADMINS, response=SessionsEnded, errors=(404, 409),
              summary="Remove a member from your scope; every session of theirs ends at once.")
def remove_member(req: Request) -> SessionsEnded:
    return SessionsEnded(ended=members.remove_member(_own(req), req.path["user_id"], req.actor))


@router.route("POST", "/v1/members/{user_id}/mfa-reset", roles=ADMINS, response=SessionsEnded, errors=(403, 404),
              summary="Forget a member's authenticator (a lost phone): they enrol a new one at their next sign-in.")
def reset_member_mfa(req: Request) -> SessionsEnded:
    return SessionsEnded(ended=members.reset_mfa(_own(req), req.path["user_id"], req.actor))


@router.route("GET", "/v1/members/{user_id}/sessions", roles=ADMINS, query=PageQuery, response=Page[SessionInfo],
              errors=(404,), summary="A member's open sessions acting in your scope.")
def member_sessions(req: Request) -> Page[SessionInfo]:
    return page(*members.member_sessions(_own(req), req.path["user_id"], req.query.limit, req.query.cursor))


@router.route("DELETE", "/v1/members/{user_id}/sessions", roles=ADMINS, response=SessionsEnded, errors=(404,),
              summary="End every session of a member now (they can sign in again).")
def end_member_sessions(req: Request) -> SessionsEnded:
    return SessionsEnded(ended=members.end_member_sessions(_own(req), req.path["user_id"], req.actor))


@router.route("GET", "/v1/invitations", roles=ADMINS, query=PageQuery, response=Page[InvitationView],
              summary="Invitations to your own scope: pending, accepted, revoked or expired.")
def list_invitations(req: Request) -> Page[InvitationView]:
    return page(*members.list_invitations(_own(req), req.query.limit, req.query.cursor))


@router.route("POST", "/v1/invitations", roles=ADMINS, body=InvitationCreate, response=InvitationView, status=201,
              errors=(409, 422), summary="Invite a person by e-mail with a role; the link is valid 7 days.")
def invite(req: Request) -> InvitationView:
    return members.invite(_own(req), req.body, req.actor)


@router.route("POST", "/v1/invitations/{invitation_id}/resend", roles=ADMINS, response=InvitationView,
              errors=(404, 409), summary="Send the invitation again with a new link (the old one stops working).")
def resend_invitation(req: Request) -> InvitationView:
    return members.resend(_own(req), req.path["invitation_id"], req.actor)


@router.route("DELETE", "/v1/invitations/{invitation_id}", roles=ADMINS, response=InvitationView,
              errors=(404, 409), summary="Revoke a pending invitation.")
def revoke_invitation(req: Request) -> InvitationView:
    return members.revoke_invitation(_own(req), req.path["invitation_id"], req.actor)


@router.route("GET", "/v1/agency/tenants/{tenant_id}/members", roles={Role.AGENCY}, query=PageQuery,
              response=Page[MemberView], errors=(404,), summary="The people of one of the agency's tenants.")
def list_tenant_members(req: Request) -> Page[MemberView]:
    return page(*members.list_members(_agency_tenant(req), req.query.limit, req.query.cursor))


@router.route("POST", "/v1/agency/tenants/{tenant_id}/invitations", roles={Role.AGENCY}, body=InvitationCreate,
              response=InvitationView, status=201, errors=(404, 409, 422),
              summary="Invite a person to one of the agency's tenants (its first admin, for instance).")
def invite_to_tenant(req: Request) -> InvitationView:
    return members.invite(_agency_tenant(req), req.body, req.actor)


@router.route("GET", "/v1/platform/agencies/{agency_id}/members", roles={Role.PLATFORM}, query=PageQuery,
              response=Page[MemberView], errors=(404,), summary="The people of an agency.")
def list_agency_members(req: Request) -> Page[MemberView]:
    return page(*members.list_members(_platform_agency(req), req.query.limit, req.query.cursor))


@router.route("POST", "/v1/platform/agencies/{agency_id}/invitations", roles={Role.PLATFORM}, body=InvitationCreate,
              response=InvitationView, status=201, errors=(404, 409, 422),
              summary="Invite a person to an agency (its first staff member, for instance).")
def invite_to_agency(req: Request) -> InvitationView:
    return members.invite(_platform_agency(req), req.body, req.actor)
