"""A refused request on the member site is a page of that site: the tenant's brand, the member's language, a
clear message and the way on (sign in again and come back, or open the page again), never the console's page.

No session, an expired session, a forged form token, another site's Origin, a body too large, an unknown page,
and an unknown or suspended tenant's address (one neutral 404 for both, naming nothing).
"""

from __future__ import annotations

import re
from html import unescape

from tests.functional.conftest import Api, TenantKeys
from tests.functional.member_helpers import MEMBER_COOKIE, member_signed_up, site
from tests.functional.test_console_sign_in import Browser, hidden

PHONE = "+79161234567"


def heading(page: str) -> str:
    found = re.search(r"<h1>([^<]*)</h1>", page)
    assert found, page[:500]
    return unescape(found.group(1))


def alert(page: str) -> str:
    found = re.search(r'<div class="alert" role="alert"><p>([^<]*)</p></div>', page)
    assert found, page[:500]
    return unescape(found.group(1))


def action(page: str) -> tuple[str, str]:
    found = re.search(r'<p class="m-actions"><a class="btn btn-primary" href="([^"]*)">([^<]*)</a></p>', page)
    assert found, page[:500]
    return unescape(found.group(1)), unescape(found.group(2))


def assert_member_page(page: str, tenant_name: str) -> None:
    """The member site's page (its layout, the tenant's name and stylesheet), not the console's."""
    assert '<body class="m">' in page and "Loyalty console" not in page and 'href="/console"' not in page
    assert f"<span>{tenant_name}</span>" in page and "/brand.css?v=" in page
    assert page.count("<h1>") == 1


def test_a_post_without_a_session_asks_to_sign_in_again_and_come_back(api: Api, tenant: TenantKeys) -> None:
    name = f"{tenant.tenant_id} LLC"
    stranger = Browser(api)
    r = stranger.post(f"{site(tenant.tenant_id)}/profile", {"csrf": "x", "first_name": "Anna"})
    assert r.status_code == 403
    assert_member_page(r.text, name)
    assert heading(r.text) == "Please sign in again"
    assert alert(r.text).startswith("Your session has ended, so this was not done.")
    assert action(r.text) == (f"/m/{tenant.tenant_id}/sign-in?next=/m/{tenant.tenant_id}/profile&lang=en",
                              "Sign in again")
    # The sign-in page it leads to carries the way back through the code step.
    back = stranger.get(action(r.text)[0])
    assert back.status_code == 200 and hidden(back.text, "next") == f"/m/{tenant.tenant_id}/profile"
    # A form with no page of its own goes back to the nearest page above it, or home.
    wallet = stranger.post(f"{site(tenant.tenant_id)}/card/123/google-wallet", {"csrf": "x"})
    assert wallet.status_code == 403
    assert action(wallet.text)[0] == f"/m/{tenant.tenant_id}/sign-in?next=/m/{tenant.tenant_id}/card&lang=en"
    consents = stranger.post(f"{site(tenant.tenant_id)}/consents", {"csrf": "x", "kind": "sms", "granted": "0"})
    assert action(consents.text)[0] == f"/m/{tenant.tenant_id}/sign-in?next=/m/{tenant.tenant_id}&lang=en"
    # In Russian, for a Russian browser.
    ru = Browser(api, "ru").post(f"{site(tenant.tenant_id)}/profile", {"csrf": "x"})
    assert ru.status_code == 403 and '<html lang="ru">' in ru.text
    assert heading(ru.text) == "Войдите снова" and action(ru.text)[1] == "Войти снова"


def test_an_ended_session_and_a_forged_token_are_refused_on_the_sites_own_page(api: Api, tenant: TenantKeys) -> None:
    name = f"{tenant.tenant_id} LLC"
    member = member_signed_up(api, tenant.tenant_id, PHONE, first_name="Anna")
    profile = member.get(f"{site(tenant.tenant_id)}/profile")
    csrf = hidden(profile.text, "csrf")
    forged = member.post(f"{site(tenant.tenant_id)}/profile", {"csrf": "forged", "first_name": "Mallory"})
    assert forged.status_code == 403
    assert_member_page(forged.text, name)
    assert heading(forged.text) == "This form has expired"
    assert alert(forged.text).startswith("Nothing was changed.")
    assert action(forged.text) == (f"/m/{tenant.tenant_id}/profile?lang=en", "Open the page again")
    assert 'name="csrf"' in forged.text  # still signed in: the header's sign-out form
    customers = api.get("/v1/customers?phone=%2B79161234567", tenant.admin).data
    assert customers["first_name"] == "Anna"
    # Another site's form: refused before anything, on the site's own page.
    foreign = member.post(f"{site(tenant.tenant_id)}/profile", {"csrf": csrf, "first_name": "Mallory"},
                          Origin="https://evil.example")
    assert foreign.status_code == 403
    assert_member_page(foreign.text, name)
    assert heading(foreign.text) == "This form was not sent from this site"
    assert action(foreign.text)[0] == f"/m/{tenant.tenant_id}/profile?lang=en"
    # The session ended elsewhere (signed out on another device): the next post asks to sign in again.
    copy = Browser(api)
    copy.cookies = dict(member.cookies)
    out = member.post(f"{site(tenant.tenant_id)}/sign-out", {"csrf": csrf})
    assert out.status_code == 303 and MEMBER_COOKIE not in member.cookies
    late = copy.post(f"{site(tenant.tenant_id)}/profile", {"csrf": csrf, "first_name": "Mallory"})
    assert late.status_code == 403 and heading(late.text) == "Please sign in again"
    assert action(late.text)[0] == f"/m/{tenant.tenant_id}/sign-in?next=/m/{tenant.tenant_id}/profile&lang=en"
    assert api.get("/v1/customers?phone=%2B79161234567", tenant.admin).data["first_name"] == "Anna"


