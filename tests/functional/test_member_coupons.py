"""The member's coupons page lists every code given to them: mailings, the birthday trigger, questionnaires.

Through the Chalice test client over moto: coupon codes reach a customer the ways the product gives them (a mail
campaign's fan-out, the daily trigger run, a questionnaire's reward), each grant records a "coupon given" item in
the customer's own partition exactly once per grant key, and the signed-in member sees those codes (newest first,
where each came from, as the till sees it now). Another member of the tenant, or a member of another tenant, sees
none of them; erasure deletes the records; a code given before the records existed (a questionnaire's reward
marker only) still shows.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from html import unescape
from typing import Any

from chalicelib.services.customers import member_pages
from chalicelib.services.program import coupons as coupon_service
from chalicelib.storage import coupons as coupon_store
from chalicelib.storage import loyalty
from chalicelib.storage.customers import customer_pk
from chalicelib.storage.tables import LoyaltyRecord
from tests.functional import phone_codes
from tests.functional.conftest import Api, TenantKeys
from tests.functional.jobqueue import drain
from tests.functional.test_campaigns import SHARED, deliver, mail_bodies
from tests.functional.test_coalitions import club, shop_a, shop_b  # noqa: F401
from tests.functional.test_mail_delivery import mailer, new_customer, rendering  # noqa: F401
from tests.functional.test_member_pages import set_program, signed_in, site
from tests.functional.test_triggers import member as trigger_member
from tests.functional.test_triggers import prepare as prepare_triggers
from tests.functional.test_triggers import run_and_deliver, settings_body

UNIQUE = {"id": "vip", "name": "VIP <i>gift</i>", "program_id": "main", "mode": "unique", "count": 1,
          "effect": {"kind": "amount_off", "value": 50_000}}
UNIQUE_CODE = re.compile(r"^[0-9A-Z]{4}(?:-[0-9A-Z]{4}){3}$")


# --- helpers ------------------------------------------------------------------------------------------------------

def coupon_items(html: str) -> list[tuple[str, str]]:
    """The page's coupons in order: (code, the item's text in plain words)."""
    return [(code, " ".join(unescape(re.sub(r"<[^>]+>", " ", body)).split()))
            for code, body in re.findall(r'<li id="coupon-([^"]+)">(.*?)</li>', html, re.S)]


def coupons_page(api: Api, tenant: TenantKeys, phone: str, lang: str = "en") -> str:
    page = signed_in(api, tenant, phone).get(f"{site(tenant)}/coupons?lang={lang}")
    assert page.status_code == 200, page.text[:2000]
    assert " style=" not in page.text and "<script" not in page.text
    return str(page.text)


def given_items(tenant_id: str, customer_id: str) -> list[dict[str, Any]]:
    """Every "coupon given" item stored in the customer's partition (any tenant), as stored."""
    return [dict(r.doc.as_dict()) for r in LoyaltyRecord.query(
        customer_pk(tenant_id, customer_id), LoyaltyRecord.sk.startswith("coupon#"), consistent_read=True)]


def mail_campaign(api: Api, tenant: TenantKeys, campaign_id: str, segment_id: str, coupon_campaign_id: str
                  ) -> dict[str, str]:
    """Send a mail campaign with a coupon to the segment; the code each recipient got, by customer id."""
    created = api.post("/v1/campaigns", tenant.admin, {
        "id": campaign_id, "name": campaign_id, "segment_id": segment_id, "channel": "sms",
        "template_id": "autumn-sms", "coupon_campaign_id": coupon_campaign_id, "holdout_bps": 0})
    assert created.status_code == 201, created.data
    drain()
    bodies = mail_bodies()
    deliver(bodies)
    return {json.loads(b)["customer_id"]: json.loads(b)["coupon_code"] for b in bodies}


def everybody(api: Api, tenant: TenantKeys) -> str:
    segment = api.post("/v1/segments", tenant.admin, {"name": "Everybody", "filter": {}})
    assert segment.status_code == 201, segment.data
    return str(segment.data["segment_id"])


# --- campaigns ----------------------------------------------------------------------------------------------------

