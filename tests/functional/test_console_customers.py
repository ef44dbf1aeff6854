"""The console's customer pages through the Chalice test client: search, the customer and their cards, the ledger
with rule versions, adjustments (one per form however often it is sent), blocking, export and erasure; the
masked call-center view for operators, who can change nothing; another tenant's people see nothing.

Customers and purchases are seeded through the POS API, as a till makes them.
"""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any
from urllib.parse import quote

import pytest

from tests.functional.conftest import Api, TenantKeys
from tests.functional.people import invite_and_join, verify_sender
from tests.functional.test_console_sign_in import Browser, field_error, hidden, signed_in
from tests.functional.test_pos_rules import buy

PHONE = "+79161234567"
HOSTILE = "<script>alert(1)</script>"


def person(api: Api, tenant: TenantKeys, email: str, role: str = "tenant_admin") -> Browser:
    """A person of the tenant with this role, invited by the tenant's admin key, signed in (MFA if the role asks)."""
    verify_sender()
    invite_and_join(api, None, email, role, key=tenant.admin)
    return signed_in(api, email, None)


def seed(api: Api, tenant: TenantKeys, phone: str = PHONE, receipt: str = "r-1", **customer: Any) -> dict[str, Any]:
    """A card issued at the till to a customer with this phone, and one purchase of 1 000 ₽ (50 points)."""
    body = {"phone": phone, "first_name": HOSTILE, "last_name": "Petrova", "email": "anna.k@example.com",
            "consents": [{"kind": "sms", "granted": True, "source": "pos", "text_version": "v1"},
                         {"kind": "email", "granted": False, "source": "site", "text_version": "v2"}], **customer}
    r = api.post("/v1/cards", tenant.pos, {"program_id": "main", "customer": body})
    assert r.status_code == 201, r.data
    bought = buy(api, tenant.pos, receipt, r.data["number"], 100_000)
    assert bought.status_code == 200 and bought.data["points_earned"] == 50, bought.data
    return r.data


def card_api(api: Api, tenant: TenantKeys, number: str) -> dict[str, Any]:
    r = api.get(f"/v1/cards/{number}", tenant.admin)
    assert r.status_code == 200, r.data
    return r.data


def ledger_api(api: Api, tenant: TenantKeys, number: str) -> list[dict[str, Any]]:
    r = api.get(f"/v1/cards/{number}/transactions", tenant.admin)
    assert r.status_code == 200, r.data
    return r.data["items"]


def rows(page: str, caption_start: str) -> list[list[str]]:
    """The cells (text) of the body rows of the table whose caption starts so."""
    tables = [t for t in re.finditer(r"<caption>(.*?)</caption>(.*?)</table>", page, re.S)
              if unescape(t.group(1)).startswith(caption_start)]
    assert len(tables) == 1, f"no table {caption_start!r}"
    body = tables[0].group(2).split("<tbody>")[1]
    return [[unescape(re.sub(r"<[^>]+>", "", cell)).strip() for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)]


def post_forms(page: str) -> list[str]:
    return re.findall(r'<form method="post" action="([^"]+)"', page)


def test_an_admin_finds_a_customer_by_phone_and_sees_cards_and_the_ledger_with_rule_versions(
        api: Api, tenant: TenantKeys) -> None:
    card = seed(api, tenant)
    number, customer_id = card["number"], card["customer_id"]
    version = api.get("/v1/programs/main", tenant.admin).data["version"]
    anna = person(api, tenant, "anna@coffee.example")

    home = anna.get("/console/customers")
    assert home.status_code == 200 and "/console/customers" in home.text and 'id="f-phone"' in home.text
    r = anna.get("/console/customers?phone=" + quote("8 916 123-45-67"))
    assert r.status_code == 303 and r.headers["Location"] == f"/console/customers/{customer_id}"
    r = anna.get(f"/console/customers?card={number}")
    assert r.status_code == 303 and r.headers["Location"] == f"/console/customers/{customer_id}"
    missing = anna.get("/console/customers?phone=" + quote("+79160000000"))
    assert missing.status_code == 404 and field_error(missing.text, "phone") == "No customer matches."
    assert 'value="+79160000000"' in missing.text
    bad = anna.get("/console/customers?phone=12")
    assert bad.status_code == 400 and field_error(bad.text, "phone") and 'aria-invalid="true"' in bad.text

    page = anna.get(f"/console/customers/{customer_id}")
    assert page.status_code == 200
    assert page.text.count("<h1>") == 1 and "&lt;script&gt;alert(1)&lt;/script&gt; Petrova" in page.text
    assert HOSTILE not in page.text
    assert PHONE in page.text and "anna.k@example.com" in page.text
    assert rows(page.text, "The customer's cards") == [[number, "virtual", "active", "50", "0", "—"]]
    consents = [(c[0], c[1], c[3], c[4]) for c in rows(page.text, "Consents the customer")]
    assert consents == [("E-mail", "Withdrawn", "site", "v2"), ("SMS", "Given", "pos", "v1")]

    card_page = anna.get(f"/console/customers/{customer_id}/cards/{number}")
    assert card_page.status_code == 200 and card_page.text.count("<h1>") == 1
    ledger = rows(card_page.text, "The card's ledger")
    assert len(ledger) == 1
    assert ledger[0][1:8] == ["accrual", "+50", "50", "—", str(version), "r-1", "msk-01"]
    assert ledger[0][0].startswith("11/") or ledger[0][0][:1].isdigit()  # in the tenant's zone, short format


