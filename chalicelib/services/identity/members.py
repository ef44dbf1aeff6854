"""The people of a scope: invitations, roles, disabling, removal, MFA resets and their sessions.

A membership is ours (Cognito knows only the account). Every change names
the scope it acts in, and the route layer has checked that the caller
administers that scope; a person of another scope does not exist here (404).
Each scope keeps at least one active admin (storage keeps the count in the
same transaction as the change).
"""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from chalicelib.domain import identity as rules
from chalicelib.domain.identity import UserStatus
from chalicelib.domain.ids import new_id
from chalicelib.domain.roles import Role, ScopeKind
from chalicelib.errors import ApiError, ErrorDetail, conflict, field_error, not_found
from chalicelib.schemas.identity import (
    Accepted,
    InvitationAccept,
    InvitationCreate,
    InvitationView,
    MemberUpdate,
    MemberView,
    SessionInfo,
)
from chalicelib.services.identity import crypto, mail, passwords, sessions
from chalicelib.services.marketing.channels import PermanentSendError, TransientSendError
from chalicelib.services.tenancy.scopes import Scope
from chalicelib.settings import settings
from chalicelib.storage import audit, queues, staff_pool, transactions
from chalicelib.storage import identity as store
from chalicelib.storage.documents.identity import InvitationDoc, MembershipDoc, UserDoc
from chalicelib.storage.staff_pool import PoolRefused
from chalicelib.storage.transactions import TransactionFailed, Tx

INVITATION_JOB = "staff.invitation"
_PLATFORM = "Loyalty platform"
"""How an invitation e-mail names the platform scope."""
_LAST_ADMIN = ("last_admin", "A scope must keep at least one active admin; make someone else admin first.")


def invite(scope: Scope, spec: InvitationCreate, actor: str) -> InvitationView:
    """Invite an e-mail address to the scope with a role; the link in the e-mail is valid 7 days."""
    role = Role(spec.role)
    if not rules.role_fits_scope(role, scope.kind):
        raise field_error("role", f"A {scope.kind.value} member can be: {_roles_of(scope.kind)}.")
    user_id = store.user_id_by_email(spec.email)
    if user_id and store.get_membership(user_id, scope.kind, scope.id) is not None:
        raise conflict("already_member", "This person is already a member here.", "email")
    at = _now()
    invite_id = new_id(16)
    doc = InvitationDoc(email=spec.email, scope=scope.kind.value, scope_id=scope.id, role=role.value,
                        agency_id=scope.agency_id, token_hash="", status="pending",
                        expires_at=(at + rules.INVITATION_TTL).isoformat(), invited_by=_actor_name(actor),
                        invited_at=at.isoformat(), sent_count=1, delivery="queued")
    store.put_invitation(invite_id, doc, at, _invitation_ttl(at), new=True)
    queues.send(settings.jobs_queue, {"job": INVITATION_JOB, "invitation_id": invite_id})
    audit.put(audit.entry(scope.partition, action="member.invited", actor=actor, at=at, target=f"invite:{invite_id}",
                          detail={"email": spec.email, "role": role.value}))
    return _invitation_view(invite_id, doc, at)


def resend(scope: Scope, invite_id: str, actor: str) -> InvitationView:
    """A new link (the old one stops working) and seven more days."""
    doc = _pending_invitation(scope, invite_id)
    at = _now()
    doc.token_hash = ""  # the old link stops working now; the worker makes the new one
    doc.expires_at = (at + rules.INVITATION_TTL).isoformat()
    doc.sent_count += 1
    doc.delivery = "queued"
    if not store.put_invitation(invite_id, doc, at, _invitation_ttl(at), new=False):
        raise conflict("invitation_not_pending", "This invitation was accepted or revoked meanwhile.")
    queues.send(settings.jobs_queue, {"job": INVITATION_JOB, "invitation_id": invite_id})
    audit.put(audit.entry(scope.partition, action="member.invitation_resent", actor=actor, at=at,
                          target=f"invite:{invite_id}", detail={"email": doc.email}))
    return _invitation_view(invite_id, doc, at)


def revoke_invitation(scope: Scope, invite_id: str, actor: str) -> InvitationView:
    doc = _pending_invitation(scope, invite_id)
    at = _now()
    doc.status = "revoked"
    if not store.put_invitation(invite_id, doc, at, _invitation_ttl(at), new=False):
        raise conflict("invitation_not_pending", "This invitation was accepted or revoked meanwhile.")
    audit.put(audit.entry(scope.partition, action="member.invitation_revoked", actor=actor, at=at,
                          target=f"invite:{invite_id}", detail={"email": doc.email}))
    return _invitation_view(invite_id, doc, at)


