"""Rendering the console: Jinja2 (autoescaped), one message catalogue, the tenant's money and time.

Every string a page shows goes through `_()` / `{% trans %}`; the source
strings are English and `locale/ru/*.po` (one file per area of the console,
one catalogue) is the Russian, read at the first use (Babel compiles it in
memory: no build step). Money is kept in
minor units and shown in the tenant's currency (kopecks as roubles), times in
the tenant's zone, both in the person's language.
"""

from __future__ import annotations

import functools
import io
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from babel import dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from chalicelib.console import assets
from chalicelib.console.locales import LOCALES, Locale

HERE = Path(__file__).parent


def page(template: str, locale: Locale, **context: Any) -> str:
    return _environment(locale).get_template(template).render(locale=locale, **context)


def gettext(locale: Locale, message: str) -> str:
    return str(_translations(locale).gettext(message))


def money(minor: int, currency: str, locale: Locale) -> str:
    """An amount in minor units (kopecks, cents) in its currency: exact, never through a float."""
    exponent = numbers.get_currency_precision(currency)
    return str(numbers.format_currency(Decimal(minor).scaleb(-exponent), currency, locale=locale))


def number(value: int, locale: Locale) -> str:
    return str(numbers.format_decimal(value, locale=locale))


def when(value: datetime | None, timezone: str, locale: Locale) -> str:
    """A moment in the tenant's time zone, in the person's language."""
    if value is None:
        return "—"
    return str(dates.format_datetime(value, "short", tzinfo=dates.get_timezone(timezone), locale=locale))


# --- helpers ----------------------------------------------------------------------------------------------------

@functools.cache
def _translations(locale: Locale) -> Translations:
    """The catalogue of a language: every `locale/<lang>/*.po` (one file per area of the console) in one."""
    if locale == "en":
        return Translations()
    catalog = None
    for path in sorted((HERE / "locale" / locale).glob("*.po")):
        with path.open("rb") as po:
            part = read_po(po, locale=locale)
        if catalog is None:
            catalog = part
            continue
        for message in part:
            if message.id:
                catalog[message.id] = message
    if catalog is None:
        raise RuntimeError(f"no catalogue for {locale} in {HERE / 'locale'}")
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(fp=buffer)


@functools.cache
def _environment(locale: Locale) -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True),
                      undefined=StrictUndefined, extensions=["jinja2.ext.i18n"], trim_blocks=True,
                      lstrip_blocks=True)
    env.install_gettext_translations(_translations(locale), newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(static=assets.url, locales=LOCALES)
    env.filters.update(
        money=lambda minor, currency: money(int(minor), currency, locale),
        number=lambda value: number(int(value), locale),
        when=lambda value, tz="UTC": when(value, tz, locale),
    )
    return env
