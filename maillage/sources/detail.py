"""The INSEE census detail files (one row per person, weight ``IPONDI``), read as published.

=========================  =====================================  ================================
file                       origin                                 destination
=========================  =====================================  ================================
FD_MOBPRO (commute)        residence: ARM if ARM ≠ ZZZZZ else     DCLT; when DCLT = 99999 (abroad)
                           COMMUNE                                the foreign place DCFLT if given
FD_MOBSCO (school)         residence: ARM / COMMUNE               DCETUF; when 99999 (abroad) the
                                                                  foreign place DCETUE if given
FD_MIGCOM (residential)    DCRAN (previous residence)             residence: ARM / COMMUNE
=========================  =====================================  ================================

:func:`read_detail` returns

- ``totals``: ``value(o, d) = Σ IPONDI`` over the persons going from o to d (never rounded;
  it reproduces the base flux counts);
- ``breakdown``: the same sum split by one dimension at a time, for the dimensions present:

  ==========  ========  =====================================================================
  dimension   column    categories
  ==========  ========  =====================================================================
  mode        TRANS     the INSEE modality codes as written (1 … 6 since RP2017)
  sex         SEXE      1 = men, 2 = women
  age         AGEREVQ   5-year bands grouped by their lower bound a: 0-14 (a < 15),
              (or       15-24, 25-39, 40-54, 55-64, 65+ (a ≥ 65). AGEREV10 (MOBSCO) is
              AGEREV10) grouped the same way.
  csp         CS1       socio-professional group 1 … 8 as written
  ==========  ========  =====================================================================

  A missing category is reported as ``unknown``. For each dimension, the categories of a pair
  sum to its total.

The file is parsed once by DuckDB into a table summed by (origin, destination, categories),
which is much smaller than the file; totals and breakdowns come from it. The real COGugaison
sample layout ``COMMUNE;DCLT;CS1;AGEREVQ;IPONDI`` (no ARM column) is accepted.
"""

from __future__ import annotations

import itertools
import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from maillage._errors import SourceError
from maillage.sources._files import (
    DESCRIPTIONS,
    HOW_TO_READ,
    OpenedFile,
    connect,
    csv_scan_sql,
    open_table_file,
    quote_ident,
    raise_problems,
    require_separator,
    rows_of,
    run_scan,
    sniff_header,
    stage_csv,
)
from maillage.sources.flux import (
    FLUX_SCHEMA,
    bad_code_sql,
    bad_number_sql,
    code_problems_sql,
    collect_problems,
    number_problems_sql,
    number_sql,
)

log = logging.getLogger("maillage")

KINDS: tuple[str, ...] = ("commute", "residential", "school")

BREAKDOWN_SCHEMA = pa.schema(
    [
        ("origin", pa.string()),
        ("destination", pa.string()),
        ("dimension", pa.string()),
        ("category", pa.string()),
        ("value", pa.float64()),
    ]
)

#: Breakdown dimensions: name → candidate columns (first present wins).
DIMENSIONS: dict[str, tuple[str, ...]] = {
    "mode": ("TRANS",),
    "sex": ("SEXE",),
    "age": ("AGEREVQ", "AGEREV10"),
    "csp": ("CS1",),
}

#: Age groups from the lower bound of the INSEE band: (label, lower bound included).
AGE_GROUPS: tuple[tuple[str, int], ...] = (
    ("0-14", 0),
    ("15-24", 15),
    ("25-39", 25),
    ("40-54", 40),
    ("55-64", 55),
    ("65+", 65),
)

ABROAD = "99999"
NOT_APPLICABLE = "ZZZZZ"


@dataclass(frozen=True)
class DetailLayout:
    """Columns of one detail file."""

    kind: str
    residence: str  # COMMUNE
    other: str  # DCLT / DCETUF / DCRAN
    foreign: str | None  # DCFLT / DCETUE (commute, school)
    file_prefix: str

    @property
    def expected(self) -> str:
        extra = f", ARM, {self.foreign}" if self.foreign else ", ARM"
        return f"{self.residence}, {self.other}, IPONDI{extra} (+ TRANS, SEXE, AGEREVQ, CS1 …)"


LAYOUTS: dict[str, DetailLayout] = {
    "commute": DetailLayout("commute", "COMMUNE", "DCLT", "DCFLT", "FD_MOBPRO"),
    "school": DetailLayout("school", "COMMUNE", "DCETUF", "DCETUE", "FD_MOBSCO"),
    "residential": DetailLayout("residential", "COMMUNE", "DCRAN", None, "FD_MIGCOM"),
}
_PREFIX_KIND = {"MOBPRO": "commute", "MOBSCO": "school", "MIGCOM": "residential"}
_VINTAGE_IN_NAME = re.compile(r"(?:FD_(?:MOBPRO|MOBSCO|MIGCOM)_|RP)(\d{4})", re.IGNORECASE)


