"""The member site's way in through the Chalice test client: sign up and in by the SMS code, the member session.

Codes are read from the SMS moto kept (tests/functional/phone_codes.py). Each attack (wrong, replayed or
another phone's code, brute force, the member cookie at a staff page, an API route or another tenant's
site, script in every field, an erased member coming back) gets a clear answer and changes nothing.
"""

from __future__ import annotations

import re
from html import unescape

from chalicelib.console.pages import pages
from tests.functional.conftest import Api, TenantKeys
from tests.functional.member_helpers import (
    MEMBER_COOKIE,
    ask_code,
    customer_of,
    enter_code,
    member_signed_in,
    member_signed_up,
    send_sign_up,
    site,
    to_sign_up_form,
)
from tests.functional.phone_codes import last_code
from tests.functional.test_console_sign_in import Browser, field_error, hidden

PHONE = "+79161234567"
OTHER_PHONE = "+79169876543"
SCRIPT = "<script>alert(1)</script>"


def test_a_new_phone_signs_up_and_gets_a_virtual_card_with_its_consents(api: Api, tenant: TenantKeys) -> None:
    assert customer_of(api, tenant, PHONE).status_code == 404
    browser = member_signed_up(api, tenant.tenant_id, PHONE, first_name="Anna", last_name="Petrova",
                               email="anna@example.com", gender="female", birth_date="1990-05-17",
                               consent_sms="on")
    cookie = browser.cookies[MEMBER_COOKIE]
    customer = customer_of(api, tenant, PHONE)
    assert customer.status_code == 200, customer.data
    data = customer.data
    assert (data["first_name"], data["last_name"], data["email"], data["gender"], data["birth_date"]) == (
        "Anna", "Petrova", "anna@example.com", "female", "1990-05-17")
    assert data["acquisition"]["channel"] == "site"
    consents = {c["kind"]: (c["granted"], c["source"], c["text_version"]) for c in data["consents"]}
    assert consents == {"personal_data": (True, "site", "v1"), "sms": (True, "site", "v1"),
                        "email": (False, "site", "v1")}
    assert len(data["cards"]) == 1
    card = api.get(f"/v1/cards/{data['cards'][0]}", tenant.admin).data
    assert (card["kind"], card["status"], card["program_id"], card["customer_id"]) == (
        "virtual", "active", "main", data["customer_id"])
    home = browser.get(f"{site(tenant.tenant_id)}/")
    assert home.status_code == 200
    assert card["number"] in home.text and "Hello, Anna" in home.text and "<h1>" in home.text
    assert home.text.count("<h1") == 1
    # The session is server-side, HttpOnly, Secure, SameSite=Lax, and names nothing but this member.
    assert cookie.startswith(data["customer_id"] + ".")
    again = member_signed_in(api, tenant.tenant_id, PHONE)
    assert again.cookies[MEMBER_COOKIE] != cookie
    assert card["number"] in again.get(f"{site(tenant.tenant_id)}/").text
    assert len(customer_of(api, tenant, PHONE).data["cards"]) == 1  # signing in again issued nothing


def test_the_cookie_attributes_and_sign_out(api: Api, tenant: TenantKeys) -> None:
    browser, form = to_sign_up_form(api, tenant.tenant_id, PHONE)
    done = send_sign_up(browser, tenant.tenant_id, form.text)
    header = done.headers["Set-Cookie"]
    assert header.startswith(MEMBER_COOKIE + "=")
    for part in ("Path=/", "Secure", "HttpOnly", "SameSite=Lax", "Max-Age=2592000"):
        assert part in header, header
    assert done.headers["Location"].startswith(f"/m/{tenant.tenant_id}/?welcome=1")
    home = browser.get(done.headers["Location"])
    assert "Welcome! Your card is ready." in home.text
    stolen = dict(browser.cookies)
    no_token = browser.post(f"{site(tenant.tenant_id)}/sign-out", {"csrf": "forged"})
    assert no_token.status_code == 403 and MEMBER_COOKIE in browser.cookies
    out = browser.post(f"{site(tenant.tenant_id)}/sign-out", {"csrf": hidden(home.text, "csrf")})
    assert out.status_code == 303 and "Max-Age=0" in out.headers["Set-Cookie"]
    assert MEMBER_COOKIE not in browser.cookies
    # The old cookie is dead on the server too, not only forgotten by the browser.
    replay = Browser(api)
    replay.cookies = stolen
    gone = replay.get(f"{site(tenant.tenant_id)}/")
    assert gone.status_code == 303 and gone.headers["Location"].startswith(f"/m/{tenant.tenant_id}/sign-in")


