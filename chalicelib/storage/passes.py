"""Wallet passes, their device registrations and their update log, in the loyalty table. Every call takes the tenant.

<tid>#passes                    / any               marker: the tenant has issued a pass (updates look only then)
<tid>#passes                    / pass#<serial>     every pass of the tenant (the daily refresh walks them)
<tid>#passes                    / google-class      the tenant's Google class was offered in a save link: the
                                                    fingerprint of what it shows and its last-updated tag
<tid>#passes                    / apple-look        what the tenant's passes show of the tenant (fingerprint)
<tid>#card-pass#<number>        / pass              the card's pass serial
<tid>#pass#<serial>             / pass              the pass (PassDoc): card, token salt, last-updated tag; version
<tid>#pass#<serial>             / device#<device>   a device registered for the pass: its push token
<tid>#wallet-device#<device>    / reg#<serial>      the same registration, by device (serials updated since)
<tid>#pass-push#<serial>        / <tag>#<target>    one update to one device (or google): the exactly-once claim;
                                                    30-day TTL (serial `~class`: the tenant's Google class PATCH;
                                                    `~` is in no serial)
<tid>#google-callback#<nonce>   / nonce             a Google save/delete callback applied (replays refused); TTL
_wallet#google-root-keys        / keys              Google's root signing keys for callbacks, as last fetched (not
                                                    a tenant's: `_` starts no tenant id)

Device ids come from Apple and are unique per device and per web service, so a
device's partition under one tenant never mixes with another tenant's.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from pynamodb.exceptions import PutError, UpdateError

from chalicelib.domain.ids import new_id
from chalicelib.storage import pagination
from chalicelib.storage.aws import client
from chalicelib.storage.documents.common import Versioned
from chalicelib.storage.documents.wallet_pass import PassDoc, PushDoc, RegistrationDoc
from chalicelib.storage.pagination import StoredPage
from chalicelib.storage.tables import LoyaltyRecord, claim_turn, condition_failed, doc_of, get_item, stamp
from chalicelib.storage.transactions import TransactionFailed, write

PASS_SK = "pass"
DEVICE_PREFIX = "device#"
REG_PREFIX = "reg#"
MARKER_SK = "any"
INDEX_PREFIX = "pass#"
PUSH_RETENTION = timedelta(days=30)
FINAL = ("delivered", "failed", "gone")


class Changed(Exception):
    """The pass was written by someone else since it was read."""


def marker_pk(tenant_id: str) -> str:
    return f"{tenant_id}#passes"


def card_pass_pk(tenant_id: str, number: str) -> str:
    return f"{tenant_id}#card-pass#{number}"


def pass_pk(tenant_id: str, serial: str) -> str:
    return f"{tenant_id}#pass#{serial}"


def device_pk(tenant_id: str, device_id: str) -> str:
    return f"{tenant_id}#wallet-device#{device_id}"


def push_pk(tenant_id: str, serial: str) -> str:
    return f"{tenant_id}#pass-push#{serial}"


# --- passes -----------------------------------------------------------------------------------------------

def has_passes(tenant_id: str) -> bool:
    return get_item(LoyaltyRecord, marker_pk(tenant_id), MARKER_SK) is not None


def serial_of_card(tenant_id: str, number: str) -> str | None:
    rec = get_item(LoyaltyRecord, card_pass_pk(tenant_id, number), PASS_SK)
    return str(doc_of(rec)["serial"]) if rec else None


def get_pass(tenant_id: str, serial: str) -> Versioned[PassDoc] | None:
    rec = get_item(LoyaltyRecord, pass_pk(tenant_id, serial), PASS_SK)
    return Versioned(PassDoc.of(rec.doc), int(rec.version)) if rec else None


def add_pass(tenant_id: str, doc: PassDoc, at: datetime) -> bool:
    """The card's pass, its card link and the tenant's marker in one write; False if the card has a pass already."""
    def build(tx: Any) -> None:
        tx.save(LoyaltyRecord(card_pass_pk(tenant_id, doc.card_number), PASS_SK, kind="card_pass",
                              doc={"serial": doc.serial}, at=at), condition=LoyaltyRecord.pk.does_not_exist())
        tx.save(LoyaltyRecord(pass_pk(tenant_id, doc.serial), PASS_SK, kind="wallet_pass", doc=doc.dump(),
                              version=1, at=at), condition=LoyaltyRecord.pk.does_not_exist())
        tx.save(LoyaltyRecord(marker_pk(tenant_id), MARKER_SK, kind="wallet_marker", doc={}, at=at))
        tx.save(LoyaltyRecord(marker_pk(tenant_id), INDEX_PREFIX + doc.serial, kind="wallet_pass_index",
                              doc={"card_number": doc.card_number}, at=at))

    try:
        write(build)
    except TransactionFailed as err:
        if err.condition_failed(0):
            return False
        raise
    return True


def save_pass(tenant_id: str, doc: PassDoc, version: int, at: datetime) -> int:
    """Replace the pass if still at `version`; the new version, or Changed."""
    try:
        LoyaltyRecord(pass_pk(tenant_id, doc.serial), PASS_SK, kind="wallet_pass", doc=doc.dump(),
                      version=version + 1, at=at).save(condition=LoyaltyRecord.version == version)
    except PutError as err:
        if condition_failed(err):
            raise Changed(doc.serial) from None
        raise
    return version + 1


def passes(tenant_id: str, serials: list[str]) -> dict[str, PassDoc]:
    """Serial -> pass, for those that exist (BatchGetItem, 100 keys a call)."""
    keys = [(pass_pk(tenant_id, s), PASS_SK) for s in dict.fromkeys(serials)]
    return {PassDoc.of(rec.doc).serial: PassDoc.of(rec.doc) for rec in LoyaltyRecord.batch_get(keys)}


def list_serials(tenant_id: str, limit: int, cursor: str | None) -> StoredPage[str]:
    """A page of the tenant's pass serials."""
    pk = marker_pk(tenant_id)
    records, next_cursor = pagination.page_of(
        lambda size, start: LoyaltyRecord.query(pk, LoyaltyRecord.sk.startswith(INDEX_PREFIX), limit=size,
                                                page_size=size, last_evaluated_key=start, consistent_read=True),
        limit=limit, cursor=cursor, hash_attr="pk", hash_value=pk, key_attrs=("pk", "sk"))
    return StoredPage([str(r.sk)[len(INDEX_PREFIX):] for r in records], next_cursor)