@dataclass
class DetailFile:
    """A detail file read from disk.

    Attributes
    ----------
    kind : ``"commute"``, ``"residential"`` or ``"school"``.
    vintage : census year from the file name (``FD_MOBPRO_2021``) or given; None if unknown.
    source : ``"detail_commute"``, ``"detail_residential"`` or ``"detail_school"``.
    path, sha256, member : the file given, its checksum, the CSV inside the zip (or None).
    totals : ``origin, destination, value`` with ``value = Σ IPONDI`` (float64, not rounded).
    breakdown : ``origin, destination, dimension, category, value`` for each dimension present.
    dimensions : the dimensions present, among ``mode``, ``sex``, ``age``, ``csp``.
    rows_read : persons (rows) in the file.
    weight_total : Σ IPONDI over the whole file.
    warnings, encoding, separator : as for :class:`~maillage.sources.flux.FluxFile`.
    """

    kind: str
    vintage: int | None
    source: str
    path: Path
    sha256: str
    member: str | None
    totals: pa.Table
    breakdown: pa.Table
    dimensions: tuple[str, ...]
    rows_read: int
    weight_total: float
    warnings: list[str] = field(default_factory=list)
    encoding: str | None = "utf-8"
    separator: str | None = ";"

    @property
    def table(self) -> pa.Table:
        """The totals, under the name :class:`~maillage.sources.flux.FluxFile` uses."""
        return self.totals

    @property
    def cog_vintage(self) -> int | None:
        """COG vintage of the codes: 1 January of census year + 2 (None if vintage unknown)."""
        return None if self.vintage is None else self.vintage + 2


def read_detail(
    path: str | Path, *, kind: str | None = None, vintage: int | None = None
) -> DetailFile:
    """Read an INSEE detail file (FD_MOBPRO, FD_MOBSCO, FD_MIGCOM) as published.

    Parameters
    ----------
    path : the zip (``RP2021_mobpro_csv.zip``, the ``FD_`` CSV is chosen over ``varmod``) or
        the CSV itself.
    kind : expected theme; a file of another theme raises.
    vintage : census year, when the file name does not give it; a different year in the file
        name raises.

    Returns
    -------
    DetailFile

    Raises
    ------
    SourceError
        naming the file, the first faulty line and column, and listing up to 20 problems.
    """
    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}; got {kind!r}")
    with open_table_file(path, prefer_member=("FD_",)) as opened:
        if opened.format == "xlsx":
            raise SourceError(
                "detail files are published as CSV (in a zip), not as Excel workbooks.",
                path=opened.display,
            )
        layout = _detect_layout(opened, kind)
        found_vintage, warnings = _vintage(opened, vintage)
        columns = _columns(opened, layout)
        con = connect(temp_directory=opened.tmp)
        try:
            rows, weight = _summarise(con, opened, layout, columns)
            totals = _totals(con)
            dims = tuple(d for d in DIMENSIONS if d in columns)
            breakdown = _breakdown(con, dims)
            warnings += _remarks(con, layout, columns)
        finally:
            con.close()
    log.info(
        "read %s detail %s: %s persons, %s pairs",
        layout.kind,
        opened.display,
        f"{rows:,}",
        f"{totals.num_rows:,}",
    )
    return DetailFile(
        kind=layout.kind,
        vintage=found_vintage,
        source=f"detail_{layout.kind}",
        path=Path(path),
        sha256=opened.sha256,
        member=opened.member,
        totals=totals,
        breakdown=breakdown,
        dimensions=dims,
        rows_read=rows,
        weight_total=weight,
        warnings=list(opened.warnings) + warnings,
        encoding=opened.encoding,
        separator=opened.separator,
    )


# ---------------------------------------------------------------------------------------------
# Header
# ---------------------------------------------------------------------------------------------