def test_a_body_too_large_is_refused_on_the_sites_page(api: Api, tenant: TenantKeys) -> None:
    r = Browser(api).post(f"{site(tenant.tenant_id)}/sign-in", {"phone": "1" * 300_000})
    assert r.status_code == 413
    assert_member_page(r.text, f"{tenant.tenant_id} LLC")
    assert heading(r.text) == "This is too large"
    assert action(r.text) == (f"/m/{tenant.tenant_id}/sign-in?lang=en", "Open the page again")
    # Another site's form without a session: nothing done, the way back to the page (it asks to sign in itself).
    foreign = Browser(api).post(f"{site(tenant.tenant_id)}/profile", {"csrf": "x"}, Origin="https://evil.example")
    assert foreign.status_code == 403 and heading(foreign.text) == "This form was not sent from this site"
    assert action(foreign.text) == (f"/m/{tenant.tenant_id}/profile?lang=en", "Open the page again")


def test_an_unknown_page_is_the_sites_own_404(api: Api, tenant: TenantKeys) -> None:
    for path in ("/no-such-page", "/card/123", "/a/b"):
        r = Browser(api).get(f"{site(tenant.tenant_id)}{path}")
        assert r.status_code == 404, path
        assert_member_page(r.text, f"{tenant.tenant_id} LLC")
        assert heading(r.text) == "Page not found"
        assert action(r.text) == (f"/m/{tenant.tenant_id}/sign-in?lang=en", "Sign in")
    member = member_signed_up(api, tenant.tenant_id, PHONE)
    r = member.get(f"{site(tenant.tenant_id)}/no-such-page?lang=ru")
    assert r.status_code == 404 and heading(r.text) == "Страница не найдена"
    assert action(r.text) == (f"/m/{tenant.tenant_id}?lang=ru", "К моей карте")  # noqa: RUF001
    # The language switch stays on the same address.
    assert f'href="/m/{tenant.tenant_id}/no-such-page?lang=en"' in r.text


def test_an_unknown_and_a_suspended_tenant_are_the_same_neutral_404(api: Api, tenant: TenantKeys) -> None:
    unknown = Browser(api).get("/m/no-such-tenant/sign-in")
    assert unknown.status_code == 404
    assert '<body class="m">' in unknown.text and "Loyalty console" not in unknown.text
    assert heading(unknown.text) == "This site does not exist"
    assert "brand.css?v=" not in unknown.text and "no-such-tenant LLC" not in unknown.text
    hostile = Browser(api).get("/m/%3Cscript%3Ealert(1)%3C%2Fscript%3E/sign-in")
    assert hostile.status_code == 404 and heading(hostile.text) == "This site does not exist"
    assert "<script>" not in hostile.text
    suspended = api.patch(f"/v1/agency/tenants/{tenant.tenant_id}", tenant.agency, {"status": "suspended"})
    assert suspended.status_code == 200, suspended.data
    from chalicelib.services.program import catalog

    catalog.clear()
    for method, path in (("GET", "/sign-in"), ("GET", ""), ("GET", "/profile"), ("POST", "/sign-in"),
                         ("GET", "/brand.css"), ("GET", "/no-such-page")):
        browser = Browser(api)
        url = f"{site(tenant.tenant_id)}{path}"
        r = browser.get(url) if method == "GET" else browser.post(url, {"phone": PHONE})
        assert r.status_code == 404, (method, path, r.status_code)
        assert heading(r.text) == "This site does not exist", path
        assert f"{tenant.tenant_id} LLC" not in r.text and "brand.css?v=" not in r.text
        assert re.sub(r"/m/[\w-]+", "", r.text) == re.sub(r"/m/[\w-]+", "", unknown.text.replace(
            "/sign-in", path))  # the same page as for a tenant that does not exist
    ru = Browser(api, "ru").get(f"{site(tenant.tenant_id)}/sign-in")
    assert heading(ru.text) == "Такого сайта нет"