def set_face(tenant_id: str, serial: str, tag: int, face: str) -> bool:
    """Record what the pass shows, if it is still at `tag` (a newer change records its own)."""
    d = LoyaltyRecord.doc
    try:
        LoyaltyRecord(pass_pk(tenant_id, serial), PASS_SK).update(
            actions=[d["face"].set(face)], condition=LoyaltyRecord.pk.exists() & (d["tag"] == tag))
    except UpdateError as err:
        if condition_failed(err):
            return False
        raise
    return True


def delete_card_pass(tenant_id: str, number: str) -> int:
    """Delete the card's pass, its devices' registrations and its link (erasure); the registrations removed.

    The pass goes first, so its token authenticates nothing more (no new registration slips in); the link to
    the card goes last, so a call interrupted halfway finds the serial again and finishes. Idempotent.
    """
    serial = serial_of_card(tenant_id, number)
    if serial is None:
        return 0

    def drop_pass(tx: Any) -> None:
        tx.delete(LoyaltyRecord(pass_pk(tenant_id, serial), PASS_SK))
        tx.delete(LoyaltyRecord(marker_pk(tenant_id), INDEX_PREFIX + serial))

    write(drop_pass)
    removed = 0
    for reg in devices(tenant_id, serial):
        removed += unregister(tenant_id, serial, reg.device_id)
    LoyaltyRecord(card_pass_pk(tenant_id, number), PASS_SK).delete()
    return removed


# --- the tenant's Google class ---------------------------------------------------------------------------------

CLASS_SK = "google-class"
CLASS_PUSH = "~class"
"""The update log's "serial" of the tenant's class PATCHes (claim_push / finish_push)."""


def offer_google_class(tenant_id: str, fingerprint: str, tag: int, at: datetime) -> bool:
    """Remember that a save link carried the tenant's class (Google may hold it from now on); True the first time.

    A later link changes nothing here: the class it carries is what `google_class_state` already records (a
    change of the tenant's look updates the record before the next link is made)."""
    try:
        LoyaltyRecord(marker_pk(tenant_id), CLASS_SK, kind="google_class",
                      doc={"fingerprint": fingerprint, "tag": tag}, version=1, at=at).save(
            condition=LoyaltyRecord.pk.does_not_exist())
    except PutError as err:
        if condition_failed(err):
            return False
        raise
    return True


