"""Campaign rules: the control-group draw, dedup keys and scheduling delays."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import campaigns as rules


def test_control_group_takes_about_its_share_and_is_stable() -> None:
    ids = [f"c{i:05d}" for i in range(20_000)]
    held = [c for c in ids if rules.in_control_group("spring", c, 1000)]
    assert 1_850 <= len(held) <= 2_150, len(held)
    assert held == [c for c in ids if rules.in_control_group("spring", c, 1000)], "the same draw on every retry"
    other = {c for c in ids if rules.in_control_group("autumn", c, 1000)}
    assert len(other & set(held)) < 400, "each campaign draws its own control group"


@given(st.text(min_size=1, max_size=20), st.text(min_size=1, max_size=20))
def test_no_holdout_keeps_nobody_and_everything_keeps_everybody(campaign: str, customer: str) -> None:
    assert rules.in_control_group(campaign, customer, 0) is False
    assert rules.in_control_group(campaign, customer, rules.BPS) is True


def test_keys_and_delays() -> None:
    assert rules.message_key("spring", "abc") == "campaign:spring:abc"
    assert [rules.delay_until(s) for s in (-5, 0, 0.2, 899.5, 3600)] == [0, 0, 1, 900, 900]
