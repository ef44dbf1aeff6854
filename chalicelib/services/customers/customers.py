"""Customers: one per phone per scope, personal fields in the personal-data table, everything else by id.

Writes span two tables that may live in different regions, so they are never
one transaction. They are ordered so that any prefix of the sequence is safe
and a retry completes it: the phone is claimed first (it decides the
customer id), then the personal fields, then the loyalty record. A crash
between steps leaves a claimed phone or a person with no record; the next
call with that phone finds the id and finishes the job.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from chalicelib import clock
from chalicelib.domain import customers as rules
from chalicelib.domain import links
from chalicelib.domain.ids import new_id
from chalicelib.domain.phones import normalise
from chalicelib.errors import ApiError, ErrorDetail, conflict
from chalicelib.schemas.customers import (
    PERSONAL_FIELDS,
    Consent,
    ConsentIn,
    ConsentKind,
    CustomerCreate,
    CustomerExport,
    CustomerOut,
    CustomerStats,
    CustomerUpdate,
    Referral,
)
from chalicelib.schemas.tenancy import Privacy
from chalicelib.services.program import catalog
from chalicelib.services.reporting import dashboard
from chalicelib.services.tenancy import signing
from chalicelib.storage import audit, loyalty, people, transactions
from chalicelib.storage import coupons as coupon_store
from chalicelib.storage import customers as records
from chalicelib.storage import surveys as survey_store
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.customer import ConsentState, CustomerDoc, Profile
from chalicelib.storage.documents.person import PersonDoc
from chalicelib.storage.transactions import TransactionFailed, Tx

Mode = Literal["keep", "fill", "overwrite"]
"""What a create does to an existing customer with the same phone: nothing, fill gaps, or take the new values."""
UNSUBSCRIBE = "unsubscribe"
EXPORT_LEDGER_LIMIT = 5000
EXPORT_COUPON_LIMIT = 1000
"""Coupon codes given, at most, in one export (newest first)."""
PERSON_ATTEMPTS = 5


@dataclass(frozen=True)
class Found:
    """A customer record as read: where it lives, its document and the version a write must still find."""

    scope: str
    customer_id: str
    doc: CustomerDoc
    version: int

    @classmethod
    def of(cls, scope: str, customer_id: str, got: Versioned[CustomerDoc]) -> Found:
        return cls(scope, customer_id, got.doc, got.version)


def create(tenant_id: str, spec: CustomerCreate, actor: str) -> tuple[int, CustomerOut]:
    """`POST /v1/customers`: 201 with the new customer; 409 if the phone already belongs to one."""
    scope = tenant_id
    if spec.phone:
        existing = people.customer_by_phone(scope, spec.phone)
        if existing is not None and records.get(scope, existing) is not None:
            raise ApiError(409, "customer_exists", f"Customer {existing} already has this phone; update it with "
                           f"PATCH /v1/customers/{existing}.", [ErrorDetail("phone", existing)])
    customer_id, created = ensure(tenant_id, scope, spec, actor, mode="keep")
    return (201 if created else 200), get(tenant_id, customer_id)


def get(tenant_id: str, customer_id: str) -> CustomerOut:
    """`GET /v1/customers/{id}`: the customer with personal fields, cards and stats, from any base the tenant sees."""
    return view(find(tenant_id, customer_id))


def search(tenant_id: str, phone: str | None, card: str | None) -> CustomerOut:
    """Find by phone (any format, normalised) or by card number."""
    found = None
    if phone:
        try:
            found = find_by_phone(tenant_id, normalise(phone))
        except ValueError as exc:
            raise ApiError(400, "validation_error", str(exc), [ErrorDetail("phone", str(exc))]) from None
    elif card:
        found = find_by_card(tenant_id, card)
    else:
        raise ApiError(400, "validation_error", "Give phone or card.", [ErrorDetail("phone", "phone or card")])
    if found is None:
        raise ApiError(404, "customer_not_found", "No customer matches.",
                       [ErrorDetail("phone" if phone else "card", "not found")])
    return view(found)


def update(tenant_id: str, customer_id: str, spec: CustomerUpdate, actor: str) -> CustomerOut:
    """`PATCH /v1/customers/{id}`: personal fields go to the personal-data table, profile sections to the record."""
    found = find(tenant_id, customer_id)
    _require_active(found)
    check_fields(tenant_id, spec.personal())
    _update_person(found, spec.personal())
    sent = spec.model_fields_set
    before = found.doc.profile.dump() if found.doc.profile else {}
    profile = dict(before)
    dumped = spec.model_dump(mode="json", exclude_none=True)
    for name in ("tags", "preferred_channel", "acquisition"):
        if name in sent:
            profile[name] = dumped.get(name)
    if profile != before:
        found = _save_sections(found, {"profile": profile})
    audit.put(audit.entry(tenant_id, action="customer.updated", actor=actor, at=clock.now(),
                          target=f"customer:{customer_id}", detail={"fields": ",".join(sorted(sent))}))
    return get(tenant_id, customer_id)


def change_consents(tenant_id: str, customer_id: str, consents: list[ConsentIn], actor: str) -> CustomerOut:
    """`POST /v1/customers/{id}/consents`: record decisions (current state and history line each)."""
    found = find(tenant_id, customer_id)
    _require_active(found)
    return view(set_consents(found, consents, actor))


def withdraw_by_token(token: str) -> str:
    """The public one-click withdrawal: the consent kind withdrawn. Repeating it changes nothing."""
    claims = check_unsubscribe_token(token)
    scope, customer_id, kind = str(claims["s"]), str(claims["c"]), str(claims["k"])
    got = records.get(scope, customer_id)
    if got is None:
        raise ApiError(404, "customer_not_found", "This customer no longer exists.", [ErrorDetail("token", "gone")])
    found = Found.of(scope, customer_id, got)
    consent = found.doc.consents.get(kind)
    if consent is not None and not consent.granted:
        return kind
    version = (consent.text_version if consent else None) or privacy(scope).consent_text_version
    set_consents(found, [ConsentIn(kind=ConsentKind(kind), granted=False, source="link", text_version=version)], "link")
    return kind


def merge(tenant_id: str, keep_id: str, duplicate_id: str, actor: str) -> CustomerOut:
    """Fold a duplicate into the kept customer: cards, history, stats, consents, survey answers and missing fields move.

    The loyalty half (cards re-pointed, stats added, the duplicate marked
    merged) is one transaction; the personal half follows and is re-run by a
    repeated call, which finds the duplicate already marked.
    """
    if keep_id == duplicate_id:
        raise _unprocessable("same_customer", "A customer cannot be merged into itself.", "duplicate_id")
    keep = find(tenant_id, keep_id)
    _require_active(keep)
    dup = find(tenant_id, duplicate_id)
    if dup.scope != keep.scope:
        raise _unprocessable("other_scope", "The two customers belong to different programs' bases.", "duplicate_id")
    if dup.doc.status == "merged" and dup.doc.merged_into != keep_id:
        raise conflict("customer_merged", f"Customer {duplicate_id} was merged into {dup.doc.merged_into}.",
                       "duplicate_id")
    if dup.doc.status == "erased":
        raise ApiError(410, "customer_erased", "The duplicate was erased.", [ErrorDetail("duplicate_id", "erased")])
    if dup.doc.status != "merged":
        _merge_records(keep, dup, actor)
    _merge_people(keep.scope, keep_id, duplicate_id)
    survey_store.move_responses(keep.scope, duplicate_id, keep_id)
    coupon_store.move_given(keep.scope, duplicate_id, keep_id)
    return get(tenant_id, keep_id)


def export(tenant_id: str, customer_id: str, actor: str) -> CustomerExport:
    """Everything stored about the customer, as JSON: the data subject's access request."""
    found = find(tenant_id, customer_id)
    at = clock.now()
    partition = people.items(found.scope, customer_id)
    personal = partition.profile or PersonDoc()
    cards: list[dict[str, Any]] = []
    truncated = False
    for number in records.card_numbers(found.scope, customer_id):
        card = loyalty.get_card(found.scope, number)
        entries: list[dict[str, Any]] = []
        cursor = None
        while len(entries) < EXPORT_LEDGER_LIMIT:
            page, cursor = loyalty.list_entries(found.scope, number, 200, cursor)
            entries += [e.model_dump(mode="json") for e in page]
            if cursor is None:
                break
        truncated = truncated or cursor is not None
        cards.append({"number": number, "program_id": card.program_id if card else None,
                      "status": card.status.value if card else None,
                      "balance": card.wallet.spendable(at) if card else 0, "ledger": entries[:EXPORT_LEDGER_LIMIT]})
    answers = {(i.doc.survey_id, i.doc.response_id): i.doc.answers for i in partition.answers}
    responses = []
    for response in survey_store.responses_of(found.scope, customer_id):
        key = (response.survey_id, response.response_id)
        responses.append({**response.exported(), "answers": {**(response.answers or {}), **answers.pop(key, {})}})
    responses += [{"survey_id": s, "response_id": r, "answers": a} for (s, r), a in answers.items()]
    given = coupon_store.given_to(found.scope, customer_id, tenant_id, EXPORT_COUPON_LIMIT)
    truncated = truncated or len(given) >= EXPORT_COUPON_LIMIT
    audit.put(audit.entry(tenant_id, action="customer.exported", actor=actor, at=at,
                          target=f"customer:{customer_id}"))
    return CustomerExport(exported_at=at, customer=view(found, personal),
                          consent_history=[Consent.model_validate(c.dump()) for c in
                                           records.consent_history(found.scope, customer_id)],
                          cards=cards, survey_responses=responses,
                          coupons_given=[g.model_dump(exclude={"tenant_id"}) for g in given], truncated=truncated)


