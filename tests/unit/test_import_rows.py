"""Customer import rules: dialects, headers, rows, record splitting, the progress bar and the CLI client."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from chalicelib import cli
from chalicelib.domain import imports as rules

CTX = rules.RowContext(import_id="20261102-100000-abcdef", consent_text_version="v2")
COLUMNS: list[str | None] = ["phone", "first_name", "last_name", "email", "gender", "birth_date", "tags",
                             "consent_sms", "consent_email", "card_number", "source"]


def _row(**fields: str) -> list[str]:
    return [fields.get(name or "", "") for name in COLUMNS]


# --- the file -----------------------------------------------------------------------------

def test_russian_excel_export_in_cp1251_with_semicolons() -> None:
    text = "Телефон;Имя;Фамилия;Отчество;Дата рождения;Пол;E-mail;Карта\r\n8 916 123-45-67;Анна;Иванова;;;;;\r\n"
    data = text.encode("cp1251")
    header = rules.read_header(data, len(data))
    assert (header.encoding, header.delimiter) == ("cp1251", ";")
    assert header.columns == ["phone", "first_name", "last_name", "middle_name", "birth_date", "gender", "email",
                              "card_number"]
    assert header.length == len(text.split("\n")[0].encode("cp1251")) + 1
    assert header.problems == [] and header.unknown == []
    row = data[header.length:].rstrip(b"\r\n")
    assert rules.decode(row, header.encoding) == "8 916 123-45-67;Анна;Иванова;;;;;"


def test_utf8_with_bom_and_commas() -> None:
    data = "\ufeffPhone,First Name,LAST_NAME\n+79161234567,Anna,Ivanova\n".encode()
    header = rules.read_header(data, len(data))
    assert (header.encoding, header.delimiter) == ("utf-8-sig", ",")
    assert header.columns == ["phone", "first_name", "last_name"]
    assert header.length == len(b"\xef\xbb\xbfPhone,First Name,LAST_NAME\n")
    assert rules.row_encoding(header.encoding) == "utf-8"


def test_encoding_guess_survives_a_sample_cut_inside_a_character() -> None:
    sample = "телефон\nЮлий".encode()[:-1]  # the last Cyrillic letter is cut in half
    assert rules.detect_encoding(sample) == "utf-8"
    assert rules.detect_encoding("телефон\n".encode("cp1251")) == "cp1251"
    assert rules.decode("Пётр".encode("cp1251"), "utf-8") == "Пётр"  # an ASCII-only sample, a cp1251 row later


def test_unknown_columns_are_listed_unless_mapped_or_skipped() -> None:
    columns, unknown, problems = rules.map_header(["телефон", "Любимый напиток", "Club level", ""])
    assert (columns, unknown, problems) == (["phone", None, None, None], ["Любимый напиток", "Club level"], [])
    columns, unknown, problems = rules.map_header(["Мобильный", "Любимый напиток", "Club level"],
                                                  {"любимый напиток": "skip", "CLUB LEVEL": "tags"})
    assert (columns, unknown, problems) == (["phone", None, "tags"], [], [])


def test_a_header_without_phone_or_with_a_field_twice_is_refused() -> None:
    assert rules.map_header(["email", "имя"])[2] == ["no phone column: customers are merged by phone"]
    assert rules.map_header(["phone", "телефон"])[2] == ["more than one column holds phone"]


# --- records ------------------------------------------------------------------------------

def test_records_keep_exact_offsets_line_numbers_and_quoted_line_breaks() -> None:
    body = b'a;1\r\n"multi\nline";2\n\n;;\nlast;3'
    pieces = [body[i:i + 3] for i in range(0, len(body), 3)]  # arbitrary network chunks
    got = list(rules.records(pieces, 100, 2))
    assert [(r.start, r.end, r.line, r.lines, r.raw, r.blank) for r in got] == [
        (100, 105, 2, 1, b"a;1", False),
        (105, 120, 3, 2, b'"multi\nline";2', False),
        (120, 121, 5, 1, b"", True),
        (121, 124, 6, 1, b";;", True),
        (124, 130, 7, 1, b"last;3", False),
    ]
    assert rules.split('"multi\nline";2', ";") == ["multi\nline", "2"]


def test_a_row_over_4_kb_is_cut_and_marked() -> None:
    long_line = b"x" * (rules.MAX_ROW_BYTES + 10) + b"\n"
    got = list(rules.records([long_line, b"next\n"], 0, 2))
    assert [(r.too_long, r.line, r.end) for r in got] == [(True, 2, len(long_line)), (False, 3, len(long_line) + 5)]


# --- rows -----------------------------------------------------------------------------------

def test_a_full_row_becomes_a_customer() -> None:
    result = rules.parse_row(_row(phone="8 (916) 123-45-67", first_name="Анна", last_name="Иванова",
                                  email="Anna@Example.com", gender="Ж", birth_date="01.02.1990",
                                  tags="vip; coffee|vip", consent_sms="да", consent_email="0",
                                  card_number="2000 0000 0000 1", source="old-crm"), COLUMNS, CTX)
    assert result.errors == []
    customer = result.customer
    assert customer is not None
    assert (customer.phone, customer.email, customer.gender, customer.birth_date) == (
        "+79161234567", "anna@example.com", "female", date(1990, 2, 1))
    assert customer.tags == ["vip", "coffee"]
    assert [(c.kind, c.granted, c.source, c.text_version) for c in customer.consents] == [
        ("email", False, "import:20261102-100000-abcdef", "v2"), ("sms", True, "import:20261102-100000-abcdef", "v2")]
    assert customer.acquisition is not None
    assert customer.acquisition.model_dump(exclude_none=True) == {
        "channel": "import", "source": "20261102-100000-abcdef", "medium": "old-crm"}
    assert result.card_number == "2000000000001"


@pytest.mark.parametrize(("raw", "expected"), [("f", "female"), ("M", "male"), ("female", "female"),
                                               ("Male", "male"), ("ж", "female"), ("м", "male"), ("жен.", "female")])
def test_genders(raw: str, expected: str) -> None:
    assert rules.parse_gender(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [("1990-02-01", date(1990, 2, 1)), ("01.02.1990", date(1990, 2, 1)),
                                               ("1.2.1990", date(1990, 2, 1)), ("31.02.1990", None),
                                               ("02/01/1990", None), ("1990-2-1", None)])
def test_dates(raw: str, expected: date | None) -> None:
    assert rules.parse_date(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [("yes", True), ("1", True), ("Да", True), ("no", False),
                                               ("0", False), ("Нет", False), ("maybe", None)])
def test_consents(raw: str, expected: bool | None) -> None:
    assert rules.parse_flag(raw) == expected


def test_default_consents_apply_unless_the_row_says_otherwise() -> None:
    defaults = [{"kind": "sms", "granted": True, "source": "paper form", "text_version": "v1"},
                {"kind": "personal_data", "granted": True, "source": "paper form", "text_version": "v1"}]
    ctx = rules.RowContext(import_id="i", consent_text_version="v2", default_consents=defaults)
    customer = rules.parse_row(_row(phone="+79161234567", consent_sms="нет"), COLUMNS, ctx).customer
    assert customer is not None
    assert [(c.kind, c.granted, c.source) for c in customer.consents] == [
        ("personal_data", True, "paper form"), ("sms", False, "import:i")]


@pytest.mark.parametrize(("fields", "reason"), [
    ({"phone": "12345"}, "phone: not a valid phone number"),
    ({"phone": "+79161234567", "email": "not-an-email"}, "email: String should match pattern"),
    ({"email": "a@example.com"}, "phone: required (customers are merged by phone)"),
    ({"phone": "+79161234567", "gender": "x"}, "gender: expected f, m, female, male, ж or м"),
    ({"phone": "+79161234567", "birth_date": "1990/01/01"}, "birth_date: expected a date as YYYY-MM-DD or DD.MM.YYYY"),
    ({"phone": "+79161234567", "birth_date": "1850-01-01"}, "birth_date: birth_date must be between 1900-01-01"),
    ({"phone": "+79161234567", "consent_email": "ok"}, "consent_email: expected yes/no, 1/0 or да/нет"),
    ({"phone": "+79161234567", "card_number": "12-34"}, "card_number: expected 8 to 19 digits"),
])
def test_bad_rows_say_why(fields: dict[str, str], reason: str) -> None:
    result = rules.parse_row(_row(**fields), COLUMNS, CTX)
    assert result.customer is None
    assert len(result.errors) == 1 and result.errors[0].startswith(reason), result.errors


def test_a_field_switched_off_by_the_tenant_rejects_the_row_only_when_filled() -> None:
    ctx = rules.RowContext(import_id="i", consent_text_version="v1", disabled=frozenset({"birth_date", "email"}))
    bad = rules.parse_row(_row(phone="+79161234567", birth_date="1990-01-01"), COLUMNS, ctx)
    assert bad.customer is None
    assert bad.errors == ["birth_date: switched off by the tenant (minimal-data mode)"]
    assert rules.parse_row(_row(phone="+79161234567", first_name="Anna"), COLUMNS, ctx).customer is not None


def test_extra_filled_fields_are_refused_but_trailing_empty_ones_are_not() -> None:
    columns: list[str | None] = ["phone", "first_name"]
    assert rules.parse_row(["+79161234567", "Anna", "", ""], columns, CTX).errors == []
    assert rules.parse_row(["+79161234567", "Anna", "x"], columns, CTX).errors == [
        "row: 3 fields where the header has 2"]


def test_result_lines_quote_like_excel() -> None:
    text = rules.result_head(";") + rules.result_lines([(4, 'a;"b"', "phone: not a valid phone number")], ";")
    assert text == 'line;row;reason\r\n4;"a;""b""";phone: not a valid phone number\r\n'


