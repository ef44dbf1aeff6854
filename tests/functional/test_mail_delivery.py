"""The mail worker end to end over moto: what SES and SNS actually received, and what was suppressed and why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email import message_from_string, policy
from typing import Any

import pytest
from botocore.exceptions import ClientError
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends
from moto.sns.models import sns_backends

from chalicelib.schemas.templates import TemplateIn
from chalicelib.services.marketing import channels, delivery, mail_context, templates
from chalicelib.settings import settings
from chalicelib.storage import aws, deliveries, queues
from chalicelib.workers import mail
from tests.functional.conftest import Api, TenantKeys

REGION = "eu-central-1"
SENDER = "news@coffee.example"
ALL_CONSENTS = [{"kind": "sms", "granted": True, "source": "site", "text_version": "2026-09"},
                {"kind": "email", "granted": True, "source": "site", "text_version": "2026-09"}]


def sms_sent() -> list[tuple[str, str]]:
    return list(sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values())


def emails_sent() -> list[Any]:
    return list(ses_backends[DEFAULT_ACCOUNT_ID][REGION].sent_messages)


@pytest.fixture
def rendering(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The real mail context, spied on: the customer ids whose personal data was read, so tests can prove a
    suppressed or foreign message read none. Backoff sleeps are zeroed."""
    reads: list[str] = []
    real_variables, real_contact = mail_context.variables, mail_context.contact

    def variables(tenant_id: str, scope: str, customer_id: str, **kw: Any) -> dict[str, Any]:
        reads.append(customer_id)
        return real_variables(tenant_id, scope, customer_id, **kw)

    def contact(scope: str, customer_id: str, channel: str) -> str | None:
        reads.append(customer_id)
        return real_contact(scope, customer_id, channel)

    monkeypatch.setattr(mail_context, "variables", variables)
    monkeypatch.setattr(mail_context, "contact", contact)
    monkeypatch.setattr(channels, "backoff", lambda attempt: 0.0)
    return reads


def save_templates(tenant_id: str) -> None:
    """Real saved templates (helper A's service): the worker renders them in the sandbox."""
    for spec in (TemplateIn(id="autumn-sms", name="Autumn SMS", channel="sms",
                            body="Hi {{ first_name }}! Code {{ coupon_code }}"),
                 TemplateIn(id="autumn-email", name="Autumn e-mail", channel="email",
                            subject="Autumn offer for {{ first_name }}",
                            body="Hi {{ first_name }}! Code {{ coupon_code }}\nUnsubscribe: {{ unsubscribe_url }}")):
        templates.create(tenant_id, spec, "test")


@pytest.fixture
def mailer(api: Api, tenant: TenantKeys, clock: Any, rendering: list[str]) -> TenantKeys:
    r = api.put("/v1/mail-settings", tenant.admin, {"email_from": SENDER, "sms_sender_id": "CoffeeHse"})
    assert r.status_code == 200, r.data
    save_templates(tenant.tenant_id)
    return tenant


def new_customer(api: Api, key: str, phone: str, consents: list[dict[str, Any]] | None = None,
                 name: str = "Anna") -> str:
    r = api.post("/v1/customers", key, {"phone": phone, "email": f"{name.lower()}@example.com", "first_name": name,
                                        "consents": ALL_CONSENTS if consents is None else consents})
    assert r.status_code == 201, r.data
    return str(r.data["customer_id"])


def message(tenant_id: str, customer_id: str, channel: str = "sms", dedup: str | None = None,
            template: str | None = None, source_id: str = "c1", scope: str | None = None) -> dict[str, Any]:
    return {"v": 1, "tenant_id": tenant_id, "scope": scope or tenant_id, "customer_id": customer_id,
            "channel": channel, "template_id": template or f"autumn-{channel}",
            "source": {"kind": "campaign", "id": source_id, "occasion": "autumn"},
            "dedup_key": dedup or f"campaign:{source_id}:{channel}:{customer_id}", "coupon_code": "AUT-10",
            "extra": {}}


def run(*bodies: dict[str, Any] | str, ids: list[str] | None = None) -> list[str]:
    records = [{"messageId": (ids or [f"m{i}" for i in range(len(bodies))])[i],
                "body": body if isinstance(body, str) else json.dumps(body)} for i, body in enumerate(bodies)]
    return [f["itemIdentifier"] for f in mail.handle_records(records)["batchItemFailures"]]


