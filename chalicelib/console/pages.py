"""The console's page table: every page declared with its roles, like the API's routes, and one wrapper for all.

`PageRouter.page` records a `PageSpec` and wraps the handler so that, before
it runs, the person is found by their session cookie, their role is checked
against the page's roles, and a form post proves it comes from our own page
(its Origin and the session's CSRF token). A handler gets a `PageRequest`
and returns a `Response` made with `render` or `redirect`. Whatever goes
wrong ends on a page, never on a stack trace: an unknown session goes to the
sign-in page, a refused role or a missing thing to an error page in the
person's language, anything unexpected to a logged 500 page.

Pages call services, never storage (.importlinter), so nothing the console
does bypasses the rules, limits, validation or audit of the API.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from typing import Any
from urllib.parse import parse_qsl, quote

from chalice.app import Chalice, Response

from chalicelib.console.locales import Locale, choose_locale
from chalicelib.domain.principal import Principal
from chalicelib.domain.roles import Role
from chalicelib.errors import ApiError
from chalicelib.lazy import timed_call, timing_services
from chalicelib.observability import logger
from chalicelib.settings import settings

PUBLIC: frozenset[Role] = frozenset()
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
MAX_FORM_BYTES = 64 * 1024
MAX_UPLOAD_BYTES = 2_621_440
"""A page that takes files (`upload=True`) reads a multipart body of at most 2.5 MB; a larger one is refused."""
MAX_UPLOAD_FILES = 4
LANG_COOKIE = "lp_lang"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; "
                               "frame-src 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cache-Control": "no-store",
}
"""Every page: no inline script or style at all, nothing from another origin, never framed, never cached.

`same-origin`, not `no-referrer`: with no referrer at all a browser sends `Origin: null` on our own form
posts (Fetch standard), and the Origin check could no longer tell our forms from another site's; a link's
token (invitation, reset) still never leaves for another origin.

