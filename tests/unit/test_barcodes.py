"""Code 128: the symbol table, the code sets, the modulo-103 check of published examples and the SVG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest

from chalicelib.domain import barcodes


def test_table_is_the_standard_one():
    """107 symbols; each of 11 modules (the stop 13), bars even and spaces odd in modules, all distinct."""
    assert len(barcodes.PATTERNS) == 107
    for value, pattern in enumerate(barcodes.PATTERNS[:106]):
        widths = [int(w) for w in pattern]
        assert sum(widths) == 11, value
        assert sum(widths[0::2]) % 2 == 0 and sum(widths[1::2]) % 2 == 1, value
    assert sum(int(w) for w in barcodes.PATTERNS[106]) == 13
    assert len(set(barcodes.PATTERNS)) == 107
    assert barcodes.PATTERNS[104] == "211214" and barcodes.PATTERNS[105] == "211232"


def test_published_checksum_pjj123c():
    """The textbook example (Wikipedia, "Code 128"): PJJ123C in code set B, sum 879, check symbol 879 mod 103 = 55."""
    code = barcodes.encode("PJJ123C")
    assert code.code_set == "B"
    assert code.symbols == (104, 48, 42, 42, 17, 18, 19, 35, 55, 106)
    assert code.checksum == 55
    assert barcodes.PATTERNS[55] == "311321"


def test_all_digits_even_length_use_code_set_c():
    code = barcodes.encode("1234")
    assert code.code_set == "C"
    assert code.symbols == (105, 12, 34, (105 + 12 + 2 * 34) % 103, 106)
    assert code.checksum == 82
    # A 16-digit card number: 8 data symbols, so 11 * (1 + 8 + 1) + 13 modules.
    card = barcodes.encode("2000000000000017")
    assert card.code_set == "C"
    assert card.symbols[1:9] == (20, 0, 0, 0, 0, 0, 0, 17)
    assert card.modules == 11 * 10 + 13


def test_odd_digits_end_with_a_switch_to_code_set_b():
    """A 13-digit card number: 6 pairs in C, CODE B (100), the last digit in B: 8 data symbols instead of 13."""
    code = barcodes.encode("8805488280912")
    assert code.code_set == "CB"
    assert code.symbols[:9] == (105, 88, 5, 48, 82, 80, 91, 100, ord("2") - 32)
    data = list(code.symbols[:9])
    assert code.checksum == (105 + sum(i * v for i, v in enumerate(data[1:], start=1))) % 103
    assert code.modules == 11 * (1 + 8 + 1) + 13
    assert barcodes.encode("7").code_set == "B"


def test_letters_use_code_set_b():
    code = barcodes.encode("AB-7")
    assert code.code_set == "B"
    assert code.symbols[1:5] == (33, 34, 13, 23)


def test_refuses_what_it_cannot_encode():
    with pytest.raises(ValueError):
        barcodes.encode("")
    with pytest.raises(ValueError):
        barcodes.encode("карта")


def _decode(widths: tuple[int, ...]) -> list[int]:
    lookup = {p: v for v, p in enumerate(barcodes.PATTERNS)}
    text = "".join(str(w) for w in widths)
    symbols = [lookup[text[i:i + 6]] for i in range(0, len(text) - 7, 6)]
    return [*symbols, lookup[text[-7:]]]


@pytest.mark.parametrize("text", ["2000000000000017", "8805488280912", "4000123", "M-42 x", "7"])
def test_widths_decode_back(text):
    code = barcodes.encode(text)
    symbols = _decode(code.widths)
    assert symbols == list(code.symbols)
    assert symbols[-2] == barcodes.checksum(symbols[:-2])
    decoded, code_set = "", "C" if symbols[0] == barcodes.START_C else "B"
    for value in symbols[1:-2]:
        if code_set == "C" and value == barcodes.CODE_B:
            code_set = "B"
        elif code_set == "C":
            decoded += f"{value:02d}"
        else:
            decoded += chr(value + 32)
    assert decoded == text


def test_svg_rects_title_quiet_zone_and_no_style():
    out = barcodes.svg("2000000000000017", "Card <1> barcode", module=2, height=80)
    assert "style" not in out
    root = ET.fromstring(out)
    ns = "{http://www.w3.org/2000/svg}"
    assert root.find(f"{ns}title").text == "Card <1> barcode"
    assert root.find(f"{ns}text").text == "2000000000000017"
    bars = root.find(f"{ns}g").findall(f"{ns}rect")
    code = barcodes.encode("2000000000000017")
    assert len(bars) == (len(code.widths) + 1) // 2
    first, last = bars[0], bars[-1]
    assert int(first.get("x")) == barcodes.QUIET_ZONE * 2
    total = int(root.get("viewBox").split()[2])
    assert total == (code.modules + 2 * barcodes.QUIET_ZONE) * 2
    assert total - (int(last.get("x")) + int(last.get("width"))) == barcodes.QUIET_ZONE * 2
    assert [int(b.get("width")) // 2 for b in bars] == list(code.widths[0::2])
    assert not re.search(r"<script|on\w+=", out)
