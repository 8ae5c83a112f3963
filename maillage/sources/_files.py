"""Opening INSEE files as published: zip members, CSV encodings and separators, XLSX sheets.

This is plumbing shared by :mod:`maillage.sources.flux` and :mod:`maillage.sources.detail`:

- :func:`open_table_file` turns a path (bare CSV, zip holding one CSV, or XLSX) into an
  :class:`OpenedFile`: the CSV on disk DuckDB will read (a zip member is extracted to a
  temporary folder), the checksum of the original file, the encoding (UTF-8 tried strictly on
  the whole file, else ISO-8859-1), the separator and the header.
- :func:`connect` gives an in-memory DuckDB connection that never downloads extensions.
- :func:`stage_csv` loads the needed columns as text into a DuckDB table, in file order, and
  turns malformed rows into one :class:`~maillage._errors.SourceError` listing them.
- :func:`sniff` says which source a file looks like, for "this is not the right command"
  messages.

Line numbers are 1-based file lines with the header as line 1 (for XLSX: the sheet row).
"""

from __future__ import annotations

import codecs
import contextlib
import hashlib
import re
import tempfile
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from maillage._errors import SourceError

#: Read size for hashing, decoding and extracting.
CHUNK = 1 << 20
#: At most this many problems are listed in one error message.
MAX_PROBLEMS = 20
#: Separators we recognise in a header line, with their names for messages.
SEPARATORS: dict[str, str] = {";": "';' (semicolon)", ",": "',' (comma)", "\t": "tab", "|": "'|'"}
#: Column headers that identify each source (all must be present, upper-cased).
_FLUX_VALUE = re.compile(r"^NBFLUX_C(\d{2})_([A-Z0-9]+)$")
_FLUX_POPULATION_KIND = {
    "ACTOCC15P": "commute",
    "POP01P": "residential",
    "POP05P": "residential",
    "SCOL02P": "school",
}

#: What to call for each source, used in "looks like another source" messages.
HOW_TO_READ: dict[str, str] = {
    "flux_commute": "maillage.sources.flux.read_flux (base flux, home–work)",
    "flux_residential": "maillage.sources.flux.read_flux (base flux, residential migration)",
    "flux_school": "maillage.sources.flux.read_flux (base flux, home–study)",
    "detail_commute": "maillage.sources.detail.read_detail (fichier détail FD_MOBPRO)",
    "detail_residential": "maillage.sources.detail.read_detail (fichier détail FD_MIGCOM)",
    "detail_school": "maillage.sources.detail.read_detail (fichier détail FD_MOBSCO)",
    "sirene_etablissement": "the Sirene importer (StockEtablissement), not the census readers",
    "sirene_unite_legale": "the Sirene importer (StockUniteLegale), not the census readers",
    "sirene_succession": "the Sirene importer (StockEtablissementLiensSuccession)",
    "cog_communes": "the territorial reference importer (COG), not the flow readers",
    "unknown": "nothing in maillage: it is not a layout we know",
}

DESCRIPTIONS: dict[str, str] = {
    "flux_commute": "an INSEE base flux of home–work commuting (MOBPRO)",
    "flux_residential": "an INSEE base flux of residential migration (MIGCOM)",
    "flux_school": "an INSEE base flux of home–study commuting (MOBSCO)",
    "detail_commute": "an INSEE detail file of home–work commuting (FD_MOBPRO)",
    "detail_residential": "an INSEE detail file of residential migration (FD_MIGCOM)",
    "detail_school": "an INSEE detail file of home–study commuting (FD_MOBSCO)",
    "sirene_etablissement": "a Sirene establishments file (StockEtablissement)",
    "sirene_unite_legale": "a Sirene legal units file (StockUniteLegale)",
    "sirene_succession": "a Sirene succession links file (StockEtablissementLiensSuccession)",
    "cog_communes": "a COG commune list",
    "unknown": "no layout we know",
}