def google_class_state(tenant_id: str) -> tuple[int, str, int] | None:
    """(tag, fingerprint, version) of the tenant's class as last offered or PATCHed; None if never offered."""
    rec = get_item(LoyaltyRecord, marker_pk(tenant_id), CLASS_SK)
    if rec is None:
        return None
    doc = doc_of(rec)
    return int(doc["tag"]), str(doc["fingerprint"]), int(rec.version)


def set_google_class(tenant_id: str, fingerprint: str, tag: int, version: int, at: datetime) -> int:
    """The class shows `fingerprint` from tag `tag`, if the record is still at `version`; Changed otherwise."""
    try:
        LoyaltyRecord(marker_pk(tenant_id), CLASS_SK, kind="google_class",
                      doc={"fingerprint": fingerprint, "tag": tag}, version=version + 1, at=at).save(
            condition=LoyaltyRecord.version == version)
    except PutError as err:
        if condition_failed(err):
            raise Changed(CLASS_SK) from None
        raise
    return version + 1


LOOK_SK = "apple-look"


def swap_look(tenant_id: str, fingerprint: str, at: datetime) -> bool:
    """Record what the tenant's passes show of it; True if it differs from what was recorded (or nothing was)."""
    d = LoyaltyRecord.doc
    try:
        LoyaltyRecord(marker_pk(tenant_id), LOOK_SK, kind="wallet_look", doc={"fingerprint": fingerprint},
                      at=at).save(condition=LoyaltyRecord.pk.does_not_exist() | (d["fingerprint"] != fingerprint))
    except PutError as err:
        if condition_failed(err):
            return False
        raise
    return True


# --- Google's root signing keys (callbacks) --------------------------------------------------------------------

ROOT_KEYS_PK = "_wallet#google-root-keys"
ROOT_KEYS_SK = "keys"


def google_root_keys() -> tuple[list[dict[str, str]], str | None]:
    """The root keys as last stored (keyValue, protocolVersion, keyExpiration) and when they were fetched."""
    rec = get_item(LoyaltyRecord, ROOT_KEYS_PK, ROOT_KEYS_SK)
    if rec is None:
        return [], None
    doc = doc_of(rec)
    return [dict(k) for k in doc.get("keys", [])], str(doc.get("fetched_at") or "") or None


def save_google_root_keys(keys: list[dict[str, str]], at: datetime) -> None:
    LoyaltyRecord(ROOT_KEYS_PK, ROOT_KEYS_SK, kind="google_root_keys",
                  doc={"keys": keys, "fetched_at": at.isoformat()}, at=at).save()


# --- device registrations ---------------------------------------------------------------------------------

def register(tenant_id: str, serial: str, device_id: str, push_token: str, at: datetime) -> bool:
    """Register the device for the pass: True if new, False if it was (its push token is kept up to date)."""
    doc = RegistrationDoc(device_id=device_id, push_token=push_token, registered_at=at.isoformat())

    def build(tx: Any) -> None:
        tx.save(LoyaltyRecord(pass_pk(tenant_id, serial), DEVICE_PREFIX + device_id, kind="pass_device",
                              doc=doc.dump(), at=at), condition=LoyaltyRecord.pk.does_not_exist())
        tx.save(LoyaltyRecord(device_pk(tenant_id, device_id), REG_PREFIX + serial, kind="device_pass",
                              doc={"serial": serial}, at=at))

    try:
        write(build)
        return True
    except TransactionFailed as err:
        if not err.condition_failed(0):
            raise
    d = LoyaltyRecord.doc
    try:  # the device may have registered a new push token; never re-create a registration removed meanwhile
        LoyaltyRecord(pass_pk(tenant_id, serial), DEVICE_PREFIX + device_id).update(
            actions=[d["push_token"].set(push_token)], condition=LoyaltyRecord.pk.exists())
    except UpdateError as err:
        if not condition_failed(err):
            raise
    return False


def unregister(tenant_id: str, serial: str, device_id: str) -> bool:
    """Forget the device for the pass; False if it was not registered."""
    existed = get_item(LoyaltyRecord, pass_pk(tenant_id, serial), DEVICE_PREFIX + device_id) is not None

    def build(tx: Any) -> None:
        tx.delete(LoyaltyRecord(pass_pk(tenant_id, serial), DEVICE_PREFIX + device_id))
        tx.delete(LoyaltyRecord(device_pk(tenant_id, device_id), REG_PREFIX + serial))

    write(build)
    return existed


