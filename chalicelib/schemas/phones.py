"""Phone numbers normalised to E.164, so one person is one customer however the till types it.

Kept with the schemas: the `Phone` type normalises with it, and the schemas may not import the domain.
"""

from __future__ import annotations

import phonenumbers

DEFAULT_REGION = "RU"


def normalise(raw: str, region: str = DEFAULT_REGION) -> str:
    """E.164 form of a phone number; ValueError with a readable reason if it is not one."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