def test_mailed_unique_and_shared_codes_show_to_their_member_only(api: Api, mailer: TenantKeys,  # noqa: F811
                                                                  other_tenant: TenantKeys, clock: Any) -> None:
    tenant = mailer
    anna = new_customer(api, tenant.admin, "+79161240001", name="Anna")
    boris = new_customer(api, tenant.admin, "+79161240002", name="Boris")
    assert api.post("/v1/coupon-campaigns", tenant.admin, UNIQUE).status_code == 202
    assert api.post("/v1/coupon-campaigns", tenant.admin, SHARED).status_code == 201
    segment = everybody(api, tenant)

    unique = mail_campaign(api, tenant, "vip-mail", segment, "vip")
    assert set(unique) == {anna, boris} and unique[anna] != unique[boris]
    assert all(UNIQUE_CODE.fullmatch(code) for code in unique.values()), unique
    clock.advance(minutes=5)
    shared = mail_campaign(api, tenant, "autumn", segment, "autumn10")
    assert shared == {anna: "AUTUMN10", boris: "AUTUMN10"}

    mine = coupons_page(api, tenant, "+79161240001")
    items = coupon_items(mine)
    assert [code for code, _ in items] == ["AUTUMN10", unique[anna]], "newest first, Boris's code not here"
    assert items[0][1] == ("AUTUMN10 Autumn 10% · 10% off From our mailing · given 11/2/26, 1:05 PM "
                           "Say this code at the till."), items[0][1]
    assert items[1][1] == (f"{unique[anna]} VIP <i>gift</i> · RUB500.00 off From our mailing · given 11/2/26, 1:00 PM "
                           "Say this code at the till."), items[1][1]
    assert "VIP &lt;i&gt;gift&lt;/i&gt;" in mine and "<i>gift" not in mine
    assert unique[boris] not in mine
    assert [code for code, _ in coupon_items(coupons_page(api, tenant, "+79161240002"))] == ["AUTUMN10",
                                                                                           unique[boris]]
    ru = coupon_items(coupons_page(api, tenant, "+79161240001", "ru"))
    assert "Из рассылки" in ru[0][1] and "Назовите этот код на кассе." in ru[0][1], ru

    olga = new_customer(api, tenant.admin, "+79161240003", name="Olga")  # joined after both mailings
    theirs = coupons_page(api, tenant, "+79161240003")
    assert coupon_items(theirs) == [] and "You have no coupons yet." in theirs
    assert given_items(tenant.tenant_id, olga) == []

    # The same phone in another tenant is another customer: nothing of the coffee house's shows there.
    assert api.post("/v1/customers", other_tenant.admin, {"phone": "+79161240001"}).status_code == 201
    elsewhere = coupons_page(api, other_tenant, "+79161240001")
    assert coupon_items(elsewhere) == [] and "AUTUMN10" not in elsewhere and unique[anna] not in elsewhere

    stored = sorted((g["campaign_id"], g["source"], g["origin"], g["tenant_id"])
                    for g in given_items(tenant.tenant_id, anna))
    assert stored == [("autumn10", "campaign", "autumn", tenant.tenant_id),
                      ("vip", "campaign", "vip-mail", tenant.tenant_id)]


def test_a_retried_grant_is_recorded_and_listed_once(api: Api, mailer: TenantKeys, clock: Any) -> None:  # noqa: F811
    tenant = mailer
    anna = new_customer(api, tenant.admin, "+79161240011", name="Anna")
    assert api.post("/v1/coupon-campaigns", tenant.admin, UNIQUE).status_code == 202
    assert api.post("/v1/coupon-campaigns", tenant.admin, SHARED).status_code == 201
    first = coupon_service.grant_code(tenant.tenant_id, "vip", anna, f"mail:spring:{anna}", clock.now(),
                                      source="campaign", origin="spring")
    clock.advance(minutes=1)
    shared = coupon_service.grant_code(tenant.tenant_id, "autumn10", anna, f"mail:fall:{anna}", clock.now(),
                                       source="campaign", origin="fall")
    clock.advance(minutes=7)  # the redelivered fan-out grants again, later, with the same keys
    again = coupon_service.grant_code(tenant.tenant_id, "vip", anna, f"mail:spring:{anna}", clock.now(),
                                      source="campaign", origin="spring")
    shared_again = coupon_service.grant_code(tenant.tenant_id, "autumn10", anna, f"mail:fall:{anna}", clock.now(),
                                             source="campaign", origin="fall")
    assert (again, shared, shared_again) == (first, "AUTUMN10", "AUTUMN10") and UNIQUE_CODE.fullmatch(first)

    assert sorted(g["code"] for g in given_items(tenant.tenant_id, anna)) == sorted(["AUTUMN10", first.replace("-", "")])
    items = coupon_items(coupons_page(api, tenant, "+79161240011"))
    assert [code for code, _ in items] == ["AUTUMN10", first], items
    assert "given 11/2/26, 1:01 PM" in items[0][1] and "given 11/2/26, 1:00 PM" in items[1][1], items


