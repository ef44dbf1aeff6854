"""Wallet passes: the staff routes' answers, Apple's pass web service bodies, and the update queue's message."""

from __future__ import annotations

from typing import Literal

from pydantic import ConfigDict, Field

from chalicelib.schemas.common import Input, Output, Query

PKPASS_TYPE = "application/vnd.apple.pkpass"
"""The media type of an Apple Wallet pass (binary: app.py lists it in the API's binary types)."""


class GoogleSaveLink(Output):
    serial_number: str = Field(description="The card's pass serial (the same for its Apple pass).")
    object_id: str = Field(description="The Google Wallet loyalty object id.")
    save_url: str = Field(description="Open it on the phone: https://pay.google.com/gp/v/save/<signed JWT>.")


class DeviceRegistration(Input):
    """Apple's body for registering a device for a pass's updates."""

    push_token: str = Field(alias="pushToken", min_length=1, max_length=200, pattern=r"^[0-9A-Fa-f]+$")


class GoogleSigningKey(Input):
    """Google's intermediate signing key: `signedKey` (a JSON string of keyValue and keyExpiration) and the root
    keys' signatures of it."""

    model_config = ConfigDict(extra="ignore", strict=True, defer_build=True, populate_by_name=True)
    signed_key: str = Field(alias="signedKey", min_length=2, max_length=2000)
    signatures: list[str] = Field(min_length=1, max_length=10)


class GoogleCallback(Input):
    """Google Wallet's save/delete callback: a PaymentMethodToken-style message signed with ECv2SigningOnly.

    Fields Google may add later are ignored; what is signed is checked in the service.
    """

    model_config = ConfigDict(extra="ignore", strict=True, defer_build=True, populate_by_name=True)
    protocol_version: str = Field(alias="protocolVersion", max_length=40)
    signature: str = Field(max_length=400)
    intermediate_signing_key: GoogleSigningKey = Field(alias="intermediateSigningKey")
    signed_message: str = Field(alias="signedMessage", min_length=2, max_length=4000)


class GoogleCallbackAccepted(Output):
    event: Literal["save", "del"]
    serial_number: str


class SerialsQuery(Query):
    passes_updated_since: str | None = Field(default=None, alias="passesUpdatedSince", max_length=32)


class UpdatedSerials(Output):
    """Apple's answer: the serials changed since the tag, and the tag to ask with next time."""

    serialNumbers: list[str]
    lastUpdated: str


class DeviceLog(Input):
    """Apple's body for a device's error log about our passes."""

    logs: list[str] = Field(min_length=1, max_length=200)


class PassUpdateMessage(Input):
    """The wallet queue's message: one change (tag) of one pass, to push to its devices and Google."""

    v: Literal[1] = 1
    tenant_id: str
    serial: str
    tag: int
    attempt: int = Field(default=1, ge=1)


class ClassUpdateMessage(Input):
    """The wallet queue's other message: the tenant's look changed (tag), PATCH its Google loyalty class."""

    v: Literal[1] = 1
    kind: Literal["class"] = "class"
    tenant_id: str
    tag: int
    attempt: int = Field(default=1, ge=1)
