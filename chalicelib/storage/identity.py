"""Staff accounts, memberships, sessions, invitations and sign-in state in the identity table.

Layout: storage/tables.IdentityRecord. A scope's admin count is kept in one
counter item (`scope#<partition>` / `admins`) changed in the same transaction
as the membership, so two admins demoting each other at once cannot leave a
scope with none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from pynamodb.exceptions import DeleteError, PutError, UpdateError
from pynamodb.expressions.update import Action

from chalicelib.domain.identity import ADMIN_OF, Membership
from chalicelib.domain.roles import Role, ScopeKind
from chalicelib.storage import pagination, transactions
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.identity import (
    InvitationDoc,
    MembershipDoc,
    PendingSignInDoc,
    ResetDoc,
    SessionDoc,
    UserDoc,
)
from chalicelib.storage.pagination import StoredPage
from chalicelib.storage.tables import IdentityRecord, condition_failed, count_in_window, get_item, save_if
from chalicelib.storage.transactions import TransactionFailed, Tx

USER_SK = "user"
ADMINS_SK = "admins"


class LastAdmin(Exception):
    """The change would leave a scope without an admin."""


@dataclass(frozen=True)
class Person:
    """A user with their memberships and (optionally) one session: what each signed-in request needs, one query."""

    user_id: str
    user: Versioned[UserDoc]
    memberships: list[MembershipDoc]
    session: SessionDoc | None


@dataclass(frozen=True)
class StoredSession:
    session_id: str
    doc: SessionDoc


# --- keys ----------------------------------------------------------------------------------------------------------

def user_pk(user_id: str) -> str:
    return f"user#{user_id}"


def scope_partition(scope: ScopeKind, scope_id: str) -> str:
    """The owner partition of a scope, as the audit trail and the keys name it."""
    if scope is ScopeKind.PLATFORM:
        return "platform"
    return f"agency#{scope_id}" if scope is ScopeKind.AGENCY else scope_id


def member_sk(scope: ScopeKind, scope_id: str) -> str:
    return f"member#{scope_partition(scope, scope_id)}"


def membership_of(doc: MembershipDoc) -> Membership:
    return Membership(ScopeKind(doc.scope), doc.scope_id, Role(doc.role), doc.agency_id)


# --- accounts --------------------------------------------------------------------------------------------------------

def user_id_by_email(email: str) -> str | None:
    rec = get_item(IdentityRecord, f"email#{email}", "email")
    return str(rec.doc["user_id"]) if rec is not None else None


def get_user(user_id: str) -> Versioned[UserDoc] | None:
    rec = get_item(IdentityRecord, user_pk(user_id), USER_SK)
    return Versioned(UserDoc.of(rec.doc), int(rec.version)) if rec is not None else None


def add_user(tx: Tx, user_id: str, doc: UserDoc, at: datetime) -> None:
    """A new account and its e-mail index item, both only if new (one account per address)."""
    tx.save(IdentityRecord(user_pk(user_id), USER_SK, kind="user", doc=doc.dump(), version=0, at=at),
            condition=IdentityRecord.pk.does_not_exist())
    tx.save(IdentityRecord(f"email#{doc.email}", "email", kind="email", doc={"user_id": user_id}, version=0, at=at),
            condition=IdentityRecord.pk.does_not_exist())


def save_user(user_id: str, doc: UserDoc, expected_version: int, at: datetime) -> bool:
    """Write the account if nobody changed it since it was read."""
    rec = IdentityRecord(user_pk(user_id), USER_SK, kind="user", doc=doc.dump(), version=expected_version + 1, at=at)
    return save_if(rec, IdentityRecord.version == expected_version)


def load_person(user_id: str, session_id: str | None) -> Person | None:
    """The account, its memberships and one session, in one query of the person's partition."""
    wanted = IdentityRecord.sk.startswith("member#") | (IdentityRecord.sk == USER_SK)
    if session_id:
        wanted = wanted | (IdentityRecord.sk == f"session#{session_id}")
    user: Versioned[UserDoc] | None = None
    memberships: list[MembershipDoc] = []
    session: SessionDoc | None = None
    for rec in IdentityRecord.query(user_pk(user_id), filter_condition=wanted, consistent_read=True):
        if rec.sk == USER_SK:
            user = Versioned(UserDoc.of(rec.doc), int(rec.version))
        elif rec.sk.startswith("member#"):
            memberships.append(MembershipDoc.of(rec.doc))
        else:
            session = SessionDoc.of(rec.doc)
    return Person(user_id, user, memberships, session) if user is not None else None


