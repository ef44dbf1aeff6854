"""Gift / prepaid card rules: nominals and limits, top-up room, corrections, expiry."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain import gift_cards as rules
from chalicelib.domain.cards import CardKind, CardState, CardStatus
from chalicelib.domain.wallet import Wallet
from chalicelib.schemas.tenancy import GiftRules

AT = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
PREPAID = GiftRules(reloadable=True, min_amount=1_000, max_amount=200_000, max_balance=300_000, validity_days=30)


def card(**kw: object) -> CardState:
    base: dict = {"number": "4000000000002", "program_id": "gift", "kind": CardKind.VIRTUAL,
                  "status": CardStatus.ACTIVE, "wallet": Wallet(), "issued_at": AT, "activated_at": AT,
                  "money": 10_000, "expires_at": AT + timedelta(days=30)}
    return CardState(**{**base, **kw})


def test_nominals_are_the_only_sale_amounts_when_set() -> None:
    fixed = GiftRules(nominals=[100_000, 50_000])
    assert rules.sale_problem(fixed, 50_000) is None and rules.sale_problem(fixed, 100_000) is None
    problem = rules.sale_problem(fixed, 70_000)
    assert problem == rules.Refusal("amount_not_allowed", "This program sells cards of 50000, 100000 only.",
                                    "one of: 50000, 100000")


@pytest.mark.parametrize(("amount", "code"), [(999, "amount_out_of_range"), (1_000, None), (200_000, None),
                                              (200_001, "amount_out_of_range")])
def test_without_nominals_any_amount_from_min_to_max_sells(amount: int, code: str | None) -> None:
    problem = rules.sale_problem(PREPAID, amount)
    assert (problem.code if problem else None) == code


def test_top_up_needs_a_reloadable_program_and_room_under_max_balance() -> None:
    assert rules.topup_problem(GiftRules(), 0, 1_000) == rules.Refusal(
        "not_reloadable", "Cards of this program cannot be topped up.", "the program is not reloadable")
    assert rules.topup_problem(PREPAID, 100_000, 200_000) is None
    limit = rules.topup_problem(PREPAID, 100_000, 200_001)
    assert limit is not None and limit.code == "amount_out_of_range"
    full = rules.topup_problem(PREPAID, 250_000, 50_001)
    assert full is not None and (full.code, full.issue) == ("balance_limit", "at most 50000")
    assert rules.topup_problem(PREPAID, 250_000, 50_000) is None
    assert rules.room(PREPAID, 300_000) == 0 and rules.room(PREPAID, 1) == 299_999


def test_corrections_stay_between_zero_and_max_balance() -> None:
    assert rules.adjustment_problem(PREPAID, 5_000, -5_000) is None
    below = rules.adjustment_problem(PREPAID, 5_000, -5_001)
    assert below is not None and (below.code, below.issue) == ("insufficient_funds", "at least -5000")
    above = rules.adjustment_problem(PREPAID, 299_000, 1_001)
    assert above is not None and (above.code, above.issue) == ("balance_limit", "at most 1000")


def test_expiry_starts_at_sale_and_a_top_up_only_pushes_it_later() -> None:
    assert rules.expiry_after(PREPAID, AT) == AT + timedelta(days=30)
    assert rules.expiry_after(GiftRules(validity_days=0), AT) is None
    later = AT + timedelta(days=20)
    assert rules.extended_expiry(PREPAID, AT + timedelta(days=30), later) == AT + timedelta(days=50)
    assert rules.extended_expiry(PREPAID, AT + timedelta(days=90), later) == AT + timedelta(days=90)
    assert rules.extended_expiry(PREPAID, None, later) is None, "a card that never expires keeps never expiring"
    assert rules.extended_expiry(GiftRules(validity_days=0), AT + timedelta(days=30), later) is None


def test_a_card_is_expired_by_status_or_by_date() -> None:
    assert rules.is_expired(card(), AT + timedelta(days=29)) is False
    assert rules.is_expired(card(), AT + timedelta(days=30)) is True
    assert rules.is_expired(card(status=CardStatus.EXPIRED), AT) is True
    assert rules.is_expired(card(expires_at=None), AT + timedelta(days=10_000)) is False


def test_only_an_unsold_card_of_the_program_can_be_sold() -> None:
    unsold = card(status=CardStatus.ISSUED, money=0, activated_at=None, kind=CardKind.PLASTIC)
    assert rules.sellable(unsold, "gift") is True
    assert rules.sellable(unsold, "other") is False
    assert rules.sellable(card(), "gift") is False
    assert rules.sellable(card(status=CardStatus.ISSUED, money=0), "gift") is False
