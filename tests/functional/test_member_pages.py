"""The member's own pages (`/m/{tenant}/card`, history, invite, profile, my data) through the Chalice test client.

A member signs in with a code sent to their phone (the member-session service spends the proof, as the sign-in
page does) and sees only their own things: the card's figures after purchases made through the POS API, the
history in plain words, tier progress, the card's barcode and QR code; they change their profile and withdraw
a consent (seen by the API), download their data (theirs only), and delete their account (erased, session
ended). Another member's card in an address is 404, another tenant's site does not take the session, the
wallet pass is served for their own card only, and hostile text comes back escaped.
"""

from __future__ import annotations

import dataclasses
import io
import json
import re
import zipfile
from html import unescape
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import boto3
import pytest

from chalicelib.console.routes import member_pages as pages_module
from chalicelib.schemas.wallet import PKPASS_TYPE
from chalicelib.services.members import sessions as member_sessions
from chalicelib.services.wallet import credentials as wallet_credentials
from chalicelib.settings import settings
from infra.local import wallet_keys
from tests.functional import phone_codes
from tests.functional.conftest import Api, TenantKeys
from tests.functional.member_helpers import member_signed_up
from tests.functional.test_console_sign_in import Browser, field_error, hidden

PROGRAM = {"name": "Main program", "earning": {"rate_bps": 500}, "redemption": {"point_value": 100,
                                                                                 "max_share_bps": 3000},
           "pending_days": 14, "expiry_days": 20,
           "tiers": {"metric": "spend", "levels": [{"id": "silver", "name": "Silver", "threshold": 0},
                                                   {"id": "gold", "name": "Gold", "threshold": 500_000}]}}
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
HOSTILE = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"


# --- helpers ------------------------------------------------------------------------------------------------------

def set_program(api: Api, tenant: TenantKeys) -> None:
    r = api.put("/v1/programs/main", tenant.admin, PROGRAM)
    assert r.status_code == 200, r.data


def member_with_card(api: Api, tenant: TenantKeys, phone: str, **customer: Any) -> tuple[str, str]:
    """A customer with a virtual card, issued at the till: (customer id, card number)."""
    r = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": {"phone": phone, **customer}})
    assert r.status_code == 201, r.data
    number = r.data["number"]
    found = api.get(f"/v1/customers?card={number}", tenant.support)
    assert found.status_code == 200, found.data
    return found.data["customer_id"], number


def signed_in(api: Api, tenant: TenantKeys, phone: str) -> Browser:
    """The member's browser holding a member session of this tenant (a code by SMS, its proof spent)."""
    proof = phone_codes.proof_for(api, tenant.tenant_id, phone)
    session = member_sessions.sign_in(tenant.tenant_id, proof, "127.0.0.1", "test")
    assert session is not None
    browser = Browser(api)
    name, _, rest = session.set_cookie.partition("=")
    browser.cookies[name] = rest.split(";")[0]
    return browser


def buy(api: Api, tenant: TenantKeys, receipt: str, card: str, amount: int, redeem: int = 0) -> dict[str, Any]:
    r = api.post("/v1/purchases", tenant.pos, {
        "receipt_id": receipt, "card_number": card, "store_id": "msk-01", "total": amount, "redeem_points": redeem,
        "items": [{"sku": "latte", "category": "coffee", "quantity": 1, "amount": amount}]})
    assert r.status_code == 200, r.data
    return dict(r.data)


def site(tenant: TenantKeys) -> str:
    return f"/m/{tenant.tenant_id}"


def text_of(html: str, element_id: str) -> str:
    found = re.search(rf'id="{re.escape(element_id)}"[^>]*>(.*?)</(?:dd|p|ul|li|strong)>', html, re.S)
    assert found, f"no #{element_id}"
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", found.group(1))).split())


def history_lines(html: str) -> list[str]:
    return [" ".join(unescape(t).split()) for t in re.findall(r'<p class="m-entry-text">(.*?)</p>', html, re.S)]


@pytest.fixture
def wallet_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(wallet_credentials, "settings", dataclasses.replace(settings, wallet_credentials=""))


# --- the card -----------------------------------------------------------------------------------------------------

