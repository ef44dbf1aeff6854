"""GET /v1/docs and its assets: the reference page renders offline, from this API's origin only, under a strict CSP."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

from chalicelib.api.routes import meta
from tests.functional.conftest import Api

STATIC = Path(__file__).resolve().parents[2] / "chalicelib" / "api" / "static"


class _Page(HTMLParser):
    """Every URL-bearing attribute and every script element of the page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.scripts: list[dict[str, str | None]] = []
        self.script_text: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href", "action", "data-spec-url") and v is not None]
        if tag == "script":
            self.scripts.append(values)
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.script_text.append(data)


def _policy(header: str) -> dict[str, list[str]]:
    directives = [d.split() for d in header.split(";") if d.strip()]
    return {d[0]: d[1:] for d in directives}


def _parse(body: bytes) -> _Page:
    page = _Page()
    page.feed(body.decode())
    return page


def test_the_page_loads_only_same_origin_assets_and_no_inline_script(api: Api) -> None:
    r = api.get("/v1/docs")
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html; charset=utf-8"
    page = _parse(r.body)
    assert not re.search(rb"https?:|//", r.body.replace(b"<!doctype html>", b"")), "another origin in the page"
    assert sorted(page.urls) == sorted(["openapi.json", "openapi.json", "docs/assets/api-docs.5bfb89f4ccfe.js",
                                        "docs/assets/redoc-2.5.4/redoc.standalone.js"])
    assert all(script.get("src") for script in page.scripts) and "".join(page.script_text).strip() == ""
    assert "style=" not in r.body.decode() and "<style" not in r.body.decode()
    # Each script the page names is one of the served assets (the page is /v1/docs: relative to /v1/).
    served = {asset.path for asset in meta.ASSETS}
    assert {"/v1/" + str(script["src"]) for script in page.scripts} <= served


def test_the_page_carries_a_strict_content_security_policy_with_a_fresh_nonce(api: Api) -> None:
    first, second = api.get("/v1/docs"), api.get("/v1/docs")
    policy = _policy(first.headers["Content-Security-Policy"])
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["connect-src"] == ["'self'"] and policy["img-src"] == ["'self'", "data:"]
    assert policy["worker-src"] == ["blob:"]
    assert policy["frame-ancestors"] == ["'none'"] and policy["base-uri"] == ["'none'"]
    assert policy["form-action"] == ["'none'"]
    nonce = policy["style-src"][0].removeprefix("'nonce-").removesuffix("'")
    assert len(policy["style-src"]) == 1 and len(nonce) >= 22
    initializer = next(s for s in _parse(first.body).scripts if "api-docs" in str(s["src"]))
    assert initializer["nonce"] == nonce
    assert _policy(second.headers["Content-Security-Policy"])["style-src"] != policy["style-src"]
    assert first.headers["Cache-Control"] == "no-store"
    assert first.headers["X-Content-Type-Options"] == "nosniff"


def test_each_asset_is_served_with_its_type_and_cached_for_a_year(api: Api) -> None:
    expected = {
        "/v1/docs/assets/redoc-2.5.4/redoc.standalone.js": ("redoc.standalone.js", "text/javascript; charset=utf-8"),
        "/v1/docs/assets/redoc-2.5.4/redoc.standalone.js.LICENSE.txt": (
            "redoc.standalone.js.LICENSE.txt", "text/plain; charset=utf-8"),
        "/v1/docs/assets/api-docs.5bfb89f4ccfe.js": ("api-docs.js", "text/javascript; charset=utf-8"),
    }
    assert {asset.path for asset in meta.ASSETS} == set(expected)
    for path, (file, content_type) in expected.items():
        r = api.get(path)
        assert r.status_code == 200, path
        assert r.headers["Content-Type"] == content_type
        assert r.headers["Cache-Control"] == "public, max-age=31536000, immutable"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        assert r.body == (STATIC / file).read_bytes()


def test_an_unknown_asset_is_a_404_in_the_error_shape(api: Api) -> None:
    for path in ("/v1/docs/assets/unknown.js", "/v1/docs/assets/api-docs.js", "/v1/docs/assets/redoc-2.5.4/LICENSE",
                 "/v1/docs/assets/redoc-2.1.5/redoc.standalone.js"):
        r = api.get(path)
        assert r.status_code == 404, path
        assert r.headers["Content-Type"].startswith("application/json")
        error = r.data["error"]
        assert error["code"] == "not_found" and error["request_id"] == r.headers["X-Request-Id"]
        assert set(error) == {"code", "message", "details", "request_id"}
