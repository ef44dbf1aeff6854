"""The console's sign-in pages through the Chalice test client: forms, errors at the field, headers, languages.

The same services as `/v1/auth/*` (tests/functional/test_people.py), seen as a browser sees them: HTML
forms, 303 redirects, the session cookie, the CSRF token in every form, and a page (never a stack trace)
for every refusal.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import urlencode

import pytest

from chalicelib.console import assets
from chalicelib.console.pages import SECURITY_HEADERS, pages
from chalicelib.domain.identity import SESSION_COOKIE
from chalicelib.services.identity import bootstrap
from tests.functional.conftest import Api, TenantKeys
from tests.functional.jobqueue import drain
from tests.functional.people import PASSWORD, fresh_code, last_mail, token_from, verify_sender

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Browser:
    """Cookies and the last page, as a browser keeps them (the session cookie sent back on every request)."""

    def __init__(self, api: Api, language: str = "en") -> None:
        self.http = api.client.http
        self.cookies: dict[str, str] = {}
        self.language = language

    def _headers(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        cookie = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return {"Accept-Language": self.language, **({"Cookie": cookie} if cookie else {}), **(extra or {})}

    def _keep(self, response: Any) -> Any:
        header = response.headers.get("Set-Cookie")
        if header:
            name, _, rest = header.partition("=")
            value = rest.split(";")[0]
            if "Max-Age=0" in header:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        response.text = response.body.decode() if isinstance(response.body, bytes) else str(response.body)
        return response

    def get(self, path: str, **headers: str) -> Any:
        return self._keep(self.http.get(path, headers=self._headers(headers)))

    def post(self, path: str, form: dict[str, str], **headers: str) -> Any:
        return self._keep(self.http.post(path, headers=self._headers({**FORM, **headers}), body=urlencode(form)))


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden {name}"
    return unescape(found.group(1))


def field_error(page: str, name: str) -> str:
    found = re.search(rf'<p class="error" id="f-{name}-error">([^<]*)</p>', page)
    assert found, f"no error at {name}"
    return unescape(found.group(1))


@pytest.fixture
def root(api: Api) -> bootstrap.FirstAdmin:
    verify_sender()
    made = bootstrap.ensure_platform_admin("root@platform.example", PASSWORD)
    assert made is not None
    return made


def signed_in(api: Api, email: str, secret: str | None, language: str = "en") -> Browser:
    browser = Browser(api, language)
    r = browser.post("/console/sign-in", {"email": email, "password": PASSWORD, "next": "/console"})
    if r.status_code == 200:
        if "<svg" in r.text:
            secret = hidden(r.text, "secret")
        assert secret is not None
        r = browser.post("/console/sign-in/code", {"sign_in_id": hidden(r.text, "sign_in_id"),
                                                   "code": fresh_code(secret), "next": "/console"})
    assert r.status_code == 303 and r.headers["Location"] == "/console", r.text[-500:]
    assert SESSION_COOKIE in browser.cookies
    return browser


def test_every_page_sends_the_security_headers_and_no_inline_script_or_style(api: Api, root: Any) -> None:
    browser = Browser(api)
    for path in ("/console/sign-in", "/console/forgot-password", "/console/reset-password?token=x"):
        r = browser.get(path)
        assert r.status_code == 200, path
        for name, value in SECURITY_HEADERS.items():
            assert r.headers[name] == value, (path, name)
        assert "unsafe-inline" not in r.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in r.headers["Content-Security-Policy"]
        assert "<script>" not in r.text and " style=" not in r.text and "<style" not in r.text
        assert re.findall(r'(?:src|href)="(https?:)?//', r.text) == []  # nothing from another origin
    css = browser.get(assets.url("console.css"))
    assert css.status_code == 200 and css.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert css.headers["Content-Type"] == "text/css; charset=utf-8" and "--accent" in css.text
    assert browser.get("/console/static/console.css").status_code == 404  # only the versioned names
    assert browser.get("/console/static/..%2F..%2Fapp.py").status_code == 404


def test_a_person_signs_in_with_the_code_and_lands_on_home(api: Api, root: Any) -> None:
    browser = Browser(api)
    r = browser.get("/console")
    assert r.status_code == 303 and r.headers["Location"] == "/console/sign-in?next=/console"
    r = browser.post("/console/sign-in", {"email": "root@platform.example", "password": PASSWORD,
                                          "next": "/console"})
    assert r.status_code == 200 and "Enter your code" in r.text and SESSION_COOKIE not in browser.cookies
    r = browser.post("/console/sign-in/code", {"sign_in_id": hidden(r.text, "sign_in_id"), "code": "000000",
                                               "next": "/console"})
    assert r.status_code == 401 and field_error(r.text, "code") == "The code is wrong; 4 tries left."
    assert 'aria-invalid="true"' in r.text
    r = browser.post("/console/sign-in/code", {"sign_in_id": hidden(r.text, "sign_in_id"),
                                               "code": fresh_code(root.mfa_secret), "next": "/console"})
    assert r.status_code == 303 and r.headers["Location"] == "/console"
    home = browser.get("/console")
    assert home.status_code == 200
    assert "You act in Platform as platform operator." in home.text
    assert "root@platform.example" in home.text and hidden(home.text, "csrf")
    assert 'id="f-scope"' not in home.text  # one membership: no scope switcher


def test_a_wrong_password_keeps_the_email_and_says_why_at_the_top(api: Api, root: Any) -> None:
    r = Browser(api).post("/console/sign-in", {"email": "root@platform.example", "password": "nope",
                                               "next": "/console"})
    assert r.status_code == 401
    assert "The e-mail or password is wrong, or the account is disabled." in r.text
    assert 'value="root@platform.example"' in r.text and "nope" not in r.text
    r = Browser(api).post("/console/sign-in", {"email": "not an address", "password": "x"})
    assert r.status_code == 400 and field_error(r.text, "email") == "Value error, not an e-mail address " \
                                                                    "(name@example.com)"
    assert 'value="not an address"' in r.text


def test_russian_is_the_default_and_english_a_switch_kept_per_person(api: Api, root: Any) -> None:
    r = Browser(api, language="").get("/console/sign-in")
    assert '<html lang="ru" ' in r.text and "Вход" in r.text and "Эл. почта" in r.text
    r = Browser(api, language="ru").post("/console/sign-in", {"email": "root@platform.example", "password": "x"})
    assert "Неверный адрес или пароль, либо учётная запись отключена." in r.text
    browser = signed_in(api, "root@platform.example", root.mfa_secret, language="ru")
    assert "Добро пожаловать" in browser.get("/console").text
    r = browser.post("/console/language", {"csrf": hidden(browser.get("/console").text, "csrf"), "locale": "en"})
    assert r.status_code == 303
    assert "Welcome" in browser.get("/console").text  # the person's choice wins over the browser's language


def test_a_form_without_the_sessions_token_or_from_another_site_changes_nothing(api: Api, root: Any) -> None:
    browser = signed_in(api, "root@platform.example", root.mfa_secret)
    r = browser.post("/console/language", {"locale": "ru"})
    assert r.status_code == 403 and "Not allowed" in r.text
    r = browser.post("/console/language", {"csrf": "forged.forged.forged", "locale": "ru"})
    assert r.status_code == 403
    r = browser.post("/console/language", {"csrf": hidden(browser.get("/console").text, "csrf"), "locale": "ru"},
                     Origin="https://evil.example")
    assert r.status_code == 403
    assert "Welcome" in browser.get("/console").text  # still English


def test_sign_out_ends_the_session_and_forgets_the_cookie(api: Api, root: Any) -> None:
    browser = signed_in(api, "root@platform.example", root.mfa_secret)
    cookie = browser.cookies[SESSION_COOKIE]
    r = browser.post("/console/sign-out", {"csrf": hidden(browser.get("/console").text, "csrf")})
    assert r.status_code == 303 and r.headers["Location"] == "/console/sign-in"
    assert SESSION_COOKIE not in browser.cookies
    browser.cookies[SESSION_COOKIE] = cookie  # a copy kept elsewhere is dead too
    assert browser.get("/console").status_code == 303


def test_an_invitation_link_opens_a_page_that_joins_and_then_signs_in_with_enrolment(
        api: Api, tenant: TenantKeys) -> None:
    verify_sender()
    assert api.post("/v1/invitations", tenant.admin, {"email": "anna@coffee.example",
                                                      "role": "tenant_admin"}).status_code == 201
    drain()
    token = token_from(last_mail("anna@coffee.example"))
    browser = Browser(api)
    page = browser.get(f"/console/invitation?token={token}")
    assert page.status_code == 200 and "You are invited to coffee-house LLC" in page.text
    assert "anna@coffee.example as administrator" in page.text and 'id="f-password"' in page.text
    weak = browser.post("/console/invitation", {"token": token, "password": "short"})
    assert weak.status_code == 422 and "12" in field_error(weak.text, "password")
    r = browser.post("/console/invitation", {"token": token, "password": PASSWORD})
    assert r.status_code == 303 and r.headers["Location"] == "/console/sign-in?done=joined"
    assert "You have joined" in browser.get("/console/sign-in?done=joined").text
    used = browser.get(f"/console/invitation?token={token}")
    assert used.status_code == 409 and "already used" in used.text
    r = browser.post("/console/sign-in", {"email": "anna@coffee.example", "password": PASSWORD,
                                          "next": "/console"})
    assert "Set up your authenticator" in r.text and "<svg" in r.text
    secret = hidden(r.text, "secret")
    assert f"secret={secret}" in hidden(r.text, "uri")
    wrong = browser.post("/console/sign-in/code", {"sign_in_id": hidden(r.text, "sign_in_id"), "code": "000000",
                                                   "secret": secret, "uri": hidden(r.text, "uri")})
    assert "<svg" in wrong.text, "the QR code stays on the page after a wrong first code"
    r = browser.post("/console/sign-in/code", {"sign_in_id": hidden(r.text, "sign_in_id"),
                                               "code": fresh_code(secret), "next": "/console"})
    assert r.status_code == 303
    assert "You act in coffee-house LLC as administrator." in browser.get("/console").text


def test_a_forgotten_password_is_reset_through_the_pages(api: Api, root: Any) -> None:
    browser = Browser(api)
    r = browser.post("/console/forgot-password", {"email": "root@platform.example"})
    assert r.status_code == 200 and "a link to choose a new password is on its way" in r.text
    unknown = browser.post("/console/forgot-password", {"email": "nobody@platform.example"})
    assert unknown.text.replace("nobody", "root") == r.text.replace("nobody", "root")
    drain()
    token = token_from(last_mail("root@platform.example"))
    page = browser.get(f"/console/reset-password?token={token}")
    assert hidden(page.text, "token") == token
    weak = browser.post("/console/reset-password", {"token": token, "password": "weak"})
    assert weak.status_code == 422 and field_error(weak.text, "password")
    r = browser.post("/console/reset-password", {"token": token, "password": "New-Password-2027"})
    assert r.status_code == 303 and r.headers["Location"] == "/console/sign-in?done=reset"
    again = browser.post("/console/reset-password", {"token": token, "password": "New-Password-2028"})
    assert again.status_code == 404 and "not valid or was used already" in again.text


def test_a_person_of_two_scopes_switches_where_they_act(api: Api, tenant: TenantKeys, root: Any) -> None:
    assert api.post("/v1/invitations", tenant.admin, {"email": "root@platform.example",
                                                      "role": "support"}).status_code == 201
    drain()
    token = token_from(last_mail("root@platform.example"))
    assert api.post("/v1/auth/invitations/accept", body={"token": token}).status_code == 201
    browser = signed_in(api, "root@platform.example", root.mfa_secret)
    home = browser.get("/console").text
    assert 'id="f-scope"' in home and "coffee-house LLC · support operator" in home
    r = browser.post("/console/scope", {"csrf": hidden(home, "csrf"), "scope": "tenant:coffee-house"})
    assert r.headers["Location"] == "/console?done=scope"
    assert "You act in coffee-house LLC as support operator." in browser.get("/console").text


def test_unknown_and_hostile_input_ends_on_a_page(api: Api, root: Any) -> None:
    browser = Browser(api)
    r = browser.get("/console/invitation?token=%3Cscript%3Ealert(1)%3C%2Fscript%3E")
    assert r.status_code == 404 and "<script>alert" not in r.text and "This invitation link is not valid" in r.text
    r = browser.post("/console/sign-in", {"email": "<b>x</b>@evil.example", "password": "x"})
    assert r.status_code == 400 and "<b>x</b>" not in r.text and "&lt;b&gt;x&lt;/b&gt;" in r.text
    r = browser.post("/console/sign-in/code", {"sign_in_id": "x", "code": "1"})
    assert r.status_code == 303 and r.headers["Location"] == "/console/sign-in"
    r = browser.post("/console/sign-in", {"email": "a@b.example", "password": "x", "next": "https://evil.example"})
    assert 'value="/console"' in r.text  # never sent to another site after signing in
    big = browser.http.post("/console/sign-in", headers=FORM, body="email=" + "a" * 70_000)
    assert big.status_code == 413


def test_every_page_is_declared_with_its_roles() -> None:
    table = {(p.method, p.path): p for p in pages()}
    assert table[("GET", "/console/sign-in")].public and table[("GET", "/console/static/{asset}")].public
    assert not table[("GET", "/console")].public and not table[("POST", "/console/sign-out")].public
