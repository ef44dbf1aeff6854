"""Every console page without a path parameter, opened in the browser by each person role that may open it:
axe-core at phone and desktop widths (no serious or critical violation, no sideways scrolling), in Russian
and English. The journeys cover the pages behind ids; this makes sure no page is left unchecked."""

from __future__ import annotations

from playwright.sync_api import Browser, expect

from chalicelib.console import routes as _pages  # noqa: F401  (declares every page)
from chalicelib.console.pages import pages
from tests.browser.conftest import check_page
from tests.browser.test_console_journeys import join_and_sign_in
from tests.e2e.conftest import LocalStack

PEOPLE = (("tenant_admin", "ada@coffee.example", True), ("support", "sam@coffee.example", False),
          ("agency", "aga@agency.example", True))


def test_every_page_of_every_role_passes_axe_in_both_languages(stack: LocalStack, browser: Browser) -> None:
    keys = {"tenant_admin": stack.key("tenant_admin", "coffee-chain")["secret"],
            "support": stack.key("tenant_admin", "coffee-chain")["secret"], "agency": stack.key("agency")["secret"]}
    checked = []
    for role, email, enrol in PEOPLE:
        r = stack.request("POST", "/v1/invitations", keys[role], json={"email": email, "role": role})
        assert r.status_code == 201, r.text
        context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
        page = context.new_page()
        join_and_sign_in(page, stack, email, enrol=enrol)
        for spec in pages():
            if spec.method != "GET" or spec.public or "{" in spec.path or role not in {r.value for r in spec.roles}:
                continue
            for lang in ("ru", "en"):
                page.goto(f"{stack.url}{spec.path}?lang={lang}")
                expect(page.locator("html")).to_have_attribute("lang", lang)
                assert page.locator("h1").count() == 1, (spec.path, lang)
                check_page(page, f"every-{role}{spec.path.replace('/', '-')}-{lang}")
                checked.append((role, spec.path, lang))
        context.close()
    assert len({path for _, path, _ in checked}) >= 15, checked
