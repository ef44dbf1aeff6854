"""Every console page without a path parameter, opened in the browser by each person role that may open it:
axe-core at phone and desktop widths (no serious or critical violation, no sideways scrolling), in Russian
and English. The journeys cover the pages behind ids; this makes sure no page is left unchecked."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from chalicelib.console import routes as _pages  # noqa: F401  (declares every page)
from chalicelib.console.pages import pages
from tests.browser.conftest import check_page
from tests.browser.test_console_journeys import join_and_sign_in
from tests.e2e.conftest import LocalStack

PEOPLE = (("tenant_admin", "ada", True), ("support", "sam", False), ("agency", "aga", True))
"""Role, the name invited for it, and whether the role must enrol a second factor."""

MIN_PAGES = {"tenant_admin": 25, "support": 2, "agency": 6}
"""A floor on the pages each role sees, so a broken filter cannot pass by checking nothing."""

CASES = [(role, name, enrol, lang) for role, name, enrol in PEOPLE for lang in ("ru", "en")]


@pytest.mark.parametrize(("role", "name", "enrol", "lang"), CASES, ids=[f"{c[0]}-{c[3]}" for c in CASES])
def test_every_page_of_the_role_passes_axe(stack: LocalStack, browser: Browser, role: str, name: str, enrol: bool,
                                          lang: str) -> None:
    """One test per role and language, so the parallel workers share the pages rather than one taking them all."""
    key = stack.key("agency")["secret"] if role == "agency" else stack.key("tenant_admin", "coffee-chain")["secret"]
    email = f"{name}-{lang}@{'agency' if role == 'agency' else 'coffee'}.example"
    r = stack.request("POST", "/v1/invitations", key, json={"email": email, "role": role})
    assert r.status_code == 201, r.text
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="en-US")
    page = context.new_page()
    join_and_sign_in(page, stack, email, enrol=enrol)
    checked = []
    for spec in pages():
        if spec.method != "GET" or spec.public or "{" in spec.path or role not in {r.value for r in spec.roles}:
            continue
        page.goto(f"{stack.url}{spec.path}?lang={lang}")
        expect(page.locator("html")).to_have_attribute("lang", lang)
        assert page.locator("h1").count() == 1, (spec.path, lang)
        check_page(page, f"every-{role}{spec.path.replace('/', '-')}-{lang}")
        checked.append(spec.path)
    context.close()
    assert len(set(checked)) >= MIN_PAGES[role], checked
