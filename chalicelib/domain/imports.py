"""Customer import rules without storage: the file's dialect, its header, and each row as a customer.

A customer base usually arrives as an Excel export: UTF-8 (often with a BOM)
or, from a Russian Excel, cp1251, with `;` or `,` between fields and Russian
column names. Everything here works on bytes and text already read, so the
same rules serve the inline import, the queued worker and the unit tests.

A record is split at line ends outside quotes: a `"` byte (0x22) never occurs
inside a multi-byte UTF-8 or cp1251 character, so counting quotes on the raw
bytes tells whether a record continues on the next line without decoding.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from pydantic import ValidationError

from chalicelib.domain.customers import disabled_fields_sent
from chalicelib.schemas.customers import CustomerCreate

MAX_ROWS = 1_000_000
MAX_ROW_BYTES = 4096
HEADER_SAMPLE_BYTES = 64 * 1024
"""The header (and the encoding guess) is read from this much of the file's start."""
BOM = b"\xef\xbb\xbf"
SKIP = "skip"
FIELDS = ("phone", "email", "first_name", "last_name", "middle_name", "gender", "birth_date", "tags",
          "consent_sms", "consent_email", "card_number", "source")
PERSONAL = ("phone", "email", "first_name", "last_name", "middle_name", "gender", "birth_date")

_ALIASES: dict[str, str] = {
    "phone": "phone", "phone_number": "phone", "mobile": "phone", "tel": "phone", "telephone": "phone",
    "телефон": "phone", "мобильный": "phone", "мобильный_телефон": "phone", "номер_телефона": "phone",
    "email": "email", "e_mail": "email", "mail": "email", "почта": "email", "электронная_почта": "email",
    "first_name": "first_name", "firstname": "first_name", "name": "first_name", "имя": "first_name",
    "last_name": "last_name", "lastname": "last_name", "surname": "last_name", "фамилия": "last_name",
    "middle_name": "middle_name", "patronymic": "middle_name", "отчество": "middle_name",
    "gender": "gender", "sex": "gender", "пол": "gender",
    "birth_date": "birth_date", "birthdate": "birth_date", "birthday": "birth_date", "date_of_birth": "birth_date",
    "дата_рождения": "birth_date", "день_рождения": "birth_date",
    "tags": "tags", "теги": "tags", "метки": "tags",
    "consent_sms": "consent_sms", "sms_consent": "consent_sms", "согласие_sms": "consent_sms",
    "согласие_на_sms": "consent_sms", "согласие_смс": "consent_sms",
    "consent_email": "consent_email", "email_consent": "consent_email", "согласие_email": "consent_email",
    "согласие_на_email": "consent_email", "согласие_на_рассылку": "consent_email",
    "card_number": "card_number", "card": "card_number", "карта": "card_number", "номер_карты": "card_number",
    "source": "source", "acquisition_source": "source", "источник": "source",
}
_GENDERS = {"f": "female", "female": "female", "w": "female", "ж": "female", "жен": "female", "женский": "female",
            "m": "male", "male": "male", "м": "male", "муж": "male", "мужской": "male"}
_YES = {"yes", "y", "1", "true", "да", "д", "+"}
_NO = {"no", "n", "0", "false", "нет", "н", "-"}
_DOTTED_DATE = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


# --- the file: encoding, delimiter, header -------------------------------------------------

def normalise_header(name: str) -> str:
    """`" Дата рождения "` -> `дата_рождения`: case, spaces, dashes and stray quotes do not matter."""
    text = name.replace("\ufeff", "").strip().strip('"').strip().lower()
    return re.sub(r"[\s\-.]+", "_", text)


def detect_encoding(sample: bytes) -> str:
    """`utf-8-sig` (with BOM), `utf-8`, or `cp1251` when the sample is not valid UTF-8 (Russian Excel)."""
    if sample.startswith(BOM):
        return "utf-8-sig"
    cut = sample.rfind(b"\n")
    whole = sample if cut < 0 else sample[:cut]
    try:
        whole.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A sample cut inside a character is still UTF-8; only a bad byte before its last 3 says otherwise.
        if cut >= 0 or exc.start < len(whole) - 3:
            return "cp1251"
    return "utf-8"


