"""The INSEE census "bases flux": commune × commune counts, read exactly as published.

Three themes share one layout,
``CODGEO;LIBGEO;<other end>;L_<other end>;NBFLUX_C<yy>_<population>``:

==============  ==================  ==============================  ====================
kind            value column        direction (origin → destination)  population
==============  ==================  ==============================  ====================
commute         NBFLUX_Cyy_ACTOCC15P  CODGEO → DCLT                 employed, 15+
school          NBFLUX_Cyy_SCOL02P    CODGEO → DCETU                pupils/students, 2+
residential     NBFLUX_Cyy_POP01P     **DCRAN → CODGEO**            population 1+, 1 year
residential     NBFLUX_Cyy_POP05P     **DCRAN → CODGEO**            population 5+, 5 years
==============  ==================  ==============================  ====================

``yy`` is the census year (``C21`` → 2021); codes follow the COG of 1 January of year + 2.
Counts are decimal (six decimals) and kept as float64, never rounded. Codes stay 5-character
strings. Duplicate (origin, destination) pairs are summed.

:func:`read_flux` accepts the published zip, a bare CSV (``;``, UTF-8 or ISO-8859-1) and the
Excel product, which lists only flows ≥ 100 (``threshold=100``). Parsing and checks run in
DuckDB; every problem found is collected and raised in one
:class:`~maillage._errors.SourceError`.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from maillage._errors import SourceError
from maillage.sources._files import (
    DESCRIPTIONS,
    HOW_TO_READ,
    MAX_PROBLEMS,
    OpenedFile,
    Problem,
    connect,
    csv_scan_sql,
    line_expression,
    open_table_file,
    quote_ident,
    raise_problems,
    require_separator,
    rows_of,
    run_scan,
    scalar,
    sniff_header,
    stage_csv,
    stage_rows,
)

log = logging.getLogger("maillage")

KINDS: tuple[str, ...] = ("commute", "residential", "school")

#: Output schema of every flux table.
FLUX_SCHEMA = pa.schema(
    [("origin", pa.string()), ("destination", pa.string()), ("value", pa.float64())]
)

#: Threshold of the Excel product ("FLUX >= 100" sheet).
XLSX_THRESHOLD = 100

_VALUE_COLUMN = re.compile(r"^NBFLUX_C(\d{2})_([A-Z0-9]+)$")
_POPULATION = {
    "ACTOCC15P": "commute",
    "POP01P": "residential",
    "POP05P": "residential",
    "SCOL02P": "school",
}
_KIND_WORDS = {
    "commute": "a home–work commuting file (MOBPRO)",
    "residential": "a residential-migration file (MIGCOM)",
    "school": "a home–study commuting file (MOBSCO)",
}


@dataclass(frozen=True)
class FluxLayout:
    """Columns of one theme of base flux."""

    kind: str
    origin: str
    destination: str
    population: str

    def expected_header(self, yy: str = "yy") -> str:
        other = self.destination if self.kind != "residential" else self.origin
        return f"CODGEO;LIBGEO;{other};L_{other};NBFLUX_C{yy}_{self.population}"


LAYOUTS: dict[str, FluxLayout] = {
    "commute": FluxLayout("commute", "CODGEO", "DCLT", "ACTOCC15P"),
    "school": FluxLayout("school", "CODGEO", "DCETU", "SCOL02P"),
    "residential": FluxLayout("residential", "DCRAN", "CODGEO", "POP01P"),
}


@dataclass
class FluxFile:
    """A base flux read from disk.

    Attributes
    ----------
    kind : ``"commute"``, ``"residential"`` or ``"school"``.
    vintage : census year (``NBFLUX_C21_…`` → 2021); codes follow COG ``vintage + 2``.
    source : catalogue id (``"flux_commute"``, ``"flux_residential"``, ``"flux_school"``).
    path : the file given.
    sha256 : checksum of that file (the zip or workbook itself, not the extracted CSV).
    member : CSV name inside the zip, sheet name for XLSX, else None.
    table : pyarrow Table ``origin: string, destination: string, value: float64``, one row per
        pair; in file order when the file has no repeated pair and is sorted (as published),
        otherwise in no particular order.
    rows_read : data rows in the file.
    threshold : 100 for the Excel "FLUX >= 100" product (small flows absent), else None.
    warnings : remarks for the user (in French and English).
    encoding : ``"utf-8"`` or ``"iso-8859-1"`` (None for XLSX).
    separator : ``";"`` (None for XLSX).
    value_column : the count column as named in the file.
    """

    kind: str
    vintage: int
    source: str
    path: Path
    sha256: str
    member: str | None
    table: pa.Table
    rows_read: int
    threshold: int | None = None
    warnings: list[str] = field(default_factory=list)
    encoding: str | None = "utf-8"
    separator: str | None = ";"
    value_column: str = ""

    @property
    def cog_vintage(self) -> int:
        """COG vintage of the codes: 1 January of census year + 2."""
        return self.vintage + 2


def read_flux(path: str | Path, *, kind: str | None = None, vintage: int | None = None) -> FluxFile:
    """Read an INSEE base flux (zip, CSV or Excel ≥ 100 product) as published.

    Parameters
    ----------
    path : the file as downloaded from insee.fr.
    kind : expected theme (``"commute"``, ``"residential"``, ``"school"``); None to trust the
        header. A header of another theme raises.
    vintage : expected census year; None to trust the header.

    Returns
    -------
    FluxFile
        with ``table`` summing duplicate pairs: ``value(o, d) = Σ rows(o, d)``.

    Raises
    ------
    SourceError
        naming the file, the first faulty line and column, and listing up to 20 problems:
        wrong separator, missing column, empty file, non-numeric or negative count, code not of
        5 characters, truncated zip, a file of another source.
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    with open_table_file(path, prefer_member=("base",)) as opened:
        layout, value_column, found_vintage = _detect_layout(opened, kind, vintage)
        columns = _Columns(
            _actual(opened, layout.origin), _actual(opened, layout.destination), value_column
        )
        con = connect()
        try:
            rows, table, warnings = _import(con, opened, layout, columns)
        finally:
            con.close()
    threshold = XLSX_THRESHOLD if opened.format == "xlsx" else None
    log.info(
        "read %s %s flux %s: %s rows, %s pairs",
        layout.kind,
        found_vintage,
        opened.display,
        f"{rows:,}",
        f"{table.num_rows:,}",
    )
    return FluxFile(
        kind=layout.kind,
        vintage=found_vintage,
        source=f"flux_{layout.kind}",
        path=Path(path),
        sha256=opened.sha256,
        member=opened.member,
        table=table,
        rows_read=rows,
        threshold=threshold,
        warnings=warnings,
        encoding=opened.encoding,
        separator=opened.separator,
        value_column=value_column,
    )