def erase(tenant_id: str, customer_id: str, reason: str, actor: str) -> CustomerOut:
    """Erase a customer's personal data everywhere, keeping the ledger consistent for accounting.

    The loyalty record keeps its id, stats and cards (balances and ledgers are
    accounting records with no personal fields) and loses tags, preferences
    and acquisition details; the personal-data partition and phone index go.
    Repeating the call finishes an erasure interrupted halfway.
    """
    found = find(tenant_id, customer_id)
    if found.doc.status == "merged":
        _require_active(found)
    pdoc = person(found.scope, customer_id)
    phones = list(dict.fromkeys([*(pdoc.phones or []), *([pdoc.phone] if pdoc.phone else [])]))
    if found.doc.status != "erased":
        at = clock.now()
        acquisition = found.doc.profile_or_empty().acquisition
        code = found.doc.referral_or_empty().code

        def extra(tx: Tx, f: Found) -> None:
            if code:
                records.delete_referral_code(tx, f.scope, code)
            audit.add(tx, audit.entry(tenant_id, action="customer.erased", actor=actor, at=at,
                                      target=f"customer:{customer_id}", detail={"reason": reason}))

        referral = {k: v for k, v in found.doc.referral_or_empty().dump().items() if k != "code"}
        found = _save_sections(found, {
            "status": "erased", "erased_at": at.isoformat(), "referral": referral,
            "profile": {"tags": [], "acquisition": {"channel": acquisition.channel} if acquisition else None},
        }, extra)
    people.erase(found.scope, customer_id, phones)
    coupon_store.erase_given(found.scope, customer_id)
    _erase_wallet(tenant_id, records.card_numbers(found.scope, customer_id), found.scope)
    return view(found, PersonDoc())