def test_an_adjustment_with_its_reason_is_made_once_however_often_the_form_is_sent(
        api: Api, tenant: TenantKeys) -> None:
    card = seed(api, tenant)
    number, customer_id = card["number"], card["customer_id"]
    anna = person(api, tenant, "anna@coffee.example")
    base = f"/console/customers/{customer_id}/cards/{number}"
    page = anna.get(base).text
    form = {"csrf": hidden(page, "csrf"), "adjustment_id": hidden(page, "adjustment_id")}

    r = anna.post(f"{base}/adjust", {**form, "points": "many", "reason": "x"})
    assert r.status_code == 400
    assert field_error(r.text, "points") == "Enter a whole number, e.g. 100 or -50."
    assert field_error(r.text, "reason") == "String should have at least 3 characters"
    assert 'value="many"' in r.text and hidden(r.text, "adjustment_id") == form["adjustment_id"]
    r = anna.post(f"{base}/adjust", {"csrf": form["csrf"], "points": "5", "reason": "goodwill"})
    assert r.status_code == 400 and "This form was incomplete; check it and send it again." in r.text
    assert 'value="5"' in r.text and 'value="goodwill"' in r.text and hidden(r.text, "adjustment_id")
    r = anna.post(f"{base}/adjust", {**form, "points": "-500", "reason": "too much"})
    assert r.status_code == 422 and field_error(r.text, "points") == "Only 50 points are spendable."
    assert card_api(api, tenant, number)["balance"] == 50

    sent = {**form, "points": "25", "reason": f"goodwill {HOSTILE}"}
    first = anna.post(f"{base}/adjust", sent)
    again = anna.post(f"{base}/adjust", sent)
    assert first.status_code == again.status_code == 303
    assert first.headers["Location"] == f"{base}?done=adjusted"
    assert card_api(api, tenant, number)["balance"] == 75
    adjustments = [e for e in ledger_api(api, tenant, number) if e["type"] == "adjustment"]
    assert [(e["points"], e["reason"]) for e in adjustments] == [(25, f"goodwill {HOSTILE}")]
    assert adjustments[0]["actor"].startswith("user:") or "anna@coffee.example" in adjustments[0]["actor"]

    shown = anna.get(f"{base}?done=adjusted")
    assert "The adjustment is in the ledger." in shown.text and HOSTILE not in shown.text
    ledger = rows(shown.text, "The card's ledger")
    assert [(row[1], row[2], row[4]) for row in ledger] == [("adjustment", "+25", f"goodwill {HOSTILE}"),
                                                             ("accrual", "+50", "—")]
    assert hidden(shown.text, "adjustment_id") != form["adjustment_id"], "each render a new adjustment"


def test_a_card_is_blocked_with_a_reason_and_unblocked(api: Api, tenant: TenantKeys) -> None:
    card = seed(api, tenant)
    number, customer_id = card["number"], card["customer_id"]
    anna = person(api, tenant, "anna@coffee.example")
    base = f"/console/customers/{customer_id}/cards/{number}"
    csrf = hidden(anna.get(base).text, "csrf")

    r = anna.post(f"{base}/block", {"csrf": csrf, "block_reason": "no"})
    assert r.status_code == 400 and field_error(r.text, "block_reason") == "String should have at least 3 characters"
    assert card_api(api, tenant, number)["status"] == "active"
    r = anna.post(f"{base}/block", {"csrf": csrf, "block_reason": f"lost {HOSTILE}"})
    assert r.status_code == 303 and r.headers["Location"] == f"{base}?done=blocked"
    assert card_api(api, tenant, number)["status"] == "blocked"
    assert buy(api, tenant.pos, "r-2", number, 10_000).status_code == 422
    page = anna.get(f"{base}?done=blocked").text
    assert "The card is blocked." in page and "/unblock" in page and f"{base}/block\"" not in page
    assert "lost &lt;script&gt;" in page and HOSTILE not in page
    r = anna.post(f"{base}/unblock", {"csrf": csrf})
    assert r.status_code == 303 and card_api(api, tenant, number)["status"] == "active"
    assert f'action="{base}/block"' in anna.get(base).text


