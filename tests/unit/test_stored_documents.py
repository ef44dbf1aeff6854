"""Stored items written before the document models existed load into them and dump back identically.

Each sample is a `doc` exactly as the old code wrote it (keys present with
None, keys absent, nested sections, unknown keys from older versions), so a
model that renamed, defaulted or coerced anything would fail here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib.storage.documents.campaign import MailCampaignDoc, Recipient
from chalicelib.storage.documents.common import Document, Versioned
from chalicelib.storage.documents.customer import CardLink, ConsentState, CustomerDoc, ReferralCode
from chalicelib.storage.documents.customer_import import ImportJob
from chalicelib.storage.documents.delivery import DeliveryRecord, MailSettingsDoc
from chalicelib.storage.documents.person import AnswersDoc, PersonDoc, PhoneOwner
from chalicelib.storage.documents.report import ReportDoc
from chalicelib.storage.documents.segment import SegmentDoc
from chalicelib.storage.documents.survey import InvitationUse, ResponseDoc, RewardMarker, SurveyDoc
from chalicelib.storage.documents.template import TemplateDoc
from chalicelib.storage.documents.trigger import TriggerRunState, TriggerSettingsDoc
from chalicelib.storage.documents.verification import VerificationDoc
from chalicelib.storage.documents.webhook import EndpointDoc, WebhookDeliveryDoc

AT = "2026-03-01T10:00:00+00:00"
CONSENT = {"kind": "sms", "granted": True, "source": "pos", "text_version": "v1", "at": AT, "actor": "key:k1"}

SAMPLES: list[tuple[type[Document], dict[str, Any]]] = [
    (CustomerDoc, {
        "stats": {"purchase_count": 0, "refund_count": 0, "spend": 0, "stores": {}, "categories": {}},
        "status": "active",
        "profile": {"tags": ["vip"], "preferred_channel": "sms", "acquisition": {"channel": "site", "source": "x"}},
        "consents": {"sms": CONSENT},
        "referral": {"code": "ABC123", "referred_by": None, "friends_rewarded": 0},
    }),
    (CustomerDoc, {
        "stats": {"purchase_count": 3, "refund_count": 1, "spend": 125000, "stores": {"s1": 3},
                  "categories": {"coffee": 9000}, "first_purchase_at": AT, "last_purchase_at": AT},
        "status": "erased", "erased_at": AT, "updated_at": AT,
        "profile": {"tags": [], "acquisition": None},
        "consents": {},
        "referral": {"referred_by": "c2", "rewarded_at": AT, "friends_rewarded": 2},
    }),
    (CustomerDoc, {"status": "merged", "merged_into": "c9", "updated_at": AT, "legacy": {"kept": True}}),
    (CardLink, {"program_id": "main"}),
    (ReferralCode, {"customer_id": "c1"}),
    (ConsentState, CONSENT),
    (PersonDoc, {"phone": "+79161234567", "phones": ["+79161234567"], "email": "a@example.com",
                 "first_name": "Анна", "last_name": "Петрова", "birth_date": "1990-05-01",
                 "children": [{"name": "Ivan", "birth_date": "2015-01-01"}], "preferences": ["coffee"]}),
    (PersonDoc, {"email": "b@example.com", "gender": "female"}),
    (AnswersDoc, {"survey_id": "s1", "response_id": "r1", "answers": {"q1": "free text", "q2": "2020-01-01"}}),
    (PhoneOwner, {"customer_id": "c1"}),
    (SurveyDoc, {
        "title": "How was it?", "description": None, "kind": "feedback", "status": "active",
        "questions": [{"id": "q1", "type": "rating", "label": "Rate", "required": True, "options": [],
                       "scale": 5, "maps_to": None}],
        "reward": {"kind": "points", "program_id": "main", "points": 50},
        "starts_at": None, "ends_at": AT, "rate_limit_per_hour": 20, "verify_phone": True,
        "id": "s1", "created_at": AT, "updated_at": None,
    }),
    (SurveyDoc, {"title": "t", "kind": "poll", "status": "draft", "questions": [], "reward": {"kind": "none"},
                 "id": "s2", "created_at": AT}),
    (ResponseDoc, {"survey_id": "s1", "response_id": "r1", "customer_id": None, "scope": "t1",
                   "answers": {"q1": 5}, "receipt_id": None, "store_id": None,
                   "reward": {"granted": False, "reason": "anonymous"}}),
    (RewardMarker, {"status": "pending", "reward": {"kind": "coupon", "campaign_id": "c1"},
                    "lease_until": AT, "started_at": AT}),
    (RewardMarker, {"status": "granted", "reward": {"kind": "card", "program_id": "main"}, "granted_at": AT,
                    "result": {"granted": True, "kind": "card", "card_number": "100"}}),
    (InvitationUse, {"response_id": "i1234"}),
    (SegmentDoc, {"name": "Regulars", "filter": {"min_purchases": 3, "store_ids": ["s1"]}, "created_at": AT,
                  "description": "three or more"}),
    (SegmentDoc, {"name": "All", "filter": {}, "created_at": AT}),
    (TemplateDoc, {"name": "Hi", "channel": "sms", "body": "Hi {{ first_name }}", "created_at": AT}),
    (TemplateDoc, {"name": "Mail", "channel": "email", "body": "b", "created_at": AT, "subject": "S"}),
    (TriggerSettingsDoc, {
        "send_time": "10:00",
        "welcome": {"enabled": True, "channel": "sms", "template_id": "hello"},
        "birthday": {"enabled": False, "channel": "sms", "template_id": None, "days_before": 0, "bonus_points": 0,
                     "coupon_campaign_id": None},
        "points_expiring": {"enabled": False, "channel": "sms", "template_id": None, "within_days": 14,
                            "min_points": 1},
        "tier_upgrade": {"enabled": False, "channel": "email", "template_id": None},
        "win_back": {"enabled": False, "channel": "sms", "template_id": None, "days": 60},
        "feedback": {"enabled": True, "channel": "sms", "template_id": "rate", "survey_id": "s1"},
    }),
    (TriggerRunState, {"day_queued": "2026-03-01", "last_run": {"day": "2026-03-01", "started_at": AT,
                                                                 "finished_at": AT, "customers": 10, "queued": 2,
                                                                 "by_kind": {"welcome": 2}}}),
    (TriggerRunState, {}),
    (MailCampaignDoc, {
        "id": "spring", "name": "Spring", "segment_id": "seg", "channel": "sms", "template_id": "t1",
        "coupon_campaign_id": None, "send_at": AT, "holdout_bps": 1000, "attribution_days": 7, "tenant_id": "t1",
        "send_at_requested": None, "status": "scheduled", "counts": {"targeted": 0, "control": 0, "queued": 0},
        "position": [0, None],
    }),
    (MailCampaignDoc, {
        "id": "c2", "name": "C2", "segment_id": "seg", "channel": "email", "template_id": "t2", "send_at": AT,
        "holdout_bps": 0, "attribution_days": 3, "tenant_id": "t1", "status": "failed", "failure": "gone",
        "started_at": AT, "finished_at": AT, "counts": {"targeted": 5, "control": 1, "queued": 4}, "position": None,
    }),
    (Recipient, {"group": "control"}),
    (DeliveryRecord, {"state": "sending", "token": "abc", "lease_until": AT}),
    (DeliveryRecord, {"state": "sent", "token": "abc", "provider_id": "p-1", "at": AT}),
    (DeliveryRecord, {"state": "suppressed", "token": "abc", "reason": "quiet_hours", "at": AT}),
    (MailSettingsDoc, {"email_from": None, "sms_sender_id": "Shop", "quiet_hours": {"start": "21:00", "end": "09:00"},
                       "weekly_cap": 3, "sms_provider": "sns"}),
    (VerificationDoc, {"phone_hash": "ph", "code_hash": "ch", "purpose": "survey", "status": "pending",
                       "expires_at": AT}),
    (VerificationDoc, {"phone_hash": "ph", "code_hash": "ch", "purpose": "survey", "status": "used",
                       "expires_at": AT, "verified_at": AT, "used_for": "survey:s1", "used_at": AT,
                       "finished_at": AT}),
    (EndpointDoc, {
        "id": "wh_1", "url": "https://example.com/hook", "events": ["card.issued"], "description": None,
        "enabled": True, "secret": "whsec_x", "previous_secret": None, "previous_secret_until": None,
        "consecutive_failures": 0, "failing_since": None, "disabled_reason": None, "disabled_at": None,
        "notice": None, "created_at": AT, "updated_at": AT,
    }),
    (WebhookDeliveryDoc, {"type": "card.issued", "status": "pending", "attempts": 1, "token": "t",
                          "claimed_at": "2026-03-01T10:00:00.000000Z", "first_attempt_at": "2026-03-01T10:00:00.000000Z",
                          "last_attempt_at": "2026-03-01T10:00:00.000000Z", "last_status_code": None,
                          "last_error": None, "duration_ms": None, "next_attempt_at": None}),
    (WebhookDeliveryDoc, {"type": "card.issued", "attempts": 0, "first_attempt_at": None, "last_attempt_at": None,
                          "last_status_code": None, "duration_ms": None, "status": "failed",
                          "last_error": "dropped: endpoint disabled", "next_attempt_at": None, "token": None}),
    (ReportDoc, {"report_id": "20260301-100000-abcdef", "type": "ledger", "program_id": "main",
                 "campaign_id": None, "survey_id": None, "coalition_id": None, "from": "2026-02-01",
                 "to": "2026-03-01", "format": "csv", "delimiter": ",", "status": "ready", "created_at": AT,
                 "requested_by": "tenant_admin", "started_at": AT, "completed_at": AT, "rows": 10,
                 "size_bytes": 512}),
    (ReportDoc, {"report_id": "r2", "type": "simulation", "program_id": "main", "from": "2026-02-01",
                 "to": "2026-03-01", "format": "csv", "delimiter": ",", "status": "failed", "created_at": AT,
                 "proposed": {"earn_rate": 0.05}, "failure": {"code": "not_queued", "message": "m"},
                 "completed_at": AT}),
    (ImportJob, {
        "import_id": "20260301-100000-abcdef", "filename": "base.csv", "status": "awaiting_upload",
        "program_id": None, "default_consents": [], "consent_text_version": "v1", "overrides": {"tel": "phone"},
        "rows": 0, "created": 0, "updated": 0, "rejected": 0, "cards_issued": 0, "bytes_done": 0,
        "bytes_total": 0, "line": 1, "parts": [], "chunks": 0, "error": None, "created_at": AT,
        "started_at": None, "completed_at": None, "committed_at": AT,
    }),
    (ImportJob, {
        "import_id": "i2", "filename": "b.csv", "status": "done", "program_id": "main",
        "default_consents": [{"kind": "sms", "granted": True, "source": "import", "text_version": "v1"}],
        "consent_text_version": "v1", "overrides": {}, "rows": 3, "created": 2, "updated": 1, "rejected": 1,
        "cards_issued": 2, "bytes_done": 120, "bytes_total": 120, "line": 5, "parts": [1], "chunks": 1,
        "error": None, "created_at": AT, "started_at": AT, "completed_at": AT, "committed_at": AT, "etag": '"e"',
        "encoding": "utf-8", "delimiter": ";", "columns": ["phone", None, "first_name"], "result_ready": True,
    }),
]


@pytest.mark.parametrize(("model", "stored"), SAMPLES, ids=[f"{m.__name__}-{i}" for i, (m, _) in enumerate(SAMPLES)])
def test_old_items_load_and_dump_back_identically(model: type[Document], stored: dict[str, Any]) -> None:
    dumped = model.load(json.loads(json.dumps(stored))).dump()
    assert json.dumps(dumped, sort_keys=True) == json.dumps(stored, sort_keys=True)


def test_absent_sections_read_as_defaults_but_stay_absent() -> None:
    doc = CustomerDoc.load({"status": "active"})
    assert doc.consents == {} and doc.stats.purchase_count == 0 and doc.profile_or_empty().tags == []
    assert doc.dump() == {"status": "active"}


def test_created_at_is_the_records_time_and_never_stored() -> None:
    doc = CustomerDoc.load({"status": "active"})
    doc.created_at = datetime(2026, 3, 1, tzinfo=UTC)
    assert doc.dump() == {"status": "active"}
    assert doc.plain() == {"status": "active", "created_at": datetime(2026, 3, 1, tzinfo=UTC)}


def test_a_response_keeps_its_time_out_of_the_stored_doc() -> None:
    doc = ResponseDoc.load({"survey_id": "s", "response_id": "r"})
    doc.at = AT
    assert doc.dump() == {"survey_id": "s", "response_id": "r"}
    assert doc.exported() == {"survey_id": "s", "response_id": "r", "at": AT}


def test_a_report_keeps_from_under_its_stored_name() -> None:
    doc = ReportDoc.load({"report_id": "r", "type": "ledger", "from": "2026-02-01", "to": "2026-03-01",
                          "format": "csv", "status": "queued", "created_at": AT})
    assert doc.from_ == "2026-02-01" and "from" in doc.dump() and "from_" not in doc.dump()


def test_versioned_names_the_doc_and_its_version() -> None:
    got = Versioned(PhoneOwner(customer_id="c1"), 3)
    assert got.doc.customer_id == "c1" and got.version == 3


def test_a_templates_id_and_record_time_ride_along_but_are_never_stored() -> None:
    stored = {"name": "Hi", "channel": "sms", "body": "Hi {{ first_name }}", "created_at": AT}
    doc = TemplateDoc.load(stored)
    doc.template_id, doc.updated_at = "hello", datetime(2026, 3, 2, tzinfo=UTC)
    assert doc.dump() == stored