def _erase_wallet(tenant_id: str, numbers: list[str], scope: str) -> None:
    """The customer's wallet passes go with them: a device's push token is personal data, and no push follows.
    `scope` is the customer's base, so a coalition's shared card is told from the tenant's own card of that number."""
    from chalicelib.services.wallet import changes as wallet_changes  # the till's imports stay light

    wallet_changes.customer_erased(tenant_id, numbers, scope=scope)


def not_found() -> ApiError:
    return ApiError(404, "customer_not_found", "No such customer.", [ErrorDetail("customer_id", "not found")])


def privacy(tenant_id: str) -> Privacy:
    tenant = catalog.tenant(tenant_id)
    return tenant.privacy if tenant else Privacy()


def check_fields(tenant_id: str, personal: dict[str, Any]) -> None:
    """Minimal-data mode: a field the tenant switched off is refused, never silently dropped."""
    off = rules.disabled_fields_sent(personal, privacy(tenant_id).disabled_fields)
    if off:
        raise ApiError(422, "field_disabled", f"This program does not collect {', '.join(off)}.",
                       [ErrorDetail(name, "switched off by the tenant (minimal-data mode)") for name in off])


# --- reading --------------------------------------------------------------------------

def find(tenant_id: str, customer_id: str) -> Found:
    """The customer in the tenant's own base, else in a coalition base it shares; 404 otherwise."""
    for scope in catalog.card_scopes(tenant_id):
        got = records.get(scope, customer_id)
        if got is not None:
            return Found.of(scope, customer_id, got)
    raise not_found()


