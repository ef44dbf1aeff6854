"""Gift and prepaid card rules: what may be sold or loaded, and when the money expires. Pure: no storage, no clock.

A problem is reported as `Refusal(code, message, issue)`: the service turns it
into a 422 naming the field, so the till can show why.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from chalicelib.domain.cards import CardState, CardStatus
from chalicelib.schemas.tenancy import GiftRules


@dataclass(frozen=True)
class Refusal:
    code: str
    message: str
    issue: str


def _range_problem(rules: GiftRules, amount: int) -> Refusal | None:
    if rules.min_amount <= amount <= rules.max_amount:
        return None
    return Refusal("amount_out_of_range", f"The amount must be between {rules.min_amount} and {rules.max_amount}.",
                   f"between {rules.min_amount} and {rules.max_amount}")


def sale_problem(rules: GiftRules, amount: int) -> Refusal | None:
    """A card is sold with one of the program's nominals, or (no nominals) any amount from min to max."""
    if rules.nominals:
        if amount in rules.nominals:
            return None
        allowed = ", ".join(str(n) for n in sorted(rules.nominals))
        return Refusal("amount_not_allowed", f"This program sells cards of {allowed} only.", f"one of: {allowed}")
    return _range_problem(rules, amount)


def room(rules: GiftRules, money: int) -> int:
    """How much more money the card may hold."""
    return max(rules.max_balance - money, 0)


def topup_problem(rules: GiftRules, money: int, amount: int) -> Refusal | None:
    """A top-up needs a reloadable program, an amount from min to max, and room under max_balance."""
    if not rules.reloadable:
        return Refusal("not_reloadable", "Cards of this program cannot be topped up.", "the program is not reloadable")
    problem = _range_problem(rules, amount)
    if problem is not None:
        return problem
    if money + amount > rules.max_balance:
        left = room(rules, money)
        return Refusal("balance_limit", f"A card may hold at most {rules.max_balance}; {left} more can be loaded.",
                       f"at most {left}")
    return None


def adjustment_problem(rules: GiftRules, money: int, amount: int) -> Refusal | None:
    """A manual correction never takes the card below zero nor above max_balance."""
    if money + amount < 0:
        return Refusal("insufficient_funds", f"The card holds {money}; it cannot go below zero.", f"at least -{money}")
    if money + amount > rules.max_balance:
        left = room(rules, money)
        return Refusal("balance_limit", f"A card may hold at most {rules.max_balance}; {left} more can be added.",
                       f"at most {left}")
    return None


def expiry_after(rules: GiftRules, at: datetime) -> datetime | None:
    """When money loaded at `at` expires; None when the program's cards never expire."""
    return at + timedelta(days=rules.validity_days) if rules.validity_days else None


def extended_expiry(rules: GiftRules, current: datetime | None, at: datetime) -> datetime | None:
    """Expiry after a top-up at `at`: pushed to `at + validity_days`, never brought forward (None is never)."""
    new = expiry_after(rules, at)
    if new is None or current is None:
        return None
    return max(current, new)


def is_expired(card: CardState, at: datetime) -> bool:
    """Expired by status (the sweep ran) or by date (it has not yet): either way the money cannot move."""
    return card.status is CardStatus.EXPIRED or (card.expires_at is not None and card.expires_at <= at)


def sellable(card: CardState, program_id: str) -> bool:
    """A pre-printed card of this program that was never sold (a series card waiting at the till)."""
    return (card.program_id == program_id and card.status is CardStatus.ISSUED and card.money == 0
            and card.activated_at is None)