def _detect_layout(opened: OpenedFile, kind: str | None) -> DetailLayout:
    source = sniff_header(opened.header)
    upper = {c.upper() for c in opened.header}
    if not source.startswith("detail_"):
        if source == "unknown" and opened.separator not in (";", None):
            require_separator(opened)
        if source == "unknown" and {"COMMUNE", "IPONDI"} & upper:
            guessed = LAYOUTS[kind or "commute"]
            missing = [c for c in ("COMMUNE", guessed.other, "IPONDI") if c not in upper]
            raise SourceError(
                f"column{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing. Found "
                f"columns: {', '.join(opened.header)}. Expected at least {guessed.expected}.",
                path=opened.display,
                line=1,
                column=missing[0],
            )
        shown = ", ".join(opened.header[:12]) + (" …" if len(opened.header) > 12 else "")
        raise SourceError(
            f"this is not an INSEE detail file: it looks like {DESCRIPTIONS[source]} (header: "
            f"{shown}). Read it with {HOW_TO_READ[source]}.",
            path=opened.display,
            line=1,
        )
    require_separator(opened)
    found = source.removeprefix("detail_")
    if kind is not None and kind != found:
        raise SourceError(
            f"this looks like {DESCRIPTIONS[source]}, not a {kind} detail file as asked "
            f"(kind={kind!r}). Pass kind={found!r} or the right file.",
            path=opened.display,
            line=1,
        )
    return LAYOUTS[found]


def _columns(opened: OpenedFile, layout: DetailLayout) -> dict[str, str]:
    """Map roles (residence, arm, other, foreign, weight, dimensions) to the file's column names."""
    actual = {c.upper(): c for c in opened.header}
    roles: dict[str, str] = {
        "residence": actual[layout.residence],
        "other": actual[layout.other],
        "weight": actual["IPONDI"],
    }
    if "ARM" in actual:
        roles["arm"] = actual["ARM"]
    if layout.foreign and layout.foreign in actual:
        roles["foreign"] = actual[layout.foreign]
    for dimension, candidates in DIMENSIONS.items():
        for candidate in candidates:
            if candidate in actual:
                roles[dimension] = actual[candidate]
                break
    return roles


def _vintage(opened: OpenedFile, vintage: int | None) -> tuple[int | None, list[str]]:
    name = opened.member or opened.path.name
    match = _VINTAGE_IN_NAME.search(Path(name).name) or _VINTAGE_IN_NAME.search(opened.path.name)
    found = int(match.group(1)) if match else None
    if vintage is not None and found is not None and vintage != found:
        raise SourceError(
            f"the file name says census {found}, not {vintage} as asked. Pass "
            f"vintage={found} or the right file.",
            path=opened.display,
        )
    if found is None and vintage is None:
        return None, [
            "census vintage unknown (not in the file name); pass vintage=. / "
            "millésime inconnu (absent du nom du fichier) ; le préciser."
        ]
    return (vintage if vintage is not None else found), []


# ---------------------------------------------------------------------------------------------
# DuckDB
# ---------------------------------------------------------------------------------------------


def _age_group_sql(column: str) -> str:
    a = f"TRY_CAST({quote_ident(column)} AS INTEGER)"
    cases = " ".join(
        f"WHEN {a} < {upper} THEN '{label}'"
        for (label, _), (_, upper) in itertools.pairwise(AGE_GROUPS)
    )
    return f"CASE WHEN {a} IS NULL THEN NULL {cases} ELSE '{AGE_GROUPS[-1][0]}' END"


def _residence_sql(cols: dict[str, str]) -> str:
    commune = quote_ident(cols["residence"])
    if "arm" not in cols:
        return commune
    arm = quote_ident(cols["arm"])
    return (
        f"CASE WHEN {arm} IS NOT NULL AND {arm} <> '{NOT_APPLICABLE}' THEN {arm} ELSE {commune} END"
    )


def _other_sql(cols: dict[str, str]) -> str:
    other = quote_ident(cols["other"])
    if "foreign" not in cols:
        return other
    foreign = quote_ident(cols["foreign"])
    return (
        f"CASE WHEN {other} = '{ABROAD}' AND {foreign} IS NOT NULL "
        f"AND {foreign} NOT IN ('{ABROAD}', '{NOT_APPLICABLE}') THEN {foreign} ELSE {other} END"
    )


def _bad_row_sql(cols: dict[str, str]) -> str:
    checks = [bad_code_sql(cols["residence"]), bad_code_sql(cols["other"])]
    if "arm" in cols:
        checks.append(bad_code_sql(cols["arm"]))
    checks.append(bad_number_sql(number_sql(cols["weight"])))
    if "age" in cols:
        age = quote_ident(cols["age"])
        checks.append(f"({age} IS NOT NULL AND TRY_CAST({age} AS INTEGER) IS NULL)")
    return " OR ".join(checks)