def handle_job(message: dict[str, Any]) -> None:
    """The jobs worker's part: a fresh link for a pending invitation, then the e-mail with it.

    The secret is made here, not queued, so no queue holds a usable link; a
    redelivered job sends a new link and the previous one stops working.
    """
    invite_id = str(message["invitation_id"])
    doc = store.get_invitation(invite_id)
    if doc is None or doc.status != "pending":
        return
    at = _now()
    secret = secrets.token_urlsafe(24)
    doc.token_hash = crypto.token_hash(secret)
    doc.expires_at = (at + rules.INVITATION_TTL).isoformat()
    if not store.put_invitation(invite_id, doc, at, _invitation_ttl(at), new=False):
        return  # accepted or revoked meanwhile
    doc.delivery = _send_invitation(doc, f"{invite_id}.{secret}")
    store.put_invitation(invite_id, doc, at, _invitation_ttl(at), new=False)


def list_invitations(scope: Scope, limit: int, cursor: str | None) -> tuple[list[InvitationView], str | None]:
    at = _now()
    page = store.list_invitations(scope.kind, scope.id, limit, cursor)
    return [_invitation_view(i, doc, at) for i, doc in page.items], page.cursor


def accept(spec: InvitationAccept, source_ip: str) -> Accepted:
    """Join the scope: a new account gets its password here; an existing one just gains the membership."""
    invite_id, doc = _valid_invitation(spec.token)
    at = _now()
    user_id = store.user_id_by_email(doc.email)
    new_account = user_id is None
    if new_account:
        if not spec.password:
            raise field_error("password", "Choose a password for your new account.")
        passwords.check_policy(spec.password)
        user_id = _create_account(doc.email, spec.password)
    assert user_id is not None
    _join(invite_id, doc, user_id, new_account, at)
    return Accepted(email=doc.email, scope=rules.scope_key(ScopeKind(doc.scope), doc.scope_id), role=Role(doc.role),
                    new_account=new_account)


def describe_invitation(token: str) -> tuple[InvitationDoc, str, bool]:
    """What an invitation link offers (for the page that accepts it): the invitation, the scope's name, and
    whether the address has no account yet (then the page asks for a password). Refusals as `accept`'s."""
    _, doc = _valid_invitation(token)
    name = sessions.scope_name(ScopeKind(doc.scope), doc.scope_id, _PLATFORM)
    return doc, name, store.user_id_by_email(doc.email) is None


def list_members(scope: Scope, limit: int, cursor: str | None) -> tuple[list[MemberView], str | None]:
    """The scope's people by e-mail: role and status here, MFA, and their sessions acting here."""
    page = store.list_members(scope.kind, scope.id, limit, cursor)
    return [_view_of(scope, user_id, membership) for user_id, membership in page.items], page.cursor


def update_member(scope: Scope, user_id: str, spec: MemberUpdate, actor: str) -> MemberView:
    """Change a member's role or disable/enable them here; the last active admin cannot be demoted or disabled.

    Disabling also signs the person out everywhere at once (sessions are the
    person's, not the scope's); their other memberships still let them sign in.
    """
    previous = _membership(scope, user_id)
    doc = MembershipDoc.load(previous.dump())
    if spec.role is not None:
        if not rules.role_fits_scope(Role(spec.role), scope.kind):
            raise field_error("role", f"A {scope.kind.value} member can be: {_roles_of(scope.kind)}.")
        doc.role = spec.role
    if spec.status is not None:
        doc.status = spec.status
    if doc.dump() == previous.dump():
        return _member_view(scope, user_id)
    at = _now()

    def build(tx: Tx) -> None:
        store.set_membership(tx, user_id, doc, previous, at)
        audit.add(tx, audit.entry(scope.partition, action="member.updated", actor=actor, at=at,
                                  target=f"user:{user_id}", detail={"email": doc.email, "role": doc.role,
                                                                   "status": doc.status}))

    _write(build)
    if doc.status != "active" and previous.status == "active":
        _end_sessions(scope, user_id, doc.email)
    return _member_view(scope, user_id)


def remove_member(scope: Scope, user_id: str, actor: str) -> int:
    """Remove a member from the scope and end all their sessions at once; returns how many ended."""
    membership = _membership(scope, user_id)
    at = _now()

    def build(tx: Tx) -> None:
        store.remove_membership(tx, user_id, membership, at)
        audit.add(tx, audit.entry(scope.partition, action="member.removed", actor=actor, at=at,
                                  target=f"user:{user_id}", detail={"email": membership.email,
                                                                   "role": membership.role}))

    _write(build)
    return _end_sessions(scope, user_id, membership.email)


