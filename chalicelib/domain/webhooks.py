"""Outbound webhook rules: event types and ids, signatures, URL safety, the retry schedule, when to disable.

Pure functions, no AWS and no network: the service (services/webhooks.py)
stores, queues and sends; these decide.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

EVENT_TYPES: tuple[str, ...] = (
    "card.issued", "card.activated", "purchase.processed", "purchase.refunded", "tier.changed",
    "points.expiring", "survey.completed", "campaign.finished", "report.ready",
)
"""What an endpoint may subscribe to."""
PING = "webhook.ping"
"""Sent only by `POST /v1/webhooks/{id}/ping`, to that endpoint, whatever it subscribed to: not subscribable, since
nothing else emits it (a subscription would never receive anything)."""

SECRET_PREFIX = "whsec_"
ROTATION_OVERLAP = timedelta(hours=24)
"""After a rotation the previous secret still signs (a second `v1=`) this long, so receivers can roll over."""

FIRST_DELAY = timedelta(minutes=1)
MAX_DELAY = timedelta(hours=1)
RETRY_WINDOW = timedelta(hours=24)
"""Attempts stop once the next one would fall later than this after the first."""
SQS_MAX_DELAY_SECONDS = 900

MAX_CONSECUTIVE_FAILURES = 5
"""Events in a row that exhausted their retries before the endpoint is disabled."""
MAX_FAILING = timedelta(hours=24)
"""An endpoint with no success for longer than this, while attempts keep failing, is disabled."""

MAX_URL_LENGTH = 2048
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def event_id(tenant_id: str, event_type: str, subject_id: str) -> str:
    """Deterministic from the operation: a retried operation re-emits the same id, so receivers de-duplicate."""
    digest = hashlib.sha256(f"{tenant_id}|{event_type}|{subject_id}".encode()).hexdigest()
    return "evt_" + digest[:32]


def envelope(event_id_: str, event_type: str, created_at: datetime, tenant_id: str,
             data: dict[str, Any]) -> dict[str, Any]:
    return {"id": event_id_, "type": event_type, "created_at": created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tenant_id": tenant_id, "data": data}


# --- signatures ---------------------------------------------------------------------------

def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of `<timestamp>.<body>` with the endpoint's secret."""
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def signature_header(secrets_: list[str], timestamp: int, body: bytes) -> str:
    """`t=<ts>,v1=<hex>[,v1=<hex>]`: one `v1` per secret in force (the current one first)."""
    return ",".join([f"t={timestamp}", *(f"v1={sign(s, timestamp, body)}" for s in secrets_)])


def signing_secrets(secret: str, previous: str | None, previous_until: datetime | None, now: datetime) -> list[str]:
    if previous and previous_until is not None and now < previous_until:
        return [secret, previous]
    return [secret]


# --- URLs -----------------------------------------------------------------------------------

class UnsafeUrl(ValueError):
    """The URL may not be registered (or connected to); the message says why."""


def _public_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_reserved
                or ip.is_unspecified)


def address_allowed(address: str, allow_loopback: bool) -> bool:
    """May the worker connect to this resolved address? Public ones always; loopback only when allowed."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if allow_loopback and ip.is_loopback:
        return True
    return _public_ip(ip)


def check_url(url: str, allow_loopback_http: bool) -> str:
    """The URL if it may be registered, else UnsafeUrl. Resolves nothing: the worker checks addresses.

    https only (http to 127.0.0.1 / localhost only when `allow_loopback_http`);
    no credentials; IP literals must be public (no SSRF to private,
    link-local or loopback addresses); any port.
    """
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUrl(f"at most {MAX_URL_LENGTH} characters")
    if any(c.isspace() for c in url):
        raise UnsafeUrl("no spaces allowed")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise UnsafeUrl(f"not a valid URL: {exc}") from None
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        raise UnsafeUrl("must be an absolute https:// URL")
    if parts.username is not None or parts.password is not None:
        raise UnsafeUrl("must not contain credentials")
    if parts.fragment:
        raise UnsafeUrl("must not contain a fragment")
    if port == 0:
        raise UnsafeUrl("port 0 is not a port")
    loopback = host in LOOPBACK_NAMES or host.startswith("127.")
    if loopback:
        if not allow_loopback_http:
            raise UnsafeUrl("loopback addresses are not allowed")
        return url
    if parts.scheme != "https":
        raise UnsafeUrl("must use https")
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        if host.endswith(".localhost") or "." not in host:
            raise UnsafeUrl("must name a public host") from None
        return url
    if not _public_ip(ip):
        raise UnsafeUrl("private, loopback and link-local addresses are not allowed")
    return url


# --- retries and disabling ------------------------------------------------------------------

def delay_after(attempt: int) -> timedelta:
    """The wait after failed attempt number `attempt` (1-based): 1 min, 2, 4, ... capped at 1 h."""
    if attempt < 1:
        raise ValueError("attempts start at 1")
    if attempt > 8:
        return MAX_DELAY
    delay: timedelta = FIRST_DELAY * (2 ** (attempt - 1))
    return min(MAX_DELAY, delay)


def next_attempt(attempt: int, first_attempt_at: datetime, now: datetime) -> datetime | None:
    """When to try again after failed attempt `attempt`, or None: the retry window is spent."""
    due = now + delay_after(attempt)
    return due if due - first_attempt_at <= RETRY_WINDOW else None


def schedule() -> list[timedelta]:
    """Every attempt's offset from the first when each one fails at once (for docs and tests)."""
    start = datetime(2000, 1, 1)
    times = [start]
    while (due := next_attempt(len(times), start, times[-1])) is not None:
        times.append(due)
    return [t - start for t in times]


def sqs_delay(due: datetime, now: datetime) -> int:
    """DelaySeconds for a message due at `due` (SQS caps it at 900; later ones are re-delayed by the worker)."""
    seconds = int((due - now).total_seconds() + 0.999)
    return max(0, min(SQS_MAX_DELAY_SECONDS, seconds))


@dataclass(frozen=True)
class Health:
    consecutive_failures: int
    failing_since: datetime | None


def disable_reason(health: Health, now: datetime) -> str | None:
    """Why the endpoint must be disabled now, or None."""
    if health.consecutive_failures >= MAX_CONSECUTIVE_FAILURES:
        return f"{health.consecutive_failures} events in a row failed after every retry"
    if health.failing_since is not None and now - health.failing_since > MAX_FAILING:
        return f"every delivery failed since {health.failing_since.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    return None
