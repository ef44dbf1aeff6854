"""Pass updates, delivered: the wallet worker's side of services/wallet/changes.py.

Like webhooks (services/integrations/webhooks.py).
A job is (pass, tag). If the pass has a newer tag meanwhile the job is
superseded (the newer job pushes). Otherwise each target (every registered
device: an empty APNs push on the pass type topic; Google: a PATCH of the
loyalty object, if the card was offered to Google Wallet) is claimed on the
update log with a conditional write, so a job delivered twice pushes each
device once. Failed targets are retried by re-queuing the job with backoff
(30 s doubling to 15 min), up to 8 attempts, then given up. APNs 410 (the
device token is no longer valid) unregisters that device; Google 404 (never
saved) is final.
"""

from __future__ import annotations

from datetime import timedelta

from chalicelib import clock
from chalicelib.domain import passes as rules
from chalicelib.observability import logger
from chalicelib.schemas.wallet import ClassUpdateMessage, PassUpdateMessage
from chalicelib.services.wallet import cards, google, http
from chalicelib.services.wallet.credentials import Credentials, load
from chalicelib.settings import settings
from chalicelib.storage import passes as store
from chalicelib.storage import queues

LEASE = timedelta(seconds=30)
"""A claimed attempt older than this (a worker died mid-push) may be taken over by SQS's redelivery."""
GOOGLE = "google"


# --- delivering -----------------------------------------------------------------------------------------

def deliver(message: PassUpdateMessage) -> str:
    """One attempt of one pass update to its devices and Google; the outcome, for the worker's log line.

    dropped | superseded | duplicate | delivered | retrying | failed. Raises only when SQS or DynamoDB fail:
    the worker reports the message for redelivery, and the claims keep a redelivery from pushing twice.
    """
    tenant_id, serial, tag = message.tenant_id, message.serial, message.tag
    log = {"tenant_id": tenant_id, "tag": tag, "attempt": message.attempt}
    found = cards.by_serial(tenant_id, serial)
    if found is None:
        logger.info("wallet update dropped: pass or card gone", extra=log)
        return "dropped"
    if found.tag > tag:
        logger.info("wallet update superseded by a newer change", extra=log)
        return "superseded"
    store.set_face(tenant_id, serial, tag, rules.face_fingerprint(cards.face(found.card)))  # what devices will get
    creds = load()
    targets: list[tuple[str, str | None]] = [(f"device:{d.device_id}", d.push_token)
                                             for d in store.devices(tenant_id, serial)]
    if found.stored.doc.google:
        targets.append((GOOGLE, None))
    now = clock.now()
    claimed = retry = failed = 0
    for target, push_token in targets:
        claim = store.claim_push(tenant_id, serial, tag, target, message.attempt, now, LEASE)
        if claim is None:
            continue
        claimed += 1
        outcome = google.update_object(tenant_id, found, creds) if push_token is None else apns(push_token, creds)
        status = _status(target, outcome, message.attempt)
        store.finish_push(tenant_id, serial, tag, target, claim, status, outcome.status_code, outcome.error)
        if status == "gone" and push_token is not None:
            store.unregister(tenant_id, serial, target.removeprefix("device:"))
        retry += status == "retrying"
        failed += status == "failed"
        logger.info("wallet push", extra={**log, "target": target.split(":")[0], "status": status,
                                          "status_code": outcome.status_code, "error": outcome.error,
                                          "http_version": outcome.http_version})
    if retry:
        delay = rules.retry_delay(message.attempt) or 0
        queues.send(settings.wallet_queue, message.model_copy(update={"attempt": message.attempt + 1})
                    .model_dump(mode="json"), delay_seconds=delay)
        return "retrying"
    if targets and not claimed:
        return "duplicate"
    return "failed" if failed else "delivered"


def deliver_class(message: ClassUpdateMessage) -> str:
    """One attempt of one PATCH of the tenant's Google class (its look changed); the outcome, as `deliver`'s.

    Claimed on the update log like a pass's Google PATCH (serial `~class`), so a job delivered twice PATCHes
    once; a newer change of the look supersedes it; 404 (Google holds no class: no member saved a card) is final.
    """
    tenant_id, tag = message.tenant_id, message.tag
    log = {"tenant_id": tenant_id, "tag": tag, "attempt": message.attempt, "target": "google_class"}
    state = store.google_class_state(tenant_id)
    if state is None:
        logger.info("wallet class update dropped: no class offered", extra=log)
        return "dropped"
    if state[0] > tag:
        logger.info("wallet class update superseded by a newer change", extra=log)
        return "superseded"
    creds = load()
    claim = store.claim_push(tenant_id, store.CLASS_PUSH, tag, GOOGLE, message.attempt, clock.now(), LEASE)
    if claim is None:
        return "duplicate"
    outcome = google.update_class(tenant_id, creds)
    status = _status(GOOGLE, outcome, message.attempt)
    store.finish_push(tenant_id, store.CLASS_PUSH, tag, GOOGLE, claim, status, outcome.status_code, outcome.error)
    logger.info("wallet push", extra={**log, "status": status, "status_code": outcome.status_code,
                                      "error": outcome.error})
    if status == "retrying":
        delay = rules.retry_delay(message.attempt) or 0
        queues.send(settings.wallet_queue, message.model_copy(update={"attempt": message.attempt + 1})
                    .model_dump(mode="json"), delay_seconds=delay)
        return "retrying"
    return "failed" if status == "failed" else "delivered"


def apns(push_token: str, creds: Credentials) -> http.Outcome:
    """Apple's pass update push: an empty JSON dictionary on the pass type id's topic, HTTP/2 to APNs.

    With the certificate only over https: the local recorder (http://) gets the same request in HTTP/1.1.
    """
    headers = {"apns-topic": settings.wallet_pass_type_id, "apns-priority": "5", "Content-Type": "application/json"}
    url = f"{settings.apns_url}/3/device/{push_token}"
    cert = (creds.apple_certificate_pem, creds.apple_key_pem) if url.startswith("https://") else None
    return http.request("POST", url, b"{}", headers, cert)


def _status(target: str, outcome: http.Outcome, attempt: int) -> str:
    if outcome.ok:
        return "delivered"
    if (target == GOOGLE and outcome.status_code == 404) or (target != GOOGLE and outcome.status_code == 410):
        return "gone"
    if outcome.status_code in (400, 403) or rules.retry_delay(attempt) is None:
        return "failed"  # refused for good (a malformed token, a wrong certificate) or out of attempts
    return "retrying"
