"""File formats. Writers take rows lazily and push bytes into a storage `Upload` as they go.

XLSX is written by `xlsxwriter` in constant-memory mode (each row is flushed
to a temporary file as soon as the next one starts) into Lambda's /tmp, then
streamed to the upload in parts. /tmp is 512 MB unless the function is given
more (`ephemeral_storage`), and a sheet holds at most 1,048,576 rows: a
larger report fails with `too_many_rows` (ask for CSV or a shorter period).
A report type may add native charts over its data sheet (`ReportType.charts`).

CSV is UTF-8 with a byte-order mark, so Excel detects the encoding and shows
Cyrillic correctly. The delimiter is `,` by default (RFC 4180, what every
tool and library parses without being told); `;` on request, since Excel in
locales whose decimal separator is a comma (ru-RU among them) splits on `;`
when a file is double-clicked.
"""

from __future__ import annotations

import csv
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

import xlsxwriter
from xlsxwriter.workbook import Workbook
from xlsxwriter.worksheet import Worksheet

BOM = "\ufeff"
CONTENT_TYPES = {"csv": "text/csv; charset=utf-8",
                 "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


class ByteSink(Protocol):
    def write(self, data: bytes) -> None: ...


class _TextSink:
    """What `csv.writer` writes to: each row is encoded and handed on at once (no buffer of our own)."""

    def __init__(self, sink: ByteSink) -> None:
        self._sink = sink

    def write(self, text: str) -> None:
        self._sink.write(text.encode("utf-8"))


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


PLAIN_NUMBER = re.compile(r"^[+-][0-9][0-9 ().-]*$")


def safe_cell(value: Any) -> Any:
    """A text cell Excel would run as a formula (`=HYPERLINK(...)` in a reason) is prefixed with `'`.

    A phone (`+79161234567`) or a signed number is left alone: nothing in it can be a formula.
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS) and not PLAIN_NUMBER.match(value):
        return "'" + value
    return value


def write_csv(sink: ByteSink, columns: Sequence[str], rows: Iterable[Sequence[Any]], delimiter: str = ",") -> int:
    """Write a header and every row; returns the number of data rows."""
    text = _TextSink(sink)
    text.write(BOM)
    writer = csv.writer(text, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
        count += 1
    return count


XLSX_MAX_ROWS = 1_048_575
"""Data rows a sheet can take under its header row."""
COPY_CHUNK = 8 * 1024 * 1024

Charts = Callable[[Workbook, Worksheet, int, Any], None]
"""Adds charts over the data sheet: (workbook, data sheet, data rows under the header, the ReportContext)."""


def column_chart(workbook: Workbook, sheet: Worksheet, columns: Sequence[str], rows: int, category: str,
                 values: Sequence[str], title: str, y_axis: str | None = None) -> None:
    """Columns of `values` per `category` over the data sheet's first `rows` rows, on a sheet "Charts"."""
    name = sheet.get_name()
    chart = workbook.add_chart({"type": "column"})
    at = columns.index(category)
    for column in values:
        col = columns.index(column)
        chart.add_series({"name": [name, 0, col], "categories": [name, 1, at, rows, at],
                          "values": [name, 1, col, rows, col]})
    chart.set_title({"name": title})
    if y_axis:
        chart.set_y_axis({"name": y_axis})
    workbook.add_worksheet("Charts").insert_chart("A1", chart, {"x_scale": 2, "y_scale": 1.5})


class TooManyRows(Exception):
    """The rows do not fit in one XLSX sheet."""


def write_xlsx(sink: ByteSink, columns: Sequence[str], rows: Iterable[Sequence[Any]], sheet_name: str,
               charts: Charts | None = None, context: Any = None) -> int:
    """Write the rows to a data sheet (numbers as numbers), add the type's charts, stream the file to `sink`."""
    handle, path = tempfile.mkstemp(suffix=".xlsx")
    os.close(handle)
    try:
        workbook = xlsxwriter.Workbook(path, {"constant_memory": True, "tmpdir": tempfile.gettempdir(),
                                              "strings_to_formulas": False, "strings_to_urls": False})
        sheet = workbook.add_worksheet(sheet_name[:31])
        header = workbook.add_format({"bold": True})
        sheet.write_row(0, 0, list(columns), header)
        sheet.freeze_panes(1, 0)
        count = 0
        for row in rows:
            if count >= XLSX_MAX_ROWS:
                workbook.close()
                raise TooManyRows
            count += 1
            sheet.write_row(count, 0, list(row))
        if charts is not None:
            charts(workbook, sheet, count, context)
        workbook.close()
        with open(path, "rb") as done:
            while chunk := done.read(COPY_CHUNK):
                sink.write(chunk)
        return count
    finally:
        os.unlink(path)