def test_card_shows_balance_pending_expiring_tier_and_the_codes(api: Api, tenant: TenantKeys, clock: Any) -> None:
    set_program(api, tenant)
    _, number = member_with_card(api, tenant, "+79161230001")
    first = buy(api, tenant, "r-1", number, 100_000)
    second = buy(api, tenant, "r-2", number, 40_000)
    earned = first["points_earned"] + second["points_earned"]
    assert earned > 0
    browser = signed_in(api, tenant, "+79161230001")

    page = browser.get(f"{site(tenant)}/card")
    assert page.status_code == 200, page.text[:2000]
    html = page.text
    assert text_of(html, f"balance-{number}") == "0"
    assert text_of(html, f"pending-{number}") == f"{earned:,}"
    assert "11/16/26" in text_of(html, f"maturing-{number}")  # bought Nov 2, pending 14 days
    expiring = text_of(html, f"expiring-{number}")
    assert "11/22/26" in expiring and f"{earned:,}" in expiring  # expiry 20 days after the sale
    assert text_of(html, f"tier-{number}") == "Your tier: Silver"
    # Gold at 5,000.00 spent; 1,400.00 spent so far.
    assert text_of(html, f"progress-{number}") == "Spend RUB3,600.00 more to reach Gold"
    assert '<progress class="m-progress" max="100" value="28"' in html
    barcode = re.search(r'<svg [^>]*class="m-barcode".*?</svg>', html, re.S)
    assert barcode and f"<title>Barcode of card {number}</title>" in barcode.group(0)
    assert f">{number}</text>" in barcode.group(0) and "<rect" in barcode.group(0)
    assert f"<title>QR code of card {number}</title>" in html and 'class="m-qr"' in html
    assert " style=" not in html and "<script" not in html

    clock.advance(days=15)
    later = signed_in(api, tenant, "+79161230001").get(f"{site(tenant)}/card").text
    assert text_of(later, f"balance-{number}") == f"{earned:,}"
    assert text_of(later, f"pending-{number}") == "0"
    assert api.get(f"/v1/cards/{number}", tenant.support).data["balance"] == earned


def test_a_member_who_signed_up_on_the_site_sees_the_new_card(api: Api, tenant: TenantKeys) -> None:
    browser = member_signed_up(api, tenant.tenant_id, "+79161230018", first_name="Lena")
    home = browser.get(site(tenant))
    assert home.status_code == 200 and f'href="{site(tenant)}/card?lang=en">My card</a>' in home.text
    number = api.get("/v1/customers?phone=%2B79161230018", tenant.support).data["cards"][0]
    card = browser.get(f"{site(tenant)}/card").text
    assert text_of(card, f"balance-{number}") == "0" and f">{number}</text>" in card
    buy(api, tenant, "su-1", number, 50_000)
    lines = history_lines(browser.get(f"{site(tenant)}/history").text)
    assert lines == ["Purchase of RUB500.00 at Tverskaya 1 · points earned: 25"]


def test_card_in_russian(api: Api, tenant: TenantKeys) -> None:
    member_with_card(api, tenant, "+79161230002")
    browser = signed_in(api, tenant, "+79161230002")
    page = browser.get(f"{site(tenant)}/card?lang=ru")
    assert page.status_code == 200
    assert "Моя карта" in page.text and "Баллы к оплате" in page.text


def test_history_in_plain_words_with_the_rule_version(api: Api, tenant: TenantKeys, clock: Any) -> None:
    set_program(api, tenant)
    _, number = member_with_card(api, tenant, "+79161230003")
    bought = buy(api, tenant, "h-1", number, 100_000)
    clock.advance(days=15)
    spent = buy(api, tenant, "h-2", number, 20_000, redeem=30)
    refund = api.post("/v1/refunds", tenant.pos, {"refund_id": "rf-1", "receipt_id": "h-2"})
    assert refund.status_code in (200, 201), refund.data
    browser = signed_in(api, tenant, "+79161230003")
    html = browser.get(f"{site(tenant)}/history").text
    lines = history_lines(html)
    assert f"Purchase of RUB1,000.00 at Tverskaya 1 · points earned: {bought['points_earned']}" in lines
    assert "Points spent at Tverskaya 1: 30" in lines
    assert f"Purchase of RUB200.00 at Tverskaya 1 · points earned: {spent['points_earned']}" in lines
    assert "Refund · spent points given back: 30" in lines, lines
    assert f"Refund at Tverskaya 1 · points taken back: {spent['points_earned']}" in lines, lines
    version = api.get(f"/v1/cards/{number}/transactions", tenant.support).data["items"][-1]["rule_version"]
    assert f"Rule version {version}" in html
    ru = history_lines(browser.get(f"{site(tenant)}/history?lang=ru").text)
    assert f"Покупка на 1 000,00 ₽ в «Tverskaya 1» · начислено баллов: {bought['points_earned']}" in ru