@dataclass
class OpenedFile:
    """A source file made ready for DuckDB.

    Attributes
    ----------
    path : the file the user gave.
    display : how messages name it (``archive.zip!member.csv`` for a zip member).
    sha256 : checksum of the original file (the zip itself for a zip), computed in a
        background thread while DuckDB reads the file.
    member : name of the CSV inside the zip, or None.
    format : ``"csv"``, ``"zip"`` or ``"xlsx"``.
    csv_path : the CSV DuckDB reads (None for XLSX).
    encoding : ``"utf-8"`` or ``"iso-8859-1"`` (None for XLSX). For a bare CSV whose first
        64 KiB are valid UTF-8, DuckDB checks the rest while reading; on an invalid byte the
        file is copied to UTF-8 as ISO-8859-1 and read again (:func:`run_scan`).
    separator : the separator found in the header line (None for XLSX).
    header : column names as written in the file (BOM removed).
    size : bytes of the CSV (or of the XLSX).
    sheet, header_row, rows : for XLSX only, the sheet name, its header row (1-based) and the
        data rows as ``(sheet row, values)``.
    warnings : remarks gathered while opening.
    """

    path: Path
    display: str
    checksum: Future[tuple[str, bool]]
    member: str | None
    format: str
    csv_path: Path | None
    encoding: str | None
    separator: str | None
    header: list[str]
    size: int
    sheet: str | None = None
    header_row: int | None = None
    rows: list[tuple[int, list[Any]]] | None = None
    warnings: list[str] = field(default_factory=list)
    tmp: Path | None = None
    encoding_checked: bool = True

    @property
    def sha256(self) -> str:
        """Checksum of the original file (waits for the background computation)."""
        return self.checksum.result()[0]

    def reread_as_latin1(self) -> None:
        """Switch to an ISO-8859-1 reading (a UTF-8 copy DuckDB can read)."""
        assert self.csv_path is not None and self.tmp is not None
        self.csv_path = _transcode_to_utf8(self.csv_path, self.tmp / f"utf8-{self.csv_path.name}")
        self.encoding = "iso-8859-1"
        self.encoding_checked = True


@dataclass(frozen=True)
class Problem:
    """One problem found in a file: where it is and what is wrong."""

    line: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column:
            where.append(f"column {self.column}")
        return f"{', '.join(where)}: {self.message}" if where else self.message


def raise_problems(display: str, problems: Sequence[Problem], total: int, what: str) -> None:
    """Raise one SourceError listing up to :data:`MAX_PROBLEMS` problems.

    The error's ``line`` and ``column`` are those of the first problem.
    """
    if not problems:
        return
    shown = "\n".join(f"  - {p}" for p in problems[:MAX_PROBLEMS])
    more = total - min(len(problems), MAX_PROBLEMS)
    tail = f"\n  … and {more:,} more" if more > 0 else ""
    first = problems[0]
    message = (
        f"{total:,} problem{'s' if total > 1 else ''} found while reading {what}; "
        f"nothing was imported. Fix the file (or download it again) and retry:\n{shown}{tail}"
    )
    raise SourceError(message, path=display, line=first.line, column=first.column)


# ---------------------------------------------------------------------------------------------
# DuckDB
# ---------------------------------------------------------------------------------------------