# --- the birthday trigger ------------------------------------------------------------------------------------------

def test_the_birthday_coupon_shows_as_a_birthday_gift(api: Api, mailer: TenantKeys, clock: Any) -> None:  # noqa: F811
    tenant = mailer
    prepare_triggers(api, tenant)  # the birthday coupon is the shared code HAPPYBDAY
    anna, _ = trigger_member(api, tenant, "+79161240021", "Anna", born="1990-11-06")
    boris, _ = trigger_member(api, tenant, "+79161240022", "Boris", born="1990-03-01")
    assert api.put("/v1/programs/main/triggers", tenant.admin, settings_body()).status_code == 200
    clock.advance(days=1)  # Anna's birthday is 3 days away
    run, messages = run_and_deliver(tenant.tenant_id)
    assert run.by_kind.get("birthday") == 1
    assert [m["coupon_code"] for m in messages if m["dedup_key"].startswith("trigger:birthday:")] == ["HAPPYBDAY"]
    clock.advance(days=1)
    again, _ = run_and_deliver(tenant.tenant_id)  # the next day: no second birthday
    assert again.by_kind.get("birthday") is None

    items = coupon_items(coupons_page(api, tenant, "+79161240021"))
    assert [code for code, _ in items] == ["HAPPYBDAY"]
    assert items[0][1] == ("HAPPYBDAY Birthday · 15% off Birthday gift · given 11/3/26, 1:00 PM "
                           "Say this code at the till."), items[0][1]
    ru = coupon_items(coupons_page(api, tenant, "+79161240021", "ru"))
    assert "Подарок ко дню рождения" in ru[0][1], ru
    assert [(g["code"], g["source"], g["origin"]) for g in given_items(tenant.tenant_id, anna)] == [
        ("HAPPYBDAY", "trigger", "birthday")]
    assert coupon_items(coupons_page(api, tenant, "+79161240022")) == []
    assert given_items(tenant.tenant_id, boris) == []


# --- questionnaires, and codes given before the records -----------------------------------------------------------

def test_a_questionnaire_coupon_shows_and_an_old_reward_marker_still_does(api: Api, tenant: TenantKeys,
                                                                          clock: Any) -> None:
    r = api.post("/v1/coupon-campaigns", tenant.admin,
                 {"id": "hello", "name": "Hello", "program_id": "main", "mode": "shared", "code": "hello-10",
                  "effect": {"kind": "percent_off", "value": 1000}})
    assert r.status_code == 201, r.data
    survey = {"id": "welcome", "title": "Join", "kind": "registration", "status": "active",
              "questions": [{"id": "phone", "type": "phone", "label": "Phone", "required": True, "maps_to": "phone"}],
              "reward": {"kind": "coupon", "campaign_id": "hello"}}
    assert api.post("/v1/surveys", tenant.admin, survey).status_code == 201
    anna = api.post("/v1/customers", tenant.admin, {"phone": "+79161240031"}).data["customer_id"]
    proof = phone_codes.proof_for(api, tenant.tenant_id, "+79161240031")
    answered = api.post(f"/v1/public/surveys/{tenant.tenant_id}/welcome/responses", None,
                        {"answers": {"phone": "+79161240031"}, "phone_verification": proof})
    assert answered.status_code == 201 and answered.data["reward"]["coupon_code"] == "HELLO10", answered.data

    assert [(g["code"], g["source"], g["origin"]) for g in given_items(tenant.tenant_id, anna)] == [
        ("HELLO10", "survey", "welcome")]
    items = coupon_items(coupons_page(api, tenant, "+79161240031"))
    assert items == [("HELLO10", "HELLO10 Hello · 10% off For a questionnaire · given 11/2/26, 1:00 PM "
                                 "Say this code at the till.")], items
    ru = coupon_items(coupons_page(api, tenant, "+79161240031", "ru"))
    assert [code for code, _ in ru] == ["HELLO10"] and "За анкету" in ru[0][1], ru  # noqa: RUF001 - the Russian label

    # A code given before this change has only the questionnaire's reward marker: it still shows, once.
    assert coupon_store.erase_given(tenant.tenant_id, anna) == 1
    assert given_items(tenant.tenant_id, anna) == []
    assert coupon_items(coupons_page(api, tenant, "+79161240031")) == items