# --- memberships -----------------------------------------------------------------------------------------------------

def get_membership(user_id: str, scope: ScopeKind, scope_id: str) -> MembershipDoc | None:
    rec = get_item(IdentityRecord, user_pk(user_id), member_sk(scope, scope_id))
    return MembershipDoc.of(rec.doc) if rec is not None else None


def list_members(scope: ScopeKind, scope_id: str, limit: int, cursor: str | None
                 ) -> StoredPage[tuple[str, MembershipDoc]]:
    """(user id, membership) of a scope's members, by e-mail, one page."""
    page = _by_scope(f"members#{scope_partition(scope, scope_id)}", limit, cursor)
    return StoredPage([(r.pk.removeprefix("user#"), MembershipDoc.of(r.doc)) for r in page.items], page.cursor)


def admin_count(scope: ScopeKind, scope_id: str) -> int:
    rec = get_item(IdentityRecord, f"scope#{scope_partition(scope, scope_id)}", ADMINS_SK)
    return int(rec.version) if rec is not None else 0


def set_membership(tx: Tx, user_id: str, doc: MembershipDoc, previous: MembershipDoc | None, at: datetime) -> None:
    """Add or change a membership, moving the scope's admin count with it (never below one)."""
    scope = ScopeKind(doc.scope)
    rec = IdentityRecord(user_pk(user_id), member_sk(scope, doc.scope_id), kind="member", doc=doc.dump(), version=0,
                         at=at, gsi1pk=f"members#{scope_partition(scope, doc.scope_id)}",
                         gsi1sk=f"{doc.email}#{user_id}")
    if previous is None:
        tx.save(rec, condition=IdentityRecord.pk.does_not_exist())
    else:
        tx.save(rec, condition=(IdentityRecord.doc["role"] == previous.role)
                & (IdentityRecord.doc["status"] == previous.status))
    was_admin = previous is not None and _counts_as_admin(previous)
    _move_admins(tx, scope, doc.scope_id, int(_counts_as_admin(doc)) - int(was_admin), at)


def remove_membership(tx: Tx, user_id: str, doc: MembershipDoc, at: datetime) -> None:
    scope = ScopeKind(doc.scope)
    tx.delete(IdentityRecord(user_pk(user_id), member_sk(scope, doc.scope_id)),
              condition=IdentityRecord.doc["role"] == doc.role)
    if _counts_as_admin(doc):
        _move_admins(tx, scope, doc.scope_id, -1, at)


def write_membership_change(build: Callable[[Tx], object]) -> None:
    """Run a transaction whose first write is set_membership or remove_membership.

    DynamoDB gets a transaction's deletes, then puts, then updates (PynamoDB's
    order), so the membership is item 0 and the admin counter, the only
    update, is the last: a refusal there is LastAdmin; a refusal of the
    membership (someone changed it meanwhile) raises TransactionFailed.
    """
    try:
        transactions.write(build)
    except TransactionFailed as err:
        if err.reasons and err.reasons[-1] == "ConditionalCheckFailed" and not err.condition_failed(0):
            raise LastAdmin() from None
        raise


def _counts_as_admin(doc: MembershipDoc) -> bool:
    return Role(doc.role) is ADMIN_OF[ScopeKind(doc.scope)] and doc.status == "active"


def _move_admins(tx: Tx, scope: ScopeKind, scope_id: str, delta: int, at: datetime) -> None:
    """The transaction's only update, so its refusal is recognisable (write_membership_change)."""
    counter = IdentityRecord(f"scope#{scope_partition(scope, scope_id)}", ADMINS_SK)
    actions: list[Action] = [IdentityRecord.version.add(delta), IdentityRecord.kind.set("admins"),
                             IdentityRecord.at.set(at)]
    if delta < 0:
        tx.update(counter, actions=actions, condition=IdentityRecord.version >= 1 - delta)
    else:
        tx.update(counter, actions=actions)