def connect(temp_directory: Path | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection that never installs or loads extensions by itself."""
    con = duckdb.connect()
    con.execute("SET autoinstall_known_extensions=false")
    con.execute("SET autoload_known_extensions=false")
    if temp_directory is not None:
        con.execute(f"SET temp_directory='{_sql_str(str(temp_directory))}'")
    return con


def scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    """First value of the first row of a query (the result is fully consumed)."""
    rows = con.sql(sql).fetchall()
    return rows[0][0] if rows else None


def rows_of(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    """All rows of a query."""
    return con.sql(sql).fetchall()


def _sql_str(text: str) -> str:
    return text.replace("'", "''")


def quote_ident(name: str) -> str:
    """Quote a column name for DuckDB SQL."""
    return '"' + name.replace('"', '""') + '"'


def csv_scan_sql(opened: OpenedFile, types: dict[str, str] | None = None) -> str:
    """The DuckDB ``read_csv(...)`` expression reading every column of the CSV as text.

    The dialect is fixed (no sniffing): the separator found in the header, ``"`` quotes, UTF-8
    (ISO-8859-1 files were copied to UTF-8 when opened). ``types`` overrides the VARCHAR type
    of some columns (the fast path reads counts as DOUBLE). Malformed rows go to DuckDB's
    ``reject_errors`` table (see :func:`raise_rejects`) instead of stopping at the first one.
    """
    assert opened.csv_path is not None and opened.separator is not None
    types = types or {}
    columns = ", ".join(f"'{_sql_str(c)}': '{types.get(c, 'VARCHAR')}'" for c in opened.header)
    return (
        f"read_csv('{_sql_str(str(opened.csv_path))}', columns={{{columns}}}, "
        f"delim='{opened.separator}', header=true, auto_detect=false, quote='\"', escape='\"', "
        "encoding='utf-8', store_rejects=true, max_line_size=1000000)"
    )


def run_scan(
    con: duckdb.DuckDBPyConnection,
    opened: OpenedFile,
    build: Callable[[OpenedFile], str],
    *,
    arrow: bool = False,
) -> pa.Table | None:
    """Run the statement ``build(opened)`` that reads the CSV; return its arrow result if asked.

    DuckDB parse errors and malformed rows become one SourceError. When the file turns out not
    to be UTF-8 (DuckDB rejects a row as INVALID ENCODING), it is read again as ISO-8859-1.
    """
    result = _run(con, opened, build(opened), arrow)
    if opened.format == "xlsx":
        return result
    if not opened.encoding_checked:
        if _has_encoding_rejects(con):
            # a code or count column holds non-UTF-8 bytes: read everything as ISO-8859-1
            opened.reread_as_latin1()
            con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
            result = _run(con, opened, build(opened), arrow)
        elif not opened.checksum.result()[1]:
            # only columns DuckDB did not need (labels) hold ISO-8859-1 bytes: same result
            opened.encoding = "iso-8859-1"
    opened.encoding_checked = True
    raise_rejects(con, opened)
    return result


def _run(
    con: duckdb.DuckDBPyConnection, opened: OpenedFile, sql: str, arrow: bool
) -> pa.Table | None:
    try:
        if arrow:
            return con.sql(sql).to_arrow_table()
        con.execute(sql)
    except duckdb.Error as exc:
        raise _duckdb_source_error(exc, opened.display) from exc
    return None


def _has_encoding_rejects(con: duckdb.DuckDBPyConnection) -> bool:
    sql = "SELECT count(*) FROM reject_errors WHERE error_type = 'INVALID ENCODING'"
    return bool(scalar(con, sql))


def stage_csv(
    con: duckdb.DuckDBPyConnection,
    opened: OpenedFile,
    keep: Sequence[str],
    *,
    table: str = "raw",
) -> int:
    """Load columns ``keep`` of the CSV as text into ``table``, in file order.

    Every column is read as VARCHAR so that codes keep their leading zeros. Rows with too few
    or too many fields, or undecodable bytes, are collected through DuckDB's rejects table and
    raised together. Returns the number of data rows. The table's ``rowid + 2`` is the file
    line of each row (INSEE files have no quoted line breaks).
    """
    select = ", ".join(quote_ident(c) for c in keep)
    run_scan(
        con,
        opened,
        lambda o: f"CREATE OR REPLACE TABLE {table} AS SELECT {select} FROM {csv_scan_sql(o)}",
    )
    return int(scalar(con, f"SELECT count(*) FROM {table}"))


def stage_rows(
    con: duckdb.DuckDBPyConnection,
    opened: OpenedFile,
    keep: Sequence[str],
    *,
    table: str = "raw",
) -> int:
    """Load XLSX rows (columns ``keep``) as text into ``table``; ``_line`` is the sheet row."""
    assert opened.rows is not None
    index = {name: i for i, name in enumerate(opened.header)}
    data: dict[str, list[Any]] = {"_line": [r for r, _ in opened.rows]}
    for name in keep:
        i = index[name]
        data[name] = [
            _cell_text(values[i]) if i < len(values) else None for _, values in opened.rows
        ]
    arrow = pa.table(
        {k: pa.array(v, type=pa.int64() if k == "_line" else pa.string()) for k, v in data.items()}
    )
    con.register("_xlsx_rows", arrow)
    con.execute(f"CREATE TABLE {table} AS SELECT * FROM _xlsx_rows")
    con.unregister("_xlsx_rows")
    return len(opened.rows)


def line_expression(opened: OpenedFile) -> str:
    """SQL giving the file line (CSV) or sheet row (XLSX) of a staged row."""
    return "_line" if opened.format == "xlsx" else "(rowid + 2)"


def _cell_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e15:
        # keep what Excel shows: 120.0 -> "120"; codes stored as numbers will fail the
        # 5-character check with their digits visible
        return str(int(value))
    text = str(value).strip()
    return text or None


def raise_rejects(con: duckdb.DuckDBPyConnection, opened: OpenedFile) -> None:
    """Raise one SourceError listing the malformed rows DuckDB put in ``reject_errors``."""
    total = scalar(con, "SELECT count(*) FROM reject_errors")
    if not total:
        return
    rows = rows_of(
        con,
        "SELECT line, column_name, error_type, error_message, csv_line FROM reject_errors "
        f"ORDER BY line LIMIT {MAX_PROBLEMS}",
    )
    problems = []
    for line, column, error_type, message, csv_line in rows:
        text = str(csv_line)[:80] if csv_line is not None else ""
        problems.append(
            Problem(int(line), column, f"{error_type.lower()}: {message} (line reads {text!r})")
        )
    raise_problems(opened.display, problems, total, "the CSV structure")


_LINE_IN_ERROR = re.compile(r"CSV Error on Line: (\d+)")


def _duckdb_source_error(exc: duckdb.Error, display: str) -> SourceError:
    text = str(exc)
    match = _LINE_IN_ERROR.search(text)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    return SourceError(
        f"the CSV cannot be parsed ({first}). Check that it is an unmodified INSEE file.",
        path=display,
        line=int(match.group(1)) if match else None,
    )


# ---------------------------------------------------------------------------------------------
# Opening files
# ---------------------------------------------------------------------------------------------


def file_display(path: Path, member: str | None) -> str:
    """How messages name a file or a zip member."""
    return f"{path}!{member}" if member else str(path)


def sha256_in_background(path: Path, *, check_utf8: bool = False) -> Future[tuple[str, bool]]:
    """Start a thread reading ``path`` once: SHA-256, and whether all of it is valid UTF-8.

    The UTF-8 check (skipped unless asked, then reported True) decodes only the chunks that are
    not pure ASCII. hashlib releases the GIL, so this runs beside DuckDB's scan.
    """
    future: Future[tuple[str, bool]] = Future()

    def work() -> None:
        try:
            digest = hashlib.sha256()
            decoder = codecs.getincrementaldecoder("utf-8")("strict")
            utf8 = True
            with path.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    digest.update(chunk)
                    if check_utf8 and utf8:
                        utf8 = _still_utf8(decoder, chunk)
            if check_utf8 and utf8:
                utf8 = _still_utf8(decoder, b"", final=True)
            future.set_result((digest.hexdigest(), utf8))
        except BaseException as exc:  # delivered to whoever asks for the result
            future.set_exception(exc)

    threading.Thread(target=work, name="maillage-sha256", daemon=True).start()
    return future


def _still_utf8(decoder: codecs.IncrementalDecoder, chunk: bytes, final: bool = False) -> bool:
    try:
        if chunk.isascii() and not decoder.getstate()[0]:
            return True
        decoder.decode(chunk, final=final)
    except UnicodeDecodeError:
        return False
    return True


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def open_table_file(
    path: str | Path,
    *,
    prefer_member: Sequence[str] = (),
) -> Iterator[OpenedFile]:
    """Open a CSV, a zip holding CSVs, or an XLSX, as an :class:`OpenedFile`.

    Parameters
    ----------
    path : the file as downloaded.
    prefer_member : name prefixes (case-insensitive) used to choose the CSV when a zip holds
        several (``("FD_",)`` for detail files whose zip also has a ``varmod`` dictionary).

    Temporary files (an extracted zip member) are removed when the context exits.
    """
    path = Path(path)
    if not path.exists():
        raise SourceError("file not found; check the path.", path=str(path))
    if path.is_dir():
        raise SourceError("this is a folder, not a file.", path=str(path))
    if path.stat().st_size == 0:
        raise SourceError("the file is empty (0 bytes); download it again.", path=str(path), line=1)
    kind = _container_kind(path)
    if kind == "xlsx":
        yield _open_xlsx(path)
        return
    if kind == "xls":
        raise SourceError(
            "this is an old Excel .xls workbook, which maillage does not read. Use the CSV "
            "(or the XLSX) version of the same INSEE file.",
            path=str(path),
        )
    with tempfile.TemporaryDirectory(prefix="maillage-") as tmp:
        if kind == "zip":
            yield _open_zip(path, Path(tmp), prefer_member)
        else:
            checksum = sha256_in_background(path, check_utf8=True)
            yield _open_csv(path, path, None, Path(tmp), checksum)


def _container_kind(path: Path) -> str:
    with path.open("rb") as fh:
        magic = fh.read(8)
    if magic.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError):
            if path.suffix.lower() in (".xlsx", ".xlsm"):
                return "xlsx"  # openpyxl will say it is damaged
            return "zip"  # _open_zip raises the truncated-zip error
        if any(n.startswith("xl/") for n in names):
            return "xlsx"
        return "zip"
    if magic.startswith(b"\xd0\xcf\x11\xe0"):
        return "xls"
    return "csv"


def _open_zip(path: Path, tmp: Path, prefer_member: Sequence[str]) -> OpenedFile:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(
            f"the zip archive is truncated or damaged ({exc}); download it again.",
            path=str(path),
        ) from exc
    with zf:
        member = _choose_member(zf, path, prefer_member)
        target = tmp / Path(member).name
        try:
            encoding = _extract_and_detect(zf, member, target)
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
            raise SourceError(
                f"the zip archive is truncated or damaged ({exc}); download it again.",
                path=file_display(path, member),
            ) from exc
    return _open_csv(path, target, member, tmp, sha256_in_background(path), encoding=encoding)


def _choose_member(zf: zipfile.ZipFile, path: Path, prefer: Sequence[str]) -> str:
    csvs = [
        info
        for info in zf.infolist()
        if not info.is_dir()
        and info.filename.lower().endswith((".csv", ".txt"))
        and "__macosx" not in info.filename.lower()
    ]
    if not csvs:
        names = ", ".join(zf.namelist()[:10]) or "nothing"
        raise SourceError(
            f"the zip holds no CSV file (it holds: {names}).",
            path=str(path),
        )
    if len(csvs) == 1:
        return csvs[0].filename
    preferred = [
        i for i in csvs if any(Path(i.filename).name.upper().startswith(p.upper()) for p in prefer)
    ]
    if len(preferred) == 1:
        return preferred[0].filename
    not_dictionary = [i for i in csvs if not Path(i.filename).name.lower().startswith("varmod")]
    if len(not_dictionary) == 1:
        return not_dictionary[0].filename
    names = ", ".join(i.filename for i in csvs)
    raise SourceError(
        f"the zip holds several CSV files ({names}) and maillage cannot tell which one to "
        "read; extract the one you want and pass it directly.",
        path=str(path),
    )


def _extract_and_detect(zf: zipfile.ZipFile, member: str, target: Path) -> str:
    detector = _EncodingDetector()
    with zf.open(member) as src, target.open("wb") as dst:
        while chunk := src.read(CHUNK):
            detector.feed(chunk)
            dst.write(chunk)
    return detector.result()


class _EncodingDetector:
    """Try UTF-8 strictly on the whole stream; fall back to ISO-8859-1 at the first bad byte."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")("strict")
        self.utf8 = True
        self.first = b""

    def feed(self, chunk: bytes) -> None:
        if not self.first:
            self.first = chunk[:4096]
        if self.utf8:
            try:
                self._decoder.decode(chunk)
            except UnicodeDecodeError:
                self.utf8 = False

    def result(self) -> str:
        if self.utf8:
            try:
                self._decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                self.utf8 = False
        return "utf-8" if self.utf8 else "iso-8859-1"


