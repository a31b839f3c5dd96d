"""Writing cases in an agency's format: CSV (csv module), XLSX (openpyxl) and JSON.

Each column reads one path of the case record (`formats.source_paths`) and formats it by its type: money with the
format's decimal separator (CSV) or as a real number (XLSX), dates by the format's date format (CSV) or as real date
cells (XLSX). Text that a spreadsheet would run as a formula — a cell starting with `=`, `+`, `-`, `@`, a tab or a
carriage return — is neutralised with a leading apostrophe (OWASP, CSV injection); amounts and dates are written
by us from numbers and cannot carry one.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import IO, Any

from connector.handoff.dossier import Case
from connector.handoff.formats import AgencyFormat, Column, FieldType

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CASE_FORMAT = "dunning-case/1"


def neutralise(text: str) -> str:
    """A text cell a spreadsheet cannot mistake for a formula (OWASP: prefix a single quote)."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def value_at(record: Mapping[str, Any], path: str, invoice: Mapping[str, Any] | None = None) -> Any:
    """The value of `path` in a case record (`invoice.*` in the given invoice); None where a part is absent."""
    parts = path.split(".")
    node: Any = record
    if parts[0] == "invoice":
        node, parts = invoice, parts[1:]
    for part in parts:
        if not isinstance(node, Mapping):
            return None
        node = node.get(part)
    return node


def _empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, list | tuple) and not value)


def missing_fields(case: Case, agency: AgencyFormat) -> list[str]:
    """What the format requires that the case does not have, one line each (naming the column)."""
    found: list[str] = []
    for path, column in agency.required_paths:
        where = f" (column {column!r})" if column else ""
        if path.startswith("invoice."):
            for invoice in case.record["invoices"]:
                if _empty(value_at(case.record, path, invoice)):
                    found.append(f"{path}{where} of invoice {invoice['number']}")
        elif _empty(value_at(case.record, path)):
            found.append(f"{path}{where}")
    return found


def rows(cases: Iterable[Case], agency: AgencyFormat) -> Iterator[list[Any]]:
    """The raw (typed) values of each row, in column order."""
    for case in cases:
        if agency.rows == "invoice":
            for invoice in case.record["invoices"]:
                yield [_raw(case.record, c, invoice) for c in agency.columns]
        else:
            yield [_raw(case.record, c, None) for c in agency.columns]


def _raw(record: Mapping[str, Any], column: Column, invoice: Mapping[str, Any] | None) -> Any:
    return column.value if column.source is None else value_at(record, column.source, invoice)


def _translated(value: Any, column: Column) -> Any:
    if not column.values:
        return value
    key = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return column.values.get(key, value)


def _text_cell(value: Any, column: Column) -> str:
    text = column.join.join(map(str, value)) if isinstance(value, list | tuple) else str(value)
    text = text.replace("\r\n", "\n")
    if column.max_length:
        text = text[: column.max_length]
    return neutralise(text)


def csv_cell(value: Any, column: Column, agency: AgencyFormat) -> str:
    """One CSV cell as text."""
    if value is None:
        return ""
    kind = column.type
    value = _translated(value, column)
    if kind is FieldType.MONEY and isinstance(value, Decimal):
        text = f"{value:.{column.decimals}f}"
        return text.replace(".", ",") if agency.decimal_separator == "," else text
    if kind is FieldType.DATE and isinstance(value, date):
        return value.strftime(column.date_format or agency.date_format)
    if kind is FieldType.INTEGER and isinstance(value, int):
        return str(value)
    if kind is FieldType.BOOLEAN and isinstance(value, bool):
        return "true" if value else "false"
    return _text_cell(value, column)


