"""The member site's page machinery: a member page is a public console page plus the member-session check.

    router = PageRouter("member_pages")

    @member_page(router, "GET", "/m/{tenant_id}/card")
    def card(req: PageRequest, member: Member) -> Response:
        return render(req, member, "member/pages/card.html", card=...)

`member_page` declares the page with `PUBLIC` roles (no staff session is read
or accepted) and, before the handler runs, finds the member by the
`__Host-lp_member` cookie in this tenant's own sessions: none, ended, expired,
another tenant's or an erased member's session sends a GET to the sign-in page
(`?next=` the page) and refuses a POST (403). A POST must also carry the
session's CSRF token (`<input type="hidden" name="csrf" value="{{ member.csrf }}">`);
pages.py has already checked its Origin. The path must contain `{tenant_id}`.

A refused request under `/m/{tenant_id}` (no or an ended session, a bad form
token, another site's Origin, a body too large, an unknown page, an error) is
answered by `refused`: a page of the member site in the tenant's brand and the
member's language that says what happened and leads on (sign in again with
`?next=` the page, or open the page again); an unknown or suspended tenant's
address is one neutral 404, the same for both.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from chalice.app import Response

from chalicelib.console.pages import PUBLIC, PageRequest, PageRouter, gettext, pages, redirect, refusal_page
from chalicelib.domain.member_sessions import Member
from chalicelib.errors import ApiError
from chalicelib.lazy import lazy_module

if TYPE_CHECKING:
    from chalicelib.services.members import sessions as member_sessions
    from chalicelib.services.tenancy import branding
else:
    member_sessions = lazy_module("chalicelib.services.members.sessions")
    branding = lazy_module("chalicelib.services.tenancy.branding")

__all__ = ["Member", "base_url", "member_page", "refused", "render", "sign_in_url"]

MemberHandler = Callable[[PageRequest, Member], Response]


def base_url(tenant_id: str) -> str:
    return f"/m/{quote(tenant_id, safe='')}"


def sign_in_url(tenant_id: str, next_path: str | None = None) -> str:
    url = f"{base_url(tenant_id)}/sign-in"
    return url + ("?next=" + quote(next_path, safe="/") if next_path else "")


def current_member(req: PageRequest) -> Member | None:
    """The member signed in on this tenant's site, or None (for the public pages that adapt to it)."""
    try:
        return member_sessions.authenticate(req.path["tenant_id"], req.cookie_header)
    except member_sessions.NotSignedIn:
        return None


def member_page(router: PageRouter, method: str, path: str) -> Callable[[MemberHandler], MemberHandler]:
    """Declare a page only a signed-in member of the path's tenant opens (see the module's docstring)."""
    assert "{tenant_id}" in path, "a member page lives under /m/{tenant_id}/"

    def decorator(handler: MemberHandler) -> MemberHandler:
        @functools.wraps(handler)
        def page(req: PageRequest) -> Response:
            branding.brand(req.path["tenant_id"])  # 404 for a tenant without a site
            member = current_member(req)
            if member is None:
                if method.upper() == "GET":
                    here = req.spec.path.replace("{tenant_id}", req.path["tenant_id"])
                    for name, value in req.path.items():
                        here = here.replace("{" + name + "}", quote(value, safe=""))
                    return redirect(sign_in_url(req.path["tenant_id"], here))
                raise ApiError(403, "not_signed_in", gettext(req.locale, "Sign in to continue."))
            if method.upper() == "POST" and not member_sessions.csrf_valid(member, req.form.get("csrf")):
                raise ApiError(403, "invalid_form", gettext(req.locale, "This form has expired: open the page "
                                                                        "again."))
            return handler(req, member)

        router.page(method, path, roles=PUBLIC)(page)
        return handler

    return decorator


def render(req: PageRequest, member: Member | None, template: str, status_code: int = 200,
           **context: Any) -> Response:
    """A member-site page: the template with the tenant's brand, the member, and the language switch's URL."""
    tenant_id = req.path["tenant_id"]
    brand = branding.brand(tenant_id)
    here = req.spec.path
    for name, value in req.path.items():
        here = here.replace("{" + name + "}", quote(value, safe=""))
    context.setdefault("self_url", here)
    version = hashlib.sha256(branding.stylesheet(brand).encode()).hexdigest()[:10]
    return req.render(template, status_code, brand=brand, member=member, site=base_url(tenant_id),
                      brand_version=version, **context)


