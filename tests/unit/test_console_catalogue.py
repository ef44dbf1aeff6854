"""The console's one message catalogue: every string a page or a page module shows has its Russian text."""

from __future__ import annotations

import re
from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

from chalicelib.console import pages, render
from chalicelib.console.routes import auth, home

CONSOLE = Path(render.__file__).parent
METHODS = [("**/templates/**.html", "jinja2"), ("**.py", "python")]
OPTIONS = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}


KEYWORDS = {"_": None, "gettext": (2,), "pgettext": ((1, "c"), 2)}
PLACEHOLDER = re.compile(r"%\(\w+\)s")


def catalogue() -> dict[tuple[str, str], str]:
    """Every area's file of the Russian catalogue, together (as render.py reads them): (context, id) -> text."""
    out: dict[tuple[str, str], str] = {}
    for path in sorted((CONSOLE / "locale" / "ru").glob("*.po")):
        with path.open("rb") as po:
            out.update({(m.context or "", str(m.id)): str(m.string) for m in read_po(po) if m.id})
    return out


def test_every_string_of_the_pages_is_translated() -> None:
    found = {(context or "", str(message)) for _, _, message, _, context in
             extract_from_dir(CONSOLE, METHODS, options_map=OPTIONS, keywords=KEYWORDS)}
    shown_by_value = {("", m) for m in (*auth.ROLE_NAMES.values(), *home.ROLE_NAMES, *(m.label for m in pages._MENU))}
    ru = catalogue()
    missing = sorted(key for key in found | shown_by_value if not ru.get(key))
    assert len(found) > 50 and any(context for context, _ in found) and not missing, missing


def test_placeholders_survive_translation() -> None:
    for (_, source), russian in catalogue().items():
        assert sorted(PLACEHOLDER.findall(source)) == sorted(PLACEHOLDER.findall(russian)), (source, russian)


def test_pages_render_in_both_languages_and_money_never_goes_through_a_float() -> None:
    assert render.gettext("ru", "Sign in") == "Вход" and render.gettext("en", "Sign in") == "Sign in"
    assert render.money(123456, "RUB", "ru") == "1\u00a0234,56\u00a0₽"
    assert render.money(123456, "RUB", "en") == "RUB1,234.56"
    assert render.money(10**15 + 1, "RUB", "en") == "RUB10,000,000,000,000.01"
    assert render.money(500, "JPY", "en") == "¥500"
