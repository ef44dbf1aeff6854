"""Members signing in on their tenant's site: by the phone's one-time SMS code, into a session of their own.

The code is the phone verification of public forms (`verification`: same
limits, same answer for a known and an unknown phone). A right code earns a
proof; `sign_in` spends it for a member who exists, `sign_up` for a new one
(customer, consents, referral and a card: a virtual one issued, or a plastic
one from a series registered to them, which activates it). Either way the
browser gets a member session: a cookie that names one tenant and one customer
and opens nothing but that member's own pages (no staff page, no API route
reads it; see domain/member_sessions.py).

Exactly once: a verification is spent by one action (`verification.spend`);
a sign-up also claims the verification in its own record, so a double post
makes one customer and one card, and a retry after a crash finishes the job.
An erased member's phone no longer leads to them (the phone index is gone):
they get the sign-up path and a new, empty customer.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib import clock
from chalicelib.domain import customers as customer_rules
from chalicelib.domain import links
from chalicelib.domain import member_sessions as rules
from chalicelib.domain.ids import new_id
from chalicelib.domain.member_sessions import Member
from chalicelib.errors import ApiError, ErrorDetail
from chalicelib.schemas.customers import ConsentIn, CustomerCreate
from chalicelib.schemas.pos import CardIssue
from chalicelib.services.customers import customers, verification
from chalicelib.services.identity.crypto import purpose_key
from chalicelib.services.pos import cards
from chalicelib.services.tenancy import branding, signing
from chalicelib.services.tenancy.keys import tenant_state
from chalicelib.storage import customers as customer_records
from chalicelib.storage import member_sessions as store

SIGN_IN = "member_sign_in"
SIGN_UP = "member_sign_up"
CLAIM_LEASE = timedelta(seconds=60)
"""A sign-up that claimed a verification and then died can be finished by a retry after this long."""
ACTOR = "member-site"
FORM_PURPOSE = "member-form"
FORM_TTL = timedelta(hours=1)


class NotSignedIn(Exception):
    """No valid member session for this tenant (none, ended, expired, another tenant's, an erased member's)."""


@dataclass(frozen=True)
class SignedIn:
    member: Member
    set_cookie: str


@dataclass(frozen=True)
class NewMember:
    """What the sign-up form gives besides the verified phone."""

    personal: dict[str, object]
    consents: list[ConsentIn]
    referral_code: str | None
    card_number: str | None


# --- sessions -----------------------------------------------------------------------------------------------------

def authenticate(tenant_id: str, cookie_header: str | None) -> Member:
    """The member whose session the request's cookie names, on this tenant's site; NotSignedIn otherwise."""
    token = rules.token_from_header(cookie_header)
    if token is None:
        raise NotSignedIn()
    doc = store.get(tenant_id, token.customer_id, token.session_id)
    if doc is None or not hmac.compare_digest(rules.secret_hash(token.secret), doc.cookie_hash):
        raise NotSignedIn()  # another tenant's session is not in this tenant's partition at all
    at = clock.now()
    created, last_used = datetime.fromisoformat(doc.created_at), datetime.fromisoformat(doc.last_used_at)
    if not rules.alive(created, last_used, at):
        store.delete(tenant_id, token.customer_id, token.session_id)
        raise NotSignedIn()
    if tenant_state(tenant_id)[0] != "active" or not _active(tenant_id, token.customer_id):
        store.delete_all(tenant_id, token.customer_id)
        raise NotSignedIn()
    if at - last_used >= rules.TOUCH_EVERY:
        doc.last_used_at = at.isoformat()
        store.touch(tenant_id, token.customer_id, token.session_id, doc, at, _expires(created, at))
    return _member(tenant_id, token.customer_id, token.session_id)


def csrf_valid(member: Member, submitted: str | None) -> bool:
    return rules.csrf_valid(_csrf_key(), member.tenant_id, member.session_id, submitted)


def sign_out(member: Member) -> str:
    """End this session; the Set-Cookie that makes the browser forget it."""
    store.delete(member.tenant_id, member.customer_id, member.session_id)
    return rules.cookie_header(None)


def end_all(tenant_id: str, customer_id: str) -> int:
    """End every session of a member (after erasing them, or 'sign out everywhere')."""
    return store.delete_all(tenant_id, customer_id)


def forget_cookie() -> str:
    return rules.cookie_header(None)


def form_token(tenant_id: str) -> str:
    """The CSRF token of the forms before a session exists (sign-in, code, sign-up): signed, this tenant, 1 hour."""
    return links.sign(signing.link_secret(), FORM_PURPOSE, {"t": tenant_id}, clock.now() + FORM_TTL)


def form_token_valid(tenant_id: str, token: str | None) -> bool:
    if not token or len(token) > 600:
        return False
    try:
        claims = links.verify(signing.link_secret(), FORM_PURPOSE, token, clock.now())
    except links.BadLink:
        return False
    return claims.get("t") == tenant_id


# --- signing in and up --------------------------------------------------------------------------------------------

def member_of_proof(tenant_id: str, proof: str) -> tuple[str, str | None]:
    """(verified phone, the active member holding it or None) of a proof: who signs in, or that one signs up."""
    _, phone = verification.proven_phone(tenant_id, proof, "code")
    found = customers.find_by_phone(tenant_id, phone)
    return phone, (found.customer_id if found is not None and found.doc.status == "active" else None)


def sign_in(tenant_id: str, proof: str, source_ip: str, user_agent: str) -> SignedIn | None:
    """Spend the proof of a member's phone on a new session; None when no member has this phone (sign up)."""
    verification_id, _ = verification.proven_phone(tenant_id, proof, "code")
    _, customer_id = member_of_proof(tenant_id, proof)
    if customer_id is None:
        return None
    verification.spend(tenant_id, verification_id, SIGN_IN, "code")
    signed_in = _start(tenant_id, customer_id)
    verification.finish(tenant_id, verification_id)
    return signed_in