def test_history_pages_and_refuses_another_members_card(api: Api, tenant: TenantKeys) -> None:
    _, mine = member_with_card(api, tenant, "+79161230004")
    _, theirs = member_with_card(api, tenant, "+79161230005")
    for i in range(23):
        buy(api, tenant, f"p-{i}", mine, 10_000 + 100 * i)
    browser = signed_in(api, tenant, "+79161230004")
    first = browser.get(f"{site(tenant)}/history").text
    assert len(history_lines(first)) == 20
    older = unescape(re.search(r'<a class="btn" href="([^"]+)">Older entries', first).group(1))
    second = browser.get(older).text
    assert len(history_lines(second)) == 3 and "Older entries" not in second
    assert set(history_lines(first)).isdisjoint(history_lines(second)) or len(set(history_lines(first))) < 20
    other = browser.get(f"{site(tenant)}/history?card={theirs}")
    assert other.status_code == 404 and theirs not in other.text
    assert "There is nothing here: the page or card does not exist or is not yours." in other.text
    assert 'href="/m/coffee-house/card?lang=en"' in other.text  # still on the member's own site
    assert browser.get(f"{site(tenant)}/history?card=0000").status_code == 404


# --- coupons ------------------------------------------------------------------------------------------------------

def test_coupons_given_by_questionnaires_are_listed_with_their_effect(api: Api, tenant: TenantKeys,
                                                                      other_tenant: TenantKeys, clock: Any) -> None:
    r = api.post("/v1/coupon-campaigns", tenant.admin,
                 {"id": "hello", "name": "Hello <b>", "program_id": "main", "mode": "shared", "code": "hello-10",
                  "effect": {"kind": "percent_off", "value": 1050}})
    assert r.status_code == 201, r.data
    survey = {"id": "welcome", "title": "Join", "kind": "registration", "status": "active",
              "questions": [{"id": "phone", "type": "phone", "label": "Phone", "required": True, "maps_to": "phone"}],
              "reward": {"kind": "coupon", "campaign_id": "hello"}}
    assert api.post("/v1/surveys", tenant.admin, survey).status_code == 201
    member_with_card(api, tenant, "+79161230016")
    member_with_card(api, tenant, "+79161230017")
    proof = phone_codes.proof_for(api, tenant.tenant_id, "+79161230016")
    answered = api.post(f"/v1/public/surveys/{tenant.tenant_id}/welcome/responses", None,
                        {"answers": {"phone": "+79161230016"}, "phone_verification": proof})
    assert answered.status_code == 201 and answered.data["reward"]["coupon_code"] == "HELLO10", answered.data

    mine = signed_in(api, tenant, "+79161230016").get(f"{site(tenant)}/coupons").text
    item = re.search(r'<li id="coupon-HELLO10">(.*?)</li>', mine, re.S)
    assert item, mine[-3000:]
    assert "Hello &lt;b&gt;" in item.group(1) and "<b>" not in item.group(1)
    words = " ".join(unescape(re.sub(r"<[^>]+>", " ", item.group(1))).split())
    assert words == "HELLO10 Hello <b> · 10.5% off For a questionnaire · given 11/2/26, 1:00 PM Say this code at the till."
    theirs = signed_in(api, tenant, "+79161230017").get(f"{site(tenant)}/coupons").text
    assert "HELLO10" not in theirs and "You have no coupons yet." in theirs


# --- wallet -------------------------------------------------------------------------------------------------------

def test_the_pass_is_served_for_the_own_card_only(api: Api, tenant: TenantKeys) -> None:
    wallet_keys.ensure_configured()
    _, mine = member_with_card(api, tenant, "+79161230006")
    _, theirs = member_with_card(api, tenant, "+79161230007")
    browser = signed_in(api, tenant, "+79161230006")
    card = browser.get(f"{site(tenant)}/card").text
    assert "Add to Apple Wallet" in card and "Save to Google Wallet" in card
    got = browser.get(f"{site(tenant)}/card/{mine}/card.pkpass", Accept=BROWSER_ACCEPT)
    assert got.status_code == 303, "handed over by a presigned S3 link, not through API Gateway"
    link = urlparse(got.headers["Location"])
    assert parse_qs(link.query)["response-content-type"] == [PKPASS_TYPE]
    stored = boto3.client("s3", region_name=settings.region).get_object(Bucket=settings.reports_bucket,
                                                                        Key=unquote(link.path).lstrip("/"))
    with zipfile.ZipFile(io.BytesIO(stored["Body"].read())) as pkpass:
        content = json.loads(pkpass.read("pass.json"))
        assert {"manifest.json", "signature"} <= set(pkpass.namelist())
    assert content["barcodes"][0]["message"] == mine
    refused = browser.get(f"{site(tenant)}/card/{theirs}/card.pkpass", Accept=BROWSER_ACCEPT)
    assert refused.status_code == 404
    google = browser.post(f"{site(tenant)}/card/{mine}/google-wallet", {"csrf": hidden(card, "csrf")})
    assert google.status_code == 303 and google.headers["Location"].startswith("https://pay.google.com/")
    assert browser.post(f"{site(tenant)}/card/{theirs}/google-wallet",
                        {"csrf": hidden(card, "csrf")}).status_code == 404


