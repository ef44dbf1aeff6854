"""Indefinite articles in messages built from values (roles, scopes, channels, numbers)."""

from __future__ import annotations

import pytest

from chalicelib.domain.grammar import article


@pytest.mark.parametrize(("word", "expected"), [
    ("agency", "an agency"), ("email", "an email"), ("amount_off", "an amount_off"), ("pos", "a pos"),
    ("tenant_admin", "a tenant_admin"), ("platform", "a platform"), ("support", "a support"), ("sms", "a sms"),
    ("8-digit", "an 8-digit"), ("11-digit", "an 11-digit"), ("18-digit", "an 18-digit"), ("13-digit", "a 13-digit"),
    ("19-digit", "a 19-digit"), ("80-digit", "an 80-digit"), ("1-digit", "a 1-digit"), ("110-digit", "a 110-digit"),
    ("11000", "an 11000"),
])
def test_the_article_follows_the_word(word: str, expected: str) -> None:
    assert article(word) == expected


def test_a_sentence_starts_with_a_capital() -> None:
    assert (article("agency", capital=True), article("pos", capital=True)) == ("An agency", "A pos")