# --- a refused request, on the member site --------------------------------------------------------------------------

REFUSALS: dict[str, tuple[str, str]] = {
    "not_signed_in": ("Please sign in again", "Your session has ended, so this was not done. Sign in again and you "
                                              "come back to this page."),
    "invalid_form": ("This form has expired", "Nothing was changed. Open the page again and send the form once "
                                              "more."),
    "cross_site_request": ("This form was not sent from this site", "Nothing was changed: a form sent from "
                                                                   "another site is never accepted here. Open the "
                                                                   "page on this site and send it again."),
    "payload_too_large": ("This is too large", "What was sent is too large, so nothing was changed."),
    "internal_error": ("Something went wrong", "This could not be done just now. Please try again in a minute."),
}
"""What a refused request says on the member site, by the refusal's code: (heading, text), English msgids."""
NO_PAGE = ("Page not found", "There is no such page on this site.")
NO_SITE = ("This site does not exist", "There is no loyalty program at this address. Check the link you were "
                                       "given.")
NOT_POSSIBLE = ("Not possible", "This request is not valid.")


@refusal_page("/m/{tenant_id}")
def refused(req: PageRequest, err: ApiError) -> Response:
    """The member site's page for a refusal: in the tenant's brand and the member's language, with the way on
    (sign in again and come back, open the page again, or home); an unknown or suspended tenant's address is one
    neutral "this site does not exist" page (404), the same for both, naming nothing."""
    tenant_id = req.path.get("tenant_id", "")
    try:
        brand = branding.brand(tenant_id)
    except ApiError:
        brand = None
    back = _back(req)
    here = _concrete(req.spec.path, req.path) if req.spec.method == "GET" else back
    if brand is None:
        heading, text = NO_SITE
        return _refusal(req, None, None, 404, heading, text, None, None, here)
    member = current_member(req)
    if err.status == 404:
        heading, text = NO_PAGE
        link, label = (base_url(tenant_id), "Go to my card") if member else (sign_in_url(tenant_id), "Sign in")
        return _refusal(req, brand, member, 404, heading, text, link, label, here)
    heading, text = REFUSALS.get(err.code, REFUSALS["internal_error"] if err.status >= 500 else NOT_POSSIBLE)
    if err.code not in REFUSALS and err.status < 500 and err.message:
        text = err.message
    if member is None and err.code == "not_signed_in":
        link, label = sign_in_url(tenant_id, back), "Sign in again"
    else:  # a page that needs a session sends a visitor without one to sign in, then back to it
        link, label = back, "Open the page again"
    return _refusal(req, brand, member, err.status, heading, text, link, label, here)


def _back(req: PageRequest) -> str:
    """The member page to go back to: the refused address's own page if it has one, else the nearest page above
    it (`/card/{number}/google-wallet` -> `/card`), else the member's home."""
    readable = {s.path for s in pages() if s.method == "GET" and s.path.startswith("/m/{tenant_id}")
                and "{page}" not in s.path}
    path = req.spec.path
    while path.startswith("/m/{tenant_id}/"):
        if path in readable:
            return _concrete(path, req.path)
        path = path.rsplit("/", 1)[0]
    return base_url(req.path.get("tenant_id", ""))


def _concrete(path: str, values: dict[str, str]) -> str:
    for name, value in values.items():
        path = path.replace("{" + name + "}", quote(value, safe=""))
    return path


def _refusal(req: PageRequest, brand: branding.Brand | None, member: Member | None, status: int, heading: str,
             text: str, link: str | None, label: str | None, self_url: str) -> Response:
    """`self_url` (the language switch's page) is the page to go back to, never the refused form's address."""
    tenant_id = req.path.get("tenant_id", "")
    if brand is None:
        neutral = branding.Brand("", gettext(req.locale, "Loyalty program"), "#1f5f8b", "#b3541e", None, "RUB", "UTC")
        return req.render("member/refused.html", status, brand=neutral, member=None, site="", brand_version="",
                          self_url=self_url, heading=gettext(req.locale, heading),
                          text=gettext(req.locale, text), link=None, label=None)
    version = hashlib.sha256(branding.stylesheet(brand).encode()).hexdigest()[:10]
    return req.render("member/refused.html", status, brand=brand, member=member, site=base_url(tenant_id),
                      brand_version=version, self_url=self_url, heading=gettext(req.locale, heading),
                      text=gettext(req.locale, text), link=link, label=gettext(req.locale, label) if label else None)