# --- the till's view: used up, expired ----------------------------------------------------------------------------

def test_a_used_up_or_expired_code_says_why(api: Api, mailer: TenantKeys, clock: Any) -> None:  # noqa: F811
    tenant = mailer
    set_program(api, tenant)
    anna = new_customer(api, tenant.admin, "+79161240041", name="Anna")
    card = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": "+79161240041"}})
    assert card.status_code == 201, card.data
    assert api.post("/v1/coupon-campaigns", tenant.admin, UNIQUE).status_code == 202
    short = {**SHARED, "id": "short", "code": "SHORT5", "name": "Short",
             "limits": {"ends_at": (clock.now() + timedelta(days=3)).isoformat()}}
    assert api.post("/v1/coupon-campaigns", tenant.admin, short).status_code == 201
    later = {**SHARED, "id": "later", "code": "LATER7", "name": "Later",
             "limits": {"starts_at": (clock.now() + timedelta(days=10)).isoformat()}}
    assert api.post("/v1/coupon-campaigns", tenant.admin, later).status_code == 201
    segment = everybody(api, tenant)
    vip = mail_campaign(api, tenant, "vip-mail", segment, "vip")[anna]
    assert mail_campaign(api, tenant, "short-mail", segment, "short") == {anna: "SHORT5"}
    assert mail_campaign(api, tenant, "later-mail", segment, "later") == {anna: "LATER7"}

    bought = api.post("/v1/purchases", tenant.pos, {
        "receipt_id": "r-vip", "card_number": card.data["number"], "store_id": "msk-01", "total": 100_000,
        "coupons": [vip], "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": 100_000}]})
    assert bought.status_code == 200 and bought.data["discount"] >= 50_000, bought.data
    clock.advance(days=4)

    items = dict(coupon_items(coupons_page(api, tenant, "+79161240041")))
    assert set(items) == {vip, "SHORT5", "LATER7"}
    assert items["LATER7"].endswith("valid from 11/12/26, 1:00 PM Not valid yet."), items["LATER7"]
    assert items[vip].endswith("This coupon has been used."), items[vip]
    assert items["SHORT5"].endswith("valid until 11/5/26, 1:00 PM This coupon has expired."), items["SHORT5"]
    ru = dict(coupon_items(coupons_page(api, tenant, "+79161240041", "ru")))
    assert ru[vip].endswith("Купон уже использован.") and ru["SHORT5"].endswith("Срок действия купона истёк."), ru


# --- erasure ------------------------------------------------------------------------------------------------------

def test_erasure_deletes_the_customers_coupon_records(api: Api, mailer: TenantKeys, clock: Any) -> None:  # noqa: F811
    tenant = mailer
    anna = new_customer(api, tenant.admin, "+79161240051", name="Anna")
    boris = new_customer(api, tenant.admin, "+79161240052", name="Boris")
    assert api.post("/v1/coupon-campaigns", tenant.admin, UNIQUE).status_code == 202
    assert api.post("/v1/coupon-campaigns", tenant.admin, SHARED).status_code == 201
    segment = everybody(api, tenant)
    vip = mail_campaign(api, tenant, "vip-mail", segment, "vip")
    clock.advance(minutes=5)
    mail_campaign(api, tenant, "autumn", segment, "autumn10")
    assert len(given_items(tenant.tenant_id, anna)) == 2 and len(given_items(tenant.tenant_id, boris)) == 2
    exported = api.get(f"/v1/customers/{anna}/export", tenant.admin)
    assert exported.status_code == 200, exported.data
    assert [(g["code"], g["campaign_id"], g["source"], g["origin"], g["given_at"])
            for g in exported.data["coupons_given"]] == [
        ("AUTUMN10", "autumn10", "campaign", "autumn", "2026-11-02T10:05:00+00:00"),
        (vip[anna].replace("-", ""), "vip", "campaign", "vip-mail", "2026-11-02T10:00:00+00:00")]
    assert exported.data["truncated"] is False

    r = api.post(f"/v1/customers/{anna}/erase", tenant.admin, {"confirm": "erase", "reason": "data subject request"})
    assert r.status_code == 200, r.data
    assert given_items(tenant.tenant_id, anna) == []
    assert coupon_store.given_to(tenant.tenant_id, anna, tenant.tenant_id) == []
    boris_codes = [code for code, _ in coupon_items(coupons_page(api, tenant, "+79161240052"))]
    assert boris_codes == ["AUTUMN10", vip[boris]], "another member's coupons stay"