def test_without_wallet_credentials_the_buttons_are_not_shown(api: Api, tenant: TenantKeys, wallet_off: None) -> None:
    _, number = member_with_card(api, tenant, "+79161230008")
    browser = signed_in(api, tenant, "+79161230008")
    card = browser.get(f"{site(tenant)}/card")
    assert card.status_code == 200
    assert "Add to Apple Wallet" not in card.text and "Save to Google Wallet" not in card.text
    asked = browser.get(f"{site(tenant)}/card/{number}/card.pkpass", Accept=BROWSER_ACCEPT)
    assert asked.status_code == 503 and "This is not available just now." in asked.text


# --- isolation ----------------------------------------------------------------------------------------------------

def test_another_tenants_site_and_no_session(api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    member_with_card(api, tenant, "+79161230009")
    browser = signed_in(api, tenant, "+79161230009")
    for path in ("card", "history", "profile", "invite", "my-data", "my-data.json"):
        there = browser.get(f"{site(other_tenant)}/{path}")
        assert there.status_code == 303, path
        assert there.headers["Location"].startswith(f"{site(other_tenant)}/sign-in"), path
        anonymous = Browser(api).get(f"{site(tenant)}/{path}")
        assert anonymous.status_code == 303 and "/sign-in?next=" in anonymous.headers["Location"]
    assert browser.get("/m/no-such-tenant/card").status_code == 404


# --- invite -------------------------------------------------------------------------------------------------------

def test_invite_shows_the_referral_code_and_link(api: Api, tenant: TenantKeys) -> None:
    customer_id, _ = member_with_card(api, tenant, "+79161230010")
    code = api.get(f"/v1/customers/{customer_id}", tenant.admin).data["referral"]["code"]
    browser = signed_in(api, tenant, "+79161230010")
    html = browser.get(f"{site(tenant)}/invite").text
    assert text_of(html, "referral-code") == code
    assert f"{site(tenant)}/sign-up?referral={code}" in unescape(html)


# --- profile and consents -----------------------------------------------------------------------------------------

def test_profile_saved_escaped_and_errors_at_the_field(api: Api, tenant: TenantKeys) -> None:
    customer_id, _ = member_with_card(api, tenant, "+79161230011", first_name="Anna")
    browser = signed_in(api, tenant, "+79161230011")
    page = browser.get(f"{site(tenant)}/profile").text
    form = {"csrf": hidden(page, "csrf"), "first_name": HOSTILE, "last_name": "Ivanova", "middle_name": "",
            "email": "not-an-email", "birth_date": "1990-05-01", "gender": "female"}
    refused = browser.post(f"{site(tenant)}/profile", form)
    assert refused.status_code == 400
    assert field_error(refused.text, "email") == "Enter an e-mail address, e.g. anna@example.com."
    assert 'value="not-an-email"' in refused.text and f'value="{ESCAPED}"' in refused.text
    assert HOSTILE not in refused.text
    assert api.get(f"/v1/customers/{customer_id}", tenant.admin).data["first_name"] == "Anna"

    saved = browser.post(f"{site(tenant)}/profile", {**form, "email": "anna@example.com"})
    assert saved.status_code == 303
    stored = api.get(f"/v1/customers/{customer_id}", tenant.admin).data
    assert (stored["first_name"], stored["last_name"], stored["email"], stored["birth_date"], stored["gender"]) == \
        (HOSTILE, "Ivanova", "anna@example.com", "1990-05-01", "female")
    again = browser.get(saved.headers["Location"]).text
    assert "Your profile is saved." in again and f'value="{ESCAPED}"' in again and HOSTILE not in again
    forged = browser.post(f"{site(tenant)}/profile", {**form, "csrf": "forged"})
    assert forged.status_code == 403


def test_a_consent_is_withdrawn_with_one_button_and_the_api_sees_it(api: Api, tenant: TenantKeys) -> None:
    customer_id, _ = member_with_card(api, tenant, "+79161230012", consents=[
        {"kind": "sms", "granted": True, "source": "pos", "text_version": "v1"}])
    browser = signed_in(api, tenant, "+79161230012")
    page = browser.get(f"{site(tenant)}/profile").text
    assert "Messages by SMS</strong>:\n        given" in page or "Messages by SMS</strong>: given" in " ".join(
        page.split())
    done = browser.post(f"{site(tenant)}/consents", {"csrf": hidden(page, "csrf"), "kind": "sms", "granted": "0"})
    assert done.status_code == 303
    consents = {c["kind"]: c for c in api.get(f"/v1/customers/{customer_id}", tenant.admin).data["consents"]}
    assert consents["sms"]["granted"] is False and consents["sms"]["source"] == "member_site"
    after = browser.get(done.headers["Location"]).text
    assert "Your consent is withdrawn." in after
    bad = browser.post(f"{site(tenant)}/consents", {"csrf": hidden(page, "csrf"), "kind": "fax", "granted": "0"})
    assert bad.status_code == 400


# --- my data and deletion -----------------------------------------------------------------------------------------

def test_my_data_is_mine_only(api: Api, tenant: TenantKeys) -> None:
    customer_id, mine = member_with_card(api, tenant, "+79161230013", first_name="Olga")
    other_id, theirs = member_with_card(api, tenant, "+79161230014", first_name="Boris")
    buy(api, tenant, "d-1", mine, 10_000)
    buy(api, tenant, "d-2", theirs, 10_000)
    browser = signed_in(api, tenant, "+79161230013")
    got = browser.get(f"{site(tenant)}/my-data.json")
    assert got.status_code == 200 and got.headers["Content-Type"].startswith("application/json")
    assert "attachment" in got.headers["Content-Disposition"]
    data = json.loads(got.text)
    assert data["customer"]["customer_id"] == customer_id and data["customer"]["first_name"] == "Olga"
    assert data["customer"]["phone"] == "+79161230013"
    assert [c["number"] for c in data["cards"]] == [mine]
    assert data["cards"][0]["ledger"][0]["receipt_id"] == "d-1"
    for foreign in (other_id, theirs, "Boris", "+79161230014", "d-2"):
        assert foreign not in got.text


def test_delete_my_account_after_confirmation_ends_the_session(api: Api, tenant: TenantKeys) -> None:
    customer_id, _ = member_with_card(api, tenant, "+79161230015", first_name="Ivan")
    browser = signed_in(api, tenant, "+79161230015")
    page = browser.get(f"{site(tenant)}/my-data").text
    wrong = browser.post(f"{site(tenant)}/delete", {"csrf": hidden(page, "csrf"), "confirm": "yes"})
    assert wrong.status_code == 400 and field_error(wrong.text, "confirm") == "Type the word delete to confirm."
    assert api.get(f"/v1/customers/{customer_id}", tenant.admin).data["status"] == "active"

    session_cookies = dict(browser.cookies)
    done = browser.post(f"{site(tenant)}/delete", {"csrf": hidden(page, "csrf"), "confirm": "delete"})
    assert done.status_code == 200 and "Your account is deleted" in done.text
    assert "Max-Age=0" in done.headers["Set-Cookie"]
    # The record stays for the ledger's accounting, without a personal field; the phone finds no one any more.
    erased = api.get(f"/v1/customers/{customer_id}", tenant.admin).data
    assert (erased["status"], erased["first_name"], erased["phone"]) == ("erased", None, None)
    assert erased["erased_at"] is not None
    assert api.get("/v1/customers?phone=%2B79161230015", tenant.support).status_code == 404
    # The old cookie no longer opens anything.
    old = Browser(api)
    old.cookies = session_cookies
    assert old.get(f"{site(tenant)}/card").status_code == 303


def test_page_module_strings_have_russian() -> None:
    from chalicelib.console import render

    for text in (*pages_module.STATUSES.values(), *pages_module.FIELD_LABELS.values(),
                 *pages_module.CONSENT_LABELS.values(), *pages_module.GENDERS.values(),
                 *pages_module.FIELD_ISSUES.values(), pages_module.ERASE_WORD):
        assert render.gettext("ru", text) != text, text