def test_progress_bar() -> None:
    assert rules.render_bar(0, 2_000_000, width=10) == "[----------]   0%  0.0/2.0 MB"
    assert rules.render_bar(500_000, 2_000_000, width=10) == "[##--------]  25%  0.5/2.0 MB"
    assert rules.render_bar(2_000_000, 2_000_000, width=10) == "[##########] 100%  2.0/2.0 MB"
    assert rules.render_bar(0, 0, width=4) == "[####] 100%  0.0/0.0 KB"
    assert rules.render_bar(1_500, 3_000, width=4) == "[##--]  50%  1.5/3.0 KB"


# --- the CLI against a fake HTTP API --------------------------------------------------------

class _Response:
    def __init__(self, body: dict[str, Any]) -> None:
        self._raw = json.dumps(body).encode()

    def read(self) -> bytes:
        return self._raw

    def __enter__(self) -> _Response:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _status(state: str, done: int, rejected: int = 0, **extra: Any) -> dict[str, Any]:
    return {"import_id": "20261102-100000-abcdef", "status": state, "rows": 3, "created": 2, "updated": 1 - rejected,
            "rejected": rejected, "bytes_done": done, "bytes_total": 100, "error": None, "result_url": None, **extra}


class _FakeApi:
    """Answers the CLI's calls in order and records what it sent."""

    def __init__(self, polls: list[dict[str, Any]], fail_start: bool = False) -> None:
        self.polls = polls
        self.fail_start = fail_start
        self.calls: list[tuple[str, str, dict[str, str], bytes]] = []

    def __call__(self, request: urllib.request.Request, timeout: float) -> _Response:
        data = request.data.read() if hasattr(request.data, "read") else (request.data or b"")
        headers = {k.lower(): v for k, v in request.header_items()}
        self.calls.append((request.get_method(), request.full_url, headers, data))
        url = request.full_url
        if url.endswith("/v1/customer-imports"):
            return _Response({**_status("awaiting_upload", 0),
                              "upload_url": "https://bucket.s3.example/upload.csv?X-Amz-Signature=s"})
        if url.startswith("https://bucket"):
            return _Response({})
        if url.endswith("/start"):
            if self.fail_start:
                raise urllib.error.HTTPError(url, 422, "Unprocessable", None,  # type: ignore[arg-type]
                                             io.BytesIO(b'{"error": {"message": "unknown columns: x"}}'))
            return _Response(_status("queued", 10))
        return _Response(self.polls.pop(0))


