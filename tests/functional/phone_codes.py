"""Phone verification as a form does it in tests: ask for a code, read the SMS moto kept, check the code."""

from __future__ import annotations

import re
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID
from moto.sns.models import sns_backends

from tests.functional.conftest import Api

REGION = "eu-central-1"
CODE = re.compile(r"\b(\d{6})\b")


def last_code(phone: str) -> str:
    """The code of the newest SMS sent to `phone` (E.164)."""
    texts = [text for to, text in sns_backends[DEFAULT_ACCOUNT_ID][REGION].sms_messages.values() if to == phone]
    assert texts, f"no SMS was sent to {phone}"
    found = CODE.search(texts[-1])
    assert found, texts[-1]
    return found.group(1)


def start(api: Api, tenant_id: str, phone: str, **extra: Any) -> Any:
    return api.post(f"/v1/public/verifications/{tenant_id}", None, {"phone": phone, **extra})


def check(api: Api, tenant_id: str, verification_id: str, phone: str, code: str) -> Any:
    return api.post(f"/v1/public/verifications/{tenant_id}/{verification_id}/check", None,
                    {"phone": phone, "code": code})


def proof_for(api: Api, tenant_id: str, phone: str) -> str:
    """A fresh proof that the phone is held: the whole round trip, asserted at each step."""
    started = start(api, tenant_id, phone)
    assert started.status_code == 201, started.data
    normalised = started.data.get("phone") or _e164(phone)
    checked = check(api, tenant_id, started.data["verification_id"], phone, last_code(normalised))
    assert checked.status_code == 200, checked.data
    return str(checked.data["proof"])


def _e164(phone: str) -> str:
    from chalicelib.domain.phones import normalise

    return normalise(phone)