def test_a_plastic_card_from_a_series_is_registered_and_activated(api: Api, tenant: TenantKeys) -> None:
    series = api.post("/v1/card-series", tenant.admin, {"program_id": "main", "count": 2})
    assert series.status_code == 201, series.data
    numbers = [c["number"] for c in api.get(f"/v1/card-series/{series.data['series_id']}/cards",
                                            tenant.admin).data["items"]]
    before = api.get(f"/v1/cards/{numbers[0]}", tenant.admin).data
    assert before["customer_id"] is None
    spaced = " ".join(re.findall(r".{1,4}", numbers[0]))  # typed as printed, in groups
    browser = member_signed_up(api, tenant.tenant_id, PHONE, card="plastic", card_number=spaced)
    customer = customer_of(api, tenant, PHONE).data
    assert customer["cards"] == [numbers[0]]
    card = api.get(f"/v1/cards/{numbers[0]}", tenant.admin).data
    assert (card["customer_id"], card["status"], card["kind"]) == (customer["customer_id"], "active", "plastic")
    assert numbers[0] in browser.get(f"{site(tenant.tenant_id)}/").text
    # The same card cannot be taken by a second phone; the form keeps what was typed, the error at the field.
    other, form = to_sign_up_form(api, tenant.tenant_id, OTHER_PHONE)
    refused = send_sign_up(other, tenant.tenant_id, form.text, card="plastic", card_number=numbers[0],
                           first_name="Boris")
    assert refused.status_code == 409
    assert field_error(refused.text, "card_number").startswith("This card is already registered")
    assert 'value="Boris"' in refused.text and customer_of(api, tenant, OTHER_PHONE).status_code == 404
    unknown = send_sign_up(other, tenant.tenant_id, refused.text, card="plastic", card_number="4000000000000002")
    assert unknown.status_code == 404 and field_error(unknown.text, "card_number")
    assert customer_of(api, tenant, OTHER_PHONE).status_code == 404
    # Corrected, the same verified phone signs up with a new virtual card.
    fixed = send_sign_up(other, tenant.tenant_id, unknown.text, card="virtual")
    assert fixed.status_code == 303, fixed.text
    assert len(customer_of(api, tenant, OTHER_PHONE).data["cards"]) == 1


def test_wrong_replayed_and_other_phone_codes_are_refused_and_change_nothing(api: Api, tenant: TenantKeys) -> None:
    member_signed_up(api, tenant.tenant_id, PHONE)
    browser = Browser(api)
    code_page = ask_code(browser, tenant.tenant_id, PHONE).text
    code = last_code(PHONE)
    wrong = enter_code(browser, tenant.tenant_id, code_page, "000000" if code != "000000" else "111111")
    assert wrong.status_code == 400 and field_error(wrong.text, "code") == "The code is not right. Tries left: 4."
    assert MEMBER_COOKIE not in browser.cookies
    malformed = enter_code(browser, tenant.tenant_id, code_page, "12ab")
    assert malformed.status_code == 400 and field_error(malformed.text, "code") == "Enter the 6 digits of the code."
    # A code sent to one phone never proves another (the hidden phone changed by the attacker).
    forged = code_page.replace(f'name="phone" value="{PHONE}"', f'name="phone" value="{OTHER_PHONE}"')
    other = enter_code(browser, tenant.tenant_id, forged, code)
    assert other.status_code == 400 and MEMBER_COOKIE not in browser.cookies
    right = enter_code(browser, tenant.tenant_id, code_page, code)
    assert right.status_code == 303 and MEMBER_COOKIE in browser.cookies
    replayer = Browser(api)
    replay = enter_code(replayer, tenant.tenant_id, code_page, code)
    assert replay.status_code == 409 and field_error(replay.text, "code").startswith("This code was already used")
    assert MEMBER_COOKIE not in replayer.cookies
    assert customer_of(api, tenant, OTHER_PHONE).status_code == 404


