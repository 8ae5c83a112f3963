"""Import and export of cooperations as JSON or CSV, exactly round-tripping.

JSON
    A list of records in their canonical dict form (``Cooperation.to_dict``), written with
    two-space indents. JSON Lines (one record per line, ``.jsonl``) is read too.
CSV (UTF-8, comma, header on line 1)
    ``slug, name, instrument, status, start, end, themes, parties, governance, funding,
    description, actions, sources``. ``themes`` is a ``;``-separated list; ``parties``,
    ``actions`` and ``sources`` hold JSON lists (the only way to round-trip free text
    exactly). For hand-written files ``parties`` may also be ``;``-separated refs with an
    optional role: ``epci:242900314=lead; epci:244400404``. Blank cells are "unknown".

Reading never touches the register; :func:`import_records` validates everything (format,
vocabularies, territories, dates, duplicates within the file and against the register) before
writing anything, so a bad file leaves the register unchanged. Errors name the file, the line
(the line where the record starts; the header is line 1) and the column (the field).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from maillage.cooperations import crud
from maillage.cooperations.auth import require_role
from maillage.cooperations.db import UserRow
from maillage.cooperations.errors import ImportFormatError, RecordInvalid
from maillage.cooperations.records import Cooperation, validate_record

CSV_COLUMNS: tuple[str, ...] = (
    "slug",
    "name",
    "instrument",
    "status",
    "start",
    "end",
    "themes",
    "parties",
    "governance",
    "funding",
    "description",
    "actions",
    "sources",
)
_JSON_COLUMNS = ("parties", "actions", "sources")


@dataclass
class ImportReport:
    """What an import did."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# writing