def _open_csv(
    original: Path,
    csv_path: Path,
    member: str | None,
    tmp: Path,
    checksum: Future[tuple[str, bool]],
    *,
    encoding: str | None = None,
) -> OpenedFile:
    """Read the header; ``encoding`` is known for a zip member (checked while extracting)."""
    display = file_display(original, member)
    size = csv_path.stat().st_size
    if size == 0:
        raise SourceError("the file is empty (0 bytes); download it again.", path=display, line=1)
    with csv_path.open("rb") as fh:
        first = fh.read(65536)
    _refuse_binary(first, display)
    checked = encoding is not None
    if encoding is None:
        sample = _EncodingDetector()
        sample.feed(first)
        encoding = "utf-8" if sample.utf8 else "iso-8859-1"
        checked = not sample.utf8 or len(first) == size
        if len(first) == size:
            encoding = sample.result()
    header_line = _first_line(first, encoding)
    separator = _find_separator(header_line)
    header = [h.strip().strip('"') for h in header_line.split(separator)] if separator else []
    if not separator:
        header = [header_line.strip()]
    opened = OpenedFile(
        path=original,
        display=display,
        checksum=checksum,
        member=member,
        format="zip" if member else "csv",
        csv_path=csv_path,
        encoding="utf-8",
        separator=separator,
        header=header,
        size=size,
        tmp=tmp,
        encoding_checked=checked,
    )
    if encoding == "iso-8859-1":
        # DuckDB's latin-1 reader refuses bytes 0x80–0x9F; read a UTF-8 copy instead
        opened.reread_as_latin1()
    return opened


