"""Code 128 barcodes for a card number shown at the till: the encoding and an SVG of rectangles. Pure Python.

Code set C (two digits per symbol) for a number, which is about half as wide
as code set B and what tills read fastest; a number with an odd count of
digits ends with a switch to code set B for its last digit. Code set B
(printable ASCII) for anything else. The symbol sequence is the start code, the data, the modulo-103
check symbol and the stop code; every symbol is six alternating bar and space
widths in modules (eleven modules in all), the stop code seven (thirteen).

The SVG uses rectangles only, with a `<title>` naming the number, no style
attributes (the member site's CSP refuses them) and a quiet zone of ten
modules on both sides, as the standard requires.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

PATTERNS: tuple[str, ...] = (
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212", "221213",
    "221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221", "223211", "221132",
    "221231", "213212", "223112", "312131", "311222", "321122", "321221", "312212", "322112", "322211",
    "212123", "212321", "232121", "111323", "131123", "131321", "112313", "132113", "132311", "211313",
    "231113", "231311", "112133", "112331", "132131", "113123", "113321", "133121", "313121", "211331",
    "231131", "213113", "213311", "213131", "311123", "311321", "331121", "312113", "312311", "332111",
    "314111", "221411", "431111", "111224", "111422", "121124", "121421", "141122", "141221", "112214",
    "112412", "122114", "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111",
    "111242", "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
    "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311", "113141",
    "114131", "311141", "411131", "211412", "211214", "211232", "2331112",
)
"""Bar/space widths of the symbol values 0..106 (103-105 the start codes A, B, C; 106 the stop code)."""

CODE_B = 100
"""In code set C, the symbol that switches to code set B for what follows."""
START_B = 104
START_C = 105
STOP = 106
QUIET_ZONE = 10
"""Modules of blank space required on each side."""


@dataclass(frozen=True)
class Code128:
    text: str
    code_set: str
    """"B", "C", or "CB" (pairs of digits, then the odd last digit after a switch to B)."""
    symbols: tuple[int, ...]
    """Start, data, check symbol, stop."""

    @property
    def checksum(self) -> int:
        return self.symbols[-2]

    @property
    def widths(self) -> tuple[int, ...]:
        """Alternating bar and space widths in modules, starting with a bar and ending with the stop's last bar."""
        return tuple(int(w) for symbol in self.symbols for w in PATTERNS[symbol])

    @property
    def modules(self) -> int:
        """Width of the symbol without the quiet zones."""
        return sum(self.widths)


def checksum(symbols: list[int]) -> int:
    """The modulo-103 check: the start value plus each data value times its position (1-based)."""
    return (symbols[0] + sum(i * value for i, value in enumerate(symbols[1:], start=1))) % 103


def encode(text: str) -> Code128:
    """The Code 128 symbols of `text`; ValueError for an empty text or a character outside printable ASCII."""
    if not text:
        raise ValueError("nothing to encode")
    if text.isascii() and text.isdigit() and len(text) >= 2:
        even = len(text) - len(text) % 2
        data = [START_C] + [int(text[i:i + 2]) for i in range(0, even, 2)]
        code_set = "C"
        if even < len(text):  # an odd count of digits: the last one in code set B, after the switch symbol
            data += [CODE_B, ord(text[-1]) - 32]
            code_set = "CB"
    else:
        bad = [c for c in text if not " " <= c <= "~"]
        if bad:
            raise ValueError(f"code set B cannot encode {bad[0]!r}")
        data = [START_B] + [ord(c) - 32 for c in text]
        code_set = "B"
    return Code128(text=text, code_set=code_set, symbols=(*data, checksum(data), STOP))


def bars(code: Code128) -> list[tuple[int, int]]:
    """(x, width) of each bar in modules, the quiet zone included in x."""
    out: list[tuple[int, int]] = []
    x = QUIET_ZONE
    for i, width in enumerate(code.widths):
        if i % 2 == 0:
            out.append((x, width))
        x += width
    return out


def svg(text: str, title: str, *, module: int = 2, height: int = 80, css_class: str = "barcode") -> str:
    """An inline SVG of `text` as Code 128: black rectangles on a white one, sized by a viewBox (scales to fit).

    `title` is the accessible name (escaped here, like `text`); the number itself is printed under the bars
    as text, so a cashier can type it when the scanner fails.
    """
    code = encode(text)
    total = (code.modules + 2 * QUIET_ZONE) * module
    text_height = 22
    full = height + text_height
    rects = "".join(f'<rect x="{x * module}" y="0" width="{w * module}" height="{height}"/>'
                    for x, w in bars(code))
    return (f'<svg xmlns="http://www.w3.org/2000/svg" role="img" focusable="false" class="{escape(css_class)}" '
            f'viewBox="0 0 {total} {full}" preserveAspectRatio="xMidYMid meet">'
            f"<title>{escape(title)}</title>"
            f'<rect class="barcode-ground" x="0" y="0" width="{total}" height="{full}" fill="#fff"/>'
            f'<g fill="#000">{rects}</g>'
            f'<text x="{total // 2}" y="{full - 4}" text-anchor="middle" font-family="monospace" '
            f'font-size="18" fill="#000">{escape(text)}</text></svg>')
