"""Reading a spreadsheet (CSV or XLSX) into numbered rows of text cells."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from handlers.directory.rows import ImportRejected, RowError


@dataclass(frozen=True)
class Row:
    """One data row: its number as the spreadsheet shows it (the header is row 1)."""

    number: int
    cells: dict[str, str]


def read_rows(path: Path, required: tuple[str, ...]) -> list[Row]:
    """The non-blank rows of a CSV or XLSX file whose header has every ``required`` column.

    CSV is read as UTF-8 (with or without BOM), falling back to GB18030, the encoding
    Excel uses for Chinese CSV exports.
    """
    suffix = path.suffix.lower()
    if suffix == ".csv":
        table = _read_csv(path)
    elif suffix in (".xlsx", ".xlsm"):
        table = _read_xlsx(path)
    else:
        raise ImportRejected([RowError(0, f"{path.name}: expected a .csv or .xlsx file")])
    if not table:
        raise ImportRejected([RowError(1, "the file is empty: expected a header row")])
    header = [cell.strip().lower() for cell in table[0]]
    missing = [name for name in required if name not in header]
    if missing:
        raise ImportRejected([RowError(1, f"missing column(s): {', '.join(missing)}")])
    rows = []
    for offset, values in enumerate(table[1:], start=2):
        if not any(value.strip() for value in values):
            continue
        cells = {name: (values[i].strip() if i < len(values) else "") for i, name in enumerate(header)}
        rows.append(Row(offset, cells))
    return rows


def _read_csv(path: Path) -> list[list[str]]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ImportRejected([RowError(0, f"{path}: {exc.strerror or exc}")]) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("gb18030", errors="strict")
        except UnicodeDecodeError as exc:
            message = f"{path.name}: not a CSV text file (neither UTF-8 nor GB18030)"
            raise ImportRejected([RowError(0, message)]) from exc
    try:
        return [list(row) for row in csv.reader(io.StringIO(text, newline=""))]
    except csv.Error as exc:
        raise ImportRejected([RowError(0, f"{path.name}: not a readable CSV file ({exc})")]) from exc


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # ids and phone numbers typed as numbers
    return str(value)


def _read_xlsx(path: Path) -> list[list[str]]:
    from openpyxl import load_workbook  # only imported when an XLSX file is given

    try:
        workbook = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several unrelated types for a bad file
        raise ImportRejected([RowError(0, f"{path.name}: not a readable XLSX file ({exc})")]) from exc
    try:
        sheet = workbook.worksheets[0]
        return [[_cell_text(v) for v in row] for row in sheet.iter_rows(values_only=True)]
    finally:
        workbook.close()