def write_csv(path: Path, cases: Sequence[Case], agency: AgencyFormat) -> None:
    with _open_text(path, agency.encoding) as handle:
        writer = csv.writer(handle, delimiter=agency.delimiter, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
        writer.writerow([neutralise(c.name) for c in agency.columns])
        columns = agency.columns
        for row in rows(cases, agency):
            writer.writerow([csv_cell(value, column, agency) for value, column in zip(row, columns, strict=True)])


def _open_text(path: Path, encoding: str) -> IO[str]:
    # `replace`: a character the agency's encoding lacks becomes '?' rather than losing the whole export
    return path.open("w", encoding=encoding, errors="replace", newline="")


_EXCEL_DATE = (("%Y", "yyyy"), ("%y", "yy"), ("%m", "mm"), ("%d", "dd"), ("%B", "mmmm"), ("%b", "mmm"))


def excel_date_format(strftime: str) -> str:
    """`%d-%m-%Y` → `dd-mm-yyyy` (what a spreadsheet shows for a date cell)."""
    result = strftime
    for code, excel in _EXCEL_DATE:
        result = result.replace(code, excel)
    return re.sub(r"%.", "", result)


def write_xlsx(path: Path, cases: Sequence[Case], agency: AgencyFormat) -> None:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter

    book = Workbook(write_only=True)
    sheet = book.create_sheet(agency.sheet)
    sheet.freeze_panes = "A2"  # the header stays in view
    for number, column in enumerate(agency.columns, start=1):
        sheet.column_dimensions[get_column_letter(number)].width = max(12, min(len(column.name) + 2, 40))
    header = []
    for column in agency.columns:
        cell = WriteOnlyCell(sheet, value=neutralise(column.name))
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    formats = {
        id(c): (f"0.{'0' * c.decimals}" if c.decimals else "0") if c.type is FieldType.MONEY
        else excel_date_format(c.date_format or agency.date_format) if c.type is FieldType.DATE else None
        for c in agency.columns
    }
    for row in rows(cases, agency):
        cells = []
        for value, column in zip(row, agency.columns, strict=True):
            cells.append(_xlsx_cell(sheet, WriteOnlyCell, value, column, formats[id(column)]))
        sheet.append(cells)
    book.save(path)


def _xlsx_cell(sheet: Any, cell_type: Any, value: Any, column: Column, number_format: str | None) -> Any:
    kind = column.type
    value = _translated(value, column)
    if value is None:
        return None
    if (kind is FieldType.MONEY and isinstance(value, Decimal)) or (kind is FieldType.DATE and isinstance(value, date)):
        cell = cell_type(sheet, value=value)
        cell.number_format = number_format
        return cell
    if kind is FieldType.INTEGER and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind is FieldType.BOOLEAN and isinstance(value, bool):
        return "true" if value else "false"
    return _text_cell(value, column)  # neutralised: it cannot start with "=", so openpyxl writes it as text


def to_json(value: Any) -> Any:
    """A case record's value in its JSON form: amounts as exact decimal strings, dates ISO 8601."""
    if isinstance(value, Mapping):
        return {key: to_json(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(item) for item in value]
    if isinstance(value, Decimal):
        return f"{value:.2f}"
    if isinstance(value, date):
        return value.isoformat()
    return value


def json_document(cases: Sequence[Case], agency: AgencyFormat, as_of: date) -> dict[str, Any]:
    """The canonical export (`mappings/case.schema.json`), or with [[columns]] one object per row."""
    if not agency.columns:
        return {"format": CASE_FORMAT, "agency": agency.name, "as_of": as_of.isoformat(),
                "cases": [to_json(case.record) for case in cases]}
    return {
        "format": f"{CASE_FORMAT}+{agency.name}",
        "agency": agency.name,
        "as_of": as_of.isoformat(),
        "rows": [
            {column.name: to_json(_translated(value, column))
             for value, column in zip(row, agency.columns, strict=True)}
            for row in rows(cases, agency)
        ],
    }


def write_json(path: Path, cases: Sequence[Case], agency: AgencyFormat, as_of: date) -> None:
    # compact, so the C encoder writes it (an indented dump runs the pure-Python encoder: 3x slower)
    text = json.dumps(json_document(cases, agency, as_of), ensure_ascii=False, separators=(",", ":"))
    with _open_text(path, agency.encoding) as handle:
        handle.write(text + "\n")


def write_data_file(folder: Path, cases: Sequence[Case], agency: AgencyFormat, as_of: date) -> Path:
    """The agency's data file in `folder`; returns its path."""
    path = folder / agency.data_file
    if agency.file_type == "csv":
        write_csv(path, cases, agency)
    elif agency.file_type == "xlsx":
        write_xlsx(path, cases, agency)
    else:
        write_json(path, cases, agency, as_of)
    return path
