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
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from chalice.app import Response

from chalicelib.console.pages import PUBLIC, PageRequest, PageRouter, gettext, redirect
from chalicelib.domain.member_sessions import Member
from chalicelib.errors import ApiError
from chalicelib.lazy import lazy_module

if TYPE_CHECKING:
    from chalicelib.services.members import sessions as member_sessions
    from chalicelib.services.tenancy import branding
else:
    member_sessions = lazy_module("chalicelib.services.members.sessions")
    branding = lazy_module("chalicelib.services.tenancy.branding")

__all__ = ["Member", "base_url", "member_page", "render", "sign_in_url"]

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