def test_export_downloads_everything_and_erasure_needs_the_typed_word(api: Api, tenant: TenantKeys) -> None:
    card = seed(api, tenant)
    number, customer_id = card["number"], card["customer_id"]
    anna = person(api, tenant, "anna@coffee.example")

    r = anna.get(f"/console/customers/{customer_id}/export")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    assert r.headers["Content-Disposition"] == f'attachment; filename="customer-{customer_id}.json"'
    exported = json.loads(r.text)
    assert exported["customer"]["phone"] == PHONE and exported["customer"]["first_name"] == HOSTILE
    assert [c["number"] for c in exported["cards"]] == [number]
    assert [e["receipt_id"] for e in exported["cards"][0]["ledger"]] == ["r-1"]

    page = anna.get(f"/console/customers/{customer_id}/erase")
    assert page.status_code == 200 and HOSTILE not in page.text
    csrf = hidden(page.text, "csrf")
    r = anna.post(f"/console/customers/{customer_id}/erase", {"csrf": csrf, "confirm": "delete",
                                                              "reason": "asked by phone"})
    assert r.status_code == 400 and field_error(r.text, "confirm") == "Input should be 'erase'"
    assert 'value="delete"' in r.text and 'value="asked by phone"' in r.text
    assert api.get(f"/v1/customers/{customer_id}", tenant.admin).data["phone"] == PHONE, "nothing erased"

    r = anna.post(f"/console/customers/{customer_id}/erase", {"csrf": csrf, "confirm": "erase",
                                                              "reason": "asked by phone"})
    assert r.status_code == 303 and r.headers["Location"] == f"/console/customers/{customer_id}?done=erased"
    after = api.get(f"/v1/customers/{customer_id}", tenant.admin).data
    assert after["status"] == "erased" and after["phone"] is None and after["first_name"] is None
    page = unescape(anna.get(r.headers["Location"]).text)
    assert "The customer's personal data is erased." in page and PHONE not in page and "erased" in page
    assert anna.get("/console/customers?phone=" + quote(PHONE)).status_code == 404
    assert card_api(api, tenant, number)["balance"] == 50, "balances stay for accounting"


def test_the_profile_is_edited_with_the_apis_errors_at_the_field(api: Api, tenant: TenantKeys) -> None:
    card = seed(api, tenant)
    other = seed(api, tenant, phone="+79169998877", receipt="r-9", email="boris@example.com")
    customer_id = card["customer_id"]
    anna = person(api, tenant, "anna@coffee.example")
    page = anna.get(f"/console/customers/{customer_id}").text
    form = {"csrf": hidden(page, "csrf"), "first_name": "Anna", "middle_name": "", "last_name": "Petrova",
            "phone": PHONE, "email": "anna.k@example.com"}

    r = anna.post(f"/console/customers/{customer_id}/profile", {**form, "email": "not-an-address"})
    assert r.status_code == 400 and field_error(r.text, "email").startswith("String should match pattern")
    assert 'value="not-an-address"' in r.text
    r = anna.post(f"/console/customers/{customer_id}/profile", {**form, "phone": "+79169998877"})
    assert r.status_code == 409 and other["customer_id"] in field_error(r.text, "phone")
    r = anna.post(f"/console/customers/{customer_id}/profile", {**form, "middle_name": "Ivanovna"})
    assert r.status_code == 303
    after = api.get(f"/v1/customers/{customer_id}", tenant.admin).data
    assert (after["first_name"], after["middle_name"], after["phone"]) == ("Anna", "Ivanovna", PHONE)
    assert "Anna Ivanovna Petrova" in anna.get(f"/console/customers/{customer_id}").text