def test_guessing_codes_is_limited_even_the_right_code_after_five_wrong_ones(api: Api, tenant: TenantKeys) -> None:
    browser = Browser(api)
    code_page = ask_code(browser, tenant.tenant_id, PHONE).text
    code = last_code(PHONE)
    guesses = [g for g in ("111111", "222222", "333333", "444444", "555555", "666666") if g != code][:5]
    for guess in guesses:
        enter_code(browser, tenant.tenant_id, code_page, guess)
    locked = enter_code(browser, tenant.tenant_id, code_page, code)
    assert locked.status_code == 429 and field_error(locked.text, "code").startswith("Too many wrong codes")
    assert MEMBER_COOKIE not in browser.cookies and customer_of(api, tenant, PHONE).status_code == 404
    # Asking for codes is limited per phone too, with the same words for a known or unknown phone.
    answers = [ask_code(Browser(api), tenant.tenant_id, PHONE) for _ in range(6)]
    limited = [a for a in answers if a.status_code == 429]
    assert limited and field_error(limited[0].text, "phone").startswith("Too many codes")


def test_the_same_answer_for_a_known_and_an_unknown_phone(api: Api, tenant: TenantKeys) -> None:
    member_signed_up(api, tenant.tenant_id, PHONE)
    known = ask_code(Browser(api), tenant.tenant_id, PHONE)
    unknown = ask_code(Browser(api), tenant.tenant_id, OTHER_PHONE)

    def shape(text: str) -> str:
        return re.sub(r'value="[^"]*"|\+7\d+', "", text)

    assert known.status_code == unknown.status_code == 200
    assert shape(known.text) == shape(unknown.text)


def test_the_member_cookie_opens_no_staff_page_no_api_route_and_no_other_tenant(
        api: Api, tenant: TenantKeys, other_tenant: TenantKeys) -> None:
    browser = member_signed_up(api, tenant.tenant_id, PHONE)
    customer_id = customer_of(api, tenant, PHONE).data["customer_id"]
    staff = browser.get("/console")
    assert staff.status_code == 303 and staff.headers["Location"].startswith("/console/sign-in")
    # Every staff page of the page table, with the member cookie only: sent to the staff sign-in, or refused.
    staff_pages = [spec for spec in pages() if not spec.public]
    for spec in staff_pages:
        path = re.sub(r"{(\w+)}", "x", spec.path)
        r = browser.get(path) if spec.method == "GET" else browser.post(path, {"csrf": "x"})
        assert r.status_code in (303, 403), (spec.method, spec.path, r.status_code)
        assert r.status_code == 403 or r.headers["Location"].startswith("/console/sign-in"), spec.path
        assert customer_id not in r.text and PHONE not in r.text, spec.path
    assert len(staff_pages) > 50
    cookie = f"{MEMBER_COOKIE}={browser.cookies[MEMBER_COOKIE]}"
    for path in (f"/v1/customers/{customer_id}", "/v1/tenant", f"/v1/customers/{customer_id}/export"):
        r = api.get(path, headers={"Cookie": cookie})
        assert r.status_code == 401, (path, r.status_code)
        r = api.get(path, headers={"Cookie": cookie, "Authorization": f"Session {browser.cookies[MEMBER_COOKIE]}"})
        assert r.status_code == 401, (path, r.status_code)
    # Another tenant's site: the cookie names nothing there; its pages ask to sign in, its forms refuse.
    there = browser.get(f"{site(other_tenant.tenant_id)}/")
    assert there.status_code == 303 and there.headers["Location"].startswith(f"/m/{other_tenant.tenant_id}/sign-in")
    home = browser.get(f"{site(tenant.tenant_id)}/")
    out = browser.post(f"{site(other_tenant.tenant_id)}/sign-out", {"csrf": hidden(home.text, "csrf")})
    assert out.status_code == 403 and MEMBER_COOKIE in browser.cookies
    assert browser.get(f"{site(tenant.tenant_id)}/").status_code == 200
    # Every member page of the other tenant's site, generated from the page table.
    params = {"number": "0000000000", "survey_id": "x"}
    for spec in pages():
        if not spec.path.startswith("/m/{tenant_id}"):
            continue
        path = spec.path.replace("{tenant_id}", other_tenant.tenant_id)
        path = re.sub(r"{(\w+)}", lambda m: params.get(m.group(1), "x"), path)
        r = browser.get(path) if spec.method == "GET" else browser.post(path, {"csrf": hidden(home.text, "csrf")})
        assert r.status_code in (200, 303, 400, 403, 404), (spec.path, r.status_code)
        assert customer_id not in r.text and PHONE not in r.text, spec.path
    # A foreign site's form post is refused before anything (Origin).
    foreign = browser.post(f"{site(tenant.tenant_id)}/sign-out", {"csrf": hidden(home.text, "csrf")},
                           Origin="https://evil.example")
    assert foreign.status_code == 403 and MEMBER_COOKIE in browser.cookies


