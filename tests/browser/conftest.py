"""Journeys in a real headless Chromium against the local stack (`make run`'s own process), driven by Playwright.

The browser is Debian's chromium (`make browser` installs it as root) or Playwright's own build; when
none starts, every browser test fails: a console nobody has clicked through is not tested. Each page a
journey visits is checked with axe-core (vendored, MPL-2.0) for serious and critical violations at
phone and desktop widths. A screenshot of each width lands in build/screenshots/ when the check fails,
or for every page with SCREENSHOTS=1 (`SCREENSHOTS=1 make test-browser`, to look the pages over).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from chalicelib.domain.identity import TOTP_STEP_SECONDS, totp_code
from tests.e2e.conftest import LocalStack

AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
AXE_SOURCE = AXE.read_text()
SCREENSHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
EVERY_SCREENSHOT = os.environ.get("SCREENSHOTS") == "1"
"""Full-page screenshots cost about a fifth of a page check: taken on failure, or always when asked."""
WIDTHS = {"phone": 390, "desktop": 1280}
CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")


def executable() -> str | None:
    """Debian's chromium if present, else None (Playwright's own build, if `make browser` installed it)."""
    chosen = os.environ.get("BROWSER")
    if chosen and Path(chosen).exists():
        return chosen
    return next((c for c in CANDIDATES if Path(c).exists()), shutil.which("chromium"))


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        try:
            launched = playwright.chromium.launch(executable_path=executable(), args=["--no-sandbox"])
        except Exception as exc:  # any failure to start is the one failure to report
            pytest.fail(f"no browser could start (run `make browser`): {exc}", pytrace=False)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    running = LocalStack(tmp_path_factory.mktemp("browser") / "state")
    try:
        yield running.start()
    finally:
        running.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": WIDTHS["desktop"], "height": 900}, locale="en-US")
    yield ctx
    ctx.close()


def admin_of(stack: LocalStack) -> dict[str, Any]:
    return dict(json.loads((stack.state_dir / "admin.json").read_text()))


_USED: dict[tuple[str, str], set[str]] = {}


def used_codes(stack: LocalStack, email: str) -> set[str]:
    """The codes one person of one stack has used: a code is accepted once (tests of a module share a stack)."""
    return _USED.setdefault((stack.url, email), set())


def code_for(secret: str, used: set[str]) -> str:
    """What the authenticator shows, waiting for the next 30 s step near its end or if this one was used."""
    while True:
        now = time.time()
        left = TOTP_STEP_SECONDS - now % TOTP_STEP_SECONDS
        code = totp_code(secret, now)
        if left >= 4 and code not in used:
            used.add(code)
            return code
        time.sleep(left + 0.05)


def outbox_link(stack: LocalStack, to: str, path: str, wait: float = 60.0) -> str:
    """The link to `path` in the newest e-mail to `to` in the local outbox (waiting for the jobs worker)."""
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        messages = requests.get(f"http://127.0.0.1:{stack.moto_port}/_local/outbox.json", params={"to": to},
                                timeout=10).json()["messages"]
        links = [word for word in (messages[0]["body"].split() if messages else []) if path in word]
        if links:
            return str(links[0])
        time.sleep(0.5)
    raise AssertionError(f"no e-mail with a {path} link to {to}")


def check_page(page: Page, name: str) -> None:
    """axe-core at phone and desktop widths: no serious or critical violation, no sideways scrolling; a screenshot
    of a width that fails (of every width with SCREENSHOTS=1)."""
    problems = []
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SOURCE)  # through DevTools, not the page: the page's CSP still forbids inline script
    for label, width in WIDTHS.items():
        page.set_viewport_size({"width": width, "height": 900})
        result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
        found = [f"{label}: {v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
                 for v in result["violations"] if v["impact"] in ("serious", "critical")]
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        if scroll_width > width + 1:
            found.append(f"{label}: the page is {scroll_width} px wide at {width} px (sideways scrolling)")
        if found or EVERY_SCREENSHOT:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / f"{name}-{label}.png"), full_page=True)
        problems += found
    page.set_viewport_size({"width": WIDTHS["desktop"], "height": 900})
    assert not problems, f"{name} ({page.url}):\n" + "\n".join(problems) + f"\nscreenshots: {SCREENSHOTS}"


def opened_pkpass(saved: Path, ca_pem: str) -> dict[str, Any]:
    """The pass.json of a downloaded .pkpass, after checking it as Wallet would: manifest.json holds the SHA-1 of
    every other file of the zip (no more, no fewer), and `signature` is a detached PKCS#7 over manifest.json that
    `openssl smime -verify` accepts against the stack's test CA (`ca_pem`, the `apple_root_ca` of wallet.json)."""
    with zipfile.ZipFile(saved) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(files["manifest.json"])
    assert manifest == {name: hashlib.sha1(data).hexdigest() for name, data in files.items()
                        if name not in ("manifest.json", "signature")}, sorted(files)
    openssl = shutil.which("openssl")
    assert openssl is not None, "openssl verifies the signature as Apple's tools would"
    folder = saved.parent / f"{saved.stem}-checked"
    folder.mkdir(exist_ok=True)
    for name, text in (("manifest.json", files["manifest.json"]), ("signature", files["signature"]),
                       ("ca.pem", ca_pem.encode())):
        (folder / name).write_bytes(text)
    done = subprocess.run([openssl, "smime", "-verify", "-binary", "-inform", "DER", "-in", str(folder / "signature"),
                           "-content", str(folder / "manifest.json"), "-CAfile", str(folder / "ca.pem"),
                           "-purpose", "any", "-out", str(folder / "verified")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert (folder / "verified").read_bytes() == files["manifest.json"]
    content: dict[str, Any] = json.loads(files["pass.json"])
    return content