def _summarise(
    con: duckdb.DuckDBPyConnection,
    opened: OpenedFile,
    layout: DetailLayout,
    cols: dict[str, str],
) -> tuple[int, float]:
    residence, other = _residence_sql(cols), _other_sql(cols)
    origin, destination = (other, residence) if layout.kind == "residential" else (residence, other)
    dims = [d for d in DIMENSIONS if d in cols]
    dim_select = "".join(
        f", coalesce({_age_group_sql(cols[d]) if d == 'age' else quote_ident(cols[d])}, "
        f"'unknown') AS {d}"
        for d in dims
    )
    group = ", ".join(["origin", "destination", *dims])

    def build(opened: OpenedFile) -> str:
        return f"""
            CREATE OR REPLACE TABLE cube AS
            SELECT {group}, sum(w) AS value, count(*) AS n, count(*) FILTER (WHERE bad) AS bad
            FROM (SELECT {origin} AS origin, {destination} AS destination{dim_select},
                         {number_sql(cols["weight"])} AS w, ({_bad_row_sql(cols)}) AS bad
                  FROM {csv_scan_sql(opened)})
            GROUP BY {group}
        """

    run_scan(con, opened, build)
    rows, bad, weight = rows_of(con, "SELECT sum(n), sum(bad), sum(value) FROM cube")[0]
    rows = int(rows or 0)
    if rows == 0:
        raise SourceError(
            "the file has a header but no data row; download it again.",
            path=opened.display,
            line=2,
        )
    if bad:
        _locate_problems(con, opened, cols)
    return rows, float(weight)


def _locate_problems(
    con: duckdb.DuckDBPyConnection, opened: OpenedFile, cols: dict[str, str]
) -> None:
    keep = [cols["residence"], cols["other"], cols["weight"]]
    keep += [cols[k] for k in ("arm", "age") if k in cols]
    stage_csv(con, opened, keep)
    line = "(rowid + 2)"
    parts = [code_problems_sql(cols["residence"], line), code_problems_sql(cols["other"], line)]
    if "arm" in cols:
        parts.append(code_problems_sql(cols["arm"], line))
    parts.append(number_problems_sql(cols["weight"], line))
    if "age" in cols:
        age = quote_ident(cols["age"])
        name = cols["age"].replace("'", "''")
        parts.append(
            f"SELECT {line} AS line, '{name}' AS col, {age} AS val, 'age' AS problem FROM raw "
            f"WHERE {age} IS NOT NULL AND TRY_CAST({age} AS INTEGER) IS NULL"
        )
    problems, total = collect_problems(con, parts)
    raise_problems(opened.display, problems, total, "the detail file")


def _totals(con: duckdb.DuckDBPyConnection) -> pa.Table:
    sql = "SELECT origin, destination, sum(value) AS value FROM cube GROUP BY ALL"
    return con.sql(sql).to_arrow_table().cast(FLUX_SCHEMA)


def _breakdown(con: duckdb.DuckDBPyConnection, dims: tuple[str, ...]) -> pa.Table:
    if not dims:
        return BREAKDOWN_SCHEMA.empty_table()
    parts = [
        f"SELECT origin, destination, '{d}' AS dimension, CAST({d} AS VARCHAR) AS category, "
        f"sum(value) AS value FROM cube GROUP BY origin, destination, {d}"
        for d in dims
    ]
    return con.sql(" UNION ALL ".join(parts)).to_arrow_table().cast(BREAKDOWN_SCHEMA)


def _remarks(
    con: duckdb.DuckDBPyConnection, layout: DetailLayout, cols: dict[str, str]
) -> list[str]:
    notes = []
    if layout.kind != "residential":
        abroad = rows_of(
            con,
            "SELECT count(*) FILTER (WHERE destination = '99999'), "
            "count(*) FILTER (WHERE NOT (substr(destination, 1, 1) BETWEEN '0' AND '9')) "
            "FROM (SELECT DISTINCT origin, destination FROM cube)",
        )[0]
        unknown_abroad, foreign = abroad
        if foreign:
            notes.append(
                f"{foreign:,} pairs go to a foreign place (code from "
                f"{cols.get('foreign', 'the file')}). / {foreign:,} couples vers un lieu à "
                "l'étranger."
            )
        if unknown_abroad:
            notes.append(
                f"{unknown_abroad:,} pairs go abroad to an unspecified place (99999). / "
                f"{unknown_abroad:,} couples vers l'étranger sans lieu précis (99999)."
            )
    if "arm" not in cols:
        notes.append(
            "no ARM column: Paris, Lyon and Marseille residents stay at commune level. / "
            "pas de colonne ARM : Paris, Lyon, Marseille restent au niveau communal."
        )
    return notes
