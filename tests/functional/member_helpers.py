"""The member site as a phone's browser uses it in tests: sign in or sign up by the SMS code, through the pages."""

from __future__ import annotations

from typing import Any

from tests.functional.conftest import Api, TenantKeys
from tests.functional.phone_codes import last_code
from tests.functional.test_console_sign_in import Browser, hidden

MEMBER_COOKIE = "__Host-lp_member"


def site(tenant_id: str) -> str:
    return f"/m/{tenant_id}"


def ask_code(browser: Browser, tenant_id: str, phone: str) -> Any:
    """The phone step: a page with the code form (its hidden fields) or the phone form with an error."""
    page = browser.get(f"{site(tenant_id)}/sign-in")
    assert page.status_code == 200, page.text
    return browser.post(f"{site(tenant_id)}/sign-in", {"form_token": hidden(page.text, "form_token"),
                                                       "phone": phone, "action": "send", "next": ""})


def enter_code(browser: Browser, tenant_id: str, code_page: str, code: str) -> Any:
    carried = {"referral": hidden(code_page, "referral")} if 'name="referral"' in code_page else {}
    return browser.post(f"{site(tenant_id)}/sign-in", {
        "form_token": hidden(code_page, "form_token"), "phone": hidden(code_page, "phone"),
        "verification_id": hidden(code_page, "verification_id"), "code": code, "action": "confirm",
        "next": hidden(code_page, "next"), **carried})


def to_sign_up_form(api: Api, tenant_id: str, phone: str, language: str = "en") -> tuple[Browser, Any]:
    """A new phone: the code entered, the browser is on the sign-up form."""
    browser = Browser(api, language)
    code_page = ask_code(browser, tenant_id, phone)
    assert code_page.status_code == 200, code_page.text
    form = enter_code(browser, tenant_id, code_page.text, last_code(hidden(code_page.text, "phone")))
    assert form.status_code == 200 and 'name="proof"' in form.text, form.text
    return browser, form


def send_sign_up(browser: Browser, tenant_id: str, form_page: str, **fields: str) -> Any:
    body = {"form_token": hidden(form_page, "form_token"), "proof": hidden(form_page, "proof"),
            "consent_personal_data": "on", "card": "virtual", **fields}
    return browser.post(f"{site(tenant_id)}/sign-up", {k: v for k, v in body.items() if v is not None})


def member_signed_up(api: Api, tenant_id: str, phone: str, **fields: str) -> Browser:
    """A new member signed up through the pages (a virtual card unless `card="plastic"`), their browser kept."""
    browser, form = to_sign_up_form(api, tenant_id, phone)
    done = send_sign_up(browser, tenant_id, form.text, **fields)
    assert done.status_code == 303, done.text
    assert MEMBER_COOKIE in browser.cookies
    return browser


def member_signed_in(api: Api, tenant_id: str, phone: str) -> Browser:
    """A known member signs in with a new code."""
    browser = Browser(api)
    code_page = ask_code(browser, tenant_id, phone)
    assert code_page.status_code == 200, code_page.text
    done = enter_code(browser, tenant_id, code_page.text, last_code(hidden(code_page.text, "phone")))
    assert done.status_code == 303, done.text
    return browser


def customer_of(api: Api, tenant: TenantKeys, phone: str) -> Any:
    """The tenant's customer with this phone, as the API finds it (404 when there is none)."""
    return api.get(f"/v1/customers?phone={phone.replace('+', '%2B')}", tenant.admin)
