"""The daily sweep's pure step: points and gift money expiry, tier reviews, and its idempotence."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from chalicelib.domain import tiers
from chalicelib.domain.cards import CardKind, CardState, CardStatus
from chalicelib.domain.maintenance import maintain
from chalicelib.domain.tiers import TierState
from chalicelib.domain.wallet import Lot, Wallet
from chalicelib.schemas.pos import LedgerEntry, MoneyEntry
from chalicelib.schemas.tenancy import Program

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)
LEVELS = [{"id": "silver", "name": "Silver", "threshold": 0}, {"id": "gold", "name": "Gold", "threshold": 100_000}]


def program(*, version: int = 3, tiers_rules: dict[str, Any] | None = None, kind: str = "points") -> Program:
    doc: dict[str, Any] = {"id": "main", "name": "Main", "tenant_id": "t", "version": version, "created_at": T0,
                           "updated_at": T0, "earning": {"rate_bps": 500}, "expiry_days": 30, "kind": kind}
    if tiers_rules is not None:
        doc["tiers"] = tiers_rules
    return Program.model_validate(doc, strict=False)


def card(lots: list[Lot] | None = None, **kw: Any) -> CardState:
    return CardState(number="1000000000009", program_id="main", kind=CardKind.VIRTUAL, status=CardStatus.ACTIVE,
                     wallet=Wallet(lots=lots or []), issued_at=T0, version=4, **kw)


def lot(points: int, earned_days: float, expires_days: float | None, source: str = "r") -> Lot:
    earned = T0 + timedelta(days=earned_days)
    return Lot(points, earned, earned, T0 + timedelta(days=expires_days) if expires_days is not None else None, source)


# --- points expiry ---------------------------------------------------------------------

def test_expired_points_leave_in_one_entry_with_the_rule_version() -> None:
    before = card([lot(100, 0, 30, "r1"), lot(40, 1, 30.5, "r2"), lot(7, 10, 40, "r3"), lot(3, 2, None, "r4")])
    result = maintain(before, program(version=7), T0 + timedelta(days=31))
    assert result.changed
    (entry,) = result.entries
    assert isinstance(entry, LedgerEntry)
    assert (entry.type, entry.points, entry.balance_after, entry.rule_version) == ("expiry", -140, 10, 7)
    assert entry.at == T0 + timedelta(days=31)
    assert [lt.points for lt in result.card.wallet.lots] == [7, 3]
    assert result.card.version == 4, "the version read is kept: the write is conditional on it"
    assert [lt.points for lt in before.wallet.lots] == [100, 40, 7, 3], "the card passed in is left alone"


def test_expiry_at_the_exact_moment_and_not_a_microsecond_before() -> None:
    c = card([lot(50, 0, 30)])
    assert maintain(c, program(), T0 + timedelta(days=30) - timedelta(microseconds=1)).changed is False
    assert maintain(c, program(), T0 + timedelta(days=30)).points == -50


def test_expiry_with_debt_reports_the_total_after_debt() -> None:
    c = card([lot(20, 0, 30), lot(5, 5, 60)])
    c.wallet.debt = 8
    result = maintain(c, program(), T0 + timedelta(days=31))
    assert result.entries[0].points == -20 and result.entries[0].balance_after == 5 - 8
    assert result.card.wallet.debt == 8


def test_nothing_due_is_no_change_and_no_entries() -> None:
    result = maintain(card([lot(50, 0, 30)]), program(), T0 + timedelta(days=3))
    assert result.changed is False and result.entries == []


def test_expiry_without_a_program_still_happens() -> None:
    result = maintain(card([lot(50, 0, 30)]), None, T0 + timedelta(days=31))
    assert result.entries[0].points == -50 and result.entries[0].rule_version is None


# --- gift money ------------------------------------------------------------------------

def test_gift_money_expires_once_and_the_status_stays() -> None:
    gift = card(money=150_000, expires_at=T0 + timedelta(days=365))
    assert maintain(gift, program(kind="gift"), T0 + timedelta(days=364)).changed is False
    result = maintain(gift, program(kind="gift", version=2), T0 + timedelta(days=365))
    (entry,) = result.entries
    assert isinstance(entry, MoneyEntry)
    assert (entry.type, entry.amount, entry.balance_after, entry.rule_version) == ("expiry", -150_000, 0, 2)
    assert result.card.money == 0 and result.card.status is CardStatus.ACTIVE
    assert result.card.next_due is None, "nothing left for the sweep: the card leaves the due index"
    again = maintain(result.card, program(kind="gift"), T0 + timedelta(days=400))
    assert again.changed is False and again.entries == []


def test_an_empty_expired_gift_card_writes_nothing() -> None:
    assert maintain(card(money=0, expires_at=T0), program(kind="gift"), T0 + timedelta(days=1)).changed is False


# --- tiers -----------------------------------------------------------------------------

def grace_rules(**kw: Any) -> dict[str, Any]:
    return {"metric": "spend", "window_days": 30, "levels": LEVELS, "downgrade": "grace", "grace_days": 10, **kw}


def gold_card(rules: dict[str, Any], spent_on: datetime) -> CardState:
    c = card()
    tiers.record(c.tiers, program(tiers_rules=rules).tiers, 150_000, spent_on)
    assert c.tier == "gold"
    return c


def test_grace_downgrade_after_falling_out_of_the_window() -> None:
    rules = grace_rules()
    c = gold_card(rules, T0)
    p = program(tiers_rules=rules, version=5)
    left = T0 + timedelta(days=31)
    first = maintain(c, p, left)
    assert first.changed and first.entries == [], "grace starts: no tier change yet, but a review date to keep"
    assert first.card.tier == "gold" and first.card.tiers.review_at == left + timedelta(days=10)
    assert first.card.next_due == left + timedelta(days=10)
    assert maintain(first.card, p, left + timedelta(days=9)).entries == []
    down = maintain(first.card, p, left + timedelta(days=10))
    (entry,) = down.entries
    assert (entry.type, entry.points, entry.tier, entry.previous_tier, entry.reason, entry.rule_version) == (
        "tier", 0, "silver", "gold", "downgrade", 5)
    assert down.card.tier == "silver"


def test_period_end_downgrade_at_the_end_of_the_period() -> None:
    rules = {"metric": "spend", "window_days": 30, "levels": LEVELS, "downgrade": "period_end", "review_days": 90}
    c = gold_card(rules, T0)
    assert c.tiers.review_at == T0 + timedelta(days=90)
    p = program(tiers_rules=rules)
    assert maintain(c, p, T0 + timedelta(days=89)).entries == []
    down = maintain(c, p, T0 + timedelta(days=90))
    assert [(e.tier, e.previous_tier, e.reason) for e in down.entries] == [("silver", "gold", "downgrade")]


def test_manual_floor_holds_until_it_ends() -> None:
    rules = grace_rules()
    p = program(tiers_rules=rules)
    c = card()
    until = T0 + timedelta(days=60)
    tiers.assign(c.tiers, p.tiers, "gold", reason="VIP", actor="tenant_admin:k", at=T0, until=until)
    held = maintain(c, p, T0 + timedelta(days=45))
    assert held.entries == [] and held.card.tier == "gold"
    expired_floor = maintain(held.card, p, until)
    assert expired_floor.card.tiers.manual is None and expired_floor.entries == []
    down = maintain(expired_floor.card, p, until + timedelta(days=10))
    assert [(e.tier, e.reason) for e in down.entries] == [("silver", "downgrade")]


def test_a_removed_tier_is_replaced_under_the_new_rules() -> None:
    c = card()
    c.tiers = TierState(tier="platinum", since=T0, lifetime=150_000)
    result = maintain(c, program(tiers_rules={"levels": LEVELS}), T0 + timedelta(days=1))
    assert [(e.tier, e.previous_tier, e.reason) for e in result.entries] == [("gold", "platinum", "rules_changed")]


def test_a_program_without_tiers_clears_a_stale_tier_check() -> None:
    c = gold_card(grace_rules(), T0)
    assert c.tiers.check_at is not None
    result = maintain(c, program(), T0 + timedelta(days=31))
    assert result.changed and result.entries == [] and result.card.tiers.check_at is None


def test_expiry_and_tier_change_together_come_in_order() -> None:
    rules = {"metric": "spend", "window_days": 30, "levels": LEVELS, "downgrade": "period_end", "review_days": 30}
    c = gold_card(rules, T0)
    c.wallet = Wallet(lots=[lot(90, 0, 30)])
    result = maintain(c, program(tiers_rules=rules), T0 + timedelta(days=30))
    assert [(e.type, e.points, e.balance_after) for e in result.entries] == [("expiry", -90, 0), ("tier", 0, 0)]


# --- properties ------------------------------------------------------------------------

lots_strategy = st.lists(
    st.builds(lot, st.integers(1, 10_000), st.floats(0, 100, allow_nan=False),
              st.one_of(st.none(), st.floats(0, 200, allow_nan=False)), st.sampled_from(["r1", "r2", "merged"])),
    max_size=12)


@settings(max_examples=150, deadline=None)
@given(lots=lots_strategy, debt=st.integers(0, 500), first=st.floats(0, 250, allow_nan=False),
       later=st.floats(0, 100, allow_nan=False))
def test_entries_explain_the_total_and_nothing_expires_twice(lots: list[Lot], debt: int, first: float,
                                                             later: float) -> None:
    c = card(lots)
    c.wallet.debt = debt
    p = program()
    at1 = T0 + timedelta(days=first)
    at2 = at1 + timedelta(days=later)
    one = maintain(c, p, at1)
    assert c.wallet.total + one.points == one.card.wallet.total
    assert all(e.balance_after == one.card.wallet.total for e in one.entries)
    assert maintain(one.card, p, at1).changed is False, "reprocessing the same moment changes nothing"
    two = maintain(one.card, p, at2)
    assert one.card.wallet.total + two.points == two.card.wallet.total
    at_once = maintain(c, p, at2)
    assert one.points + two.points == at_once.points, "expiring in two steps takes exactly what one step takes"
    assert -at_once.points == sum(lt.points for lt in lots if lt.expired(at2))
    assert all(not lt.expired(at2) for lt in two.card.wallet.lots)