def test_mail_settings_verify_the_sender_and_belong_to_one_tenant(api: Api, tenant: TenantKeys,
                                                                  other_tenant: TenantKeys) -> None:
    defaults = api.get("/v1/mail-settings", tenant.admin)
    assert defaults.status_code == 200
    assert defaults.data == {"email_from": None, "sms_sender_id": None, "quiet_hours": {"start": "21:00",
                             "end": "09:00"}, "weekly_cap": 3, "sms_provider": "sns"}
    body = {"email_from": SENDER, "sms_sender_id": "Coffee1", "quiet_hours": {"start": "22:00", "end": "08:30"},
            "weekly_cap": 2, "sms_provider": "sns"}
    assert api.put("/v1/mail-settings", tenant.admin, body).data == body
    assert api.get("/v1/mail-settings", tenant.admin).data == body
    assert SENDER in aws.client("ses").list_identities()["Identities"]
    assert api.get("/v1/mail-settings", other_tenant.admin).data["email_from"] is None
    assert api.get("/v1/mail-settings", tenant.pos).status_code == 403

    bad = api.put("/v1/mail-settings", tenant.admin, {"sms_sender_id": "1234567", "quiet_hours": {"start": "25:00"}})
    assert bad.status_code == 400
    assert {d["field"] for d in bad.data["error"]["details"]} == {"sms_sender_id", "quiet_hours.start"}
    assert api.put("/v1/mail-settings", tenant.admin, {"sms_sender_id": "TooLongSender1"}).status_code == 400
    unknown = api.put("/v1/mail-settings", tenant.admin, {"sms_provider": "carrier-x"})
    assert (unknown.status_code, unknown.data["error"]["code"]) == (422, "unknown_sms_provider")
    assert api.get("/v1/mail-settings", tenant.admin).data == body, "a refused PUT writes nothing"


def test_sms_and_email_are_sent_with_rendered_text(api: Api, mailer: TenantKeys) -> None:
    cid = new_customer(api, mailer.admin, "+79161234567")
    assert run(message(mailer.tenant_id, cid, "sms"), message(mailer.tenant_id, cid, "email")) == []
    assert sms_sent() == [("+79161234567", "Hi Anna! Code AUT-10")]
    [email] = emails_sent()
    parsed = message_from_string(email.raw_data, policy=policy.default)
    assert (email.source, parsed["Subject"]) == (SENDER, "Autumn offer for Anna")
    assert parsed.get_content_type() == "multipart/alternative", "text and HTML"
    greeting, link = parsed.get_body(("plain",)).get_content().split("\n")
    assert greeting == "Hi Anna! Code AUT-10"
    assert link.startswith("Unsubscribe: ") and "/v1/public/unsubscribe/one-click?token=" in link
    assert "Hi Anna! Code AUT-10<br>" in parsed.get_body(("html",)).get_content()
    assert set(email.destinations) == {"anna@example.com"}
    record = deliveries.get_delivery(mailer.tenant_id, f"campaign:c1:sms:{cid}")
    assert record is not None and record.state == "sent" and record.provider_id
    assert deliveries.counts(mailer.tenant_id, "campaign", "c1") == {"sent": 2}
    assert deliveries.sent_in_week(mailer.tenant_id, cid, "2026-W45") == 2


def test_a_message_is_sent_once_however_often_it_arrives(api: Api, mailer: TenantKeys) -> None:
    cid = new_customer(api, mailer.admin, "+79161234567")
    body = message(mailer.tenant_id, cid, "sms", dedup=f"trigger:birthday:2026:{cid}")
    assert run(body, body, ids=["same", "same"]) == []
    again = {**body, "source": {"kind": "campaign", "id": "c1", "occasion": "autumn"}}
    assert run(again, ids=["other"]) == []
    first = delivery.deliver(delivery.MailMessage.model_validate(body))
    [sns_id] = sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages
    assert (first.status, first.duplicate, first.provider_id) == ("sent", True, sns_id)
    assert len(sms_sent()) == 1
    assert deliveries.counts(mailer.tenant_id, "campaign", "c1") == {"sent": 1}
    assert deliveries.sent_in_week(mailer.tenant_id, cid, "2026-W45") == 1


def test_no_consent_withdrawn_or_erased_customers_get_nothing(api: Api, mailer: TenantKeys,
                                                              rendering: list[str]) -> None:
    silent = new_customer(api, mailer.admin, "+79160000001", consents=[], name="Silent")
    withdrawn = new_customer(api, mailer.admin, "+79160000002", name="Gone")
    r = api.post(f"/v1/customers/{withdrawn}/consents", mailer.pos,
                 {"consents": [{"kind": "sms", "granted": False, "source": "pos", "text_version": "2026-09"}]})
    assert r.status_code == 200, r.data
    erased = new_customer(api, mailer.admin, "+79160000003", name="Erased")
    r = api.post(f"/v1/customers/{erased}/erase", mailer.admin, {"confirm": "erase", "reason": "request"})
    assert r.status_code == 200, r.data
    assert run(*(message(mailer.tenant_id, cid, "sms") for cid in (silent, withdrawn, erased))) == []
    assert sms_sent() == []
    reasons = {cid: deliveries.get_delivery(mailer.tenant_id, f"campaign:c1:sms:{cid}") for cid in
               (silent, withdrawn, erased)}
    assert {cid: (d.reason if d else None) for cid, d in reasons.items()} == {
        silent: "no_consent", withdrawn: "opted_out", erased: "erased"}
    assert deliveries.counts(mailer.tenant_id, "campaign", "c1") == {
        "suppressed": 3, "suppressed:no_consent": 1, "suppressed:opted_out": 1, "suppressed:erased": 1}
    assert rendering == [], "a suppressed message reads no personal data"