def reset_mfa(scope: Scope, user_id: str, actor: str) -> int:
    """Forget the member's authenticator (lost phone): they enrol a new one at their next sign-in."""
    membership = _membership(scope, user_id)
    others = [m for m in store.load_person(user_id, None).memberships  # type: ignore[union-attr]
              if (m.scope, m.scope_id) != (scope.kind.value, scope.id)]
    if others and scope.kind is not ScopeKind.PLATFORM:
        raise ApiError(403, "member_of_other_scopes",
                       "This person also works in other scopes; the platform's operators can reset their MFA.")
    staff_pool.set_mfa(membership.email, enabled=False)
    found = store.get_user(user_id)
    at = _now()
    if found is not None and found.doc.mfa_enrolled:
        user = UserDoc.load(found.doc.dump())
        user.mfa_enrolled = False
        store.save_user(user_id, user, found.version, at)
    ended = sessions.end_all(user_id, membership.email)
    audit.put(audit.entry(scope.partition, action="member.mfa_reset", actor=actor, at=at, target=f"user:{user_id}",
                          detail={"email": membership.email}))
    return ended


def member_sessions(scope: Scope, user_id: str, limit: int, cursor: str | None
                    ) -> tuple[list[SessionInfo], str | None]:
    """The member's sessions acting in this scope (their sessions elsewhere are not this scope's business)."""
    _membership(scope, user_id)
    return sessions.page_of_sessions(user_id, limit, cursor, scope_key=_key(scope))


def end_member_sessions(scope: Scope, user_id: str, actor: str) -> int:
    membership = _membership(scope, user_id)
    ended = _end_sessions(scope, user_id, membership.email)
    audit.put(audit.entry(scope.partition, action="member.sessions_ended", actor=actor, at=_now(),
                          target=f"user:{user_id}", detail={"email": membership.email, "ended": str(ended)}))
    return ended


# --- helpers ----------------------------------------------------------------------------------------------------

def _now() -> datetime:
    return datetime.now(UTC)


def _key(scope: Scope) -> str:
    return rules.scope_key(scope.kind, scope.id)


def _end_sessions(scope: Scope, user_id: str, email: str) -> int:
    """End the member's sessions here; all of them (and their Cognito tokens) if this scope is their only one.

    A person who also works for another tenant keeps those sessions: one
    tenant's admin cannot sign them out of another's.
    """
    person = store.load_person(user_id, None)
    elsewhere = [m for m in (person.memberships if person else [])
                 if m.status == "active" and (m.scope, m.scope_id) != (scope.kind.value, scope.id)]
    if not elsewhere:
        return sessions.end_all(user_id, email)
    return sessions.end_in_scope(user_id, _key(scope))


def _roles_of(kind: ScopeKind) -> str:
    return ", ".join(sorted(r.value for r in rules.PERSON_ROLES if rules.role_fits_scope(r, kind)))


def _actor_name(actor: str) -> str:
    """How an invitation names who sent it: the person's e-mail, or the key's id."""
    ident, email = rules.split_actor(actor)
    return email or ident


def _invitation_ttl(at: datetime) -> int:
    """Kept a while past expiry, so a late click still gets `invitation_expired` rather than `not found`."""
    return int((at + rules.INVITATION_TTL * 2).timestamp())


def _send_invitation(doc: InvitationDoc, token: str) -> str:
    """'sent' or 'failed': the invitation is kept either way and can be resent."""
    try:
        name = sessions.scope_name(ScopeKind(doc.scope), doc.scope_id, _PLATFORM)
        mail.send_invitation(doc.email, name, doc.role, token, datetime.fromisoformat(doc.expires_at),
                             doc.invited_by)
    except (PermanentSendError, TransientSendError):
        return "failed"
    return "sent"


def _valid_invitation(token: str) -> tuple[str, InvitationDoc]:
    """The invitation a link names, if it is the newest link of a pending, unexpired invitation."""
    invite_id, _, secret = token.partition(".")
    doc = store.get_invitation(invite_id) if 8 <= len(invite_id) <= 40 else None
    if doc is None or not doc.token_hash or not hmac.compare_digest(doc.token_hash, crypto.token_hash(secret)):
        raise ApiError(404, "invitation_not_found", "This invitation link is not valid; ask for a new one.",
                       [ErrorDetail("token", "unknown or replaced by a newer link")])
    if doc.status != "pending":
        raise ApiError(409, "invitation_used", "This invitation was already used or revoked.",
                       [ErrorDetail("token", doc.status)])
    if _now() >= datetime.fromisoformat(doc.expires_at):
        raise ApiError(410, "invitation_expired", "This invitation has expired; ask for a new one.",
                       [ErrorDetail("token", "expired")])
    return invite_id, doc