def id_by_phone(scope: str, phone: str) -> str | None:
    return people.customer_by_phone(scope, phone)


def find_by_phone(tenant_id: str, phone: str) -> Found | None:
    for scope in catalog.card_scopes(tenant_id):
        customer_id = people.customer_by_phone(scope, phone)
        got = records.get(scope, customer_id) if customer_id else None
        if customer_id and got is not None:
            return Found.of(scope, customer_id, got)
    return None


def person(scope: str, customer_id: str) -> PersonDoc:
    """The customer's personal fields (an empty profile when none were ever given)."""
    got = people.get_person(scope, customer_id)
    return got.doc if got else PersonDoc()


def view(found: Found, person_doc: PersonDoc | None = None) -> CustomerOut:
    doc = found.doc
    pdoc = (person(found.scope, found.customer_id) if person_doc is None else person_doc).dump()
    profile = doc.profile_or_empty()
    consents = [Consent.model_validate(c.dump()) for _, c in sorted(doc.consents.items())]
    referral = doc.referral_or_empty()
    return CustomerOut(
        customer_id=found.customer_id, status=doc.status,
        **{k: pdoc.get(k) for k in PERSONAL_FIELDS},
        tags=profile.tags or [], preferred_channel=profile.preferred_channel,
        acquisition=_acquisition(profile), consents=consents,
        stats=CustomerStats.model_validate(rules.stats_view(doc.stats.dump())),
        referral=Referral(code=referral.code, referred_by=referral.referred_by, rewarded_at=referral.rewarded_at,
                          friends_rewarded=referral.friends_rewarded),
        cards=records.card_numbers(found.scope, found.customer_id), merged_into=doc.merged_into,
        created_at=doc.created_at, updated_at=doc.updated_at, erased_at=doc.erased_at)


def find_by_card(tenant_id: str, number: str) -> Found | None:
    for scope in catalog.card_scopes(tenant_id):
        card = loyalty.get_card(scope, number)
        if card is not None and card.customer_id:
            got = records.get(scope, card.customer_id)
            if got is not None:
                return Found.of(scope, card.customer_id, got)
    return None


# --- creating -----------------------------------------------------------------------------

def ensure(tenant_id: str, scope: str, spec: CustomerCreate, actor: str, *, mode: Mode = "fill",
           extra: Callable[[Tx], None] | None = None) -> tuple[str, bool]:
    """The customer with this phone (created if new): (customer id, created).

    `extra(tx)` joins the creating transaction (a card issued with its new
    customer); it is not run when the customer already existed. Consents sent
    are recorded either way; the referral code only links a new customer.
    """
    check_fields(tenant_id, spec.personal())
    referrer = _resolve_referrer(scope, spec.referral_code, spec)
    at = clock.now()
    customer_id = new_id()
    if spec.phone:
        customer_id = people.claim_phone(scope, spec.phone, customer_id, at)
    existing = records.get(scope, customer_id)
    if existing is not None:
        found = Found.of(scope, customer_id, existing)
        if found.doc.status == "merged" and found.doc.merged_into:
            got = records.get(scope, found.doc.merged_into)
            if got is not None:
                found = Found.of(scope, found.doc.merged_into, got)
        if found.doc.status == "erased":
            raise conflict("customer_erased", "This customer was erased; their phone cannot be reused yet.", "phone")
        if mode != "keep":
            _update_person(found, _personal(spec), overwrite=mode == "overwrite")
        if spec.consents:
            set_consents(found, spec.consents, actor)
        return found.customer_id, False
    _store_person(scope, customer_id, _personal(spec), at)
    created = _write_record(tenant_id, scope, customer_id, spec, referrer, at, actor, extra)
    if not created:  # a concurrent or earlier attempt wrote it first: same id, same phone
        return customer_id, False
    return customer_id, True


# --- changing ------------------------------------------------------------------------------

def set_consents(found: Found, consents: list[ConsentIn], actor: str) -> Found:
    """Record consent decisions: the current state per kind plus a history line each (time, source, text)."""
    at = clock.now()
    docs = [_consent_doc(c, at, actor) for c in consents]

    def history(tx: Tx, _: Found) -> None:
        for seq, doc in enumerate(docs):
            records.add_consent_event(tx, found.scope, found.customer_id, doc, at, seq)

    current = found.doc.consents_dump()
    current.update({d.kind: d.dump() for d in docs})
    return _save_sections(found, {"consents": current}, history)