def _transcode_to_utf8(source: Path, target: Path) -> Path:
    """Copy an ISO-8859-1 file as UTF-8 (every byte is a valid ISO-8859-1 character)."""
    with (
        source.open("r", encoding="iso-8859-1", newline="") as src,
        target.open("w", encoding="utf-8", newline="") as dst,
    ):
        while chunk := src.read(CHUNK):
            dst.write(chunk)
    return target


def _refuse_binary(first: bytes, display: str) -> None:
    if first.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(first) > 1 and first[1:2] == b"\x00"):
        raise SourceError(
            "the file is encoded in UTF-16, not in UTF-8 or ISO-8859-1 as INSEE publishes it; "
            "re-save it as UTF-8 or use the original download.",
            path=display,
            line=1,
        )
    if b"\x00" in first:
        raise SourceError(
            "the file holds binary bytes (NUL), so it is not a CSV text file; check that you "
            "passed the right file and that it is not damaged.",
            path=display,
            line=1,
        )


def _first_line(first: bytes, encoding: str) -> str:
    text = first.decode("utf-8" if encoding == "utf-8" else "latin-1", errors="replace")
    text = text.lstrip("\ufeff")
    return text.splitlines()[0] if text else ""


def _find_separator(header_line: str) -> str | None:
    counts = {sep: header_line.count(sep) for sep in SEPARATORS}
    best = max(counts, key=lambda s: counts[s])
    return best if counts[best] > 0 else None


