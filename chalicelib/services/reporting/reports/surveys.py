"""The `survey_results` report: a survey's aggregate results in one long table, question by question.

The figures are `surveys.results`, the same as `GET /v1/surveys/{id}/results` (kept up by counters on
every response): nothing is recomputed from answers, and no individual answer is read. Free text, dates,
phones, e-mails and answers mapped to personal fields are personal data: their questions show how many
answered and nothing more. The survey's counters hold every response so far, so the report is the same
whatever the period.

One table for CSV and XLSX alike. Each question starts with its summary row (empty `option`): `count` is
how many answered, `share_bps` their share of the responses, with the rating average (`average_x100`) or
the NPS (`nps_bps`). Then one row per option (choice), per value (rating 1..scale, NPS 0..10), NPS
`promoters` / `passives` / `detractors`, or consent `granted` / `declined`, with `share_bps` of those who
answered the question.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

from chalicelib.schemas.surveys import QuestionResult, QuestionType
from chalicelib.services.customers import surveys
from chalicelib.services.reporting.reports.base import ReportContext, ReportType

COLUMNS = ("question_id", "question", "type", "option", "label", "count", "share_bps", "average_x100", "nps_bps")
MAX_CHARTS = 20
"""Charts per workbook: one per question with options, up to this many."""


def rows(ctx: ReportContext) -> Iterator[list[Any]]:
    """One row per question option (or rating value) with its count; chart ranges go to `ctx.notes`."""
    results = surveys.results(ctx.tenant_id, str(ctx.subject_id))
    charts: list[tuple[str, str, int, int]] = []
    ctx.notes["charts"] = charts
    line = 0
    for q in results.questions:
        kind = q.type.value
        line += 1
        yield [q.question_id, q.label, kind, None, None, q.answered, share_bps(q.answered, results.responses),
               q.average_x100, q.nps_bps]
        parts = _parts(q)
        for option, label, count in parts:
            line += 1
            yield [q.question_id, q.label, kind, option, label, count, share_bps(count, q.answered), None, None]
        if not parts:
            continue
        if q.type == QuestionType.NPS:
            charts.append(("pie", f"{q.label} (NPS)", line - 2, line))
        elif q.type != QuestionType.CONSENT:
            charts.append(("column", q.label, line - len(parts) + 1, line))


def charts(workbook: Workbook, sheet: Worksheet, count: int, ctx: ReportContext) -> None:
    """NPS questions: a pie of promoters, passives and detractors; choice and rating questions: counts per option."""
    planned = list(ctx.notes.get("charts", []))[:MAX_CHARTS]
    if not planned:
        return
    name = sheet.get_name()
    page = workbook.add_worksheet("Charts")
    label, value = COLUMNS.index("label"), COLUMNS.index("count")
    for i, (kind, title, first, last) in enumerate(planned):
        chart = workbook.add_chart({"type": kind})
        series: dict[str, Any] = {"name": title[:255], "categories": [name, first, label, last, label],
                                  "values": [name, first, value, last, value]}
        if kind == "pie":
            series["data_labels"] = {"value": True, "percentage": True}
        else:
            chart.set_legend({"none": True})
        chart.add_series(series)
        chart.set_title({"name": title[:255]})
        page.insert_chart(i * 22, 0, chart, {"x_scale": 1.5, "y_scale": 1.4})


def share_bps(count: int, total: int) -> int | None:
    """count / total in basis points, rounded half up; None when nobody answered."""
    return (count * 20_000 + total) // (2 * total) if total > 0 else None


def _parts(q: QuestionResult) -> list[tuple[str, str, int]]:
    """(option, label, count) rows under the question's summary row."""
    if q.options is not None:
        return [(o.id, o.label, o.count) for o in q.options]
    parts = [(value, value, n) for value, n in (q.distribution or {}).items()]
    if q.type == QuestionType.NPS:
        parts += [("promoters", "promoters (9-10)", q.promoters or 0), ("passives", "passives (7-8)", q.passives or 0),
                  ("detractors", "detractors (0-6)", q.detractors or 0)]
    if q.granted is not None:
        parts += [("granted", "granted", q.granted), ("declined", "declined", q.declined or 0)]
    return parts


SURVEY_RESULTS = ReportType(
    name="survey_results",
    description="A survey's results per question: answers per option or value, rating average, NPS with "
                "promoters / passives / detractors, consents; aggregates only, no free text.",
    columns=COLUMNS,
    rows=rows,
    charts=charts,
    subject="survey",
)