def unsubscribe_token(scope: str, customer_id: str, kind: str) -> str:
    """The signed one-click withdrawal link's token that every message carries (no expiry: it must always work)."""
    return links.sign(signing.link_secret(), UNSUBSCRIBE, {"s": scope, "c": customer_id, "k": kind})


def check_unsubscribe_token(token: str) -> dict[str, Any]:
    """The claims of a valid unsubscribe token; 400 `invalid_link` otherwise."""
    try:
        return links.verify(signing.link_secret(), UNSUBSCRIBE, token, clock.now())
    except links.BadLink:
        raise ApiError(400, "invalid_link", "This link is not valid.", [ErrorDetail("token", "invalid")]) from None


# --- helpers --------------------------------------------------------------------------------------------

def _unprocessable(code: str, message: str, field_name: str) -> ApiError:
    return ApiError(422, code, message, [ErrorDetail(field_name, message)])


def _consent_doc(consent: ConsentIn, at: datetime, actor: str) -> ConsentState:
    return ConsentState.load({**consent.model_dump(mode="json"), "at": at.isoformat(), "actor": actor})


def _resolve_referrer(scope: str, code: str | None, spec: CustomerCreate) -> str | None:
    if not code:
        return None
    owner = records.referral_owner(scope, rules.normalise_referral_code(code))
    if owner is None:
        raise _unprocessable("unknown_referral_code", "No member has this referral code.", "referral_code")
    referrer = person(scope, owner)
    same_phone = spec.phone is not None and spec.phone == referrer.phone
    same_email = spec.email is not None and spec.email == referrer.email
    if same_phone or same_email:
        raise _unprocessable("referral_self", "A member cannot refer themselves.", "referral_code")
    return owner


def _new_record(spec: CustomerCreate, referrer: str | None, code: str, at: datetime, actor: str) -> CustomerDoc:
    acquisition = spec.acquisition.model_dump(mode="json", exclude_none=True) if spec.acquisition else None
    if acquisition is None and referrer:
        acquisition = {"channel": "referral"}
    return CustomerDoc.load({
        "profile": {"tags": list(spec.tags), "preferred_channel": spec.model_dump(mode="json")["preferred_channel"],
                    "acquisition": acquisition},
        "consents": {c.kind.value: _consent_doc(c, at, actor).dump() for c in spec.consents},
        "referral": {"code": code, "referred_by": referrer, "friends_rewarded": 0},
    })


def _write_record(tenant_id: str, scope: str, customer_id: str, spec: CustomerCreate, referrer: str | None,
                  at: datetime, actor: str, extra: Callable[[Tx], None] | None) -> bool:
    """The loyalty-table half of a new customer; False if the record already exists (a retried create)."""
    for _ in range(PERSON_ATTEMPTS):
        code = rules.new_referral_code()
        doc = _new_record(spec, referrer, code, at, actor)

        def build(tx: Tx, doc: CustomerDoc = doc, code: str = code) -> None:
            records.add(tx, scope, customer_id, doc, at)
            records.add_referral_code(tx, scope, code, customer_id, at)
            for seq, consent in enumerate(spec.consents):
                records.add_consent_event(tx, scope, customer_id, _consent_doc(consent, at, actor), at, seq)
            audit.add(tx, audit.entry(scope, action="customer.created", actor=actor, at=at,
                                      target=f"customer:{customer_id}",
                                      detail={"referred_by": referrer or "", "fields": ",".join(sorted(
                                          k for k, v in spec.personal().items() if v is not None))}))
            dashboard.count_customer(tx, tenant_id, customer_id, at)
            if extra is not None:
                extra(tx)

        try:
            transactions.write(build)
            return True
        except TransactionFailed as err:
            if err.condition_failed(0):
                return False
            if not err.condition_failed(1):
                raise
    raise ApiError(503, "referral_codes_exhausted", "Could not find a free referral code; retry.")


def _personal(spec: CustomerCreate | CustomerUpdate) -> dict[str, Any]:
    return {k: v for k, v in spec.personal().items() if v is not None}


