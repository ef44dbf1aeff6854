"""A card's ledger in plain words (domain/history.py): each entry type, store names, rule versions, tier progress."""

from __future__ import annotations

from datetime import UTC, datetime

from chalicelib.console import render
from chalicelib.domain import history
from chalicelib.schemas.pos import LedgerEntry

AT = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def entry(**kw) -> LedgerEntry:
    return LedgerEntry.model_validate({"entry_id": "e1", "points": 0, "balance_after": 0, "at": AT, **kw})


def test_purchase_names_amount_store_points_and_rule():
    line = history.describe(entry(type="accrual", points=120, receipt_id="r1", store_id="tverskaya", rule_version=3),
                            history.Purchase(total=123_450, store_id="tverskaya"), stores={"tverskaya": "Tverskaya 7"})
    assert line.message == history.BOUGHT_AT
    assert line.values == {"points": 120, "store": "Tverskaya 7", "amount": 123_450}
    assert (line.points, line.rule_version, line.kind) == (120, 3, "accrual")


def test_spent_refunds_expiry_and_adjustments():
    spent = history.describe(entry(type="redemption", points=-50, store_id="x"), stores={"x": "Arbat"})
    assert (spent.message, spent.values, spent.points) == (history.SPENT_AT, {"points": 50, "store": "Arbat"}, -50)
    assert history.describe(entry(type="redemption", points=-50)).message == history.SPENT
    assert history.describe(entry(type="reversal", points=-30, store_id="x"), stores={"x": "A"}).message \
        == history.REFUND_TAKEN_AT
    assert history.describe(entry(type="return", points=50)).message == history.REFUND_RETURNED
    expired = history.describe(entry(type="expiry", points=-70, reason="expired"))
    assert (expired.message, expired.values) == (history.EXPIRED, {"points": 70})
    added = history.describe(entry(type="adjustment", points=10, reason="internal: complaint #42"))
    assert added.message == history.ADDED and "reason" not in added.values
    assert history.describe(entry(type="adjustment", points=-10, reason="x")).message == history.REMOVED


def test_a_questionnaire_reward_names_the_questionnaire():
    reward = entry(type="adjustment", points=75, reason=history.survey_reason("coffee-2026"))
    assert reward.reason == "survey coffee-2026"
    line = history.describe(reward, surveys={"coffee-2026": "How was your <b>coffee</b>?"})
    assert (line.message, line.values) == (history.QUESTIONNAIRE, {"points": 75, "survey": "How was your <b>coffee</b>?"})
    assert history.describe(reward).message == history.QUESTIONNAIRE_UNNAMED, "a deleted questionnaire, unnamed"
    assert history.survey_of(reward) == "coffee-2026"
    for other in (entry(type="adjustment", points=-75, reason="survey coffee-2026"),
                  entry(type="adjustment", points=75, reason="survey coffee 2026"),
                  entry(type="adjustment", points=75, reason="survey #1: a complaint"),
                  entry(type="bonus", points=75, reason="survey coffee-2026")):
        assert history.survey_of(other) is None
    typed = history.describe(entry(type="adjustment", points=10, reason="survey call back"), surveys={"call": "X"})
    assert typed.message == history.ADDED, "an operator's typed reason is not a questionnaire"


def test_bonuses_coupon_and_referral():
    coupon = history.describe(entry(type="bonus", points=100, coupon="SPRING-25"))
    assert (coupon.message, coupon.values["coupon"]) == (history.COUPON_BONUS, "SPRING-25")
    friend = history.describe(entry(type="bonus", points=200, reason="referral: friend c123"))
    assert friend.message == history.REFERRAL_BONUS
    welcome = history.describe(entry(type="bonus", points=100, reason="referral: first qualifying purchase"))
    assert welcome.message == history.WELCOME_REFERRAL


def test_tier_change_uses_tier_names():
    line = history.describe(entry(type="tier", tier="gold", previous_tier="base"), tiers={"gold": "Gold", "base": "Base"})
    assert (line.message, line.values) == (history.TIER_CHANGED, {"tier": "Gold", "previous": "Base"})
    assert history.describe(entry(type="tier", tier="gold")).message == history.TIER_NEW


def test_progress_between_tiers_and_at_the_top():
    levels = [("base", "Base", 0), ("silver", "Silver", 10_000), ("gold", "Gold", 50_000)]
    p = history.progress(levels, "silver", 30_000)
    assert (p.current, p.next_name, p.needed, p.percent) == ("Silver", "Gold", 20_000, 50)
    top = history.progress(levels, "gold", 80_000)
    assert (top.next_name, top.needed, top.percent) == (None, 0, 100)
    assert history.progress(levels, None, 12_000).current == "Silver"
    assert history.progress([], None, 5) is None


def test_every_message_has_russian_with_the_same_placeholders():
    for message in history.MESSAGES:
        russian = render.gettext("ru", message)
        assert russian != message, message
        assert sorted(history_placeholders(russian)) == sorted(history_placeholders(message)), message


def history_placeholders(text: str) -> list[str]:
    import re
    return re.findall(r"%\(\w+\)s", text)
