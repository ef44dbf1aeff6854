"""Plastic card series: inline and queued generation, exactly `count` cards, printing, registration, access."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from boto3.dynamodb.types import TypeDeserializer
from moto.core import DEFAULT_ACCOUNT_ID
from moto.dynamodb.models import dynamodb_backends

from chalicelib.domain.cards import luhn_valid
from chalicelib.services.pos import card_series
from chalicelib.settings import settings
from chalicelib.storage import card_series as series_store
from chalicelib.storage.documents.card_series import SeriesDoc
from chalicelib.storage.tables import LoyaltyRecord
from tests.functional.conftest import Api, TenantKeys
from tests.functional.jobqueue import drain, receive_all, run_worker, sqs_event

_DESERIALIZE = TypeDeserializer()
MAIN = {"name": "Main program", "earning": {"rate_bps": 500}, "redemption": {"point_value": 100, "max_share_bps": 3000}}


# --- helpers -------------------------------------------------------------------------

_drain, _worker, _receive_all, _sqs_event = drain, run_worker, receive_all, sqs_event


def _series_cards(tenant_id: str, series_id: str) -> list[dict[str, Any]]:
    """Every stored card of the series ({"number", "doc"}), straight from moto's table.

    Not a Scan: moto restarts a Scan from the first item on every 1 MB page,
    so scanning 10,000 cards takes a minute; this reads the same items.
    """
    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][settings.region].get_table(settings.loyalty_table)
    prefix = f"{tenant_id}#card#"
    cards = []
    for partition in table.items.values():
        for item in partition.values():
            doc = item.attrs["doc"].value
            if (item.hash_key.value.startswith(prefix) and item.range_key.value == "card"
                    and "series_id" in doc and doc["series_id"].value == series_id):
                raw = item.to_json()["Attributes"]
                cards.append({"number": item.hash_key.value[len(prefix):], "doc": _DESERIALIZE.deserialize(raw["doc"])})
    return cards


def _numbers(cards: list[dict[str, Any]]) -> list[str]:
    return [c["number"] for c in cards]


def _print_list(api: Api, key: str, base: str, limit: int = 200) -> list[str]:
    numbers: list[str] = []
    cursor = None
    while True:
        r = api.get(f"{base}/cards?limit={limit}" + (f"&cursor={cursor}" if cursor else ""), key)
        assert r.status_code == 200, r.data
        numbers += [item["number"] for item in r.data["items"]]
        if not r.data["has_more"]:
            assert r.data["cursor"] is None
            return numbers
        cursor = r.data["cursor"]


def _create(api: Api, key: str, path: str = "/v1/card-series", **body: Any) -> Any:
    return api.post(path, key, {"program_id": "main", **body})


# --- inline series ----------------------------------------------------------------------

def test_a_small_series_is_made_at_once_with_random_luhn_valid_plastic_cards(api: Api, tenant: TenantKeys) -> None:
    r = _create(api, tenant.admin, count=300, prefix="7788", length=13, name="Spring batch")
    assert r.status_code == 201, r.data
    series = r.data
    assert series["status"] == "completed" and series["created"] == series["count"] == 300
    assert (series["prefix"], series["length"], series["name"]) == ("7788", 13, "Spring batch")
    assert series["completed_at"] is not None and series["error"] is None

    rows = _series_cards(tenant.tenant_id, series["series_id"])
    numbers = _numbers(rows)
    assert len(numbers) == len(set(numbers)) == 300
    assert all(len(n) == 13 and n.startswith("7788") and luhn_valid(n) for n in numbers)
    docs = [row["doc"] for row in rows]
    assert {(d["status"], d["kind"], d["program_id"], d.get("customer_id")) for d in docs} == {
        ("issued", "plastic", "main", None)}

    base = f"/v1/card-series/{series['series_id']}"
    printed = _print_list(api, tenant.admin, base)
    assert _print_list(api, tenant.admin, base, limit=120) == printed  # same order whatever the page size
    assert sorted(printed) == sorted(numbers)
    assert api.get(base, tenant.admin).data == series
    listed = api.get("/v1/card-series", tenant.admin)
    assert listed.status_code == 200 and [s["series_id"] for s in listed.data["items"]] == [series["series_id"]]

    card = api.get(f"/v1/cards/{numbers[0]}", tenant.pos)
    assert card.status_code == 200 and card.data["status"] == "issued" and card.data["kind"] == "plastic"


def test_prefix_and_length_default_to_the_programs_rules(api: Api, tenant: TenantKeys) -> None:
    r = api.put("/v1/programs/main", tenant.admin, {**MAIN, "card_numbers": {"prefix": "2601", "length": 16}})
    assert r.status_code == 200, r.data
    r = _create(api, tenant.admin, count=5)
    assert r.status_code == 201, r.data
    assert (r.data["prefix"], r.data["length"]) == ("2601", 16)
    numbers = _numbers(_series_cards(tenant.tenant_id, r.data["series_id"]))
    assert len(numbers) == 5 and all(len(n) == 16 and n.startswith("2601") and luhn_valid(n) for n in numbers)


@pytest.mark.parametrize(("activation", "expected"), [("immediate", "active"), ("registration", "active"),
                                                      ("first_purchase", "issued")])
def test_registering_a_series_card_follows_the_programs_activation_rule(
    api: Api, tenant: TenantKeys, activation: str, expected: str
) -> None:
    assert api.put("/v1/programs/main", tenant.admin, {**MAIN, "activation": activation}).status_code == 200
    series = _create(api, tenant.admin, count=3).data
    number = _print_list(api, tenant.admin, f"/v1/card-series/{series['series_id']}")[0]

    r = api.post("/v1/cards", tenant.pos, {"program_id": "main", "kind": "plastic", "number": number,
                                           "customer": {"phone": "+79161234567", "first_name": "Anna"}})
    assert r.status_code == 200, r.data
    assert r.data["number"] == number and r.data["customer_id"] and r.data["status"] == expected
    again = api.post("/v1/cards", tenant.pos, {"program_id": "main", "kind": "plastic", "number": number,
                                               "customer": {"phone": "+79161234568"}})
    assert again.status_code == 409


# --- queued series ---------------------------------------------------------------------

def test_ten_thousand_cards_through_the_queue_exactly_once_even_when_redelivered(
    api: Api, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(card_series, "BUDGET_SECONDS", 0.0)  # one chunk per message: exercise resumption
    started = time.monotonic()
    r = _create(api, tenant.admin, count=10_000, prefix="90", length=12)
    assert r.status_code == 202, r.data
    assert r.data["status"] == "queued" and r.data["created"] == 0
    series_id = r.data["series_id"]
    base = f"/v1/card-series/{series_id}"

    first = _receive_all()
    assert [json.loads(b) for b in first] == [{"job": card_series.GENERATE_JOB, "tenant_id": tenant.tenant_id,
                                               "series_id": series_id}]
    assert _worker(first + first) == {"batchItemFailures": []}  # the same message twice in one batch
    progress = api.get(base, tenant.admin).data
    assert progress["status"] == "running" and 0 < progress["created"] < 10_000
    assert len(_print_list(api, tenant.admin, base)) == progress["created"]

    runs = _drain()
    elapsed = time.monotonic() - started
    assert len(runs) >= 10, "a series this size takes several resumable messages"
    done = api.get(base, tenant.admin).data
    assert done["status"] == "completed" and done["created"] == 10_000

    numbers = _numbers(_series_cards(tenant.tenant_id, series_id))
    assert len(numbers) == len(set(numbers)) == 10_000
    assert all(len(n) == 12 and n.startswith("90") and luhn_valid(n) for n in numbers)
    printed = _print_list(api, tenant.admin, base)
    assert len(printed) == 10_000 and set(printed) == set(numbers)

    assert _worker(first + runs[:5]) == {"batchItemFailures": []}  # late redeliveries of finished work
    assert _drain() == []
    assert len(_series_cards(tenant.tenant_id, series_id)) == 10_000
    print(f"\n10,000-card series through the queue: {elapsed:.1f} s, {len(runs) + 2} messages")


def test_a_crash_between_writing_a_chunk_and_counting_it_creates_no_extra_cards(
    api: Api, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = _create(api, tenant.admin, count=1_200)
    assert r.status_code == 202, r.data
    series_id = r.data["series_id"]
    real_save = series_store.save_series
    crashed: list[int] = []

    def crash_once_when_counting(tenant_id: str, sid: str, doc: SeriesDoc, version: int, at: Any) -> bool:
        if doc.created == 1_000 and not crashed:
            crashed.append(version)
            raise RuntimeError("Lambda timed out")
        return real_save(tenant_id, sid, doc, version, at)

    monkeypatch.setattr(series_store, "save_series", crash_once_when_counting)
    bodies = _receive_all()
    assert _worker(bodies) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    stuck = api.get(f"/v1/card-series/{series_id}", tenant.admin).data
    assert stuck["created"] == 500 and stuck["status"] == "running"
    assert len(_series_cards(tenant.tenant_id, series_id)) == 1_000  # chunk 1 written, not counted

    assert _worker(bodies) == {"batchItemFailures": []}  # SQS redelivers the failed message
    _drain()
    done = api.get(f"/v1/card-series/{series_id}", tenant.admin).data
    assert done["status"] == "completed" and done["created"] == 1_200
    numbers = _numbers(_series_cards(tenant.tenant_id, series_id))
    assert len(numbers) == len(set(numbers)) == 1_200
    assert set(_print_list(api, tenant.admin, f"/v1/card-series/{series_id}")) == set(numbers)


def test_numbers_taken_after_a_chunk_was_claimed_are_replaced_not_overwritten(
    api: Api, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    r = _create(api, tenant.admin, count=600, prefix="55", length=13)
    series_id = r.data["series_id"]
    real_claim = series_store.claim_chunk
    stolen: list[str] = []

    def claim_then_lose_two(tenant_id: str, sid: str, index: int, numbers: list[str], at: Any) -> bool:
        claimed = real_claim(tenant_id, sid, index, numbers, at)
        if index == 0:  # two of the claimed numbers get issued as virtual cards before our batch lands
            for number in numbers[:2]:
                assert api.post("/v1/cards", tenant.pos, {"program_id": "main", "kind": "plastic",
                                                          "number": number}).status_code == 201
                stolen.append(number)
            raise RuntimeError("Lambda timed out")
        return claimed

    monkeypatch.setattr(series_store, "claim_chunk", claim_then_lose_two)
    bodies = _receive_all()
    assert _worker(bodies) == {"batchItemFailures": [{"itemIdentifier": "m0"}]}
    assert _worker(bodies) == {"batchItemFailures": []}
    _drain()
    assert api.get(f"/v1/card-series/{series_id}", tenant.admin).data["created"] == 600
    numbers = _numbers(_series_cards(tenant.tenant_id, series_id))
    assert len(set(numbers)) == 600 and not set(stolen) & set(numbers)
    printed = _print_list(api, tenant.admin, f"/v1/card-series/{series_id}")
    assert set(printed) == set(numbers)
    for number in stolen:  # the other cards were left alone
        assert api.get(f"/v1/cards/{number}", tenant.pos).data["kind"] == "plastic"
        assert LoyaltyRecord.get(f"{tenant.tenant_id}#card#{number}", "card").doc.as_dict().get("series_id") is None


# --- validation, access --------------------------------------------------------------

def test_formats_without_enough_room_are_refused(api: Api, tenant: TenantKeys) -> None:
    small = _create(api, tenant.admin, count=10, prefix="12345", length=12)
    assert small.status_code == 422 and small.data["error"]["code"] == "number_space_too_small"

    first = _create(api, tenant.admin, count=99_999, prefix="7788", length=12)  # 7 random digits: budget 100,000
    assert first.status_code == 202, first.data
    too_many = _create(api, tenant.admin, count=2, prefix="7788", length=12)
    assert too_many.status_code == 422 and too_many.data["error"]["code"] == "series_too_large"
    assert too_many.data["error"]["details"][0]["field"] == "count"
    assert _create(api, tenant.admin, count=1, prefix="7788", length=12).status_code == 201
    assert _create(api, tenant.admin, count=2, prefix="7789", length=12).status_code == 201

    for body in ({"count": 0}, {"count": 100_001}, {"count": 5, "prefix": "12a"}, {"count": 5, "length": 20},
                 {"count": "5"}, {"count": 5, "extra": 1}):
        r = _create(api, tenant.admin, **body)
        assert r.status_code == 400 and r.data["error"]["code"] == "validation_error", body
    unknown = api.post("/v1/card-series", tenant.admin, {"program_id": "nope", "count": 5})
    assert unknown.status_code == 422 and unknown.data["error"]["code"] == "unknown_program"


def test_wrong_roles_are_refused(api: Api, tenant: TenantKeys) -> None:
    for key in (tenant.pos, tenant.support, tenant.agency):
        r = _create(api, key, count=5)
        assert r.status_code == 403 and r.data["error"]["code"] == "forbidden"
        assert api.get("/v1/card-series", key).status_code == 403
    r = _create(api, tenant.admin, f"/v1/agency/tenants/{tenant.tenant_id}/card-series", count=5)
    assert r.status_code == 403


def test_the_agency_generates_for_its_own_tenants_only(
    api: Api, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    base = f"/v1/agency/tenants/{tenant.tenant_id}/card-series"
    r = _create(api, tenant.agency, base, count=20)
    assert r.status_code == 201 and r.data["created"] == 20, r.data
    series_id = r.data["series_id"]
    assert api.get(f"{base}/{series_id}", tenant.agency).data == r.data
    assert len(_print_list(api, tenant.agency, f"{base}/{series_id}")) == 20
    assert [s["series_id"] for s in api.get(base, tenant.agency).data["items"]] == [series_id]
    assert api.get(f"/v1/card-series/{series_id}", tenant.admin).status_code == 200

    foreign = f"/v1/agency/tenants/{other_tenant.tenant_id}/card-series"
    refused = _create(api, tenant.agency, foreign, count=5)
    assert refused.status_code == 404 and refused.data["error"]["code"] == "not_found"
    assert api.get(foreign, tenant.agency).status_code == 404
    assert api.get(f"/v1/agency/tenants/nobody/card-series/{series_id}", tenant.agency).status_code == 404
    assert api.get("/v1/card-series", other_tenant.admin).data["items"] == []


def test_another_tenants_series_and_forged_cursors_are_not_found(
    api: Api, tenant: TenantKeys, other_tenant: TenantKeys
) -> None:
    series_id = _create(api, tenant.admin, count=250).data["series_id"]
    for path in (f"/v1/card-series/{series_id}", f"/v1/card-series/{series_id}/cards",
                 "/v1/card-series/not-a-series-id", "/v1/card-series/x%23y"):
        r = api.get(path, other_tenant.admin)
        assert r.status_code == 404 and r.data["error"]["code"] == "not_found", path
    page = api.get(f"/v1/card-series/{series_id}/cards?limit=100", tenant.admin).data
    other_id = _create(api, tenant.admin, count=5).data["series_id"]
    wrong_list = api.get(f"/v1/card-series/{other_id}/cards?cursor={page['cursor']}", tenant.admin)
    assert wrong_list.status_code == 400
    assert api.get(f"/v1/card-series/{series_id}/cards?cursor=garbage!", tenant.admin).status_code == 400


def test_a_series_that_finds_no_free_numbers_stops_as_failed(
    api: Api, tenant: TenantKeys, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(series_store, "card_owners", lambda tenant_id, numbers: dict.fromkeys(numbers))
    r = _create(api, tenant.admin, count=10)
    assert r.status_code == 201, r.data
    assert r.data["status"] == "failed" and r.data["created"] == 0 and "crowded" in r.data["error"]
    assert _series_cards(tenant.tenant_id, r.data["series_id"]) == []
    assert card_series.generate(tenant.tenant_id, r.data["series_id"], None) is True  # a failed series stays so