def _store_person(scope: str, customer_id: str, personal: dict[str, Any], at: datetime) -> None:
    """Write the personal fields of a new id; an earlier crashed attempt's copy is completed, not duplicated."""
    for _ in range(PERSON_ATTEMPTS):
        got = people.get_person(scope, customer_id)
        doc = rules.merge_personal(got.doc.dump(), personal) if got else dict(personal)
        if got and doc == got.doc.dump():
            return
        try:
            people.put_person(scope, customer_id, PersonDoc.load(doc), got.version if got else 0, at)
            return
        except people.Conflict:
            continue
    raise conflict("customer_changed", "The customer is being changed concurrently; retry.")


def _update_person(found: Found, changes: dict[str, Any], *, overwrite: bool = True) -> None:
    """Apply personal-field changes (None removes a field); a phone change moves the phone index."""
    if not changes:
        return
    at = clock.now()
    for _ in range(PERSON_ATTEMPTS):
        got = people.get_person(found.scope, found.customer_id)
        stored, version = (got.doc, got.version) if got else (PersonDoc(), 0)
        current = stored.dump()
        if overwrite:
            doc = {k: v for k, v in {**current, **changes}.items() if v is not None}
        else:
            doc = rules.merge_personal(current, {k: v for k, v in changes.items() if v is not None})
        new_phone = doc.get("phone")
        old_phone = stored.phone
        if new_phone != old_phone and new_phone:
            owner = people.claim_phone(found.scope, new_phone, found.customer_id, at)
            if owner != found.customer_id:
                if not overwrite:
                    doc["phone"] = old_phone
                    new_phone = old_phone
                else:
                    raise ApiError(409, "phone_taken", f"Customer {owner} already has this phone; merge them with "
                                   f"POST /v1/customers/{found.customer_id}/merge.", [ErrorDetail("phone", owner)])
        if new_phone != old_phone and old_phone:
            held = stored.phones if "phones" in stored.model_fields_set else [old_phone]
            doc["phones"] = [p for p in held or [] if p != old_phone] or None
            doc = {k: v for k, v in doc.items() if v is not None}
        if new_phone:
            doc["phones"] = list(dict.fromkeys([*(doc.get("phones") or []), new_phone]))
        if doc == current:
            return
        try:
            people.put_person(found.scope, found.customer_id, PersonDoc.load(doc), version, at)
        except people.Conflict:
            continue
        if old_phone and old_phone != new_phone:
            people.release_phone(found.scope, old_phone, found.customer_id)
        return
    raise conflict("customer_changed", "The customer is being changed concurrently; retry.")


def _require_active(found: Found) -> None:
    status = found.doc.status
    if status == "erased":
        raise ApiError(410, "customer_erased", "This customer's personal data was erased.",
                       [ErrorDetail("customer_id", "erased")])
    if status == "merged":
        raise ApiError(409, "customer_merged", f"This customer was merged into {found.doc.merged_into}.",
                       [ErrorDetail("customer_id", str(found.doc.merged_into))])


def _save_sections(found: Found, sections: dict[str, Any], extra: Callable[[Tx, Found], None] | None = None
                   ) -> Found:
    """Replace record sections under the version read; re-read and re-apply on a lost race."""
    for _ in range(transactions.MAX_ATTEMPTS):
        at = clock.now()
        changes = {**sections, "updated_at": at.isoformat()}

        def build(tx: Tx, f: Found = found, changes: dict[str, Any] = changes) -> None:
            records.update(tx, f.scope, f.customer_id, f.version, changes)
            if extra is not None:
                extra(tx, f)

        try:
            transactions.write(build)
            return Found(found.scope, found.customer_id, _changed(found.doc, changes), found.version + 1)
        except TransactionFailed as err:
            if not err.condition_failed(0):
                raise
        got = records.get(found.scope, found.customer_id)
        if got is None:
            raise not_found()
        found = Found.of(found.scope, found.customer_id, got)
    raise conflict("customer_changed", "The customer is being changed concurrently; retry.")


def _changed(doc: CustomerDoc, sections: dict[str, Any]) -> CustomerDoc:
    """The document with whole sections replaced, as the write just did; the record's time stays."""
    changed = CustomerDoc.load({**doc.dump(), **sections})
    changed.created_at = doc.created_at
    return changed