def row_encoding(encoding: str) -> str:
    return "utf-8" if encoding == "utf-8-sig" else encoding


def decode(raw: bytes, encoding: str) -> str | None:
    """A record as text; a UTF-8 file whose sample was plain ASCII may still hold cp1251 rows further on."""
    for name in dict.fromkeys((row_encoding(encoding), "cp1251")):
        try:
            return raw.decode(name)
        except UnicodeDecodeError:
            continue
    return None


def detect_delimiter(header: str) -> str:
    """The most frequent of `;`, `,` and tab in the header line (`,` when none)."""
    counts = {d: header.count(d) for d in (";", ",", "\t")}
    best = max(counts, key=lambda d: (counts[d], d == ","))
    return best if counts[best] else ","


def split(text: str, delimiter: str) -> list[str]:
    """One record's fields (quotes as Excel writes them); csv.Error if it is malformed."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    rows = list(reader)
    if len(rows) != 1:
        raise csv.Error("a record spans an unexpected line break")
    return rows[0]


@dataclass(frozen=True)
class Header:
    encoding: str
    delimiter: str
    columns: list[str | None]
    """The field each column holds, None for a column to skip."""
    length: int
    """Bytes up to and including the header's line end: where the first row starts."""
    problems: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)


def map_header(names: list[str], overrides: Mapping[str, str] | None = None) -> tuple[list[str | None], list[str],
                                                                                       list[str]]:
    """Each column's field: (columns, unknown names, other problems). `overrides` maps names to a field or `skip`."""
    given = {normalise_header(k): v for k, v in (overrides or {}).items()}
    columns: list[str | None] = []
    unknown: list[str] = []
    problems: list[str] = []
    for name in names:
        key = normalise_header(name)
        target = given.get(key) or _ALIASES.get(key)
        if target is None and not key:
            target = SKIP  # an empty trailing column, as Excel writes them
        if target is None:
            unknown.append(name.replace("\ufeff", "").strip())
            columns.append(None)
            continue
        columns.append(None if target == SKIP else target)
    mapped = [c for c in columns if c]
    for twice in sorted({c for c in mapped if mapped.count(c) > 1}):
        problems.append(f"more than one column holds {twice}")
    if "phone" not in mapped and not unknown:
        problems.append("no phone column: customers are merged by phone")
    return columns, unknown, problems


def read_header(sample: bytes, total: int, overrides: Mapping[str, str] | None = None) -> Header:
    """The file's dialect and columns from its first `HEADER_SAMPLE_BYTES` (`total`: the file size)."""
    encoding = detect_encoding(sample)
    end = sample.find(b"\n")
    if end < 0:
        if len(sample) < total:
            return Header(encoding, ",", [], 0, ["the header line is longer than 64 KB"])
        end = len(sample) - 1
    raw = sample[len(BOM):end + 1] if encoding == "utf-8-sig" else sample[:end + 1]
    text = decode(raw.rstrip(b"\r\n"), encoding)
    if text is None or not text.strip():
        return Header(encoding, ",", [], end + 1, ["the first line must name the columns"])
    delimiter = detect_delimiter(text)
    try:
        names = split(text, delimiter)
    except csv.Error as exc:
        return Header(encoding, delimiter, [], end + 1, [f"the header line is malformed: {exc}"])
    columns, unknown, problems = map_header(names, overrides)
    return Header(encoding, delimiter, columns, end + 1, problems, unknown)


# --- records: splitting a byte stream at row boundaries ------------------------------------

@dataclass(frozen=True)
class RawRecord:
    start: int
    """Byte offset of the record in the file."""
    end: int
    """Byte offset just past its line end: a safe place to resume."""
    line: int
    """The file line it starts on (1 is the header)."""
    lines: int
    raw: bytes
    too_long: bool = False

    @property
    def blank(self) -> bool:
        return not self.raw.strip().strip(b",;\t").strip()


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Physical lines with their line ends (the last one may have none)."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        cut = pending.find(b"\n")
        while cut >= 0:
            yield pending[:cut + 1]
            pending = pending[cut + 1:]
            cut = pending.find(b"\n")
    if pending:
        yield pending


