"""The README stays short and points into the docs site; every page is in the site; the vendored renderer is pinned.

`make docs` (mkdocs --strict, a dependency of `make test`) checks the links
inside docs/; these checks cover what it cannot see: the README, pages left out
of the navigation, and the files the API serves for GET /v1/docs.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

import yaml

from chalicelib.api.routes import meta

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


def _nav_pages(entries: list[Any]) -> list[str]:
    pages: list[str] = []
    for entry in entries:
        value = next(iter(entry.values())) if isinstance(entry, dict) else entry
        pages += _nav_pages(value) if isinstance(value, list) else [value]
    return pages


def test_the_readme_is_short_and_its_links_resolve() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    targets = re.findall(r"\]\((?!https?://)([^)#\s]+)", readme)
    assert "docs/architecture.md" in targets and "docs/getting-started.md" in targets
    assert [t for t in targets if not (ROOT / t).is_file()] == []
    for command in ("make run", "make test", "make test-unit", "make test-fast", "make lint", "make docs"):
        assert f"`{command}" in readme, command


def test_every_page_is_in_the_navigation_and_every_nav_entry_exists() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    assert config["strict"] is True and config["site_dir"] == "build/site"
    nav = _nav_pages(config["nav"])
    on_disk = sorted(str(p.relative_to(DOCS)) for p in DOCS.rglob("*.md"))
    assert sorted(nav) == on_disk
    assert len(nav) == len(set(nav))
    for page in ("pos-client.md", "API_CHANGELOG.md", "architecture.md", "testing.md", "operations/deploy.md"):
        assert page in nav


def test_no_internal_issue_numbers_in_user_facing_docs() -> None:
    pages = [ROOT / "README.md", *DOCS.rglob("*.md")]
    found = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in pages
             for m in re.finditer(r"\bissues? #?\d+", p.read_text(encoding="utf-8"), re.IGNORECASE)]
    assert found == []


def test_the_vendored_renderer_is_the_pinned_release_with_its_licence() -> None:
    bundle = (meta.STATIC / "redoc.standalone.js").read_text(encoding="utf-8")
    assert f'Version: "{meta.REDOC_VERSION}"' in (meta.STATIC / "redoc.standalone.js.LICENSE.txt").read_text()
    assert f'"{meta.REDOC_VERSION}"' in bundle
    assert "The MIT License" in (meta.STATIC / "LICENSE").read_text(encoding="utf-8")
    assert f"Redoc {meta.REDOC_VERSION}" in (meta.STATIC / "README.md").read_text(encoding="utf-8")
    assert "https://" not in (meta.STATIC / "api-docs.js").read_text(encoding="utf-8")


def test_the_initializer_url_carries_its_content_hash() -> None:
    digest = hashlib.sha256((meta.STATIC / "api-docs.js").read_bytes()).hexdigest()
    assert meta.INITIALIZER_FINGERPRINT == digest[:12], f"set INITIALIZER_FINGERPRINT = {digest[:12]!r} in meta.py"
    assert meta.INITIALIZER.name == f"api-docs.{digest[:12]}.js"


def test_every_served_asset_exists_and_nothing_else_is_served_from_the_folder() -> None:
    served = {asset.file for asset in meta.ASSETS}
    assert all((meta.STATIC / name).is_file() for name in served)
    assert {p.name for p in meta.STATIC.iterdir()} - served == {"LICENSE", "README.md"}