`frame-src 'self'`: only our own documents in an `<iframe>` (the template editor's preview, itself under
FRAMED_CSP). On every page, not only the editor's: with hx-boost a page swapped in keeps the policy of the
document first loaded, so a preview reached by a boosted link would otherwise be blocked.
"""


def csp(**directives: str) -> str:
    """The pages' Content-Security-Policy with some directives added or replaced (`frame_src="'self'"`).

    For the one page that needs more, e.g. an editor that shows a preview of ours in an `<iframe>`: the
    rest of the policy stays as strict as every other page's.
    """
    parts = dict(part.strip().split(" ", 1) for part in SECURITY_HEADERS["Content-Security-Policy"].split(";"))
    parts.update({name.replace("_", "-"): value for name, value in directives.items()})
    return "; ".join(f"{name} {value}" for name, value in parts.items())


FRAMED_CSP = ("default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'; "
              "base-uri 'none'; form-action 'none'; sandbox")
"""A document of ours shown only inside our own pages' `<iframe sandbox>` (an e-mail's rendered HTML): no
script at all, inline style only (an e-mail's CSS is inlined), images from our origin, framed by us only."""


def framed(html: str, status_code: int = 200) -> Response:
    """A whole HTML document for an `<iframe sandbox>` of our own pages, under `FRAMED_CSP` (not a page)."""
    return Response(body=html, status_code=status_code,
                    headers={"Content-Type": "text/html; charset=utf-8", "Content-Security-Policy": FRAMED_CSP,
                             "X-Frame-Options": "SAMEORIGIN"})


@dataclass(frozen=True)
class Upload:
    """A file sent with a multipart form: its name as the browser gave it, its declared type and its bytes."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class PageSpec:
    method: str
    path: str
    roles: frozenset[Role]
    """Roles that may open the page; empty for the pages of signing in (no session yet)."""
    name: str
    upload: bool = False
    """The page takes `multipart/form-data` (files, up to MAX_UPLOAD_BYTES) besides ordinary forms."""

    @property
    def public(self) -> bool:
        return not self.roles


@dataclass
class PageRequest:
    """What a page handler gets: the person (None on public pages), the input, and their language."""

    spec: PageSpec
    principal: Principal | None
    path: dict[str, str]
    query: dict[str, str]
    form: dict[str, str]
    locale: Locale
    source_ip: str
    user_agent: str
    cookie_header: str | None = None
    csrf: str | None = None
    """The session's CSRF token, for the forms a page renders."""
    extra_headers: dict[str, str] = field(default_factory=dict)
    """Headers of this page's answer that replace the defaults (e.g. `csp(frame_src="'self'")`)."""
    files: dict[str, Upload] = field(default_factory=dict)
    """The files of a multipart form post, by input name (pages declared with `upload=True`)."""

    @property
    def person(self) -> Principal:
        assert self.principal is not None, "a public page has no person"
        return self.principal

    @property
    def actor(self) -> str:
        from chalicelib.domain.identity import person_actor

        return person_actor(self.person.user_id or "", self.person.email or "")

    def render(self, template: str, status_code: int = 200, **context: Any) -> Response:
        from chalicelib.console import render

        body = render.page(template, self.locale, request=self, sections=menu(self.principal), **context)
        return Response(body=body, status_code=status_code,
                        headers={"Content-Type": "text/html; charset=utf-8", **self.extra_headers})


PageHandler = Callable[[PageRequest], Response]


@dataclass
class _Entry:
    spec: PageSpec
    view: Callable[..., Response]


@dataclass(frozen=True)
class MenuItem:
    order: int
    path: str
    label: str
    """An English msgid (the catalogue translates it)."""
    roles: frozenset[Role]


_ENTRIES: list[_Entry] = []
_MENU: list[MenuItem] = []
_app: Chalice | None = None


def pages() -> list[PageSpec]:
    return [e.spec for e in _ENTRIES]


def menu(principal: Principal | None) -> list[tuple[str, str]]:
    """The sections a person's role opens: (path, label), for the navigation of every page."""
    if principal is None:
        return []
    return [(m.path, m.label) for m in sorted(_MENU, key=lambda m: (m.order, m.path)) if principal.role in m.roles]


class PageRouter:
    """Collects the pages of one area of the console (a module under chalicelib/console/routes)."""

    def __init__(self, area: str) -> None:
        self.area = area

    def section(self, path: str, label: str, *, roles: frozenset[Role] | set[Role], order: int) -> None:
        """Put a section in the navigation for these roles (label: an English msgid of the catalogue)."""
        _MENU.append(MenuItem(order, path, label, frozenset(roles)))

    def page(self, method: str, path: str, *, roles: frozenset[Role] | set[Role],
             upload: bool = False) -> Callable[[PageHandler], PageHandler]:
        def decorator(handler: PageHandler) -> PageHandler:
            spec = PageSpec(method.upper(), path, frozenset(roles), f"console_{self.area}_{handler.__name__}", upload)
            _ENTRIES.append(_Entry(spec, _make_view(spec, handler)))
            return handler

        return decorator


def redirect(location: str, set_cookie: str | None = None) -> Response:
    """303 See Other: after a form post the browser GETs the next page (a reload never re-posts)."""
    headers: dict[str, str | list[str]] = {"Location": location, **SECURITY_HEADERS}
    if set_cookie:
        headers["Set-Cookie"] = set_cookie
    return Response(body="", status_code=303, headers=headers)


def gettext(locale: Locale, message: str) -> str:
    """A message in the person's language (the catalogue is loaded by the first page that needs it)."""
    from chalicelib.console import render

    return render.gettext(locale, message)


def register(app: Chalice) -> None:
    global _app
    _app = app
    if any(entry.spec.upload for entry in _ENTRIES) and MULTIPART not in app.api.binary_types:
        app.api.binary_types.append(MULTIPART)  # a file's bytes reach us as sent, not as text
    for entry in _ENTRIES:
        spec = entry.spec
        types = ([FORM, MULTIPART] if spec.upload else [FORM]) if spec.method == "POST" else ["application/json"]
        app.route(spec.path, methods=[spec.method], name=spec.name, content_types=types)(entry.view)


# --- the wrapper ---------------------------------------------------------------------------------------------------

def _make_view(spec: PageSpec, handler: PageHandler) -> Callable[..., Response]:
    @functools.wraps(handler)
    def view(**path_params: str) -> Response:
        assert _app is not None and _app.current_request is not None
        started = time.perf_counter()
        request = _app.current_request
        headers = dict(request.headers)
        locale = choose_locale(dict(request.query_params or {}).get("lang"), _cookie(headers, LANG_COOKIE),
                                      headers.get("accept-language"))
        with timing_services() as service_seconds:
            response = _answer(spec, handler, path_params, request, headers, locale)
        response.headers["Server-Timing"] = (f"page;dur={(time.perf_counter() - started) * 1000:.1f}, "
                                             f"services;dur={service_seconds[0] * 1000:.1f}")
        return response

    return view


def _answer(spec: PageSpec, handler: PageHandler, path_params: dict[str, str], request: Any,
            headers: dict[str, str], locale: Locale) -> Response:
    """The handler's page, or the page that says what went wrong, with the security headers."""
    try:
        req = _page_request(spec, path_params, request, headers, locale)
        response = handler(req)
    except _Redirect as moved:
        response = redirect(moved.location)
    except _TooLarge:
        response = _refusal(spec, path_params, request, headers, locale,
                            ApiError(413, "payload_too_large", gettext(locale, "The file is too large: send at most "
                                                                              "2.5 MB.")))
    except ApiError as err:
        response = _refusal(spec, path_params, request, headers, locale, err)
    except Exception:
        logger.exception("unhandled error on a page", extra={"page": f"{spec.method} {spec.path}"})
        response = _refusal(spec, path_params, request, headers, locale, ApiError(500, "internal_error", ""))
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


class _TooLarge(Exception):
    """A multipart body over MAX_UPLOAD_BYTES."""


class _Redirect(Exception):
    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def _page_request(spec: PageSpec, path_params: dict[str, str], request: Any, headers: dict[str, str],
                  locale: Locale) -> PageRequest:
    form: dict[str, str] = {}
    files: dict[str, Upload] = {}
    if spec.method == "POST":
        _check_origin(headers)
        content_type = headers.get("content-type", "")
        if spec.upload and content_type.lower().startswith(MULTIPART):
            form, files = _multipart(content_type, request.raw_body)
        else:
            form = _form(request.raw_body)
    identity = (request.context or {}).get("identity") or {}
    req = PageRequest(spec, None, dict(path_params), dict(request.query_params or {}), form, locale,
                      str(identity.get("sourceIp") or "-"), headers.get("user-agent", "")[:200],
                      headers.get("cookie"), files=files)
    if spec.public:
        return req
    from chalicelib.services.identity import sessions
    from chalicelib.services.tenancy.keys import AuthFailure

    try:
        principal, chosen = timed_call(sessions.authenticate_cookie, headers.get("cookie"))
    except AuthFailure:
        back = "?next=" + quote(str(request.path), safe="/") if spec.method == "GET" else ""
        raise _Redirect("/console/sign-in" + back) from None
    if spec.method == "POST" and not sessions.check_form_token(principal, form.get("csrf")):
        raise ApiError(403, "invalid_form", "")
    if principal.role not in spec.roles:
        raise ApiError(403, "forbidden", "")
    req.principal = principal
    req.csrf = sessions.csrf_of(principal)
    if not req.query.get("lang"):
        req.locale = choose_locale(chosen, None, None) if chosen else req.locale  # their choice beats the browser
    return req


def _form(raw: bytes | str | None) -> dict[str, str]:
    data = raw.encode() if isinstance(raw, str) else (raw or b"")
    if len(data) > MAX_FORM_BYTES:
        raise ApiError(413, "payload_too_large", "")
    try:
        return dict(parse_qsl(data.decode("utf-8"), keep_blank_values=True, max_num_fields=500))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "invalid_form", "") from None