def require_separator(opened: OpenedFile, expected: str = ";") -> None:
    """Raise a SourceError when the header is not split by ``expected``."""
    if opened.format == "xlsx" or opened.separator == expected:
        return
    found = SEPARATORS.get(opened.separator or "", "no separator at all")
    raise SourceError(
        f"the separator found in the header is {found}, but INSEE files use "
        f"{SEPARATORS[expected]}. Use the file as published (a spreadsheet program may have "
        "re-saved it with another separator).",
        path=opened.display,
        line=1,
    )


# ---------------------------------------------------------------------------------------------
# XLSX
# ---------------------------------------------------------------------------------------------

_HEADER_SCAN_ROWS = 40


def _open_xlsx(path: Path) -> OpenedFile:
    import openpyxl  # only needed for the Excel product

    try:
        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for a damaged workbook
        raise SourceError(
            f"the Excel workbook cannot be opened ({exc}); download it again.", path=str(path)
        ) from exc
    try:
        found = _find_header_sheet(workbook)
        if found is None:
            raise SourceError(
                "no sheet of this workbook has a header row with CODGEO (looked at the first "
                f"{_HEADER_SCAN_ROWS} rows of sheets {', '.join(workbook.sheetnames)}).",
                path=str(path),
            )
        sheet_name, header_row, header = found
        sheet = workbook[sheet_name]
        rows: list[tuple[int, list[Any]]] = []
        for number, values in enumerate(
            sheet.iter_rows(min_row=header_row + 1, values_only=True), start=header_row + 1
        ):
            if all(v is None or (isinstance(v, str) and not v.strip()) for v in values):
                continue
            rows.append((number, list(values)))
    finally:
        workbook.close()
    return OpenedFile(
        path=path,
        display=f"{path}!{sheet_name}",
        checksum=sha256_in_background(path),
        member=sheet_name,
        format="xlsx",
        csv_path=None,
        encoding=None,
        separator=None,
        header=header,
        size=path.stat().st_size,
        sheet=sheet_name,
        header_row=header_row,
        rows=rows,
    )


