"""Trigger rules: when each automated message is due, and which occasion makes it fire once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import triggers as rules
from chalicelib.domain.cards import CardKind, CardState, CardStatus
from chalicelib.domain.tiers import TierState
from chalicelib.domain.wallet import Lot, Wallet

T0 = datetime(2026, 11, 2, 7, 0, tzinfo=UTC)  # 10:00 in Moscow
MSK = ZoneInfo("Europe/Moscow")
RANKS = {"main": {"silver": 0, "gold": 1, "platinum": 2}}


def card(number: str = "1000000000009", *, program: str = "main", activated: datetime | None = None,
         tier: str | None = None, since: datetime | None = None, lots: list[Lot] | None = None,
         status: CardStatus = CardStatus.ACTIVE) -> CardState:
    return CardState(number=number, program_id=program, kind=CardKind.VIRTUAL, status=status,
                     wallet=Wallet(lots=lots or []), issued_at=T0 - timedelta(days=300), activated_at=activated,
                     tiers=TierState(tier=tier, since=since))


def lot(points: int, expires_at: datetime) -> Lot:
    earned = T0 - timedelta(days=100)
    return Lot(points, earned, earned, expires_at, "r")


def snap(*cards: CardState, last_purchase: datetime | None = None, born: date | None = None,
         purchases: tuple[rules.Purchase, ...] = (), previous: dict[str, str | None] | None = None,
         status: str = "active") -> rules.Snapshot:
    stats: dict[str, Any] = {"last_purchase_at": last_purchase.isoformat()} if last_purchase else {}
    return rules.Snapshot("c1", {"status": status, "stats": stats}, cards, born, purchases, RANKS, previous or {})


ALL_ON: dict[str, dict[str, Any]] = {
    "welcome": {"enabled": True},
    "birthday": {"enabled": True, "days_before": 3},
    "points_expiring": {"enabled": True, "within_days": 14, "min_points": 100},
    "tier_upgrade": {"enabled": True},
    "win_back": {"enabled": True, "days": 60},
    "feedback": {"enabled": True},
}


def test_welcome_fires_for_a_card_activated_within_the_catch_up_window_once_per_program() -> None:
    fire = rules.welcome(snap(card(activated=T0 - timedelta(hours=20))), "main", T0)
    assert fire == rules.Fire("welcome", "main", "activation", "1000000000009")
    assert fire.dedup_key("c1") == "trigger:welcome:main:activation:c1"
    assert rules.welcome(snap(card(activated=T0 - timedelta(days=3, seconds=1))), "main", T0) is None
    assert rules.welcome(snap(card(activated=None)), "main", T0) is None
    assert rules.welcome(snap(card(activated=T0, program="other")), "main", T0) is None


def test_birthday_fires_inside_the_window_with_the_year_as_occasion() -> None:
    # 5 November is 3 days after 2 November (Moscow): inside a 3-day window, the occasion is 2026.
    fire = rules.birthday(snap(card(), born=date(1990, 11, 5)), "main", T0, MSK, 3)
    assert fire is not None and fire.occasion == "2026" and fire.card_number == "1000000000009"
    assert fire.extra == {"birthday": "2026-11-05"}
    assert rules.birthday(snap(card(), born=date(1990, 11, 6)), "main", T0, MSK, 3) is None
    # Today counts (0 days away); yesterday's birthday is next year's, far away.
    assert rules.birthday(snap(card(), born=date(1990, 11, 2)), "main", T0, MSK, 0) is not None
    assert rules.birthday(snap(card(), born=date(1990, 11, 1)), "main", T0, MSK, 3) is None
    assert rules.birthday(snap(card(), born=None), "main", T0, MSK, 3) is None


def test_birthday_at_new_year_belongs_to_the_next_year_and_uses_local_time() -> None:
    late_december = datetime(2026, 12, 30, 22, 0, tzinfo=UTC)  # already 31 December in Moscow
    fire = rules.birthday(snap(card(), born=date(2000, 1, 2)), "main", late_december, MSK, 2)
    assert fire is not None and fire.occasion == "2027" and fire.extra == {"birthday": "2027-01-02"}
    # In UTC it is still the 30th: 3 days away, outside a 2-day window.
    assert rules.birthday(snap(card(), born=date(2000, 1, 2)), "main", late_december, UTC, 2) is None


def test_birthday_without_a_card_of_the_program_still_fires_but_has_no_card_for_points() -> None:
    fire = rules.birthday(snap(born=date(1990, 11, 2)), "main", T0, MSK, 0)
    assert fire is not None and fire.card_number is None


def test_points_expiring_sums_the_window_and_keys_on_the_first_local_expiry_day() -> None:
    soon = T0 + timedelta(days=5)
    later = T0 + timedelta(days=10)
    s = snap(card(lots=[lot(60, soon), lot(50, later), lot(500, T0 + timedelta(days=30))]))
    fire = rules.points_expiring(s, "main", T0, MSK, 14, 100)
    assert fire is not None
    assert fire.occasion == "2026-11-07"
    assert fire.extra == {"points": 110, "first_day": "2026-11-07", "first_day_points": 60}
    assert rules.points_expiring(s, "main", T0, MSK, 14, 111) is None
    assert rules.points_expiring(s, "main", T0, MSK, 4, 1) is None


def test_points_expiring_at_late_evening_utc_is_the_next_local_day() -> None:
    s = snap(card(lots=[lot(10, datetime(2026, 11, 5, 22, 30, tzinfo=UTC))]))
    fire = rules.points_expiring(s, "main", T0, MSK, 14, 1)
    assert fire is not None and fire.occasion == "2026-11-06"


def test_tier_upgrade_fires_for_a_higher_tier_never_for_a_downgrade() -> None:
    since = T0 - timedelta(days=1)
    up = snap(card(tier="gold", since=since), previous={"1000000000009": "silver"})
    fire = rules.tier_upgrade(up, "main", T0, MSK)
    assert fire is not None and fire.occasion == "gold:2026-11-01" and fire.extra == {"tier": "gold"}
    down = snap(card(tier="gold", since=since), previous={"1000000000009": "platinum"})
    assert rules.tier_upgrade(down, "main", T0, MSK) is None
    first_tier = snap(card(tier="silver", since=since), previous={"1000000000009": None})
    assert rules.tier_upgrade(first_tier, "main", T0, MSK) is None
    old = snap(card(tier="gold", since=T0 - timedelta(days=4)), previous={"1000000000009": "silver"})
    assert rules.tier_upgrade(old, "main", T0, MSK) is None
    unknown_previous = snap(card(tier="gold", since=since))
    assert rules.tier_upgrade(unknown_previous, "main", T0, MSK) is not None


def test_win_back_fires_for_a_lapse_between_n_and_n_plus_a_week_keyed_by_the_last_purchase() -> None:
    last = T0 - timedelta(days=61)
    fire = rules.win_back(snap(card(), last_purchase=last), "main", T0, MSK, 60)
    assert fire is not None and fire.occasion == "2026-09-02" and fire.extra == {"days_since_purchase": 61}
    assert rules.win_back(snap(card(), last_purchase=T0 - timedelta(days=59)), "main", T0, MSK, 60) is None
    assert rules.win_back(snap(card(), last_purchase=T0 - timedelta(days=68)), "main", T0, MSK, 60) is None
    assert rules.win_back(snap(card(), last_purchase=None), "main", T0, MSK, 60) is None
    assert rules.win_back(snap(last_purchase=last), "main", T0, MSK, 60) is None


def test_feedback_invites_for_the_latest_receipt_that_still_has_money() -> None:
    purchases = (rules.Purchase("r-1", T0 - timedelta(days=2), 500), rules.Purchase("r-2", T0 - timedelta(hours=3), 800),
                 rules.Purchase("r-3", T0 - timedelta(hours=1), 0))
    fire = rules.feedback(snap(card(), purchases=purchases), "main", T0)
    assert fire == rules.Fire("feedback", "main", "r-2", None, {"receipt_id": "r-2"})
    assert rules.feedback(snap(card(), purchases=(rules.Purchase("r-0", T0 - timedelta(days=4), 900),)),
                          "main", T0) is None


def test_due_respects_switches_status_and_blocked_cards() -> None:
    s = snap(card(activated=T0 - timedelta(hours=1), tier="gold", since=T0 - timedelta(hours=1),
                  lots=[lot(200, T0 + timedelta(days=3))]),
             born=date(1990, 11, 4), last_purchase=T0 - timedelta(days=62),
             purchases=(rules.Purchase("r-9", T0 - timedelta(hours=2), 100),),
             previous={"1000000000009": "silver"})
    assert [f.kind for f in rules.due(s, "main", ALL_ON, T0, MSK)] == list(rules.KINDS)
    only_birthday = {**{k: {**v, "enabled": False} for k, v in ALL_ON.items()}, "birthday": ALL_ON["birthday"]}
    assert [f.kind for f in rules.due(s, "main", only_birthday, T0, MSK)] == ["birthday"]
    merged = snap(card(activated=T0), status="merged")
    assert rules.due(merged, "main", ALL_ON, T0, MSK) == []
    blocked = snap(card(activated=T0 - timedelta(hours=1), status=CardStatus.BLOCKED))
    assert rules.due(blocked, "main", ALL_ON, T0, MSK) == []


def test_local_run_day_starts_at_the_local_send_time() -> None:
    assert rules.local_run_day(datetime(2026, 11, 2, 6, 59, tzinfo=UTC), MSK, "10:00") is None
    assert rules.local_run_day(datetime(2026, 11, 2, 7, 0, tzinfo=UTC), MSK, "10:00") == date(2026, 11, 2)
    # 01:00 on the 3rd in Moscow: the 3rd's run is not due yet, and the 2nd's is not "today" any more.
    assert rules.local_run_day(datetime(2026, 11, 2, 22, 0, tzinfo=UTC), MSK, "10:00") is None
    assert rules.local_run_day(datetime(2026, 11, 2, 22, 0, tzinfo=UTC), MSK, "00:30") == date(2026, 11, 3)


@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-:.", min_size=1, max_size=180),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=80))
def test_dedup_keys_fit_the_message_contract_and_stay_distinct(occasion: str, customer: str) -> None:
    key = rules.Fire("birthday", "main", occasion, None).dedup_key(customer)
    other = rules.Fire("birthday", "main", occasion + "x", None).dedup_key(customer)
    assert len(key) <= 200 and "#" not in key and " " not in key
    assert key != other
    assert key == rules.Fire("birthday", "main", occasion, None).dedup_key(customer)