def test_an_operator_sees_the_masked_view_and_can_change_nothing(api: Api, tenant: TenantKeys) -> None:
    card = seed(api, tenant)
    number, customer_id = card["number"], card["customer_id"]
    olga = person(api, tenant, "olga@coffee.example", "support")

    home = olga.get("/console").text
    assert 'href="/console/call-center"' in home and 'href="/console/customers"' not in home
    assert 'href="/console/cards"' not in home
    page = olga.get("/console/call-center?phone=" + quote("8 (916) 123-45-67"))
    assert page.status_code == 200
    assert "+7 *** ***-45-67" in page.text and "a***@example.com" in page.text
    assert PHONE not in page.text and "anna.k@example.com" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; Petrova" in page.text and HOSTILE not in page.text
    assert rows(page.text, "The customer's cards") == [[number, "active", "50", "0", "—"]]
    recent = rows(page.text, "The last 20 ledger entries")
    version = api.get("/v1/programs/main", tenant.admin).data["version"]
    assert [(r[1], r[2], r[3], r[5], r[6]) for r in recent] == [(number, "accrual", "+50", str(version), "r-1")]
    assert post_forms(page.text) == ["/console/sign-out"], "no control but signing out"
    assert "/adjust" not in page.text and "/block" not in page.text and "/erase" not in page.text
    by_card = olga.get(f"/console/call-center?card={number}")
    assert by_card.status_code == 200 and "+7 *** ***-45-67" in by_card.text
    nobody = olga.get("/console/call-center?phone=" + quote("+79160000000"))
    assert nobody.status_code == 404 and field_error(nobody.text, "phone") == "No customer matches."

    csrf = hidden(page.text, "csrf")
    base = f"/console/customers/{customer_id}"
    for path in ("/console/customers", base, f"{base}/cards/{number}", f"{base}/export", f"{base}/erase",
                 "/console/cards", "/console/cards/gift"):
        r = olga.get(path)
        assert r.status_code == 403, path
        assert PHONE not in r.text and number not in r.text
    for path, form in ((f"{base}/cards/{number}/adjust", {"points": "100", "reason": "please",
                                                          "adjustment_id": "x-1"}),
                       (f"{base}/cards/{number}/block", {"block_reason": "stolen"}),
                       (f"{base}/cards/{number}/unblock", {}),
                       (f"{base}/erase", {"confirm": "erase", "reason": "asked"}),
                       (f"{base}/profile", {"first_name": "Olga"})):
        r = olga.post(path, {"csrf": csrf, **form})
        assert r.status_code == 403, path
    assert card_api(api, tenant, number)["balance"] == 50 and card_api(api, tenant, number)["status"] == "active"
    assert api.get(f"/v1/customers/{customer_id}", tenant.admin).data["status"] == "active"


def test_another_tenants_person_finds_nothing_of_this_tenant(api: Api, tenant: TenantKeys,
                                                             other_tenant: TenantKeys) -> None:
    card = seed(api, tenant)
    number, customer_id = card["number"], card["customer_id"]
    ivan = person(api, other_tenant, "ivan@fuel.example")
    base = f"/console/customers/{customer_id}"

    for path in (base, f"{base}/cards/{number}", f"{base}/export", f"{base}/erase",
                 "/console/customers?phone=" + quote(PHONE), f"/console/customers?card={number}",
                 "/console/call-center?phone=" + quote(PHONE)):
        r = ivan.get(path)
        assert r.status_code == 404, path
        assert "Petrova" not in r.text and "alert(1)" not in r.text and "anna.k" not in r.text, path
    csrf = hidden(ivan.get("/console/customers").text, "csrf")
    for path, form in ((f"{base}/cards/{number}/adjust", {"points": "100", "reason": "please",
                                                          "adjustment_id": "x-1"}),
                       (f"{base}/cards/{number}/block", {"block_reason": "stolen"}),
                       (f"{base}/cards/{number}/unblock", {}),
                       (f"{base}/erase", {"confirm": "erase", "reason": "asked"}),
                       (f"{base}/profile", {"first_name": "Ivan"})):
        assert ivan.post(path, {"csrf": csrf, **form}).status_code == 404, path
    assert card_api(api, tenant, number)["balance"] == 50 and card_api(api, tenant, number)["status"] == "active"
    assert api.get(f"{'/v1/customers/'}{customer_id}", tenant.admin).data["first_name"] == HOSTILE


def test_a_card_under_another_customers_path_is_not_found(api: Api, tenant: TenantKeys) -> None:
    anna_card = seed(api, tenant)
    boris_card = seed(api, tenant, phone="+79169998877", receipt="r-9", first_name="Boris")
    anna = person(api, tenant, "anna@coffee.example")
    r = anna.get(f"/console/customers/{anna_card['customer_id']}/cards/{boris_card['number']}")
    assert r.status_code == 404 and boris_card["number"] not in r.text


@pytest.mark.parametrize("language", ["ru"])
def test_the_pages_speak_russian(api: Api, tenant: TenantKeys, language: str) -> None:
    card = seed(api, tenant)
    anna = person(api, tenant, "anna@coffee.example")
    anna.language = language
    page = anna.get(f"/console/customers/{card['customer_id']}/cards/{card['number']}?lang=ru").text
    assert "Начислить или списать баллы" in page and "начисление" in page and "Заблокировать карту" in page
    assert "1\u00a0000,00\u00a0₽" in anna.get(f"/console/customers/{card['customer_id']}?lang=ru").text
