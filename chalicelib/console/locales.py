"""The console's languages, and which one a request gets (no heavy imports: every cold start loads this)."""

from __future__ import annotations

from typing import Literal

Locale = Literal["ru", "en"]
LOCALES: tuple[Locale, ...] = ("ru", "en")
DEFAULT: Locale = "ru"
"""Most tenants are Russian businesses: Russian unless the person or their browser asks otherwise."""


def choose_locale(asked: str | None, cookie: str | None, accept_language: str | None) -> Locale:
    """`?lang=`, then the language cookie, then the browser's first of ours, else Russian."""
    for value in (asked, cookie):
        if value in LOCALES:
            return value
    for part in (accept_language or "").split(","):
        tag = part.split(";")[0].strip().lower()[:2]
        if tag in LOCALES:
            return tag
    return DEFAULT
