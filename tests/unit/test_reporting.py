"""Pure report rules: the status a client sees, file names, merging shards in time order, CSV rows."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta

import pytest

from chalicelib.domain import reporting
from chalicelib.services.reporting.reports import output

T0 = datetime(2026, 11, 2, 10, 0, tzinfo=UTC)


def doc(status: str, **times: datetime) -> dict:
    return {"status": status, "created_at": T0.isoformat(), **{k: v.isoformat() for k, v in times.items()}}


@pytest.mark.parametrize(("stored", "after", "seen", "code"), [
    (doc("queued"), timedelta(hours=5, minutes=59), "queued", None),
    (doc("queued"), timedelta(hours=6, seconds=1), "failed", "not_started"),
    (doc("running", started_at=T0), timedelta(seconds=1020), "running", None),
    (doc("running", started_at=T0), timedelta(seconds=1021), "failed", "timed_out"),
    (doc("ready", completed_at=T0), timedelta(days=6, hours=23), "ready", None),
    (doc("ready", completed_at=T0), timedelta(days=7), "expired", None),
    ({**doc("failed", completed_at=T0), "failure": {"code": "build_failed", "message": "x"}}, timedelta(days=60),
     "failed", "build_failed"),
])
def test_effective_status(stored: dict, after: timedelta, seen: str, code: str | None) -> None:
    status, failure = reporting.effective_status(stored, T0 + after)
    assert status == seen
    assert (failure or {}).get("code") == code


def test_running_limit_is_the_worker_timeout_plus_a_margin() -> None:
    assert reporting.RUNNING_LIMIT == timedelta(seconds=900 + 120)
    assert reporting.is_stale_running(doc("running", started_at=T0), T0 + timedelta(minutes=18))
    assert not reporting.is_stale_running(doc("running", started_at=T0), T0 + timedelta(minutes=16))
    assert not reporting.is_stale_running(doc("queued"), T0 + timedelta(days=1)), "only running reports"


def test_failure_reason_is_one_short_line_with_a_code() -> None:
    assert reporting.failure_reason(None, None) == {
        "code": "build_failed", "message": "The report could not be built; the error has been logged."}
    reason = reporting.failure_reason("unknown_program", "Program 'x' no longer exists.\nTraceback...")
    assert reason == {"code": "unknown_program", "message": "Program 'x' no longer exists."}
    assert len(reporting.failure_reason("c", "y" * 1000)["message"]) == 300


def test_filename_names_the_last_day_included() -> None:
    assert reporting.filename("ledger", "main", date(2026, 11, 1), date(2026, 12, 1), "csv") == \
        "ledger-main-2026-11-01-2026-11-30.csv"


def test_days_are_half_open() -> None:
    assert list(reporting.days(date(2026, 12, 30), date(2027, 1, 2))) == [
        date(2026, 12, 30), date(2026, 12, 31), date(2027, 1, 1)]
    assert list(reporting.days(date(2026, 1, 1), date(2026, 1, 1))) == []


def test_merge_by_key_interleaves_sorted_shards_lazily() -> None:
    pulled: list[str] = []

    def shard(name: str, keys: list[str]):
        for k in keys:
            pulled.append(f"{name}:{k}")
            yield k, name, {}

    merged = reporting.merge_by_key([shard("a", ["entry#01", "entry#04"]), shard("b", ["entry#02", "entry#03"]),
                                     shard("c", [])])
    first = next(merged)
    assert first == ("entry#01", "a", {}) and len(pulled) == 2, "one item per shard read ahead, no more"
    assert [k for k, _, _ in merged] == ["entry#02", "entry#03", "entry#04"]


def test_ledger_row_keeps_integers_and_leaves_absent_values_empty() -> None:
    entry = {"entry_id": "e1", "type": "accrual", "points": 10, "balance_after": 35, "at": "2026-11-03T10:00:00Z",
             "receipt_id": "r1", "store_id": "msk-01", "rule_version": 2}
    row = dict(zip(reporting.LEDGER_COLUMNS, reporting.ledger_row("4195023832797", "cust1", entry), strict=True))
    assert row["points"] == 10 and row["balance_after"] == 35 and row["rule_version"] == 2
    assert row["card_number"] == "4195023832797" and row["customer_id"] == "cust1"
    assert row["refund_id"] == "" and row["reason"] == "" and row["at"] == "2026-11-03T10:00:00Z"
    anonymous = reporting.ledger_row("1", None, {**entry, "rule_version": None})
    assert anonymous[reporting.LEDGER_COLUMNS.index("customer_id")] == ""
    assert anonymous[reporting.LEDGER_COLUMNS.index("rule_version")] == ""


class Sink:
    def __init__(self) -> None:
        self.chunks: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.chunks.append(data)


def test_csv_has_a_bom_crlf_lines_cyrillic_and_defused_formulas() -> None:
    sink = Sink()
    rows = [["Анна", -5, "=1+2"], ["a,b", 0, "@cmd"], ['say "hi"', 7, "-x"]]
    assert output.write_csv(sink, ["name", "points", "note"], iter(rows)) == 3
    raw = b"".join(sink.chunks)
    assert raw.startswith(b"\xef\xbb\xbfname,points,note\r\n")
    parsed = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"), newline="")))
    assert parsed == [["name", "points", "note"], ["Анна", "-5", "'=1+2"], ["a,b", "0", "'@cmd"],
                      ['say "hi"', "7", "'-x"]]
    assert len(sink.chunks) == 5, "BOM, header and one write per row: nothing buffered"


def test_phones_and_signed_numbers_are_not_defused() -> None:
    assert output.safe_cell("+79161234567") == "+79161234567"
    assert output.safe_cell("-12.5") == "-12.5"
    assert output.safe_cell("+7 (916) 123-45-67") == "+7 (916) 123-45-67"
    assert output.safe_cell("+cmd|' /C calc'!A0") == "'+cmd|' /C calc'!A0"
    assert output.safe_cell("-2+3+cmd|' /C calc'!A0") == "'-2+3+cmd|' /C calc'!A0"
    assert output.safe_cell(-5) == -5


def test_csv_semicolon() -> None:
    sink = Sink()
    output.write_csv(sink, ["a", "b"], [["1;2", 3]], delimiter=";")
    assert b"".join(sink.chunks).decode("utf-8-sig") == 'a;b\r\n"1;2";3\r\n'


# --- program summary, tiers, members ----------------------------------------------------

def test_day_figures_keep_gross_and_refunds_apart_and_count_receipts_once() -> None:
    fig = reporting.DayFigures()
    fig.add("c1", {"type": "accrual", "points": 100, "receipt_id": "r1"})
    fig.add("c1", {"type": "redemption", "points": -30, "receipt_id": "r1"})
    fig.add("c2", {"type": "accrual", "points": 50, "receipt_id": "r2"})
    fig.add("c2", {"type": "reversal", "points": -50, "receipt_id": "r2"})
    fig.add("c1", {"type": "return", "points": 10, "receipt_id": "r1"})
    fig.add("card-9", {"type": "expiry", "points": -7})
    fig.add("card-9", {"type": "adjustment", "points": 25, "reason": "goodwill"})
    fig.add("card-9", {"type": "bonus", "points": 5})
    fig.add("card-9", {"type": "tier", "points": 0, "tier": "silver"})
    assert (fig.earned, fig.reversed, fig.redeemed, fig.returned) == (155, 50, 30, 10), "gross, as the dashboard"
    assert (fig.expired, fig.adjusted) == (7, 25)
    assert fig.active == {"c1", "c2"} and list(fig.receipts) == ["r1", "r2"]


def test_breakage_and_average_are_integers() -> None:
    assert reporting.breakage_bps(7, 300) == 233 and reporting.breakage_bps(5, 0) == ""
    assert reporting.average(100_001, 2) == 50_001 and reporting.average(100_000, 3) == 33_333
    assert reporting.average(0, 0) == ""


def test_summary_rows_per_day_and_total() -> None:
    start, end = date(2026, 11, 2), date(2026, 11, 5)
    members = reporting.MemberCounts()
    members.add(date(2026, 10, 1), start, "store")             # before the period
    members.add(date(2026, 11, 2), start, "site")
    members.add(date(2026, 11, 2), start, "referral")
    members.add(date(2026, 11, 4), start, "weird")             # unknown channel -> other
    members.add(date(2026, 11, 9), start, "app")               # after: not in any row
    d1, d2, d3 = reporting.DayFigures(), reporting.DayFigures(), reporting.DayFigures()
    d1.add("a", {"type": "accrual", "points": 100, "receipt_id": "r1"})
    d1.add("b", {"type": "accrual", "points": 40, "receipt_id": "r2"})
    d1.receipts = {"r1": 200_000, "r2": 80_001}
    d2.add("a", {"type": "redemption", "points": -20, "receipt_id": "r3"})
    d2.receipts = {"r3": 40_000}
    d3.add("a", {"type": "expiry", "points": -14})
    rows = list(reporting.summary_rows(start, end, members, iter([d1, d2, d3]), liability_points=106,
                                       point_value=100))
    table = [dict(zip(reporting.SUMMARY_COLUMNS, r, strict=True)) for r in rows]
    assert [r["day"] for r in table] == ["2026-11-02", "2026-11-03", "2026-11-04", "total"]
    assert [r["members"] for r in table] == [3, 3, 4, 4]
    assert [r["new_members"] for r in table] == [2, 0, 1, 3]
    assert (table[0]["new_site"], table[0]["new_referral"], table[2]["new_other"], table[3]["new_app"]) == (1, 1, 1, 0)
    assert [r["active_members"] for r in table] == [2, 1, 0, 2]
    assert [(r["receipts"], r["revenue"], r["average_receipt"]) for r in table] == [
        (2, 280_001, 140_001), (1, 40_000, 40_000), (0, 0, ""), (3, 320_001, 106_667)]
    assert [(r["points_earned"], r["points_redeemed"], r["points_expired"]) for r in table] == [
        (140, 0, 0), (0, 20, 0), (0, 0, 14), (140, 20, 14)]
    assert (table[3]["liability_points"], table[3]["liability_money"], table[3]["breakage_bps"]) == (106, 10_600, 1000)
    assert table[0]["liability_points"] == "" and table[2]["breakage_bps"] == ""


def test_summary_rows_give_gross_points_and_reversed_side_by_side() -> None:
    # A 200.00 receipt earning 100 and redeeming 30, half refunded (50 reversed, 15 returned); one of 100.00
    # earning 50, refunded in full the same day; 10 points expire.
    day = reporting.DayFigures()
    for holder, entry in [("a", {"type": "accrual", "points": 100, "receipt_id": "r1"}),
                          ("a", {"type": "redemption", "points": -30, "receipt_id": "r1"}),
                          ("b", {"type": "accrual", "points": 50, "receipt_id": "r2"}),
                          ("b", {"type": "reversal", "points": -50, "receipt_id": "r2", "refund_id": "f2"}),
                          ("a", {"type": "reversal", "points": -50, "receipt_id": "r1", "refund_id": "f1"}),
                          ("a", {"type": "return", "points": 15, "receipt_id": "r1", "refund_id": "f1"}),
                          ("c", {"type": "expiry", "points": -10})]:
        day.add(holder, entry)
    day.receipts = {"r1": 20_000, "r2": 10_000}
    start = date(2026, 11, 2)
    rows = list(reporting.summary_rows(start, date(2026, 11, 3), reporting.MemberCounts(), iter([day]), 0, 100))
    columns = list(reporting.SUMMARY_COLUMNS)
    assert columns[columns.index("points_earned"):columns.index("points_expired")] == [
        "points_earned", "points_reversed", "points_redeemed", "points_returned"]
    for row in rows:
        got = dict(zip(columns, row, strict=True))
        assert (got["receipts"], got["revenue"]) == (2, 30_000)
        assert (got["points_earned"], got["points_reversed"], got["points_redeemed"], got["points_returned"]) == (
            150, 100, 30, 15)
        assert got["breakage_bps"] == 10 * 10_000 // (150 - 100), "expired over the points that stayed earned"


def test_summary_needs_one_figure_per_day() -> None:
    with pytest.raises(ValueError):
        list(reporting.summary_rows(date(2026, 11, 2), date(2026, 11, 4), reporting.MemberCounts(),
                                    iter([reporting.DayFigures()]), 0, 100))


def test_tier_rows_now_by_size_then_moves() -> None:
    from collections import Counter

    rows = list(reporting.tier_rows(Counter({"base": 5, "gold": 1, "silver": 5}),
                                    Counter({("base", "silver"): 3, ("silver", "base"): 1})))
    assert rows == [["now", "base", "", "", 5], ["now", "silver", "", "", 5], ["now", "gold", "", "", 1],
                    ["movement", "", "base", "silver", 3], ["movement", "", "silver", "base", 1]]


def test_member_row_blanks_switched_off_fields_and_skips_nothing_else() -> None:
    doc = {"created_at": datetime(2026, 11, 2, 10, tzinfo=UTC), "status": "active",
           "profile": {"tags": ["vip", "kids"], "preferred_channel": "sms",
                       "acquisition": {"channel": "store", "source": "flyer"}},
           "consents": {"sms": {"granted": True}, "email": {"granted": False}},
           "stats": {"purchase_count": 3, "refund_count": 1, "spend": 120_000, "last_purchase_at": "2026-11-03"}}
    person = {"phone": "+79161234567", "first_name": "Анна", "birth_date": "1990-05-17"}
    row = dict(zip(reporting.MEMBER_COLUMNS, reporting.member_row("c1", doc, person, ["birth_date"], ["1", "2"]),
                   strict=True))
    assert row["registered_at"] == "2026-11-02T10:00:00+00:00" and row["phone"] == "+79161234567"
    assert row["birth_date"] == "" and row["first_name"] == "Анна" and row["email"] == ""
    assert (row["tags"], row["acquisition_channel"], row["cards"]) == ("vip;kids", "store", "1;2")
    assert (row["consent_sms"], row["consent_email"], row["consent_personal_data"]) == ("yes", "no", "")
    assert (row["purchase_count"], row["refund_count"], row["spend"]) == (3, 1, 120_000)
    assert reporting.is_member(doc) and not reporting.is_member({**doc, "status": "erased"})
    assert not reporting.is_member({**doc, "status": "merged"})


def test_xlsx_streams_a_workbook_and_refuses_too_many_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    import zipfile

    sink = Sink()
    assert output.write_xlsx(sink, ["name", "points"], iter([["Анна", 5], ["=1+2", -3]]), "data") == 2
    with zipfile.ZipFile(io.BytesIO(b"".join(sink.chunks))) as z:
        sheet = z.read("xl/worksheets/sheet1.xml").decode()
    assert "<v>5</v>" in sheet and "<v>-3</v>" in sheet and "Анна" in sheet
    assert "<f>" not in sheet, "text is never turned into a formula"
    monkeypatch.setattr(output, "XLSX_MAX_ROWS", 2)
    with pytest.raises(output.TooManyRows):
        output.write_xlsx(Sink(), ["n"], iter([[1], [2], [3]]), "data")