def check_new_member(tenant_id: str, new: NewMember) -> None:
    """Everything about a sign-up that can be refused, before anything is written or spent."""
    customers.check_fields(tenant_id, {k: v for k, v in new.personal.items() if v is not None})
    if new.referral_code:
        owner = customer_records.referral_owner(tenant_id, customer_rules.normalise_referral_code(new.referral_code))
        if owner is None:
            raise ApiError(422, "unknown_referral_code", "No member has this referral code.",
                           [ErrorDetail("referral_code", "unknown")])
    if new.card_number:
        card = cards.get(tenant_id, new.card_number)
        if card.customer_id is not None or card.kind != "plastic":
            raise ApiError(409, "card_exists", "This card is already registered to someone.",
                           [ErrorDetail("number", "already registered")])
    else:
        branding.sign_up_program(tenant_id)


def sign_up(tenant_id: str, proof: str, new: NewMember) -> SignedIn:
    """A new member with the verified phone and their card, then their session; exactly once per verification.

    A member who already holds the phone (they signed up in another tab) is simply signed in.
    """
    verification_id, phone = verification.proven_phone(tenant_id, proof, "code")
    _, existing = member_of_proof(tenant_id, proof)
    at = clock.now()
    if existing is None:
        check_new_member(tenant_id, new)
        if not store.claim_sign_up(tenant_id, verification_id, at):
            claim = store.get_claim(tenant_id, verification_id)
            if claim is not None and claim.customer_id is None and \
                    at - datetime.fromisoformat(claim.claimed_at) < CLAIM_LEASE:
                raise ApiError(409, "sign_up_busy", "This sign-up is already under way; wait a moment.",
                               [ErrorDetail("code", "busy")], headers={"Retry-After": "5"})
            if claim is not None and claim.customer_id is not None:
                raise ApiError(409, "verification_used", "This code was already used; sign in again.",
                               [ErrorDetail("code", "already used")])
        verification.spend(tenant_id, verification_id, SIGN_UP, "code")
        try:
            existing = _create(tenant_id, phone, new)
        except ApiError:
            store.release_claim(tenant_id, verification_id)  # refused: the corrected form may try again
            raise
        store.finish_claim(tenant_id, verification_id, existing, at)
    else:
        verification.spend(tenant_id, verification_id, SIGN_IN, "code")
    signed_in = _start(tenant_id, existing)
    verification.finish(tenant_id, verification_id)
    return signed_in


def _create(tenant_id: str, phone: str, new: NewMember) -> str:
    """The customer and their card, through the card service the API uses (so its rules, audit, webhooks)."""
    spec = CustomerCreate.model_validate({
        **{k: v for k, v in new.personal.items() if v is not None}, "phone": phone,
        "consents": [c.model_dump(mode="json") for c in new.consents],
        "referral_code": new.referral_code or None, "acquisition": {"channel": "site"},
    }, strict=False)
    if new.card_number:
        card = cards.get(tenant_id, new.card_number)
        issue = CardIssue(program_id=card.program_id, kind="plastic", number=new.card_number, customer=spec)
    else:
        program = branding.sign_up_program(tenant_id)
        found = customers.find_by_phone(tenant_id, phone)
        if found is not None and customer_records.card_numbers(found.scope, found.customer_id):
            return found.customer_id  # a retry after the card was issued: never a second card
        issue = CardIssue(program_id=program.id, kind="virtual", customer=spec)
    _, card_out = cards.issue(tenant_id, issue, ACTOR)
    assert card_out.customer_id is not None
    return card_out.customer_id


def _start(tenant_id: str, customer_id: str) -> SignedIn:
    at = clock.now()
    session_id = new_id(20)
    token = rules.new_token(customer_id, session_id)
    doc = store.MemberSessionDoc(cookie_hash=rules.secret_hash(token.secret), created_at=at.isoformat(),
                                 last_used_at=at.isoformat())
    store.add(tenant_id, customer_id, session_id, doc, at, _expires(at, at))
    return SignedIn(_member(tenant_id, customer_id, session_id), rules.cookie_header(token))


def _member(tenant_id: str, customer_id: str, session_id: str) -> Member:
    return Member(tenant_id, customer_id, session_id, rules.csrf_token(_csrf_key(), tenant_id, session_id))


def _active(tenant_id: str, customer_id: str) -> bool:
    try:
        return customers.find(tenant_id, customer_id).doc.status == "active"
    except ApiError:
        return False


def _expires(created: datetime, at: datetime) -> int:
    return int(rules.expiry(created, at).timestamp())


def _csrf_key() -> bytes:
    return purpose_key("member-csrf")