# ---------------------------------------------------------------------------------------------
# Header
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Columns:
    origin: str
    destination: str
    value: str


def _actual(opened: OpenedFile, name: str) -> str:
    """The column name as written in the file (headers are matched case-insensitively)."""
    for column in opened.header:
        if column.upper() == name.upper():
            return column
    return name


def _detect_layout(
    opened: OpenedFile, kind: str | None, vintage: int | None
) -> tuple[FluxLayout, str, int]:
    source = sniff_header(opened.header)
    upper = [c.upper() for c in opened.header]
    if not source.startswith("flux_"):
        guessed = _guess_kind_without_value(upper)
        if source != "unknown" or guessed is None:
            _raise_other_source(opened, source)
    require_separator(opened)
    _refuse_duplicates(opened)
    value_columns = [c for c in upper if _VALUE_COLUMN.match(c)]
    known = [c for c in value_columns if _VALUE_COLUMN.match(c).group(2) in _POPULATION]  # type: ignore[union-attr]
    if not known:
        guessed = _guess_kind_without_value(upper) or kind or "commute"
        layout = LAYOUTS[guessed]
        raise SourceError(
            f"no count column NBFLUX_Cyy_{layout.population} in the header. Found columns: "
            f"{', '.join(opened.header)}. Expected: {layout.expected_header()} "
            "(yy = census year). Use the file as published by INSEE.",
            path=opened.display,
            line=opened.header_row or 1,
            column=f"NBFLUX_Cyy_{layout.population}",
        )
    value_column = known[0]
    match = _VALUE_COLUMN.match(value_column)
    assert match is not None
    yy, population = match.groups()
    found_kind = _POPULATION[population]
    found_vintage = 2000 + int(yy)
    layout = LAYOUTS[found_kind]
    if population == "POP05P":
        layout = FluxLayout("residential", "DCRAN", "CODGEO", "POP05P")
    if kind is not None and kind != found_kind:
        raise SourceError(
            f"this looks like {_KIND_WORDS[found_kind]} (column {value_column}), not "
            f"{_KIND_WORDS[kind]} as asked (kind={kind!r}). Pass kind={found_kind!r} or the "
            "right file.",
            path=opened.display,
            line=opened.header_row or 1,
            column=value_column,
        )
    if vintage is not None and vintage != found_vintage:
        raise SourceError(
            f"this file is the census {found_vintage} (column {value_column}), not {vintage} "
            f"as asked. Pass vintage={found_vintage} or the right file.",
            path=opened.display,
            line=opened.header_row or 1,
            column=value_column,
        )
    missing = [c for c in (layout.origin, layout.destination) if c not in upper]
    if missing:
        raise SourceError(
            f"column{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing. Found "
            f"columns: {', '.join(opened.header)}. Expected: {layout.expected_header(yy)}. "
            "Use the file as published by INSEE (a column may have been renamed).",
            path=opened.display,
            line=opened.header_row or 1,
            column=missing[0],
        )
    return layout, _actual(opened, value_column), found_vintage