def delete_scope_page(scope: ScopeKind, scope_id: str, max_items: int) -> int:
    """Forget up to `max_items` memberships and invitations of a deleted scope, then its admin count."""
    partition = scope_partition(scope, scope_id)
    deleted = 0
    with IdentityRecord.batch_write() as batch:
        for index_key in (f"members#{partition}", f"invites#{partition}"):
            for rec in IdentityRecord.by_scope.query(index_key, limit=max_items - deleted):
                batch.delete(IdentityRecord(rec.pk, rec.sk))
                deleted += 1
                if deleted >= max_items:
                    return deleted
        if deleted < max_items and get_item(IdentityRecord, f"scope#{partition}", ADMINS_SK) is not None:
            batch.delete(IdentityRecord(f"scope#{partition}", ADMINS_SK))
            deleted += 1
    return deleted


# --- sessions --------------------------------------------------------------------------------------------------------

def add_session(user_id: str, session_id: str, doc: SessionDoc, at: datetime, expires_epoch: int) -> None:
    rec = IdentityRecord(user_pk(user_id), f"session#{session_id}", kind="session", doc=doc.dump(), version=0,
                         at=at, expires_at_epoch=expires_epoch)
    if not save_if(rec, IdentityRecord.pk.does_not_exist()):
        raise RuntimeError("session id collision")


def update_session(user_id: str, session_id: str, doc: SessionDoc, at: datetime, expires_epoch: int) -> bool:
    """Write a session's new state if it still exists (it may have been ended meanwhile)."""
    rec = IdentityRecord(user_pk(user_id), f"session#{session_id}", kind="session", doc=doc.dump(), version=0,
                         at=at, expires_at_epoch=expires_epoch)
    return save_if(rec, IdentityRecord.pk.exists())


def list_sessions(user_id: str) -> list[StoredSession]:
    return [StoredSession(rec.sk.removeprefix("session#"), SessionDoc.of(rec.doc))
            for rec in IdentityRecord.query(user_pk(user_id), IdentityRecord.sk.startswith("session#"),
                                            consistent_read=True)]


def delete_session(user_id: str, session_id: str) -> None:
    IdentityRecord(user_pk(user_id), f"session#{session_id}").delete()


def delete_sessions(user_id: str) -> int:
    """End every session of a person at once; returns how many there were."""
    sessions = list_sessions(user_id)
    with IdentityRecord.batch_write() as batch:
        for stored in sessions:
            batch.delete(IdentityRecord(user_pk(user_id), f"session#{stored.session_id}"))
    return len(sessions)


# --- invitations -----------------------------------------------------------------------------------------------------

def put_invitation(invite_id: str, doc: InvitationDoc, at: datetime, expires_epoch: int, *, new: bool) -> bool:
    scope = ScopeKind(doc.scope)
    rec = IdentityRecord(f"invite#{invite_id}", "invite", kind="invite", doc=doc.dump(), version=0, at=at,
                         expires_at_epoch=expires_epoch,
                         gsi1pk=f"invites#{scope_partition(scope, doc.scope_id)}", gsi1sk=f"{doc.email}#{invite_id}")
    condition = IdentityRecord.pk.does_not_exist() if new else IdentityRecord.doc["status"] == "pending"
    return save_if(rec, condition)


def get_invitation(invite_id: str) -> InvitationDoc | None:
    rec = get_item(IdentityRecord, f"invite#{invite_id}", "invite")
    return InvitationDoc.of(rec.doc) if rec is not None else None


def list_invitations(scope: ScopeKind, scope_id: str, limit: int, cursor: str | None
                     ) -> StoredPage[tuple[str, InvitationDoc]]:
    """(invitation id, invitation) of a scope, by e-mail, one page."""
    page = _by_scope(f"invites#{scope_partition(scope, scope_id)}", limit, cursor)
    return StoredPage([(r.pk.removeprefix("invite#"), InvitationDoc.of(r.doc)) for r in page.items], page.cursor)


def _by_scope(index_key: str, limit: int, cursor: str | None) -> StoredPage[IdentityRecord]:
    page: StoredPage[IdentityRecord] = pagination.page_of(
        lambda size, start: IdentityRecord.by_scope.query(index_key, limit=size, page_size=size,
                                                          last_evaluated_key=start),
        limit=limit, cursor=cursor, hash_attr="gsi1pk", hash_value=index_key,
        key_attrs=("pk", "sk", "gsi1pk", "gsi1sk"))
    return page


