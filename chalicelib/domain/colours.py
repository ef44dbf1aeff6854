"""Brand colours as #rrggbb strings, and which text reads on them (WCAG 2 contrast).

A tenant picks its colours freely; every place that paints with them (the member
site's stylesheet, the e-mail frame) asks here for a text colour that stays
readable, so a pale brand colour never leaves white text on it.
"""

from __future__ import annotations

import re

_HEX = re.compile(r"#[0-9a-f]{6}")
BLACK = "#000000"
WHITE = "#ffffff"
AA_TEXT = 4.5
"""WCAG AA contrast for normal text."""


def is_hex(value: str) -> bool:
    """A plain `#rrggbb` (any case): safe to put into a style attribute or a stylesheet."""
    return bool(_HEX.fullmatch(value.lower()))


def hex_or(value: str, default: str) -> str:
    """The colour in lower case if it is a plain #rrggbb, else the default."""
    return value.lower() if is_hex(value) else default


def luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a #rrggbb colour (0 black .. 1 white)."""
    def channel(hex2: str) -> float:
        c = int(hex2, 16) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    return 0.2126 * channel(colour[1:3]) + 0.7152 * channel(colour[3:5]) + 0.0722 * channel(colour[5:7])


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two #rrggbb colours (1 .. 21)."""
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def ink(background: str) -> str:
    """Black or white text on a colour, whichever contrasts more."""
    return BLACK if contrast(BLACK, background) > contrast(WHITE, background) else WHITE


def readable_on_white(colour: str, fallback: str) -> str:
    """The colour itself for text on white when it meets AA, else the fallback (a pale brand colour)."""
    return colour if contrast(colour, WHITE) >= AA_TEXT else fallback
