"""The console's SVG charts: well-formed, named and described, escaped, no inline style or script, to scale."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import pytest
from markupsafe import Markup

from chalicelib.console import charts

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = '<script>alert("x")</script>&'


def parse(svg: Markup) -> ET.Element:
    return ET.fromstring(str(svg))


def test_a_bar_chart_is_an_image_named_by_its_title_and_desc_with_a_bar_per_label() -> None:
    svg = charts.bar_chart("revenue", "Revenue per day", "Shop, 1 to 3 Nov.", ["1.11", "2.11", "3.11"],
                           charts.Series("Revenue", [100, 0, 250]), lambda v: f"{v} RUB")
    root = parse(svg)
    assert isinstance(svg, Markup)
    assert root.get("role") == "img" and root.get("aria-labelledby") == "chart-revenue-title chart-revenue-desc"
    assert root.find(f"{SVG}title").text == "Revenue per day" and root.find(f"{SVG}desc").text == "Shop, 1 to 3 Nov."
    rects = [r for r in root.iter(f"{SVG}rect") if r.get("class") == "chart-bar"]
    assert [r.find(f"{SVG}title").text for r in rects] == ["1.11: 100 RUB", "2.11: 0 RUB", "3.11: 250 RUB"]
    heights = [float(r.get("height")) for r in rects]
    assert heights[1] == 0 and heights[2] == pytest.approx(heights[0] * 2.5)
    bottoms = {round(float(r.get("y")) + float(r.get("height")), 1) for r in rects}
    assert len(bottoms) == 1, "every bar stands on the zero line"
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-tick"]
    assert ticks == ["0 RUB", "100 RUB", "200 RUB", "300 RUB"]
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-label"]
    assert labels == ["1.11", "2.11", "3.11"]


def test_every_text_is_escaped_and_nothing_runs_or_styles_inline() -> None:
    line = charts.line_chart(HOSTILE, HOSTILE, HOSTILE, [HOSTILE, "b"],
                             [charts.Series(HOSTILE, [1, 2]), charts.Series("two", [3, 4])], lambda v: HOSTILE)
    bar = charts.bar_chart("x", HOSTILE, HOSTILE, [HOSTILE], charts.Series(HOSTILE, [5]), lambda v: HOSTILE)
    for svg in (line, bar):
        text = str(svg)
        assert "<script" not in text and "style" not in text and " on" not in text.lower().replace(" one", "")
        assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;" in text
        root = parse(svg)
        assert root.find(f"{SVG}title").text == HOSTILE  # the text itself survives, as text
    assert 'id="chart-script-alert-x-script-"' not in str(line)
    assert re.search(r'aria-labelledby="chart-[a-z0-9-]+-title chart-[a-z0-9-]+-desc"', str(line))


def test_lines_differ_by_more_than_colour_and_have_a_legend() -> None:
    svg = charts.line_chart("points", "Points", "d", ["a", "b", "c"],
                            [charts.Series("Earned", [10, 20, 5]), charts.Series("Redeemed", [0, 5, 5])])
    root = parse(svg)
    lines = [p for p in root.iter(f"{SVG}polyline")]
    assert len(lines) == 2 and lines[0].get("stroke-dasharray") is None and lines[1].get("stroke-dasharray")
    earned = [float(y) for _, y in (p.split(",") for p in lines[0].get("points").split())]
    assert earned[1] < earned[0] < earned[2], "higher values are drawn higher"
    keys = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "chart-key"]
    assert keys == ["Earned", "Redeemed"]
    shapes = {el.tag for el in root.iter() if el.get("class") == "chart-dot"}
    assert shapes == {f"{SVG}circle", f"{SVG}rect"}
    tips = [t.text for t in root.iter(f"{SVG}title")][1:]
    assert "Earned, b: 20" in tips and "Redeemed, c: 5" in tips


def test_scales_and_labels() -> None:
    assert charts.nice_ticks(0, 0) == [0, 1]
    assert charts.nice_ticks(0, 7) == [0, 2, 4, 6, 8]
    assert charts.nice_ticks(0, 150_000) == [0, 50_000, 100_000, 150_000]
    assert charts.nice_ticks(-30, 90) == [-50, 0, 50, 100]
    assert charts.nice_ticks(0, 3) == [0, 1, 2, 3]
    labels = [f"d{i}" for i in range(30)]
    svg = charts.bar_chart("m", "t", "d", labels, charts.Series("s", list(range(30))))
    shown = re.findall(r'class="chart-label"[^>]*>([^<]*)<', str(svg))
    assert len(shown) <= charts.MAX_X_LABELS and shown[-1] == "d29"
    assert len(re.findall(r'class="chart-bar"', str(svg))) == 30
    negative = parse(charts.bar_chart("n", "t", "d", ["a", "b"], charts.Series("s", [-40, 80])))
    rects = [r for r in negative.iter(f"{SVG}rect") if r.get("class") == "chart-bar"]
    assert float(rects[0].get("y")) == pytest.approx(float(rects[1].get("y")) + float(rects[1].get("height")))


def test_mismatched_series_are_refused() -> None:
    with pytest.raises(ValueError, match="2 values for 3 labels"):
        charts.bar_chart("x", "t", "d", ["a", "b", "c"], charts.Series("s", [1, 2]))
    with pytest.raises(ValueError, match="1 to 4 series"):
        charts.line_chart("x", "t", "d", ["a"], [charts.Series(str(i), [1]) for i in range(5)])