def _guess_kind_without_value(upper: list[str]) -> str | None:
    if "CODGEO" not in upper:
        return None
    if "DCLT" in upper:
        return "commute"
    if "DCRAN" in upper:
        return "residential"
    if "DCETU" in upper:
        return "school"
    return None


def _raise_other_source(opened: OpenedFile, source: str) -> None:
    shown = ", ".join(opened.header[:12]) + (" …" if len(opened.header) > 12 else "")
    if source == "unknown" and opened.separator not in (";", None):
        require_separator(opened)
    raise SourceError(
        f"this is not an INSEE base flux: it looks like {DESCRIPTIONS[source]} "
        f"(header: {shown}). Read it with {HOW_TO_READ[source]}. A base flux starts with "
        f"{LAYOUTS['commute'].expected_header()} (or DCRAN / DCETU for the other themes).",
        path=opened.display,
        line=opened.header_row or 1,
    )


def _refuse_duplicates(opened: OpenedFile) -> None:
    seen: set[str] = set()
    for column in opened.header:
        if column.upper() in seen:
            raise SourceError(
                f"column {column} appears twice in the header; use the file as published.",
                path=opened.display,
                line=opened.header_row or 1,
                column=column,
            )
        seen.add(column.upper())


# ---------------------------------------------------------------------------------------------
# Checks and aggregation (DuckDB)
# ---------------------------------------------------------------------------------------------
#
# The happy path parses the file once: a single GROUP BY sums the counts per pair and counts,
# per pair, the rows breaking a rule. Only when some row breaks a rule is the file staged in
# file order (rowid + 2 = line) to say where.


def bad_code_sql(column: str) -> str:
    """SQL predicate: the code is empty, not 5 characters long, or holds a space."""
    c = quote_ident(column)
    return f"({c} IS NULL OR length({c}) <> 5 OR contains({c}, ' '))"


def number_sql(column: str) -> str:
    """Parse a count written with '.' or ',' as decimal mark; NULL when not a number."""
    c = quote_ident(column)
    return f"coalesce(TRY_CAST({c} AS DOUBLE), TRY_CAST(replace({c}, ',', '.') AS DOUBLE))"


def bad_number_sql(num: str) -> str:
    """SQL predicate on a parsed count: missing, not finite, or negative."""
    return f"({num} IS NULL OR NOT isfinite({num}) OR {num} < 0)"


def _import(
    con: duckdb.DuckDBPyConnection, opened: OpenedFile, layout: FluxLayout, cols: _Columns
) -> tuple[int, pa.Table, list[str]]:
    """Parse once into arrow (file order), check, sum pairs only if some repeat.

    Fast path: DuckDB reads the count column as DOUBLE and the checks run on arrow. Any row
    DuckDB rejects (not a number, decimal comma, wrong field count) or any broken rule sends
    the file to the text path, which reads counts as text and says where each problem is.
    """
    parsed = _fast_parse(con, opened, cols) if opened.format != "xlsx" else None
    comma = 0
    if parsed is None or _arrow_breaks_rules(parsed):
        parsed, comma = _text_parse(con, opened, cols)
    rows = parsed.num_rows
    table = parsed.cast(FLUX_SCHEMA)
    del parsed
    if not sorted_unique(table):
        table = sum_pairs(con, table)
    warnings = list(opened.warnings) + _remarks(opened, layout, rows, comma, table)
    return rows, table, warnings


def _fast_parse(
    con: duckdb.DuckDBPyConnection, opened: OpenedFile, cols: _Columns
) -> pa.Table | None:
    o, d, v = (quote_ident(c) for c in (cols.origin, cols.destination, cols.value))

    def build(opened: OpenedFile) -> str:
        scan = csv_scan_sql(opened, types={cols.value: "DOUBLE"})
        return f"SELECT {o} AS origin, {d} AS destination, {v} AS value FROM {scan}"

    try:
        return run_scan(con, opened, build, arrow=True)
    except SourceError:
        return None  # the text path reads the file again and reports precisely
    finally:
        con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")