def _multipart(content_type: str, raw: bytes | str | None) -> tuple[dict[str, str], dict[str, Upload]]:
    """A `multipart/form-data` body (RFC 7578) read with the standard library's MIME parser: its text fields
    and its files. Over MAX_UPLOAD_BYTES, too many parts or not multipart at all: refused before parsing."""
    data = raw.encode() if isinstance(raw, str) else (raw or b"")
    if len(data) > MAX_UPLOAD_BYTES:
        raise _TooLarge()
    if "boundary=" not in content_type or "\r" in content_type or "\n" in content_type:
        raise ApiError(400, "invalid_form", "")
    message = message_from_bytes(b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\n\r\n" + data,
                                 policy=policy.HTTP)
    if not message.is_multipart():
        raise ApiError(400, "invalid_form", "")
    form: dict[str, str] = {}
    files: dict[str, Upload] = {}
    parts = list(message.iter_parts()) if hasattr(message, "iter_parts") else []
    if len(parts) > 500:
        raise ApiError(400, "invalid_form", "")
    for part in parts:
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            continue
        payload = part.get_payload(decode=True)
        body = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is not None:
            if len(files) >= MAX_UPLOAD_FILES:
                raise ApiError(400, "invalid_form", "")
            if body or filename:
                files[name] = Upload(filename[:200], part.get_content_type(), body)
            continue
        try:
            form[name] = body.decode("utf-8")
        except UnicodeDecodeError:
            raise ApiError(400, "invalid_form", "") from None
    return form, files