def test_script_in_every_field_is_escaped_and_kept(api: Api, tenant: TenantKeys) -> None:
    browser, form = to_sign_up_form(api, tenant.tenant_id, PHONE)
    typed = {name: SCRIPT for name in ("first_name", "last_name", "middle_name", "email", "birth_date",
                                       "referral_code", "card_number", "gender")}
    refused = send_sign_up(browser, tenant.tenant_id, form.text, card="plastic", **typed)
    assert refused.status_code == 400
    assert "<script>" not in refused.text and "&lt;script&gt;" in refused.text
    for name in ("email", "birth_date", "referral_code", "card_number", "gender"):
        assert field_error(refused.text, name), name
    assert f'value="{SCRIPT.replace("<", "&lt;").replace(">", "&gt;")}"' in refused.text
    assert customer_of(api, tenant, PHONE).status_code == 404
    # A name may hold any characters: stored as typed, always shown escaped.
    done = send_sign_up(browser, tenant.tenant_id, refused.text, first_name=SCRIPT, last_name=SCRIPT, card="virtual")
    assert done.status_code == 303, done.text
    home = browser.get(f"{site(tenant.tenant_id)}/")
    assert "<script>" not in home.text and unescape("&lt;script&gt;") not in home.text.replace("&lt;script&gt;", "")
    assert customer_of(api, tenant, PHONE).data["first_name"] == SCRIPT


def test_consents_minimal_data_mode_and_referral_at_their_fields(api: Api, tenant: TenantKeys) -> None:
    changed = api.patch(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency,
                        {"privacy": {"disabled_fields": ["middle_name", "birth_date"], "consent_text_version": "2026-09"}})
    assert changed.status_code == 200, changed.data
    browser, form = to_sign_up_form(api, tenant.tenant_id, PHONE)
    assert 'name="middle_name"' not in form.text and 'name="birth_date"' not in form.text
    assert "text version 2026-09" in form.text
    no_consent = send_sign_up(browser, tenant.tenant_id, form.text, consent_personal_data=None, first_name="Olga",
                              middle_name="Sneaky")
    assert no_consent.status_code == 400
    assert field_error(no_consent.text, "consent_personal_data").startswith("Tick the box to join")
    assert 'value="Olga"' in no_consent.text
    bad_referral = send_sign_up(browser, tenant.tenant_id, no_consent.text, first_name="Olga",
                                referral_code="NOPE1234")
    assert bad_referral.status_code == 422
    assert field_error(bad_referral.text, "referral_code").startswith("No member has this referral code")
    assert customer_of(api, tenant, PHONE).status_code == 404
    friend = member_signed_up(api, tenant.tenant_id, OTHER_PHONE)
    del friend
    code = customer_of(api, tenant, OTHER_PHONE).data["referral"]["code"]
    done = send_sign_up(browser, tenant.tenant_id, bad_referral.text, first_name="Olga", referral_code=code)
    assert done.status_code == 303, done.text
    olga = customer_of(api, tenant, PHONE).data
    assert olga["referral"]["referred_by"] == customer_of(api, tenant, OTHER_PHONE).data["customer_id"]
    assert olga["middle_name"] is None  # switched off: never stored, even when posted
    assert {c["kind"]: c["text_version"] for c in olga["consents"]}["personal_data"] == "2026-09"


