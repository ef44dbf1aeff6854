"""Brand colours and the text that reads on them (domain.colours)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import colours

HEX = st.integers(0, 0xFFFFFF).map(lambda n: f"#{n:06x}")


@pytest.mark.parametrize(("value", "ok"), [("#1F5F8B", True), ("#1f5f8b", True), ("1f5f8b", False), ("#1f5f8", False),
                                           ("#1f5f8bb", False), ("red", False), ("#1f5f8g", False),
                                           ("#1f5f8b;x", False), ("#1f5f8b\n", False)])
def test_only_plain_hex_colours_pass(value: str, ok: bool) -> None:
    assert colours.is_hex(value) is ok
    assert colours.hex_or(value, "#000001") == (value.lower() if ok else "#000001")


def test_contrast_matches_the_wcag_figures() -> None:
    assert colours.contrast("#000000", "#ffffff") == pytest.approx(21.0)
    assert colours.contrast("#ffffff", "#ffffff") == pytest.approx(1.0)
    assert round(colours.contrast("#767676", "#ffffff"), 2) == 4.54
    assert colours.ink("#ffd400") == "#000000" and colours.ink("#1f5f8b") == "#ffffff"


@given(HEX)
def test_the_chosen_ink_is_the_more_readable_of_black_and_white(background: str) -> None:
    chosen = colours.contrast(colours.ink(background), background)
    assert chosen >= max(colours.contrast("#000000", background), colours.contrast("#ffffff", background))
    assert chosen >= 4.5, "black or white always reaches 4.5:1 on some side of any colour"


@given(HEX)
def test_text_beside_the_colour_on_white_is_the_colour_or_the_fallback(colour: str) -> None:
    chosen = colours.readable_on_white(colour, "#1f2328")
    assert chosen == colour if colours.contrast(colour, "#ffffff") >= 4.5 else chosen == "#1f2328"