def _merge_records(keep: Found, dup: Found, actor: str) -> None:
    for _ in range(transactions.MAX_ATTEMPTS):
        try:
            transactions.write(_merge_writes(keep, dup, actor, clock.now()))
            return
        except TransactionFailed as err:
            if "ConditionalCheckFailed" not in err.reasons:
                raise
        keep, dup = _reread(keep), _reread(dup)
        if dup.doc.status == "merged":
            return
    raise conflict("customer_changed", "The customers are being changed concurrently; retry.")


def _merge_writes(keep: Found, dup: Found, actor: str, at: datetime) -> Callable[[Tx], None]:
    """The loyalty half of a merge as one transaction: both records (versions and stats guarded) and the cards."""
    cards = [c for c in (loyalty.get_card(dup.scope, n) for n in records.card_numbers(dup.scope, dup.customer_id)) if c]
    stats = rules.merge_stats(keep.doc.stats.dump(), dup.doc.stats.dump())
    consents = rules.merge_consents(keep.doc.consents_dump(), dup.doc.consents_dump())
    kp, dp = keep.doc.profile_or_empty(), dup.doc.profile_or_empty()
    profile = {**kp.dump(), "tags": list(dict.fromkeys([*(kp.tags or []), *(dp.tags or [])])),
               "preferred_channel": kp.preferred_channel or dp.preferred_channel,
               "acquisition": _acquisition(kp) or _acquisition(dp)}
    keep_ref, dref = keep.doc.referral_or_empty(), dup.doc.referral_or_empty()
    referral = keep_ref.dump()
    referral["friends_rewarded"] = keep_ref.friends_rewarded + dref.friends_rewarded
    if not keep_ref.referred_by and dref.referred_by not in (None, keep.customer_id):
        referral["referred_by"] = dref.referred_by
        referral["rewarded_at"] = dref.rewarded_at

    def build(tx: Tx) -> None:
        records.update(tx, keep.scope, keep.customer_id, keep.version,
                       {"profile": profile, "consents": consents, "referral": referral, "stats": stats,
                        "updated_at": at.isoformat()}, stats_read=keep.doc.stats)
        records.update(tx, dup.scope, dup.customer_id, dup.version,
                       {"status": "merged", "merged_into": keep.customer_id, "updated_at": at.isoformat()},
                       stats_read=dup.doc.stats)
        for card in cards:
            card.customer_id = keep.customer_id
            loyalty.save_card(tx, dup.scope, card, at)
            records.unlink_card(tx, dup.scope, dup.customer_id, card.number)
            records.link_card(tx, dup.scope, keep.customer_id, card.number, card.program_id, at)
        if dref.code:
            records.delete_referral_code(tx, dup.scope, dref.code)
        audit.add(tx, audit.entry(keep.scope, action="customer.merged", actor=actor, at=at,
                                  target=f"customer:{keep.customer_id}",
                                  detail={"duplicate_id": dup.customer_id, "cards": ",".join(c.number for c in cards)}))

    return build


def _acquisition(profile: Profile) -> dict[str, Any] | None:
    return profile.acquisition.dump() if profile.acquisition else None


def _reread(found: Found) -> Found:
    got = records.get(found.scope, found.customer_id)
    if got is None:
        raise not_found()
    return Found.of(found.scope, found.customer_id, got)


def _merge_people(scope: str, keep_id: str, duplicate_id: str) -> None:
    """The personal half of a merge: fill the kept person's gaps, point the duplicate's phones at them, erase it."""
    dup = people.get_person(scope, duplicate_id)
    if dup is None:
        return
    dup_doc = dup.doc
    at = clock.now()
    for _ in range(PERSON_ATTEMPTS):
        got = people.get_person(scope, keep_id)
        current, version = (got.doc, got.version) if got else (PersonDoc(), 0)
        doc = rules.merge_personal(current.dump(), {k: v for k, v in dup_doc.dump().items() if k != "phones"})
        phones = list(dict.fromkeys([*current.all_phones(), *dup_doc.all_phones()]))
        if phones:
            doc["phones"] = phones
        try:
            people.put_person(scope, keep_id, PersonDoc.load(doc), version, at)
            break
        except people.Conflict:
            continue
    for phone in dup_doc.all_phones():
        people.point_phone(scope, phone, keep_id, at)
    for item in people.items(scope, duplicate_id).answers:
        people.add_answers(scope, keep_id, item.doc.survey_id, item.doc.response_id, item.doc.answers, item.at)
    people.erase(scope, duplicate_id, [])
