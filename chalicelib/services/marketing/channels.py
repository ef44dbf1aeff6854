"""Providers that carry a rendered message: SES for e-mail, SNS (or another registered gateway) for SMS.

A provider returns its message id or raises: `TransientSendError` when trying
again later may work (throttling that outlasted our backoff), `PermanentSendError`
when it cannot (a rejected address). SMS gateways are registered by name, so
a tenant's `sms_provider` setting picks one without code changes elsewhere.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from email import policy
from email.header import Header
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from typing import Protocol, TypeVar

from botocore.exceptions import ClientError

from chalicelib.storage.aws import client

THROTTLING_CODES = frozenset({"Throttling", "ThrottlingException", "TooManyRequestsException"})
MAX_ATTEMPTS = 4
MIME_POLICY = policy.compat32.clone(linesep="\r\n")
"""Raw messages go out with CRLF line ends, as RFC 5322 (and SES) expect."""
T = TypeVar("T")


class TransientSendError(Exception):
    """The provider may accept the message later: the caller releases its claim and lets SQS redeliver."""


class PermanentSendError(Exception):
    """The provider refused the message for good (bad address, rejected content)."""


class EmailProvider(Protocol):
    def send_email(self, sender: str, to: str, subject: str, body: str,
                   headers: Mapping[str, str] | None = None, html: str | None = None) -> str: ...


class SmsProvider(Protocol):
    def send_sms(self, to: str, body: str, sender_id: str | None, transactional: bool) -> str: ...


def backoff(attempt: int) -> float:
    """Full jitter growing from 100 ms, capped at 2 s: a few tries fit well inside the worker's timeout."""
    return random.uniform(0, min(2.0, 0.1 * (2**attempt)))


def with_retries(call: Callable[[], T], sleep: Callable[[float], None] = time.sleep) -> T:
    """Run `call`, retrying throttling with backoff (on top of botocore's own retries).

    Still throttled, or a provider-side (5xx) error -> TransientSendError; any other refusal -> PermanentSendError.
    """
    for attempt in range(MAX_ATTEMPTS):
        try:
            return call()
        except ClientError as err:
            code = err.response.get("Error", {}).get("Code", "")
            status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400))
            if status >= 500:
                raise TransientSendError(code or str(status)) from err
            if code not in THROTTLING_CODES:
                raise PermanentSendError(code or "provider_error") from err
            if attempt == MAX_ATTEMPTS - 1:
                raise TransientSendError(code) from err
            sleep(backoff(attempt))
    raise AssertionError("unreachable")


def mime_message(sender: str, to: str, subject: str, body: str, headers: Mapping[str, str],
                 html: str | None = None) -> bytes:
    """A UTF-8 message (base64 parts, RFC 2047 subject: Cyrillic survives any relay) with extra headers.

    Text only: one text/plain part. With `html`: multipart/alternative, text/plain first and text/html
    second (RFC 2046: the last part a client can show is the preferred one; text-only clients and spam
    filters read the first).
    The compat32 generator folds only between words: the modern one would turn a long List-Unsubscribe URL
    into encoded words, which no mail client reads as a link.
    """
    message: MIMEText | MIMEMultipart
    if html is None:
        message = MIMEText(body, "plain", "utf-8")
    else:
        message = MIMEMultipart("alternative")
        message.attach(MIMEText(body, "plain", "utf-8"))
        message.attach(MIMEText(html, "html", "utf-8"))
    message["From"] = sender
    message["To"] = to
    # typeshed types header values as str; the email package folds a Header object itself (RFC 2047).
    message["Subject"] = Header(subject, "utf-8", header_name="Subject")  # type: ignore[assignment]
    for name, value in headers.items():
        message[name] = value
    return message.as_bytes(policy=MIME_POLICY)


class SesEmail:
    def send_email(self, sender: str, to: str, subject: str, body: str,
                   headers: Mapping[str, str] | None = None, html: str | None = None) -> str:
        """SES `SendEmail` takes no custom headers: with any, or with an HTML part, the message is built here and
        sent raw (one MIME builder for every marketing e-mail)."""
        if headers or html is not None:
            raw = mime_message(sender, to, subject, body, headers or {}, html)
            response = with_retries(lambda: client("ses").send_raw_email(
                Source=sender, Destinations=[to], RawMessage={"Data": raw}))
        else:
            response = with_retries(lambda: client("ses").send_email(
                Source=sender, Destination={"ToAddresses": [to]},
                Message={"Subject": {"Data": subject, "Charset": "UTF-8"},
                         "Body": {"Text": {"Data": body, "Charset": "UTF-8"}}}))
        return str(response["MessageId"])


class SnsSms:
    def send_sms(self, to: str, body: str, sender_id: str | None, transactional: bool) -> str:
        attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String",
                                              "StringValue": "Transactional" if transactional else "Promotional"}}
        if sender_id:
            attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": sender_id}
        response = with_retries(lambda: client("sns").publish(PhoneNumber=to, Message=body,
                                                              MessageAttributes=attributes))
        return str(response["MessageId"])


EMAIL_PROVIDER: EmailProvider = SesEmail()
SMS_PROVIDERS: dict[str, SmsProvider] = {"sns": SnsSms()}


def register_sms(name: str, provider: SmsProvider) -> None:
    """Make another SMS gateway selectable by a tenant's `sms_provider` setting."""
    SMS_PROVIDERS[name] = provider


def sms_provider(name: str) -> SmsProvider:
    try:
        return SMS_PROVIDERS[name]
    except KeyError:
        raise PermanentSendError(f"unknown sms provider {name}") from None


def verify_email_identity(address: str) -> None:
    """Ask SES to verify a sender address (SES mails a confirmation link to it)."""
    with_retries(lambda: client("ses").verify_email_identity(EmailAddress=address))