def _run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, fake: _FakeApi, *extra: str) -> int:
    monkeypatch.setattr(urllib.request, "urlopen", fake)
    path = tmp_path / "base.csv"
    path.write_bytes(b"phone\n+79161234567\n")
    return cli.main(["import-customers", str(path), "--api", "http://api.local/", "--key", "lp_adm_x",
                     "--interval", "0", *extra])


def test_cli_uploads_starts_polls_and_draws_progress(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    fake = _FakeApi([_status("running", 50), _status("done", 100)])
    assert _run(monkeypatch, tmp_path, fake, "--program", "main") == 0
    methods = [(m, u.split("?")[0]) for m, u, _, _ in fake.calls]
    assert methods == [("POST", "http://api.local/v1/customer-imports"), ("PUT", "https://bucket.s3.example/upload.csv"),
                       ("POST", "http://api.local/v1/customer-imports/20261102-100000-abcdef/start"),
                       ("GET", "http://api.local/v1/customer-imports/20261102-100000-abcdef"),
                       ("GET", "http://api.local/v1/customer-imports/20261102-100000-abcdef")]
    create, put = fake.calls[0], fake.calls[1]
    assert json.loads(create[3]) == {"filename": "base.csv", "program_id": "main"}
    assert create[2]["authorization"] == "Bearer lp_adm_x"
    assert put[3] == b"phone\n+79161234567\n" and "authorization" not in put[2]
    out, err = capsys.readouterr()
    assert rules.render_bar(10, 100) in err and rules.render_bar(50, 100) in err and rules.render_bar(100, 100) in err
    assert "done; 3 row(s): 2 created, 1 updated, 0 rejected" in out


def test_cli_exits_3_with_rejected_rows_and_prints_the_result_link(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fake = _FakeApi([_status("done", 100, rejected=1, result_url="https://bucket/result.csv?sig")])
    assert _run(monkeypatch, tmp_path, fake) == 3
    out = capsys.readouterr().out
    assert "1 rejected" in out and "rejected rows and reasons: https://bucket/result.csv?sig" in out


def test_cli_exits_1_when_the_api_refuses_or_the_import_fails(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(monkeypatch, tmp_path, _FakeApi([], fail_start=True)) == 1
    assert "422 unknown columns: x" in capsys.readouterr().err
    assert _run(monkeypatch, tmp_path, _FakeApi([_status("failed", 40, error="the file is empty")])) == 1
    assert "error: the file is empty" in capsys.readouterr().err