def devices(tenant_id: str, serial: str) -> list[RegistrationDoc]:
    """The devices registered for the pass (a handful: one person's phone and watch)."""
    return [RegistrationDoc.of(rec.doc) for rec in LoyaltyRecord.query(
        pass_pk(tenant_id, serial), LoyaltyRecord.sk.startswith(DEVICE_PREFIX), consistent_read=True)]


def serials_of_device(tenant_id: str, device_id: str, limit: int = 200) -> list[str]:
    """The passes of this tenant the device registered (one device holds few of one tenant's cards)."""
    return [rec.sk[len(REG_PREFIX):] for rec in LoyaltyRecord.query(
        device_pk(tenant_id, device_id), LoyaltyRecord.sk.startswith(REG_PREFIX), consistent_read=True,
        limit=limit)]


# --- Google callbacks: each nonce applied once ---------------------------------------------------------------

CALLBACK_SK = "nonce"


def apply_google_callback(tenant_id: str, serial: str, nonce: str, saved: bool, at: datetime,
                          keep_until: datetime) -> str:
    """Record a save (True) or a deletion (False) of the pass in Google Wallet, once per nonce, in one write.

    "applied", "replayed" (the nonce was seen: nothing changes) or "gone" (no such pass: nothing changes).
    `keep_until` is when the nonce may be forgotten (after the message itself expires).
    """
    d = LoyaltyRecord.doc

    def build(tx: Any) -> None:
        tx.save(LoyaltyRecord(f"{tenant_id}#google-callback#{nonce}", CALLBACK_SK, kind="google_callback",
                              doc={"serial": serial, "saved": saved}, at=at,
                              expires_at_epoch=int(keep_until.timestamp())),
                condition=LoyaltyRecord.pk.does_not_exist())
        tx.update(LoyaltyRecord(pass_pk(tenant_id, serial), PASS_SK),
                  actions=[d["google"].set(saved), d["google_saved"].set(saved)],
                  condition=LoyaltyRecord.pk.exists())

    try:
        write(build)
    except TransactionFailed as err:
        if err.condition_failed(0):
            return "replayed"
        if err.condition_failed(1):
            return "gone"
        raise
    return "applied"


# --- the update log: exactly once per (serial, tag, target) ------------------------------------------------

def claim_push(tenant_id: str, serial: str, tag: int, target: str, attempt: int, now: datetime,
               lease: timedelta) -> str | None:
    """Take attempt `attempt` of one update to one target; a token for `finish_push`, or None when it is not this
    attempt's turn (done or given up, already attempted, or another worker is attempting it right now)."""
    token = new_id(16)
    doc = PushDoc(status="pending", attempts=attempt, token=token, claimed_at=stamp(now))
    fresh = LoyaltyRecord(push_pk(tenant_id, serial), f"{tag}#{target}", kind="pass_push", doc=doc.dump(), at=now,
                          expires_at_epoch=int((now + PUSH_RETENTION).timestamp()))
    return claim_turn(fresh, token, attempt, now, lease, FINAL)


def finish_push(tenant_id: str, serial: str, tag: int, target: str, token: str, status: str,
                status_code: int | None, error: str | None) -> bool:
    """Record an attempt's outcome, only if this claim still holds it."""
    d = LoyaltyRecord.doc
    try:
        LoyaltyRecord(push_pk(tenant_id, serial), f"{tag}#{target}").update(
            actions=[d["status"].set(status), d["last_status_code"].set(status_code), d["last_error"].set(error),
                     d["token"].set(None)],
            condition=d["token"] == token)
    except UpdateError as err:
        if condition_failed(err):
            return False
        raise
    return True


def get_push(tenant_id: str, serial: str, tag: int, target: str) -> PushDoc | None:
    rec = get_item(LoyaltyRecord, push_pk(tenant_id, serial), f"{tag}#{target}")
    return PushDoc.of(rec.doc) if rec else None


# --- credentials ---------------------------------------------------------------------------------------------

def secret_text(name: str) -> str:
    """A Secrets Manager secret's string (the wallet's keys and certificates when deployed)."""
    return str(client("secretsmanager").get_secret_value(SecretId=name)["SecretString"])
