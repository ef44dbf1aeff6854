"""Phone verification on public forms: ask for a code, check it, get a proof for one action."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from chalicelib.schemas.common import Input, Output, Phone

VerificationId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]{8,40}$")]
Code = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}$")]
Proof = Annotated[str, StringConstraints(min_length=10, max_length=600)]


class VerificationStart(Input):
    phone: Phone
    language: Literal["ru", "en"] = Field(default="ru", description="The language of the SMS.")


class VerificationStarted(Output):
    """The same answer whether or not the phone belongs to a customer: nothing here tells."""

    verification_id: str
    expires_at: datetime = Field(description="The code is good until then (5 minutes).")
    attempts: int = Field(description="How many tries the code allows.")
    message: str


class VerificationCheck(Input):
    phone: Phone = Field(description="The phone the code was sent to: a code never verifies another phone.")
    code: Code


class PhoneVerified(Output):
    phone: str = Field(description="The verified phone, E.164.")
    proof: str = Field(description="A signed proof (15 minutes) that one action spends, e.g. a survey "
                                   "response's `phone_verification`.")
    expires_at: datetime