def test_quiet_hours_hold_sms_in_the_tenant_zone_but_not_email(api: Api, mailer: TenantKeys, clock: Any) -> None:
    cid = new_customer(api, mailer.admin, "+79161234567")
    clock.advance(hours=9, minutes=30)  # 19:30 UTC = 22:30 in Moscow
    assert run(message(mailer.tenant_id, cid, "sms"), message(mailer.tenant_id, cid, "email")) == []
    assert sms_sent() == []
    assert len(emails_sent()) == 1
    assert deliveries.get_delivery(mailer.tenant_id, f"campaign:c1:sms:{cid}").reason == "quiet_hours"
    clock.advance(hours=10, minutes=30)  # 06:00 UTC = 09:00 Moscow: a new message may go
    assert run(message(mailer.tenant_id, cid, "sms", source_id="c2")) == []
    assert len(sms_sent()) == 1


def test_weekly_cap_per_customer_resets_with_the_iso_week(api: Api, mailer: TenantKeys, clock: Any) -> None:
    assert api.put("/v1/mail-settings", mailer.admin, {"email_from": SENDER, "weekly_cap": 2}).status_code == 200
    cid = new_customer(api, mailer.admin, "+79161234567")
    other = new_customer(api, mailer.admin, "+79161234568", name="Boris")
    bodies = [message(mailer.tenant_id, cid, "email", source_id=f"c{i}") for i in range(3)]
    assert run(*bodies, message(mailer.tenant_id, other, "email", source_id="c0")) == []
    assert len(emails_sent()) == 3, "two for Anna, one for Boris"
    assert deliveries.get_delivery(mailer.tenant_id, f"campaign:c2:email:{cid}").reason == "frequency_cap"
    assert deliveries.counts(mailer.tenant_id, "campaign", "c2") == {"suppressed": 1, "suppressed:frequency_cap": 1}
    clock.advance(days=6, hours=11)  # Sunday 2026-11-08 21:00 UTC = Monday 00:00 in Moscow: ISO week 46 there
    assert run(message(mailer.tenant_id, cid, "email", source_id="c3")) == []
    assert len(emails_sent()) == 4
    assert deliveries.sent_in_week(mailer.tenant_id, cid, "2026-W46") == 1