def to_json(records: Iterable[Cooperation]) -> str:
    """JSON text of ``records`` (a list of canonical dicts)."""
    data = [r.to_dict() for r in records]
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def to_csv(records: Iterable[Cooperation]) -> str:
    """CSV text of ``records`` (see the module docstring for the layout)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for rec in records:
        d = rec.to_dict()
        row = []
        for col in CSV_COLUMNS:
            value = d[col]
            if col == "themes":
                row.append(";".join(value))
            elif col in _JSON_COLUMNS:
                row.append(json.dumps(value, ensure_ascii=False) if value else "")
            else:
                row.append("" if value is None else value)
        writer.writerow(row)
    return buffer.getvalue()


def export_records(
    records: Iterable[Cooperation], path: str | Path, fmt: str | None = None
) -> None:
    """Write ``records`` to ``path`` as JSON or CSV (format from ``fmt`` or the extension)."""
    fmt = fmt or _format_of(Path(path))
    text = to_csv(records) if fmt == "csv" else to_json(records)
    Path(path).write_text(text, encoding="utf-8", newline="")


# ---------------------------------------------------------------------------------------------
# reading


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix == ".jsonl":
        return "jsonl"
    if suffix == ".json":
        return "json"
    raise ImportFormatError(
        "cannot tell the format from the extension; use .json, .jsonl or .csv (or --format)",
        path=str(path),
    )


def read_records(path: str | Path, fmt: str | None = None) -> list[tuple[int, Cooperation]]:
    """Parse a file into ``(line, record)`` pairs; format problems raise ImportFormatError.

    Vocabularies and territories are not checked here (see :func:`check_records`).
    """
    path = Path(path)
    fmt = fmt or _format_of(path)
    try:
        with open(path, encoding="utf-8", newline="") as handle:  # keep \r inside fields
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise ImportFormatError(f"not UTF-8 text ({exc.reason})", path=str(path)) from exc
    if fmt == "csv":
        rows = _csv_rows(text, str(path))
    elif fmt == "jsonl":
        rows = _jsonl_rows(text, str(path))
    elif fmt == "json":
        rows = _json_rows(text, str(path))
    else:
        raise ImportFormatError(f"unknown format {fmt!r} (json, jsonl, csv)", path=str(path))
    out = []
    for line, data in rows:
        try:
            out.append((line, Cooperation.from_dict(data)))
        except RecordInvalid as exc:
            first = exc.problems[0] if exc.problems else str(exc)
            raise ImportFormatError(
                str(exc), path=str(path), line=line, column=_column_of(first)
            ) from exc
    return out


def _json_rows(text: str, path: str) -> list[tuple[int, dict]]:
    """Records of a JSON list with the line where each starts."""
    decoder = json.JSONDecoder()
    pos = _skip_ws(text, 0)
    if pos >= len(text) or text[pos] != "[":
        line, col = _line_col(text, pos)
        raise ImportFormatError(
            f"expected a JSON list of records (column {col})", path=path, line=line
        )
    pos = _skip_ws(text, pos + 1)
    rows: list[tuple[int, dict]] = []
    if pos < len(text) and text[pos] == "]":
        _expect_end(text, pos + 1, path)
        return rows
    while True:
        line, col = _line_col(text, pos)
        try:
            value, pos = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(
                f"malformed JSON: {exc.msg} (character {exc.colno} of the line)",
                path=path,
                line=exc.lineno,
            ) from exc
        if not isinstance(value, dict):
            raise ImportFormatError(
                f"a record must be a JSON object (character {col})", path=path, line=line
            )
        rows.append((line, value))
        pos = _skip_ws(text, pos)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_ws(text, pos + 1)
            continue
        if pos < len(text) and text[pos] == "]":
            _expect_end(text, pos + 1, path)
            return rows
        line, col = _line_col(text, pos)
        raise ImportFormatError(
            f"malformed JSON: expected ',' or ']' (character {col})", path=path, line=line
        )


def _expect_end(text: str, pos: int, path: str) -> None:
    pos = _skip_ws(text, pos)
    if pos < len(text):
        line, col = _line_col(text, pos)
        raise ImportFormatError(
            f"unexpected text after the list (character {col})", path=path, line=line
        )


def _skip_ws(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n":
        pos += 1
    return pos


def _line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    return line, pos - (text.rfind("\n", 0, pos) + 1) + 1


def _jsonl_rows(text: str, path: str) -> list[tuple[int, dict]]:
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ImportFormatError(
                f"malformed JSON: {exc.msg} (character {exc.colno})", path=path, line=number
            ) from exc
        if not isinstance(value, dict):
            raise ImportFormatError("a record must be a JSON object", path=path, line=number)
        rows.append((number, value))
    return rows


def _csv_rows(text: str, path: str) -> list[tuple[int, dict]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise ImportFormatError("empty file: a header line is needed", path=path, line=1) from None
    except csv.Error as exc:
        raise ImportFormatError(f"malformed CSV: {exc}", path=path, line=1) from exc
    header = [h.strip().lstrip("\ufeff") for h in header]
    unknown = [h for h in header if h not in CSV_COLUMNS]
    if unknown:
        raise ImportFormatError(
            f"unknown column(s) {unknown}; expected {', '.join(CSV_COLUMNS)}",
            path=path,
            line=1,
            column=unknown[0],
        )
    for needed in ("slug", "name", "instrument"):
        if needed not in header:
            raise ImportFormatError(
                f"column {needed!r} is missing", path=path, line=1, column=needed
            )
    rows = []
    start = reader.line_num + 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise ImportFormatError(f"malformed CSV: {exc}", path=path, line=start) from exc
        if not any(c.strip() for c in cells):
            start = reader.line_num + 1
            continue
        if len(cells) != len(header):
            raise ImportFormatError(
                f"{len(cells)} cells where the header has {len(header)}", path=path, line=start
            )
        rows.append((start, _csv_record(dict(zip(header, cells, strict=True)), path, start)))
        start = reader.line_num + 1
    return rows


def _csv_record(cells: dict[str, str], path: str, line: int) -> dict[str, Any]:
    record: dict[str, Any] = {}
    for col, raw in cells.items():
        value = raw if raw.strip() else None
        if col == "themes":
            record[col] = [t.strip() for t in raw.split(";") if t.strip()]
        elif col == "parties" and value is not None and not value.lstrip().startswith("["):
            record[col] = _short_parties(value)
        elif col in _JSON_COLUMNS:
            if value is None:
                record[col] = []
                continue
            try:
                record[col] = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ImportFormatError(
                    f"malformed JSON in the cell: {exc.msg} (character {exc.pos + 1})",
                    path=path,
                    line=line,
                    column=col,
                ) from exc
            if not isinstance(record[col], list):
                raise ImportFormatError(
                    "the cell must hold a JSON list", path=path, line=line, column=col
                )
        else:
            record[col] = value
    return record


def _short_parties(text: str) -> list[dict[str, str]]:
    """``"epci:242900314=lead; epci:244400404"`` → party dicts."""
    parties = []
    for item in text.split(";"):
        item = item.strip()
        if not item:
            continue
        ref, _, role = item.partition("=")
        parties.append({"ref": ref.strip(), "role": role.strip() or "member"})
    return parties


_COLUMN_PATTERNS = (
    (r"^slug", "slug"),
    (r"^name", "name"),
    (r"^instrument", "instrument"),
    (r"^status|^an ended", "status"),
    (r"^theme|^a theme", "themes"),
    (r"^party|^a party|^a cooperation needs at least one party|unknown party", "parties"),
    (r"^source|unknown source", "sources"),
    (r"^start", "start"),
    (r"^end", "end"),
    (r"field '(\w+)'", None),
)


def _column_of(problem: str) -> str | None:
    """The field a validation message is about (best effort, for error locations)."""
    for pattern, column in _COLUMN_PATTERNS:
        m = re.search(pattern, problem)
        if m:
            return column or m.group(1)
    return None


# ---------------------------------------------------------------------------------------------
# importing into the register


def check_records(
    rows: list[tuple[int, Cooperation]],
    path: str,
    *,
    existing: set[str] | None = None,
    exists: Any = None,
) -> None:
    """Raise ImportFormatError listing every invalid or duplicate record of ``rows``.

    ``existing`` holds the slugs already in the register (duplicates when given).
    """
    problems: list[tuple[int, str | None, str]] = []
    seen: dict[str, int] = {}
    for line, rec in rows:
        for p in validate_record(rec, exists):
            problems.append((line, _column_of(p), p))
        if rec.slug in seen:
            problems.append(
                (line, "slug", f"slug {rec.slug!r} already used on line {seen[rec.slug]}")
            )
        elif existing is not None and rec.slug in existing:
            problems.append((line, "slug", f"cooperation {rec.slug!r} is already in the register"))
        seen.setdefault(rec.slug, line)
    if problems:
        line, column, _ = problems[0]
        listing = "\n".join(
            f"  - line {ln}" + (f", column {col}" if col else "") + f": {msg}"
            for ln, col, msg in problems[:30]
        )
        more = f"\n  … and {len(problems) - 30} more" if len(problems) > 30 else ""
        error = ImportFormatError(
            f"{len(problems)} problem(s); nothing was imported:\n{listing}{more}",
            path=path,
            line=line,
            column=column,
        )
        error.problems = [f"line {ln}: {msg}" for ln, _c, msg in problems]
        raise error


def import_records(
    session: Session,
    path: str | Path,
    *,
    user: UserRow | None,
    fmt: str | None = None,
    replace: bool = False,
    exists: Any = crud._DEFAULT,
) -> ImportReport:
    """Import a JSON/CSV file into the register, all or nothing.

    ``replace=False`` refuses records whose slug exists (DuplicateRecord-like error naming the
    line); ``replace=True`` updates them (unchanged ones are left alone). The caller owns the
    transaction.
    """
    require_role(user, "editor")
    rows = read_records(path, fmt)
    check = crud._exists(exists)
    existing = crud.slugs(session)
    check_records(rows, str(path), existing=None if replace else existing, exists=check)
    report = ImportReport()
    for _line, rec in rows:
        if rec.slug in existing:
            if crud.get(session, rec.slug).to_dict() == rec.to_dict():
                report.unchanged.append(rec.slug)
                continue
            crud.update(session, rec.slug, rec, user=user, exists=None)
            report.updated.append(rec.slug)
        else:
            crud.create(session, rec, user=user, exists=None)
            report.created.append(rec.slug)
    return report
