"""English for messages built from values: "an agency key", "a pos key", "an 18-digit number".

Why: messages that put a role, a scope, a channel or a number after a fixed "A"
read "A agency key may not..." for half of the values. Kept with the schemas, whose
validators build such messages too and may not import the domain.
"""

from __future__ import annotations


def _takes_an(word: str) -> bool:
    """By sound for numbers (eight, eleven, eighteen, 80-89...: "an"), by first letter for words."""
    digits = word.split("-", 1)[0].replace(",", "")
    if digits.isdigit():
        return digits.startswith("8") or (len(digits) % 3 == 2 and digits.startswith(("11", "18")))
    return word[:1].lower() in ("a", "e", "i", "o", "u")


def article(word: str, *, capital: bool = False) -> str:
    """`word` after its indefinite article: article("agency") == "an agency", capital=True starts a sentence."""
    chosen = "an" if _takes_an(word) else "a"
    return f"{chosen.capitalize() if capital else chosen} {word}"