def delete_invitation(invite_id: str) -> None:
    IdentityRecord(f"invite#{invite_id}", "invite").delete()


def accept_invitation(tx: Tx, invite_id: str, doc: InvitationDoc, at: datetime, expires_epoch: int) -> None:
    """Mark the invitation accepted, only if it still is pending (a second use fails the transaction)."""
    scope = ScopeKind(doc.scope)
    tx.save(IdentityRecord(f"invite#{invite_id}", "invite", kind="invite", doc=doc.dump(), version=0, at=at,
                           expires_at_epoch=expires_epoch,
                           gsi1pk=f"invites#{scope_partition(scope, doc.scope_id)}",
                           gsi1sk=f"{doc.email}#{invite_id}"),
            condition=IdentityRecord.doc["status"] == "pending")


# --- sign-in state ----------------------------------------------------------------------------------------------------

def put_pending(sign_in_id: str, doc: PendingSignInDoc, at: datetime, expires_epoch: int) -> None:
    rec = IdentityRecord(f"signin#{sign_in_id}", "pending", kind="signin", doc=doc.dump(), version=0, at=at,
                         expires_at_epoch=expires_epoch)
    if not save_if(rec, IdentityRecord.pk.does_not_exist()):
        raise RuntimeError("sign-in id collision")


def get_pending(sign_in_id: str) -> tuple[PendingSignInDoc, int, datetime] | None:
    """The pending sign-in, its tries so far and when it began."""
    rec = get_item(IdentityRecord, f"signin#{sign_in_id}", "pending")
    return (PendingSignInDoc.of(rec.doc), int(rec.version), rec.at) if rec is not None else None


def count_try(sign_in_id: str, limit: int) -> bool:
    """Count one code try; False once `limit` tries were made (parallel guesses cannot share one try)."""
    try:
        IdentityRecord(f"signin#{sign_in_id}", "pending").update(
            actions=[IdentityRecord.version.add(1)],
            condition=IdentityRecord.pk.exists() & (IdentityRecord.version < limit))
    except UpdateError as err:
        if condition_failed(err):
            return False
        raise
    return True


def consume_pending(sign_in_id: str) -> bool:
    """Delete a pending sign-in; False if it was already used (or expired and gone)."""
    try:
        IdentityRecord(f"signin#{sign_in_id}", "pending").delete(condition=IdentityRecord.pk.exists())
    except DeleteError as err:
        if condition_failed(err):
            return False
        raise
    return True


def spend_code(user_id: str, code: str, at: datetime, expires_epoch: int) -> bool:
    """Record an MFA code as used; False if it already was (a replay)."""
    rec = IdentityRecord(f"totp#{user_id}", f"code#{code}", kind="totp", version=0, at=at,
                         expires_at_epoch=expires_epoch)
    try:
        rec.save(condition=IdentityRecord.pk.does_not_exist() | (IdentityRecord.expires_at_epoch < int(at.timestamp())))
    except PutError as err:
        if condition_failed(err):
            return False
        raise
    return True


def count_attempt(key: str, window: int, limit: int, at: datetime, expires_epoch: int) -> bool:
    return count_in_window(f"limit#{key}", window, "limit", limit, expires_epoch, at, model=IdentityRecord)


def attempts_in_window(key: str, window: int) -> int:
    rec = get_item(IdentityRecord, f"limit#{key}", f"window#{window}")
    return int(rec.version) if rec is not None else 0


def put_reset(reset_id: str, doc: ResetDoc, at: datetime, expires_epoch: int) -> None:
    IdentityRecord(f"reset#{reset_id}", "reset", kind="reset", doc=doc.dump(), version=0, at=at,
                   expires_at_epoch=expires_epoch).save()


def take_reset(reset_id: str) -> ResetDoc | None:
    """Delete a reset link and return it; None if it does not exist or was already used."""
    rec = get_item(IdentityRecord, f"reset#{reset_id}", "reset")
    if rec is None:
        return None
    try:
        rec.delete(condition=IdentityRecord.pk.exists())
    except DeleteError as err:
        if condition_failed(err):
            return None
        raise
    return ResetDoc.of(rec.doc)
