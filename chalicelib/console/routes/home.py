"""The console's home: who you are, where you act (the scope switcher), your language; and the static files."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalice.app import Response

from chalicelib.console import assets
from chalicelib.console.pages import PUBLIC, PageRequest, PageRouter, gettext, redirect
from chalicelib.domain.identity import PERSON_ROLES
from chalicelib.errors import ApiError
from chalicelib.lazy import lazy_module

if TYPE_CHECKING:
    from chalicelib.services.identity import accounts, sessions
    from chalicelib.services.tenancy import tenancy
else:
    accounts = lazy_module("chalicelib.services.identity.accounts")
    sessions = lazy_module("chalicelib.services.identity.sessions")
    tenancy = lazy_module("chalicelib.services.tenancy.tenancy")

router = PageRouter("home")
router.section("/console", "Home", roles=PERSON_ROLES, order=0)
ROLE_NAMES = ("platform operator", "agency staff", "administrator", "support operator")


@router.page("GET", "/console", roles=PERSON_ROLES)
def home(req: PageRequest) -> Response:
    session = sessions.current(req.person)
    current = next(m for m in session.memberships if m.scope == session.scope)
    timezone = tenancy.require_tenant(current.scope_id).timezone if current.kind.value == "tenant" else "UTC"
    notice = {"scope": gettext(req.locale, "You now act in this scope."),
              "language": gettext(req.locale, "Your language is saved.")}.get(req.query.get("done", ""))
    names = dict(zip(("platform", "agency", "tenant_admin", "support"),
                     (gettext(req.locale, n) for n in ROLE_NAMES), strict=True))
    return req.render("home.html", session=session, current=current, timezone=timezone, role_names=names,
                      notice_text=notice)


@router.page("POST", "/console/scope", roles=PERSON_ROLES)
def switch_scope(req: PageRequest) -> Response:
    try:
        sessions.switch_scope(req.person, req.form.get("scope", "")[:80])
    except ApiError:
        return redirect("/console")
    return redirect("/console?done=scope")


@router.page("POST", "/console/language", roles=PERSON_ROLES)
def language(req: PageRequest) -> Response:
    accounts.set_locale(req.person, req.form.get("locale", ""))
    return redirect("/console?done=language")


@router.page("GET", "/console/static/{asset}", roles=PUBLIC)
def static(req: PageRequest) -> Response:
    """A versioned static file, cached for a year (its name changes with its content)."""
    found = assets.find(req.path["asset"])
    if found is None:
        raise ApiError(404, "not_found", "")
    content, content_type = found
    return Response(body=content.decode("utf-8"), status_code=200,
                    headers={"Content-Type": content_type, "Cache-Control": assets.IMMUTABLE})