def records(chunks: Iterable[bytes], start: int, line: int) -> Iterator[RawRecord]:
    """Records from a stream of bytes read from offset `start` (which begins file line `line`).

    A record is one line, or several when a quoted field holds a line break;
    one longer than `MAX_ROW_BYTES` is cut at the line end that crossed the
    limit and marked `too_long`.
    """
    buffer = b""
    offset, current = start, line
    first_offset, first_line, count = start, line, 0
    for piece in _lines(chunks):
        if not buffer:
            first_offset, first_line, count = offset, current, 0
        buffer += piece
        offset += len(piece)
        current += 1
        count += 1
        if buffer.count(b'"') % 2 == 0 or len(buffer) > MAX_ROW_BYTES:
            yield RawRecord(first_offset, offset, first_line, count, buffer.rstrip(b"\r\n"),
                            len(buffer) > MAX_ROW_BYTES)
            buffer = b""
    if buffer:
        yield RawRecord(first_offset, offset, first_line, count, buffer.rstrip(b"\r\n"), False)


# --- rows: text -> customer --------------------------------------------------------------

@dataclass(frozen=True)
class RowContext:
    import_id: str
    consent_text_version: str
    default_consents: list[dict[str, Any]] = field(default_factory=list)
    disabled: frozenset[str] = frozenset()
    """The tenant's switched-off personal fields (minimal-data mode)."""


@dataclass
class RowResult:
    data: dict[str, Any]
    """CustomerCreate-compatible (JSON types)."""
    card_number: str | None = None
    errors: list[str] = field(default_factory=list)
    customer: CustomerCreate | None = None


def parse_gender(value: str) -> str | None:
    return _GENDERS.get(value.strip().lower().rstrip("."))


def parse_date(value: str) -> date | None:
    """YYYY-MM-DD or DD.MM.YYYY; None if it is neither or no such day."""
    text = value.strip()
    iso, dotted = _ISO_DATE.match(text), _DOTTED_DATE.match(text)
    try:
        if iso:
            return date(int(iso[1]), int(iso[2]), int(iso[3]))
        if dotted:
            return date(int(dotted[3]), int(dotted[2]), int(dotted[1]))
    except ValueError:
        return None
    return None


def parse_flag(value: str) -> bool | None:
    text = value.strip().lower()
    return True if text in _YES else False if text in _NO else None


def parse_tags(value: str) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in re.split(r"[;|]", value) if t.strip()))


@dataclass
class _RowFields:
    """What a row's cells say so far, in column order (later cells of one field win)."""

    consents: dict[str, dict[str, Any]]
    data: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    card_number: str | None = None
    source: str | None = None


def _read_text(row: _RowFields, name: str, value: str, ctx: RowContext) -> None:
    row.data[name] = value


def _read_gender(row: _RowFields, name: str, value: str, ctx: RowContext) -> None:
    gender = parse_gender(value)
    if gender is None:
        row.errors.append("gender: expected f, m, female, male, ж or м")
    row.data[name] = gender


def _read_birth_date(row: _RowFields, name: str, value: str, ctx: RowContext) -> None:
    day = parse_date(value)
    if day is None:
        row.errors.append("birth_date: expected a date as YYYY-MM-DD or DD.MM.YYYY")
    row.data[name] = day.isoformat() if day else None


def _read_tags(row: _RowFields, name: str, value: str, ctx: RowContext) -> None:
    row.data["tags"] = parse_tags(value)


def _read_consent(row: _RowFields, name: str, value: str, ctx: RowContext) -> None:
    """A yes/no cell replaces the tenant's default consent of that kind, sourced to this import."""
    flag = parse_flag(value)
    if flag is None:
        row.errors.append(f"{name}: expected yes/no, 1/0 or да/нет")
        return
    kind = name.removeprefix("consent_")
    row.consents[kind] = {"kind": kind, "granted": flag, "source": f"import:{ctx.import_id}",
                          "text_version": ctx.consent_text_version}


def _read_card_number(row: _RowFields, name: str, value: str, ctx: RowContext) -> None:
    row.card_number = re.sub(r"[\s-]", "", value)


