"""Request limits per tenant plan: one definition for the deployed usage plans and the local gateway.

Deployed, each plan is an API Gateway usage plan (infra/template.py builds them
from `PLAN_LIMITS`); every tenant has one usage key in its plan's usage plan, so
API Gateway throttles each tenant on its own bucket and a noisy tenant never
slows another. The local stack and the tests enforce the same numbers in the
local gateway (infra/local/gateway.py) with `TokenBucket`.

Pure Python: no AWS imports.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime

from chalicelib.domain.principal import Principal
from chalicelib.domain.roles import Role, ScopeKind

AGENCY_PLAN = "agency"
"""Agency keys (no tenant) are limited on their own plan, per agency."""
PLATFORM_PLAN = AGENCY_PLAN
"""The platform operator's keys (a handful of calls a day) share the agency plan's numbers, on their own key."""


@dataclass(frozen=True)
class Limits:
    rate_per_second: int
    """Steady requests per second (API Gateway `RateLimit`)."""
    burst: int
    """Requests allowed at once above the steady rate (API Gateway `BurstLimit`)."""
    quota_per_day: int
    """Requests per UTC day (API Gateway quota, period DAY)."""


PLAN_LIMITS: dict[str, Limits] = {
    "basic": Limits(rate_per_second=10, burst=20, quota_per_day=100_000),
    "standard": Limits(rate_per_second=50, burst=100, quota_per_day=1_000_000),
    "premium": Limits(rate_per_second=200, burst=400, quota_per_day=10_000_000),
    AGENCY_PLAN: Limits(rate_per_second=20, burst=40, quota_per_day=200_000),
}


ANONYMOUS = ("anonymous", "anonymous")
"""(kind, owner) of the one usage key every failed authentication shares, on `ANONYMOUS_PLAN`."""
ANONYMOUS_PLAN = "basic"


def usage_owner(principal: Principal) -> tuple[str, str]:
    """(kind, owner id) of the usage key that meters this caller: its tenant, else its agency (or the platform)."""
    if principal.scope is ScopeKind.TENANT:
        return "tenant", principal.owner
    if principal.role is Role.AGENCY:
        return "agency", principal.agency_id or principal.owner
    return "platform", principal.owner


def limits_for(plan: str) -> Limits:
    """The limits of `plan`; an unknown plan gets the basic limits, never none."""
    return PLAN_LIMITS.get(plan, PLAN_LIMITS["basic"])


def usage_key(stage: str, kind: str, owner_id: str) -> str:
    """The API Gateway API key value that identifies a tenant (kind "tenant") or an agency (kind "agency").

    Deterministic, so the authorizer names it without a lookup; it is not a
    secret (clients never send it: the authorizer hands it to API Gateway as
    `usageIdentifierKey`). API Gateway wants 20 to 128 characters.
    """
    digest = hashlib.sha256(f"{stage}:{kind}:{owner_id}".encode()).hexdigest()[:32]
    return f"loyalty-{kind}-{digest}"


@dataclass
class TokenBucket:
    """API Gateway's throttle: `burst` tokens, refilled at `rate_per_second`; one token per request."""

    rate_per_second: int
    burst: int
    tokens: float = -1.0
    updated: float = 0.0

    def take(self, now: float) -> float:
        """Take a token at `now` (seconds); 0.0 if allowed, else the seconds until one is available."""
        if self.tokens < 0:
            self.tokens, self.updated = float(self.burst), now
        self.tokens = min(float(self.burst), self.tokens + (now - self.updated) * self.rate_per_second)
        self.updated = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return 0.0
        return (1.0 - self.tokens) / self.rate_per_second


def seconds_to_next_utc_day(at: datetime) -> int:
    """Retry-After for an exhausted daily quota: until the next UTC midnight (at least 1 s).

    A naive `at` is taken as UTC; an aware one is converted (quotas reset at UTC midnight, as API Gateway's do).
    """
    if at.tzinfo is not None:
        at = at.astimezone(UTC)
    seconds = at.hour * 3600 + at.minute * 60 + at.second
    return max(1, 86_400 - seconds)


@dataclass(frozen=True)
class FixedWindow:
    """A fixed counting window: its number since the epoch, seconds until it ends, and when its counter may go."""

    index: int
    retry_after: int
    expires_at_epoch: int


def fixed_window(at: datetime, seconds: int) -> FixedWindow:
    """The window `at` falls in; its counter is kept one more window (TTL) so a late read never sees it vanish."""
    epoch = int(at.timestamp())
    index = epoch // seconds
    ends = (index + 1) * seconds
    return FixedWindow(index=index, retry_after=ends - epoch, expires_at_epoch=ends + seconds)