def _find_header_sheet(workbook: Any) -> tuple[str, int, list[str]] | None:
    def rank(name: str) -> int:
        upper = name.upper()
        return 0 if "FLUX" in upper and "100" in upper else 1 if "FLUX" in upper else 2

    for name in sorted(workbook.sheetnames, key=rank):
        sheet = workbook[name]
        for number, values in enumerate(
            sheet.iter_rows(max_row=_HEADER_SCAN_ROWS, values_only=True), start=1
        ):
            cells = [str(v).strip() if v is not None else "" for v in values]
            if "CODGEO" in (c.upper() for c in cells):
                while cells and not cells[-1]:
                    cells.pop()
                return name, number, cells
    return None


# ---------------------------------------------------------------------------------------------
# Sniffing
# ---------------------------------------------------------------------------------------------


def sniff_header(columns: Sequence[str]) -> str:
    """Which source a header (list of column names) belongs to; see :func:`sniff`."""
    cols = {c.strip().strip('"').upper() for c in columns}
    for col in cols:
        match = _FLUX_VALUE.match(col)
        if match and match.group(2) in _FLUX_POPULATION_KIND:
            return "flux_" + _FLUX_POPULATION_KIND[match.group(2)]
    if any(c.startswith("NBFLUX") for c in cols):
        if "DCLT" in cols:
            return "flux_commute"
        if "DCRAN" in cols:
            return "flux_residential"
        if "DCETU" in cols:
            return "flux_school"
    if "IPONDI" in cols:
        if "DCLT" in cols:
            return "detail_commute"
        if "DCETUF" in cols:
            return "detail_school"
        if "DCRAN" in cols:
            return "detail_residential"
    lower = {c.lower() for c in cols}
    if "siretetablissementpredecesseur" in lower:
        return "sirene_succession"
    if "siret" in lower and "codecommuneetablissement" in lower:
        return "sirene_etablissement"
    if "siren" in lower and "categoriejuridiqueunitelegale" in lower:
        return "sirene_unite_legale"
    if {"TYPECOM", "COM"} <= cols:
        return "cog_communes"
    return "unknown"


def sniff(path: str | Path) -> str:
    """Say which source a file looks like, from its header.

    Returns one of ``flux_commute``, ``flux_residential``, ``flux_school``, ``detail_commute``,
    ``detail_residential``, ``detail_school``, ``sirene_etablissement``,
    ``sirene_unite_legale``, ``sirene_succession``, ``cog_communes`` or ``unknown``.
    Works on a bare CSV (any separator, UTF-8 or ISO-8859-1), a zip holding one, or an XLSX.
    Raises :class:`~maillage._errors.SourceError` only when the file cannot be opened at all.
    """
    path = Path(path)
    kind = _container_kind(path) if path.exists() and path.stat().st_size else "csv"
    if kind == "xlsx":
        with open_table_file(path) as opened:
            return sniff_header(opened.header)
    if kind == "zip":
        return _sniff_zip(path)
    if not path.exists() or path.stat().st_size == 0:
        return "unknown"
    with path.open("rb") as fh:
        first = fh.read(65536)
    return sniff_header(_split_header(first))


def _sniff_zip(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            member = _choose_member(zf, path, ("FD_", "base"))
            with zf.open(member) as fh:
                first = fh.read(65536)
    except (zipfile.BadZipFile, OSError) as exc:
        raise SourceError(
            f"the zip archive is truncated or damaged ({exc}); download it again.",
            path=str(path),
        ) from exc
    return sniff_header(_split_header(first))


def _split_header(first: bytes) -> list[str]:
    try:
        text = first.decode("utf-8")
    except UnicodeDecodeError:
        text = first.decode("latin-1")
    lines = text.lstrip("\ufeff").splitlines()
    if not lines:
        return []
    separator = _find_separator(lines[0])
    return lines[0].split(separator) if separator else [lines[0]]