def _read_source(row: _RowFields, name: str, value: str, ctx: RowContext) -> None:
    row.source = value


_READERS: dict[str, Callable[[_RowFields, str, str, RowContext], None]] = {
    "phone": _read_text, "email": _read_text, "first_name": _read_text, "last_name": _read_text,
    "middle_name": _read_text, "gender": _read_gender, "birth_date": _read_birth_date, "tags": _read_tags,
    "consent_sms": _read_consent, "consent_email": _read_consent, "card_number": _read_card_number,
    "source": _read_source,
}
"""One reader per import field: it stores the cell's value on the row, or notes what is wrong with it."""


def row_data(values: list[str], columns: list[str | None], ctx: RowContext) -> RowResult:
    """The row as a CustomerCreate-compatible dict, and what is wrong with it before model validation."""
    row = _RowFields(consents={c["kind"]: dict(c) for c in ctx.default_consents})
    if len(values) > len(columns) and any(v.strip() for v in values[len(columns):]):
        row.errors.append(f"row: {len(values)} fields where the header has {len(columns)}")
    for name, raw in zip(columns, values, strict=False):
        value = raw.strip()
        if name is not None and value and name in _READERS:
            _READERS[name](row, name, value, ctx)
    return _completed(row, ctx)


def _completed(row: _RowFields, ctx: RowContext) -> RowResult:
    """The tenant's rules over the whole row (switched-off fields, the phone), then acquisition and consents."""
    data = row.data
    off = disabled_fields_sent({k: v for k, v in data.items() if k in PERSONAL}, ctx.disabled)
    row.errors.extend(f"{name}: switched off by the tenant (minimal-data mode)" for name in off)
    if not data.get("phone") and "phone" not in off:
        row.errors.append("phone: required (customers are merged by phone)")
    acquisition = {"channel": "import", "source": ctx.import_id}
    if row.source:
        acquisition["medium"] = row.source
    data["acquisition"] = acquisition
    data["consents"] = [row.consents[k] for k in sorted(row.consents)]
    return RowResult({k: v for k, v in data.items() if v is not None}, row.card_number, row.errors)


def _issue(item: Mapping[str, Any]) -> str:
    loc = ".".join(str(p) for p in item["loc"]) or "row"
    message = str(item["msg"]).removeprefix("Value error, ")
    return f"{loc}: {message}"


def parse_row(values: list[str], columns: list[str | None], ctx: RowContext) -> RowResult:
    """`row_data` checked by the CustomerCreate model: `customer` is set exactly when `errors` is empty."""
    result = row_data(values, columns, ctx)
    if result.errors:
        return result
    try:
        result.customer = CustomerCreate.model_validate(result.data, strict=False)
    except ValidationError as err:
        result.errors.extend(_issue(item) for item in err.errors(include_url=False))
    if result.card_number is not None and not re.fullmatch(r"[0-9]{8,19}", result.card_number):
        result.customer = None
        result.errors.append("card_number: expected 8 to 19 digits")
    return result


# --- the result file and the progress bar ---------------------------------------------------

RESULT_HEADER = ("line", "row", "reason")


def result_lines(rows: Iterable[tuple[int, str, str]], delimiter: str) -> str:
    """Rejected rows as CSV lines (line number, the original row, the reason), in the file's own delimiter."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    for line, original, reason in rows:
        writer.writerow([line, original, reason])
    return out.getvalue()


def result_head(delimiter: str) -> str:
    return delimiter.join(RESULT_HEADER) + "\r\n"


def render_bar(done: int, total: int, width: int = 30) -> str:
    """`[##########--------------------]  33%  1.0/3.0 MB`: the CLI's progress line (KB below 1 MB)."""
    share = 1.0 if total <= 0 else min(1.0, max(0.0, done / total))
    filled = int(share * width)
    unit, size = ("MB", 1_000_000) if total >= 1_000_000 else ("KB", 1_000)
    return (f"[{'#' * filled}{'-' * (width - filled)}] {int(share * 100):3d}%  "
            f"{done / size:.1f}/{max(total, 0) / size:.1f} {unit}")