def test_a_double_sign_up_makes_one_customer_and_one_card(api: Api, tenant: TenantKeys) -> None:
    browser, form = to_sign_up_form(api, tenant.tenant_id, PHONE)
    first = send_sign_up(browser, tenant.tenant_id, form.text, first_name="Ivan")
    second = send_sign_up(Browser(api), tenant.tenant_id, form.text, first_name="Ivan")
    assert first.status_code == 303
    assert second.status_code in (303, 409)
    assert len(customer_of(api, tenant, PHONE).data["cards"]) == 1


def test_an_erased_member_signing_in_again_gets_the_sign_up_path_not_the_old_data(
        api: Api, tenant: TenantKeys) -> None:
    old = member_signed_up(api, tenant.tenant_id, PHONE, first_name="Vera")
    old_customer = customer_of(api, tenant, PHONE).data
    erased = api.post(f"/v1/customers/{old_customer['customer_id']}/erase", tenant.admin,
                      {"confirm": "erase", "reason": "asked by the member"})
    assert erased.status_code == 200, erased.data
    gone = old.get(f"{site(tenant.tenant_id)}/")
    assert gone.status_code == 303 and "/sign-in" in gone.headers["Location"]  # the old session ended
    browser, form = to_sign_up_form(api, tenant.tenant_id, PHONE)
    assert "Vera" not in form.text and old_customer["cards"][0] not in form.text
    done = send_sign_up(browser, tenant.tenant_id, form.text)
    assert done.status_code == 303, done.text
    new = customer_of(api, tenant, PHONE).data
    assert new["customer_id"] != old_customer["customer_id"] and new["first_name"] is None
    assert new["cards"] and new["cards"] != old_customer["cards"]
    home = browser.get(f"{site(tenant.tenant_id)}/")
    assert "Vera" not in home.text and old_customer["cards"][0] not in home.text


def test_branding_reaches_the_site_as_a_stylesheet_of_validated_colours(api: Api, tenant: TenantKeys) -> None:
    bad = api.patch(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency,
                    {"branding": {"primary_colour": "red;}body{display:none"}})
    assert bad.status_code == 400
    ok = api.patch(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency,
                   {"branding": {"primary_colour": "#FFD700", "accent_colour": "#003366"}})
    assert ok.status_code == 200, ok.data
    from chalicelib.services.program import catalog

    catalog.clear()
    page = Browser(api).get(f"{site(tenant.tenant_id)}/sign-in")
    link = re.search(r'href="(/m/coffee-house/brand\.css\?v=\w+)"', page.text)
    assert link and "style=" not in page.text
    css = Browser(api).get(link.group(1))
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert "--brand:#ffd700;" in css.text and "--brand-ink:#000000;" in css.text
    assert "--brand-accent:#003366;" in css.text and "immutable" in css.headers["Cache-Control"]
    assert Browser(api).get(f"{site('no-such-tenant')}/sign-in").status_code == 404


def test_a_friends_invitation_link_carries_the_referral_code_to_the_sign_up_form(api: Api, tenant: TenantKeys) -> None:
    member_signed_up(api, tenant.tenant_id, OTHER_PHONE)
    friend = customer_of(api, tenant, OTHER_PHONE).data
    code = friend["referral"]["code"]
    browser = Browser(api)
    page = browser.get(f"{site(tenant.tenant_id)}/sign-up?referral={code}")
    assert page.status_code == 200 and hidden(page.text, "referral") == code
    hostile = browser.get(f"{site(tenant.tenant_id)}/sign-up?referral=%22%3E%3Cscript%3E")
    assert hostile.status_code == 200 and 'name="referral"' not in hostile.text and "<script>" not in hostile.text
    code_page = browser.post(f"{site(tenant.tenant_id)}/sign-in", {
        "form_token": hidden(page.text, "form_token"), "phone": PHONE, "action": "send", "next": "",
        "referral": code})
    assert hidden(code_page.text, "referral") == code
    form = enter_code(browser, tenant.tenant_id, code_page.text, last_code(PHONE))
    assert form.status_code == 200 and f'name="referral_code" type="text" value="{code}"' in form.text
    done = send_sign_up(browser, tenant.tenant_id, form.text, referral_code=code)
    assert done.status_code == 303, done.text
    assert customer_of(api, tenant, PHONE).data["referral"]["referred_by"] == friend["customer_id"]
    # Signed in, the link leads home.
    assert browser.get(f"{site(tenant.tenant_id)}/sign-up?referral={code}").status_code == 303