def _check_origin(headers: dict[str, str]) -> None:
    """A form post must come from our own pages: a browser always sends Origin on a POST."""
    from chalicelib.services.identity.sessions import foreign_origin

    if foreign_origin(headers, settings.stage, settings.console_origins) is not None:
        raise ApiError(403, "cross_site_request", "")


def _cookie(headers: dict[str, str], name: str) -> str | None:
    for part in (headers.get("cookie") or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


RefusalPage = Callable[[PageRequest, ApiError], Response]
"""A site's own page for a refused request (e.g. the member site's, in the tenant's brand)."""

_REFUSAL_PAGES: dict[str, RefusalPage] = {}


def refusal_page(prefix: str) -> Callable[[RefusalPage], RefusalPage]:
    """Pages whose path starts with `prefix` (a page-table path, e.g. `/m/{tenant_id}`) answer a refused request
    (no session, a bad form token, another site's Origin, a body too large, an error) with this page instead of
    the console's. The request it gets has no form (it may be the form that was refused)."""
    def decorator(renderer: RefusalPage) -> RefusalPage:
        _REFUSAL_PAGES[prefix] = renderer
        return renderer

    return decorator


def _refusal(spec: PageSpec, path_params: dict[str, str], request: Any, headers: dict[str, str], locale: Locale,
             err: ApiError) -> Response:
    renderer = next((r for prefix, r in _REFUSAL_PAGES.items()
                     if spec.path == prefix or spec.path.startswith(prefix + "/")), None)
    if renderer is not None:
        identity = (request.context or {}).get("identity") or {}
        req = PageRequest(spec, None, dict(path_params), dict(request.query_params or {}), {}, locale,
                          str(identity.get("sourceIp") or "-"), headers.get("user-agent", "")[:200],
                          headers.get("cookie"))
        try:
            return renderer(req, err)
        except Exception:
            logger.exception("the refusal page failed", extra={"page": f"{spec.method} {spec.path}"})
    return _error_page(spec, locale, err.status, err.message or None)


def _error_page(spec: PageSpec, locale: Locale, status: int, message: str | None) -> Response:
    """A page that says what happened in the person's language, with a way back; never a stack trace."""
    from chalicelib.console import render

    body = render.page("error.html", locale, request=None, sections=[], status=status, message=message or None)
    return Response(body=body, status_code=status, headers={"Content-Type": "text/html; charset=utf-8"})


def listed(fetch: Any, tenant_id: str, limit: int) -> list[Any]:
    """Up to `limit` items of a paged service list (`fetch(tenant_id, page_size, cursor) -> (items, cursor)`),
    for a page's choices (programs, campaigns, questionnaires, templates)."""
    found: list[Any] = []
    cursor: str | None = None
    while len(found) < limit:
        items, cursor = fetch(tenant_id, 100, cursor)
        found += items
        if cursor is None:
            break
    return found[:limit]