def _pending_invitation(scope: Scope, invite_id: str) -> InvitationDoc:
    doc = store.get_invitation(invite_id)
    if doc is None or (doc.scope, doc.scope_id) != (scope.kind.value, scope.id):
        raise not_found("Invitation")
    if doc.status != "pending":
        raise conflict("invitation_not_pending", f"This invitation is {doc.status} already.")
    return doc


def _invitation_view(invite_id: str, doc: InvitationDoc, at: datetime) -> InvitationView:
    expires = datetime.fromisoformat(doc.expires_at)
    status = "expired" if doc.status == "pending" and at >= expires else doc.status
    return InvitationView(invitation_id=invite_id, email=doc.email,
                          scope=rules.scope_key(ScopeKind(doc.scope), doc.scope_id), role=Role(doc.role),
                          status=status, expires_at=expires, invited_by=doc.invited_by,
                          invited_at=datetime.fromisoformat(doc.invited_at), sent_count=doc.sent_count,
                          delivery=doc.delivery if doc.delivery in ("queued", "failed") else "sent")


def _create_account(email: str, password: str) -> str:
    """The Cognito account (named by e-mail) and our id for the person: ours, so it never depends on Cognito's."""
    user_id = new_id(20)
    try:
        staff_pool.create_user(email)
        staff_pool.set_password(email, password)
    except PoolRefused as refused:
        if refused.reason == "invalid_password":
            raise field_error("password", "The password does not meet the policy: " + passwords.POLICY) from None
        raise
    return user_id


def _join(invite_id: str, doc: InvitationDoc, user_id: str, new_account: bool, at: datetime) -> None:
    """Account (if new), membership, invitation used and audit: one transaction, so a second use changes nothing."""
    membership = MembershipDoc(scope=doc.scope, scope_id=doc.scope_id, role=doc.role, agency_id=doc.agency_id,
                               status="active", email=doc.email, added_at=at.isoformat(), added_by=doc.invited_by)
    accepted = InvitationDoc.load(doc.dump())
    accepted.status, accepted.accepted_at, accepted.accepted_by = "accepted", at.isoformat(), user_id
    partition = store.scope_partition(ScopeKind(doc.scope), doc.scope_id)
    existing = None if new_account else store.get_user(user_id)
    reenable = existing is not None and existing.doc.status != UserStatus.ACTIVE

    def build(tx: Tx) -> None:
        store.set_membership(tx, user_id, membership, None, at)
        store.accept_invitation(tx, invite_id, accepted, at, _invitation_ttl(at))
        if new_account:
            store.add_user(tx, user_id, UserDoc(email=doc.email, status=UserStatus.ACTIVE, created_at=at.isoformat(),
                                                created_by=f"invite:{invite_id}"), at)
        audit.add(tx, audit.entry(partition, action="member.joined", actor=rules.person_actor(user_id, doc.email),
                                  at=at, target=f"user:{user_id}", detail={"email": doc.email, "role": doc.role,
                                                                           "invitation": invite_id}))

    try:
        transactions.write(build)
    except TransactionFailed as err:  # items: membership, invitation, [account, e-mail], audit, admin counter
        if err.condition_failed(0):
            raise conflict("already_member", "You are already a member here.", "token") from None
        if err.condition_failed(1):
            raise ApiError(409, "invitation_used", "This invitation was already used or revoked.",
                           [ErrorDetail("token", "used")]) from None
        raise
    if reenable and existing is not None:
        staff_pool.set_enabled(doc.email, enabled=True)
        user = UserDoc.load(existing.doc.dump())
        user.status = UserStatus.ACTIVE
        store.save_user(user_id, user, existing.version, at)


def _membership(scope: Scope, user_id: str) -> MembershipDoc:
    found = store.get_membership(user_id, scope.kind, scope.id) if len(user_id) <= 80 else None
    if found is None:
        raise not_found("Member")
    return found


def _member_view(scope: Scope, user_id: str) -> MemberView:
    return _view_of(scope, user_id, _membership(scope, user_id))


def _view_of(scope: Scope, user_id: str, membership: MembershipDoc) -> MemberView:
    user = store.get_user(user_id)
    return MemberView(user_id=user_id, email=membership.email, role=Role(membership.role),
                      status="disabled" if membership.status != "active" else "active",
                      mfa_enrolled=bool(user and user.doc.mfa_enrolled),
                      added_at=datetime.fromisoformat(membership.added_at), added_by=membership.added_by,
                      active_sessions=len(sessions.list_sessions(user_id, scope_key=_key(scope))))


def _write(build: Callable[[Tx], None]) -> None:
    try:
        store.write_membership_change(build)
    except store.LastAdmin:
        raise ApiError(409, *_LAST_ADMIN) from None
    except TransactionFailed as err:
        if err.condition_failed(0):
            raise conflict("member_changed", "This member was changed meanwhile; reload and try again.") from None
        raise
