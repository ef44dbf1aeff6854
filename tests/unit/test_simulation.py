"""The promotion cost replay: identical rules cost nothing, a boost never costs points, money is exact."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import simulation as sim
from chalicelib.domain.earning import Line
from chalicelib.domain.tiers import TierState
from chalicelib.schemas.tenancy import ProgramSpec, TierRules

AT = datetime(2026, 11, 3, 10, 0, tzinfo=UTC)
CATEGORIES = ("coffee", "food", "tea")


def program(**changes: Any) -> ProgramSpec:
    body: dict[str, Any] = {"id": "main", "name": "Main", "earning": {"rate_bps": 500},
                            "redemption": {"point_value": 100, "max_share_bps": 3000}}
    for key, value in changes.items():
        body[key] = {**body.get(key, {}), **value} if isinstance(value, dict) else value
    return ProgramSpec.model_validate(body, strict=False)


def receipt(*lines: tuple[str, int], redeemed: int = 0, holder: str = "c1", at: datetime = AT,
            tier: str | None = None) -> sim.Receipt:
    return sim.Receipt(receipt_id="r", at=at, card_number="100", holder=holder, store_id="msk-01", tier_id=tier,
                       lines=tuple(Line(f"sku-{c}", c, 1, a) for c, a in lines), points_redeemed=redeemed)


receipts = st.lists(
    st.builds(lambda lines, redeemed, holder, day: receipt(*lines, redeemed=redeemed, holder=holder,
                                                           at=AT + timedelta(days=day)),
              st.lists(st.tuples(st.sampled_from(CATEGORIES), st.integers(1, 500_000)), min_size=1, max_size=5),
              st.integers(0, 2_000), st.sampled_from(["c1", "c2", "c3"]), st.integers(0, 13)),
    max_size=20)


@given(receipts, st.integers(1, 10_000), st.sampled_from(["down", "half_up"]))
def test_identical_rules_give_zero_extra_points(batch: list[sim.Receipt], rate: int, rounding: str) -> None:
    rules = program(earning={"rate_bps": rate, "rounding": rounding})
    replay = sim.Replay(rules, rules.model_copy(deep=True))
    for r in batch:
        replay.add(r)
    assert replay.total.extra == 0 and replay.total.receipts == len(batch)
    assert not replay.affected
    assert all(f.extra == 0 for f in [*replay.by_day.values(), *replay.by_category.values()])


@given(receipts, st.sampled_from(CATEGORIES), st.integers(10_000, 100_000))
def test_raising_a_category_multiplier_never_reduces_points(batch: list[sim.Receipt], category: str,
                                                             multiplier: int) -> None:
    current = program()
    proposed = program(earning={"category_multipliers": {category: multiplier}})
    replay = sim.Replay(current, proposed)
    for r in batch:
        now, then = replay.add(r)
        assert then >= now
    assert replay.total.extra >= 0
    assert sum(f.current for f in replay.by_category.values()) == replay.total.current
    assert sum(f.proposed for f in replay.by_category.values()) == replay.total.proposed


def test_double_points_on_coffee_by_hand() -> None:
    # 5% of 200.00 RUB coffee = 10 points; doubled 20. 5% of 300.00 RUB food = 15, unchanged.
    promo = {"id": "coffee-x2", "name": "Coffee x2", "starts_at": "2026-11-01T00:00:00Z",
             "ends_at": "2026-11-15T00:00:00Z", "categories": ["coffee"], "multiplier_bps": 20_000}
    replay = sim.Replay(program(), program(earning={"promotions": [promo]}))
    assert replay.add(receipt(("coffee", 20_000), ("food", 30_000))) == (25, 35)
    assert replay.add(receipt(("food", 30_000), holder="c2")) == (15, 15)
    assert replay.add(receipt(("coffee", 20_000), holder="c3", at=datetime(2026, 11, 20, tzinfo=UTC))) == (10, 10)
    assert (replay.total.current, replay.total.proposed, replay.total.extra) == (50, 60, 10)
    assert replay.affected == {"c1"}
    assert {c: (f.current, f.proposed) for c, f in replay.by_category.items()} == {"coffee": (20, 30),
                                                                                   "food": (30, 30)}
    assert replay.by_day[date(2026, 11, 3)].extra == 10 and replay.by_day[date(2026, 11, 20)].extra == 0


def test_points_redeemed_earn_nothing_on_either_side() -> None:
    # 30 points (30.00 RUB) paid of 200.00: 170.00 earns 8.5 -> 8 now, 17 doubled.
    replay = sim.Replay(program(), program(earning={"category_multipliers": {"coffee": 20_000}}))
    assert replay.add(receipt(("coffee", 20_000), redeemed=30)) == (8, 17)


def test_redemption_over_the_proposed_limit_is_capped_not_refused() -> None:
    # Proposed: at most 10% with points: 20 of the 30 points redeemed fit; 180.00 earns 9.
    replay = sim.Replay(program(), program(redemption={"max_share_bps": 1000}))
    assert replay.add(receipt(("coffee", 20_000), redeemed=30)) == (8, 9)


def test_tier_multiplier_of_the_receipt_tier_applies() -> None:
    tiers = {"metric": "spend", "levels": [{"id": "base", "name": "Base", "threshold": 0},
                                           {"id": "gold", "name": "Gold", "threshold": 100_000,
                                            "earn_multiplier_bps": 15_000}]}
    richer = {**tiers, "levels": [tiers["levels"][0], {**tiers["levels"][1], "earn_multiplier_bps": 20_000}]}
    replay = sim.Replay(program(tiers=tiers), program(tiers=richer))
    assert replay.add(receipt(("coffee", 20_000), tier="gold")) == (15, 20)
    assert replay.add(receipt(("coffee", 20_000), tier="base")) == (10, 10)


def test_money_is_half_even_and_rate_in_bps() -> None:
    assert sim.rate_bps(25, 100) == 2500
    assert sim.rate_bps(1, 3) == 3333
    assert sim.rate_bps(0, 100) == 0 and sim.rate_bps(5, 0) == 0
    assert sim.money(10, 100) == 1000
    assert sim.money(10, 100, 2500) == 250
    assert sim.money(1, 1, 5000) == 0 and sim.money(3, 1, 5000) == 2  # 0.5 -> 0, 1.5 -> 2
    assert sim.money(-10, 100, 2500) == -250


def test_receipt_from_doc_takes_refunds_off_and_the_tier_before_an_upgrade() -> None:
    doc = {"card_number": "100", "store_id": "msk-01", "points_redeemed": 5, "at": "2026-11-03T10:00:00+00:00",
           "purchased_at": "2026-11-02T09:00:00+00:00",
           "lines": [{"sku": "a", "category": "coffee", "quantity": 2, "amount": 1000, "refunded_amount": 400},
                     {"sku": "b", "category": "food", "quantity": 1, "amount": 500, "refunded_amount": 500}],
           "response": {"tier": "gold", "tier_upgrade": {"previous": "base", "tier": "gold"}}}
    got = sim.receipt_from_doc("r1", doc, "c1")
    assert got is not None
    assert got.lines == (Line("a", "coffee", 2, 1000), Line("b", "food", 1, 500))
    assert (got.refunded, got.refunded_amount, got.kept_categories()) == ((400, 500), 900, {"coffee"})
    assert got.tier_id == "base" and got.points_redeemed == 5 and got.at == datetime(2026, 11, 2, 9, tzinfo=UTC)
    assert sim.receipt_from_doc("r2", {**doc, "card_number": None}, "c1") is None


def test_tier_counts_under_new_thresholds() -> None:
    rules = TierRules.model_validate({"metric": "spend", "levels": [
        {"id": "base", "name": "Base", "threshold": 0}, {"id": "gold", "name": "Gold", "threshold": 100_000}]},
        strict=False)
    lower = TierRules.model_validate({**rules.model_dump(mode="json"), "levels": [
        {"id": "base", "name": "Base", "threshold": 0}, {"id": "gold", "name": "Gold", "threshold": 50_000}]},
        strict=False)
    states = [TierState(tier="base", lifetime=10_000), TierState(tier="base", lifetime=60_000),
              TierState(tier="gold", lifetime=120_000)]
    counts, approximate = sim.tier_counts(rules, lower, states, AT)
    assert counts == [("base", 2, 1), ("gold", 1, 2)] and approximate is False
    assert sim.tier_counts(rules, None, states, AT) == ([], False)


def stored(*lines: tuple[str, int, int], refunded: int = 0) -> dict[str, Any]:
    """A stored receipt doc of (category, amount, refunded by items) lines, `refunded` in all (any form)."""
    return {"card_number": "100", "store_id": "msk-01", "points_redeemed": 0, "at": AT.isoformat(),
            "total": sum(a for _, a, _ in lines), "refunded_amount": refunded,
            "lines": [{"sku": f"sku-{i}", "category": c, "quantity": 1, "amount": a, "refunded_amount": r}
                      for i, (c, a, r) in enumerate(lines)]}


def test_every_refund_form_takes_off_of_the_replay_what_it_reversed() -> None:
    # 5% now, 10% proposed: 200.00 earns 10 -> 20. A full refund without items leaves nothing; 100.00 refunded
    # by amount leaves half; 50.00 of food refunded by items reverses 10 x 1/4 = 2.5 -> 2 (as the till did), so 8
    # are kept now, and 20 - 5 = 15 under the proposal.
    replay = sim.Replay(program(), program(earning={"rate_bps": 1000}))
    docs = {"whole": stored(("coffee", 20_000, 0)),
            "full": stored(("coffee", 20_000, 0), refunded=20_000),
            "by-amount": stored(("coffee", 20_000, 0), refunded=10_000),
            "by-items": stored(("coffee", 15_000, 0), ("food", 5_000, 5_000), refunded=5_000)}
    got = {}
    for name, doc in docs.items():
        receipt = sim.receipt_from_doc(name, doc, name)
        assert receipt is not None
        got[name] = replay.add(receipt)
    assert got == {"whole": (10, 20), "full": (0, 0), "by-amount": (5, 10), "by-items": (8, 15)}
    assert (replay.total.receipts, replay.total.current, replay.total.proposed) == (4, 23, 45)
    assert {c: (f.receipts, f.current, f.proposed) for c, f in replay.by_category.items()} == {
        "coffee": (3, 23, 45)}, "the refunded food line and the refunded receipt count for nothing"
    assert replay.affected == {"whole", "by-amount", "by-items"}


refund_steps = st.lists(st.one_of(
    st.tuples(st.just("items"), st.integers(0, 3), st.integers(1, 100)),
    st.tuples(st.just("amount"), st.just(0), st.integers(1, 100)),
    st.tuples(st.just("full"), st.just(0), st.just(100))), max_size=4)


@given(st.lists(st.tuples(st.sampled_from(CATEGORIES), st.integers(1, 500_000)), min_size=1, max_size=4),
       refund_steps, st.integers(1, 10_000), st.sampled_from(["down", "half_up"]))
def test_replayed_under_its_own_rules_a_refunded_receipt_keeps_what_the_refunds_left(
        lines: list[tuple[str, int]], steps: list[tuple[str, int, int]], rate: int, rounding: str) -> None:
    from chalicelib.domain import refunds

    rules = program(earning={"rate_bps": rate, "rounding": rounding})
    gross = sim.earn(rules, receipt(*lines))
    state = refunds.ReceiptState(total=sum(a for _, a in lines), points_earned=gross.points, points_redeemed=0,
                                 lines=[refunds.ReceiptLine(f"sku-{i}", 1, a, w)
                                        for i, ((_, a), w) in enumerate(zip(lines, gross.weights, strict=True))])
    for kind, index, percent in steps:  # each line refunded by items at most once (see refunds.refunded_weights)
        line = state.lines[index % len(lines)]
        if kind == "items" and line.refunded_amount:
            continue
        left = state.total - state.refunded_amount
        try:
            if kind == "items":
                request = refunds.RefundLineRequest(line.sku, 1, max(line.amount * percent // 100, 1))
                plan = refunds.plan(state, lines=[request], amount=None)
            else:
                plan = refunds.plan(state, lines=None, amount=None if kind == "full" else max(left * percent // 100, 1))
        except refunds.RefundRefused:
            continue
        refunds.apply(state, plan)
    doc = stored(*((c, a, ln.refunded_amount) for (c, a), ln in zip(lines, state.lines, strict=True)),
                 refunded=state.refunded_amount)
    replayed = sim.receipt_from_doc("r", doc, "c1")
    assert replayed is not None
    replay = sim.Replay(rules, rules.model_copy(deep=True))
    kept = gross.points - state.points_reversed
    assert replay.add(replayed) == (kept, kept)
    assert sum(f.current for f in replay.by_category.values()) == kept