def _arrow_breaks_rules(table: pa.Table) -> bool:
    """Same rules as :func:`bad_code_sql` and :func:`bad_number_sql`, on arrow columns."""
    if table.num_rows == 0:
        return True
    for name in ("origin", "destination"):
        codes = table[name]
        if codes.null_count or not pc.all(pc.equal(pc.utf8_length(codes), 5)).as_py():
            return True
        if pc.any(pc.match_substring(codes, " ")).as_py():
            return True
    values = table["value"]
    if values.null_count or not pc.all(pc.is_finite(values)).as_py():
        return True
    return bool(pc.any(pc.less(values, 0)).as_py())


def _text_parse(
    con: duckdb.DuckDBPyConnection, opened: OpenedFile, cols: _Columns
) -> tuple[pa.Table, int]:
    """Read counts as text (decimal comma tolerated); raise a SourceError listing problems."""
    keep = [cols.origin, cols.destination, cols.value]
    if opened.format == "xlsx":
        stage_rows(con, opened, keep)
    o, d, v = (quote_ident(c) for c in keep)

    def build(opened: OpenedFile) -> str:
        source = "raw" if opened.format == "xlsx" else csv_scan_sql(opened)
        return f"""
            SELECT o AS origin, d AS destination, num AS value,
                   ({bad_code_sql("o")} OR {bad_code_sql("d")} OR {bad_number_sql("num")}) AS bad,
                   (dot IS NULL AND num IS NOT NULL) AS comma
            FROM (SELECT o, d, dot, coalesce(dot, TRY_CAST(replace(v, ',', '.') AS DOUBLE)) AS num
                  FROM (SELECT {o} AS o, {d} AS d, {v} AS v, TRY_CAST({v} AS DOUBLE) AS dot
                        FROM {source}))
        """

    parsed = run_scan(con, opened, build, arrow=True)
    assert parsed is not None
    if parsed.num_rows == 0:
        raise SourceError(
            "the file has a header but no data row; download it again.",
            path=opened.display,
            line=(opened.header_row or 1) + 1,
        )
    if pc.any(parsed["bad"]).as_py():
        _locate_problems(con, opened, cols)
    comma = int(pc.sum(parsed["comma"].cast(pa.int64())).as_py() or 0)
    return parsed.select(["origin", "destination", "value"]), comma


def sorted_unique(table: pa.Table) -> bool:
    """True when no (origin, destination) pair repeats, proven by the file order.

    INSEE publishes the bases sorted by CODGEO then the other end, so the usual file needs no
    GROUP BY: the pairs are unique if ``origin || destination`` (commute, school) or
    ``destination || origin`` (residential: CODGEO is the destination) strictly increases row
    after row. Codes all have 5 characters (checked before), so these keys compare pairs.
    """
    if table.num_rows < 2:
        return True
    for first, second in (("origin", "destination"), ("destination", "origin")):
        key = pc.binary_join_element_wise(table[first], table[second], "")
        if pc.all(pc.greater(key[1:], key[:-1])).as_py():
            return True
    return False


def sum_pairs(con: duckdb.DuckDBPyConnection, table: pa.Table) -> pa.Table:
    """``value(o, d) = Σ value`` over the rows of each pair, in DuckDB."""
    con.register("_pairs", table)
    try:
        sql = "SELECT origin, destination, sum(value) AS value FROM _pairs GROUP BY ALL"
        return con.sql(sql).to_arrow_table().cast(FLUX_SCHEMA)
    finally:
        con.unregister("_pairs")


def scalar_row(con: duckdb.DuckDBPyConnection, sql: str) -> tuple:
    """The first row of a query."""
    return rows_of(con, sql)[0]


def _locate_problems(con: duckdb.DuckDBPyConnection, opened: OpenedFile, cols: _Columns) -> None:
    """Stage the file in order and raise a SourceError listing where the rules are broken."""
    if opened.format != "xlsx":
        stage_csv(con, opened, [cols.origin, cols.destination, cols.value])
    line = line_expression(opened)
    parts = [
        code_problems_sql(cols.origin, line),
        code_problems_sql(cols.destination, line),
        number_problems_sql(cols.value, line),
    ]
    problems, total = collect_problems(con, parts)
    raise_problems(opened.display, problems, total, "the base flux")