class ThrottledSns:
    """The real moto SNS client, throttled for the first `failures` publishes."""

    def __init__(self, failures: int, code: str = "ThrottlingException") -> None:
        self.failures = failures
        self.code = code
        self.calls = 0

    def publish(self, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise ClientError({"Error": {"Code": self.code, "Message": "refused"}}, "Publish")
        return aws.client("sns").publish(**kwargs)


@pytest.fixture
def throttle(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def install(failures: int, code: str = "ThrottlingException") -> ThrottledSns:
        sns = ThrottledSns(failures, code)
        monkeypatch.setattr(channels, "client", lambda service: sns if service == "sns" else aws.client(service))
        return sns

    yield install


def test_throttling_is_retried_with_backoff_then_sent_once(api: Api, mailer: TenantKeys, throttle: Any) -> None:
    cid = new_customer(api, mailer.admin, "+79161234567")
    sns = throttle(2)
    assert run(message(mailer.tenant_id, cid, "sms")) == []
    assert sns.calls == 3
    assert sms_sent() == [("+79161234567", "Hi Anna! Code AUT-10")]


def test_still_throttled_is_reported_for_redelivery_and_sent_once_later(api: Api, mailer: TenantKeys,
                                                                        throttle: Any) -> None:
    cid = new_customer(api, mailer.admin, "+79161234567")
    other = new_customer(api, mailer.admin, "+79161234568", name="Boris")
    sns = throttle(1000)
    body = message(mailer.tenant_id, cid, "sms")
    assert run(body, message(mailer.tenant_id, other, "email"), ids=["throttled", "fine"]) == ["throttled"]
    assert sns.calls == channels.MAX_ATTEMPTS
    assert sms_sent() == [] and len(emails_sent()) == 1
    assert deliveries.get_delivery(mailer.tenant_id, body["dedup_key"]) is None, "the claim is released"
    assert deliveries.sent_in_week(mailer.tenant_id, cid, "2026-W45") == 0, "not counted against the cap"
    assert deliveries.counts(mailer.tenant_id, "campaign", "c1") == {"sent": 1}
    sns.failures = 0
    assert run(body, ids=["throttled"]) == []
    assert run(body, ids=["throttled"]) == []
    assert len(sms_sent()) == 1
    assert deliveries.sent_in_week(mailer.tenant_id, cid, "2026-W45") == 1
    assert deliveries.counts(mailer.tenant_id, "campaign", "c1") == {"sent": 2}


def test_a_refused_number_fails_once_without_retry_or_cap(api: Api, mailer: TenantKeys, throttle: Any) -> None:
    cid = new_customer(api, mailer.admin, "+79161234567")
    sns = throttle(1, code="InvalidParameter")
    body = message(mailer.tenant_id, cid, "sms")
    assert run(body) == []
    assert sns.calls == 1
    assert deliveries.get_delivery(mailer.tenant_id, body["dedup_key"]).reason == "provider_error: InvalidParameter"
    assert deliveries.sent_in_week(mailer.tenant_id, cid, "2026-W45") == 0
    assert run(body) == [] and sns.calls == 1 and sms_sent() == []


def test_a_render_error_fails_only_that_message(api: Api, mailer: TenantKeys) -> None:
    ids = [new_customer(api, mailer.admin, f"+7916123456{i}", name=f"N{i}") for i in range(3)]
    bodies = [message(mailer.tenant_id, cid, "sms", template="retired-sms" if i == 1 else None)
              for i, cid in enumerate(ids)]
    assert run(*bodies) == [], "a template error is permanent: retrying cannot fix it"
    assert sorted(phone for phone, _ in sms_sent()) == ["+79161234560", "+79161234562"]
    failed = deliveries.get_delivery(mailer.tenant_id, bodies[1]["dedup_key"])
    assert failed is not None and failed.dump() == {"state": "failed", "token": failed.token,
                                                    "reason": "render_error: template 'retired-sms' does not exist",
                                                    "at": failed.at}
    assert deliveries.counts(mailer.tenant_id, "campaign", "c1") == {"sent": 2, "failed": 1,
                                                                     "failed:render_error": 1}
    assert deliveries.sent_in_week(mailer.tenant_id, ids[1], "2026-W45") == 0


def test_malformed_messages_are_dropped_not_retried(api: Api, mailer: TenantKeys) -> None:
    cid = new_customer(api, mailer.admin, "+79161234567")
    bad_channel = {**message(mailer.tenant_id, cid), "channel": "pigeon"}
    assert run("not json", bad_channel, {"v": 1}, message(mailer.tenant_id, cid)) == []
    assert len(sms_sent()) == 1


def test_a_poison_message_ends_in_the_dead_letter_queue(api: Api, mailer: TenantKeys,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    cid = new_customer(api, mailer.admin, "+79161234567")

    def broken(msg: Any) -> Any:
        raise RuntimeError("storage is down")

    monkeypatch.setattr(delivery, "deliver", broken)
    queues.send(settings.mail_queue, message(mailer.tenant_id, cid))
    sqs = aws.client("sqs")
    url = queues.queue_url(settings.mail_queue)
    for attempt in range(4):
        got = sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, MaxNumberOfMessages=10)["Messages"]
        assert len(got) == 1, attempt
        records = [{"messageId": m["MessageId"], "body": m["Body"]} for m in got]
        assert mail.handle_records(records)["batchItemFailures"] == [{"itemIdentifier": got[0]["MessageId"]}]
    assert sqs.receive_message(QueueUrl=url, VisibilityTimeout=0).get("Messages", []) == []
    dead = sqs.receive_message(QueueUrl=queues.queue_url(f"{settings.mail_queue}-dlq"))["Messages"]
    assert json.loads(dead[0]["Body"])["customer_id"] == cid
    assert sms_sent() == []


def test_another_tenants_customer_is_never_reached(api: Api, mailer: TenantKeys, other_tenant: TenantKeys,
                                                   rendering: list[str]) -> None:
    victim = new_customer(api, mailer.admin, "+79161234567")
    assert api.put("/v1/mail-settings", other_tenant.admin, {"email_from": SENDER}).status_code == 200
    forged = message(other_tenant.tenant_id, victim, "sms", scope=mailer.tenant_id)
    also = message(other_tenant.tenant_id, victim, "email")
    assert run(forged, also) == []
    assert sms_sent() == [] and emails_sent() == []
    assert rendering == []
    for body in (forged, also):
        assert deliveries.get_delivery(other_tenant.tenant_id, body["dedup_key"]).reason == "customer_not_found"
    assert deliveries.get_delivery(mailer.tenant_id, forged["dedup_key"]) is None
    assert deliveries.counts(mailer.tenant_id, "campaign", "c1") == {}