# --- merging duplicates -------------------------------------------------------------------------------------------

def test_a_merge_moves_the_duplicates_coupons_to_the_kept_customer(api: Api, mailer: TenantKeys,  # noqa: F811
                                                                   clock: Any) -> None:
    tenant = mailer
    keep = new_customer(api, tenant.admin, "+79161240061", name="Anna")
    dup = new_customer(api, tenant.admin, "+79161240062", name="Anya")
    assert api.post("/v1/coupon-campaigns", tenant.admin, UNIQUE).status_code == 202
    codes = mail_campaign(api, tenant, "vip-mail", everybody(api, tenant), "vip")
    merged = api.post(f"/v1/customers/{keep}/merge", tenant.admin, {"duplicate_id": dup})
    assert merged.status_code == 200, merged.data
    assert given_items(tenant.tenant_id, dup) == []
    assert sorted(g["code"] for g in given_items(tenant.tenant_id, keep)) == sorted(
        c.replace("-", "") for c in codes.values())
    assert sorted(code for code, _ in coupon_items(coupons_page(api, tenant, "+79161240061"))) == sorted(
        codes.values())
    again = api.post(f"/v1/customers/{keep}/merge", tenant.admin, {"duplicate_id": dup})
    assert again.status_code == 200 and len(given_items(tenant.tenant_id, keep)) == 2, again.data


# --- a coalition's shared customers ------------------------------------------------------------------------------

def test_a_coalition_customers_codes_are_kept_in_their_base_and_listed_by_the_giving_partner_only(
        api: Api, club: dict[str, Any], shop_a: TenantKeys, shop_b: TenantKeys, clock: Any) -> None:  # noqa: F811
    card = api.post("/v1/cards", shop_a.pos, {"program_id": "club", "customer": {"phone": "+79161240071"}})
    assert card.status_code == 201, card.data
    customer = api.get(f"/v1/customers?card={card.data['number']}", shop_a.support).data["customer_id"]
    for shop, code in ((shop_a, "SHOPA5"), (shop_b, "SHOPB5")):
        r = api.post("/v1/coupon-campaigns", shop.admin, {**SHARED, "id": "partner", "code": code})
        assert r.status_code == 201, r.data
    # No scope given (the caller does not know it): the customer is found in the coalition's base.
    assert coupon_service.grant_code(shop_a.tenant_id, "partner", customer, f"mail:a:{customer}", clock.now(),
                                     source="campaign", origin="a") == "SHOPA5"
    scope = loyalty.coalition_scope("city-club")
    stored = [dict(r.doc.as_dict()) for r in LoyaltyRecord.query(
        customer_pk(scope, customer), LoyaltyRecord.sk.startswith("coupon#"), consistent_read=True)]
    assert [(g["tenant_id"], g["code"]) for g in stored] == [(shop_a.tenant_id, "SHOPA5")]
    assert given_items(shop_a.tenant_id, customer) == []  # not in the partner's own base

    assert [c.coupon.code for c in member_pages.coupons(shop_a.tenant_id, customer)] == ["SHOPA5"]
    assert member_pages.coupons(shop_b.tenant_id, customer) == [], "a partner lists only the codes it gave"
    assert [code for code, _ in coupon_items(coupons_page(api, shop_a, "+79161240071"))] == ["SHOPA5"]
    assert coupon_items(coupons_page(api, shop_b, "+79161240071")) == []