def code_problems_sql(column: str, line: str, table: str = "raw") -> str:
    """SQL selecting (line, col, val, problem) rows whose code breaks :func:`bad_code_sql`."""
    name = column.replace("'", "''")
    return (
        f"SELECT {line} AS line, '{name}' AS col, {quote_ident(column)} AS val, "
        f"'code' AS problem FROM {table} WHERE {bad_code_sql(column)}"
    )


def number_problems_sql(column: str, line: str, table: str = "raw") -> str:
    """SQL selecting (line, col, val, problem) rows with an empty, non-numeric or negative count."""
    c = quote_ident(column)
    name = column.replace("'", "''")
    num = number_sql(column)
    return (
        f"SELECT {line} AS line, '{name}' AS col, {c} AS val, "
        f"CASE WHEN {c} IS NULL THEN 'empty' WHEN {num} IS NULL OR NOT isfinite({num}) "
        f"THEN 'number' ELSE 'negative' END AS problem FROM {table} "
        f"WHERE {bad_number_sql(num)}"
    )


def collect_problems(con: duckdb.DuckDBPyConnection, parts: list[str]) -> tuple[list[Problem], int]:
    """Run the problem queries; return the first problems in file order and their count."""
    union = " UNION ALL ".join(parts)
    total = scalar(con, f"SELECT count(*) FROM ({union})")
    if not total:
        return [], 0
    rows = rows_of(
        con,
        f"SELECT line, col, val, problem FROM ({union}) ORDER BY line, col LIMIT {MAX_PROBLEMS}",
    )
    return [
        Problem(int(line), col, describe(problem, val)) for line, col, val, problem in rows
    ], total


def describe(problem: str, value: str | None) -> str:
    """Human text of one problem code."""
    if problem == "code":
        if value is None:
            return "the code is empty"
        return (
            f"code {value!r} has {len(value)} characters; commune codes have exactly 5 "
            "(keep leading zeros: '01001', not '1001')"
        )
    if problem == "empty":
        return "the count is empty"
    if problem == "number":
        return f"the count {value!r} is not a number"
    if problem == "negative":
        return f"the count {value!r} is negative"
    return f"{problem}: {value!r}"


def _remarks(
    opened: OpenedFile,
    layout: FluxLayout,
    rows: int,
    comma: int,
    table: pa.Table,
) -> list[str]:
    notes: list[str] = []
    if comma:
        notes.append(
            f"{comma:,} counts use a decimal comma; read as decimals. / "
            f"{comma:,} effectifs écrits avec une virgule décimale, lus comme des décimaux."
        )
    duplicates = rows - table.num_rows
    if duplicates:
        notes.append(
            f"{duplicates:,} repeated (origin, destination) rows were summed. / "
            f"{duplicates:,} lignes (origine, destination) répétées ont été additionnées."
        )
    if opened.format == "xlsx":
        notes.append(
            "Excel product: only flows of 100 or more are listed, so totals are truncated; use "
            "the CSV base for complete flows. / Fichier Excel : seuls les flux d'au moins 100 "
            "personnes sont publiés, les totaux sont tronqués ; préférer la base CSV complète."
        )
        below = int(pc.sum(pc.less(table["value"], XLSX_THRESHOLD).cast(pa.int64())).as_py())
        if below:
            notes.append(
                f"{below:,} pairs below {XLSX_THRESHOLD} were found in the sheet {opened.sheet!r}, "
                "which is unusual for the ≥ 100 product; they are kept. / "
                f"{below:,} couples inférieurs à {XLSX_THRESHOLD} trouvés ; conservés."
            )
    if layout.population == "POP05P":
        notes.append(
            "5-year migration definition (residence 5 years before): not comparable with the "
            "1-year vintages (2013 onwards). / Définition à 5 ans : non comparable aux "
            "millésimes à 1 an (depuis 2013)."
        )
    foreign = count_foreign(table["origin" if layout.kind == "residential" else "destination"])
    if foreign:
        notes.append(
            f"{foreign:,} pairs have a place outside France at their far end (codes such as "
            "SU… or 99999), kept as they are. / "
            f"{foreign:,} couples ont une extrémité hors de France (codes étrangers), conservés."
        )
    return notes


def count_foreign(codes: pa.ChunkedArray) -> int:
    """Codes that are not French communes: 99999 or starting with a letter (SU…, BE…, MO001)."""
    first = pc.utf8_slice_codeunits(codes, 0, 1)
    letter = pc.invert(pc.utf8_is_digit(first))
    abroad = pc.or_(letter, pc.equal(codes, "99999"))
    return int(pc.sum(abroad.cast(pa.int64())).as_py() or 0)
