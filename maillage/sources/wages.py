"""Wage levels by commune (mean and by socio-professional group) and wage-mass totals.

No open file gives the wages paid for a commune-of-work × commune-of-residence pair
(DATA_SOURCES.md A.6): maillage estimates wage transfers from commuting flows × a wage level
(:mod:`maillage.analysis.wages`). This module reads that wage level, annual and net, per
commune — for all employees and, when the file has them, per socio-professional group (CS) —
and, optionally, wage-mass totals the estimate is calibrated to.

Wage levels (:func:`read_wages`)
--------------------------------
``base communale`` (INSEE, "Salaires dans le secteur privé selon le sexe et la catégorie
socioprofessionnelle – base communale", BTS/DADS)
    ``;``-separated, header ``CODGEO;LIBGEO;SNHM<yy>;SNHMC<yy>;SNHMP<yy>;SNHME<yy>;SNHMO<yy>;
    SNHMF<yy>;…;SNHMH5014``: mean **net hourly** wage of all employees ``SNHM<yy>``, then of
    the cadres ``SNHMC<yy>``, professions intermédiaires ``SNHMP<yy>``, employés ``SNHME<yy>``
    and ouvriers ``SNHMO<yy>``, then by sex (F/H) and age (18/26/50). This layout was seen in
    public code for 2014 (communes) and 2019 (départements, without ``LIBGEO``); column names
    are matched whatever their case. The "selon le sexe et l'âge" base, without the four CS
    columns, is read too (mean wage only). Missing values (statistical secret, too few
    employees) are empty or ``s``/``nd``. Hourly wages become annual ones with
    :data:`HOURS_PER_FTE_YEAR` (35 h × 52 weeks, the full-time-equivalent year, the same
    for every group). In recent vintages INSEE computes these figures at the **place of
    residence** of employees ("fichier salariés au lieu de résidence"); older DADS-based ones
    used the place of work.
simple CSV
    ``code;annual_wage_eur`` (``,`` also accepted): an annual net wage per job for each
    commune code, from any source the analyst trusts. No CS breakdown.
no file at all
    :data:`NATIONAL_DEFAULT_ANNUAL_NET_WAGE` for every commune and, per CS,
    :data:`NATIONAL_CS_MONTHLY_NET_2023` × 12 (INSEE Première n° 2020, October 2024, "Les
    salaires dans le secteur privé en 2023": mean net wage in full-time equivalent). They are
    upper bounds per commuter (part-time and part-year jobs earn less; non-salaried workers
    are in the commuting counts).

Commune codes of any vintage are mapped to the reference (old codes, arrondissements); several
old codes mapped to one commune get the mean of their wages; unknown codes are counted and
reported.

Wage-mass totals (:func:`read_wage_totals`)
-------------------------------------------
simple CSV
    ``code;wage_mass_work_eur;wage_mass_residence_eur`` (either mass column may be absent or
    left empty), optional column ``level`` (``commune`` by default, ``epci``,
    ``departement``, ``region``): annual **net** wage mass paid by the jobs located in the
    territory (place of work) and/or earned by its residents (place of residence).
Urssaf, "Effectifs salariés et masse salariale du secteur privé, par région x NA38"
    (open.urssaf.fr, ODbL), quarterly, header with the API field names ``region;
    ancienne_region;grand_secteur_d_activite;secteur_na28i;annee;trimestre;
    dernier_jour_du_trimestre;code_region;code_ancienne_region;effectifs_salaries_brut;
    effectifs_salaries_cvs;masse_salariale_brut;masse_salariale_cvs`` or with their labels
    (``Code région``, ``Année``, ``Trimestre``, ``Masse salariale (brut)`` …). Gives the
    **gross** wage mass at the place of work by région: the four quarters of one year are
    summed and turned into net wages with :data:`NET_TO_GROSS_2023`. Urssaf publishes no
    wage mass by commune as open data (its commune × APE file holds headcounts and
    establishments only), hence the région level.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from maillage._errors import SourceError
from maillage.sources._files import (
    MAX_PROBLEMS,
    OpenedFile,
    Problem,
    connect,
    open_table_file,
    raise_problems,
    stage_csv,
)

log = logging.getLogger("maillage")

#: Official pages (the file addresses change with each vintage: download by hand from them).
CATALOG: dict[str, dict[str, str]] = {
    "salaires_base_communale": {
        "page": "https://www.data.gouv.fr/datasets/salaires-dans-le-secteur-prive-selon-le-sexe-"
        "et-la-categorie-socioprofessionnelle-base-communale/",
        "name": "Salaires dans le secteur privé selon le sexe et la catégorie "
        "socioprofessionnelle – base communale",
        "note": "CSV ; CODGEO;LIBGEO;SNHMyy;SNHMCyy;SNHMPyy;SNHMEyy;SNHMOyy;… mean net hourly "
        "wage (€) by commune, all employees and by CS",
    },
    "salaires_2023_national": {
        "page": "https://www.insee.fr/fr/statistiques/8270416",
        "name": "Insee Première n° 2020, Les salaires dans le secteur privé en 2023",
        "note": "2 735 € net per month in full-time equivalent (national default)",
    },
    "urssaf_masse_salariale_region": {
        "page": "https://open.urssaf.fr/explore/dataset/effectifs-salaries-et-masse-salariale-du-"
        "secteur-prive-par-region-x-na38/",
        "name": "Effectifs salariés et masse salariale du secteur privé, par région x NA38",
        "note": "quarterly gross wage mass by région and sector, since 1998 (ODbL)",
    },
}

#: Mean net monthly wage in full-time equivalent, private sector, 2023 (INSEE Première 2020).
NATIONAL_MONTHLY_NET_WAGE_2023 = 2735.0
#: Annual net wage per job used when no wage file is given: 12 × 2 735 €.
NATIONAL_DEFAULT_ANNUAL_NET_WAGE = 12 * NATIONAL_MONTHLY_NET_WAGE_2023
#: Mean gross monthly wage in full-time equivalent, private sector, 2023 (same publication).
NATIONAL_MONTHLY_GROSS_WAGE_2023 = 3613.0
#: Net / gross wage ratio (2 735 / 3 613 ≈ 0.757), to turn Urssaf's gross masses into net ones.
NET_TO_GROSS_2023 = NATIONAL_MONTHLY_NET_WAGE_2023 / NATIONAL_MONTHLY_GROSS_WAGE_2023
NATIONAL_DEFAULT_SOURCE = (
    "Insee Première n° 2020 (2024) : salaire net moyen en EQTP du secteur privé en 2023, "
    "2 735 €/mois"
)
NATIONAL_DEFAULT_VINTAGE = 2023
#: Hours of a full-time-equivalent year (35 h × 52 weeks); INSEE's 2023 figures give
#: 32 820 € / 17.7 €/h ≈ 1 854 h, within 2 %.
HOURS_PER_FTE_YEAR = 35.0 * 52.0

#: Census socio-professional groups (CS1) with their own wage column in the base communale.
CS_COLUMN_LETTERS: dict[str, str] = {"3": "C", "4": "P", "5": "E", "6": "O"}
#: Mean net monthly wage in full-time equivalent by CS, private sector, 2023 (INSEE Première
#: n° 2020; the overall figures read on insee.fr, the CS ones as four press reports give them;
#: cadres include salaried company heads). Used per CS when no wage file is given.
NATIONAL_CS_MONTHLY_NET_2023: dict[str, float] = {
    "3": 4573.0,
    "4": 2656.0,
    "5": 1959.0,
    "6": 2031.0,
}
CS_LABELS_FR: dict[str, str] = {
    "1": "Agriculteurs exploitants",
    "2": "Artisans, commerçants et chefs d'entreprise",
    "3": "Cadres et professions intellectuelles supérieures",
    "4": "Professions intermédiaires",
    "5": "Employés",
    "6": "Ouvriers",
    "unknown": "Non renseignée",
}

_SNHM = re.compile(r"^SNHM(\d{2})$")
_MISSING = {"", "s", "nd", "n.d.", "ns", "nc", "na", "-"}

LAYOUTS = ("base_communale", "simple", "default")
TOTAL_LAYOUTS = ("simple", "urssaf_region")
TOTAL_LEVELS = ("commune", "epci", "departement", "region")
TOTAL_SIDES = ("work", "residence")


@dataclass
class WageFile:
    """Annual net wage per commune, for all employees and (when known) per CS.

    Attributes
    ----------
    table : DataFrame ``code`` (reference commune code), ``annual_wage`` (€ per job and year).
    by_cs : DataFrame ``code``, ``cs`` (``"3"`` … ``"6"``), ``annual_wage``; empty when the
        file has no CS columns.
    layout : ``"base_communale"``, ``"simple"`` or ``"default"``.
    source : human-readable provenance (column used, file).
    vintage : year of the wages (``SNHM21`` → 2021) or None.
    sha256 : checksum of the file (None for the default).
    rows_read, rows_missing : data rows, rows with no mean value (secret).
    unknown_codes : commune codes of the file unknown to the reference (not used).
    warnings : remarks (codes unknown to the reference, …).
    default_wage : annual wage of a commune with no value in its whole département.
    default_by_cs : annual wage per CS used when no file is given (empty otherwise).
    """

    table: pd.DataFrame
    layout: str
    source: str
    vintage: int | None
    sha256: str | None
    path: Path | None = None
    rows_read: int = 0
    rows_missing: int = 0
    warnings: list[str] = field(default_factory=list)
    default_wage: float = NATIONAL_DEFAULT_ANNUAL_NET_WAGE
    by_cs: pd.DataFrame = field(default_factory=lambda: _empty_by_cs())
    unknown_codes: list[str] = field(default_factory=list)
    default_by_cs: dict[str, float] = field(default_factory=dict)

    @property
    def has_cs(self) -> bool:
        """Whether wages per CS are known (file columns, or the national default)."""
        return bool(self.default_by_cs) or not self.by_cs.empty


def _empty_by_cs() -> pd.DataFrame:
    return pd.DataFrame(
        {"code": pd.Series([], dtype="str"), "cs": pd.Series([], dtype="str"), "annual_wage": []}
    )


def national_default() -> WageFile:
    """The documented national default: one annual net wage for every commune, and per CS."""
    return WageFile(
        table=pd.DataFrame({"code": pd.Series([], dtype="str"), "annual_wage": []}),
        layout="default",
        source=NATIONAL_DEFAULT_SOURCE,
        vintage=NATIONAL_DEFAULT_VINTAGE,
        sha256=None,
        default_by_cs={cs: 12 * m for cs, m in NATIONAL_CS_MONTHLY_NET_2023.items()},
    )


def _text(cell: object) -> str | None:
    """A staged cell as stripped text; empty cells (None, NaN, blanks) → None."""
    if cell is None or (isinstance(cell, float) and math.isnan(cell)):
        return None
    text = str(cell).strip()
    return text or None


def _parse_number(cell: object) -> float | None:
    """'13,52' or '13.52' → 13.52; secret markers and blanks → None; else ValueError."""
    text = _text(cell)
    if text is None:
        return None
    t = text.strip('"')
    if t.lower() in _MISSING:
        return None
    t = t.replace("\u00a0", "").replace(" ", "").replace(",", ".")
    return float(t)


def _missing_columns_error(display: str, missing: list[str], header: list[str]) -> SourceError:
    shown = ", ".join(header[:12]) + (" …" if len(header) > 12 else "")
    return SourceError(
        f"column{'s' if len(missing) > 1 else ''} {', '.join(missing)} missing. Found columns: "
        f"{shown}.",
        path=display,
        line=1,
        column=missing[0],
    )


def _cs_columns(display: str, header: list[str], yy: str) -> dict[str, str]:
    """The CS columns ``SNHM{C,P,E,O}yy`` present: all four, or none (mean wage only)."""
    upper = [h.upper() for h in header]
    found: dict[str, str] = {}
    missing: list[str] = []
    for cs, letter in CS_COLUMN_LETTERS.items():
        name = f"SNHM{letter}{yy}"
        if name in upper:
            found[cs] = header[upper.index(name)]
        else:
            missing.append(name)
    if found and missing:
        raise _missing_columns_error(display, missing, header)
    return found


def read_wages(path: str | Path) -> WageFile:
    """Read a wage file: INSEE base communale (SNHMyy, and by CS) or ``code;annual_wage_eur``.

    Raises
    ------
    SourceError
        unknown layout (naming the columns expected), a CS column missing when the others are
        there, a value that is not a number or is negative (listing file lines and columns),
        or an unreadable file.
    """
    with open_table_file(path, prefer_member=("base-cc", "salaires")) as opened:
        header = [h.strip() for h in opened.header]
        upper = [h.upper() for h in header]
        snhm = [(h, m.group(1)) for h, m in ((h, _SNHM.match(h.upper())) for h in header) if m]
        cs_cols: dict[str, str] = {}
        if "CODGEO" in upper and snhm:
            code_col = header[upper.index("CODGEO")]
            value_col, yy = snhm[0]
            layout, scale = "base_communale", HOURS_PER_FTE_YEAR
            vintage: int | None = 2000 + int(yy)
            cs_cols = _cs_columns(opened.display, header, yy)
            what = f"{value_col} (salaire net horaire moyen) × {HOURS_PER_FTE_YEAR:g} h"
            if cs_cols:
                what += f", par CS : {', '.join(cs_cols.values())}"
        elif len(header) >= 2 and {"code", "annual_wage_eur"} <= {h.lower() for h in header}:
            lower = [h.lower() for h in header]
            code_col = header[lower.index("code")]
            value_col = header[lower.index("annual_wage_eur")]
            layout, scale, vintage = "simple", 1.0, None
            what = "annual_wage_eur"
        else:
            raise SourceError(
                "not a wage file maillage reads: expected INSEE's base communale of wages "
                "(columns CODGEO;LIBGEO;SNHMyy;…) or a CSV 'code;annual_wage_eur'. Found "
                f"columns: {', '.join(header[:8])}{' …' if len(header) > 8 else ''}.",
                path=opened.display,
                line=1,
                column=header[0] if header else None,
            )
        if opened.format == "xlsx":
            raise SourceError("use the CSV version of the wage file.", path=opened.display)
        con = connect()
        try:
            keep = [code_col, value_col, *cs_cols.values()]
            rows = stage_csv(con, opened, keep, table="w")
            data = con.sql(
                "SELECT rowid + 2 AS line, "
                + ", ".join(f'"{c}" AS c{i}' for i, c in enumerate(keep))
                + " FROM w"
            ).df()
        finally:
            con.close()
        sha = opened.sha256
        display = opened.display
    long, missing = _parse_wage_rows(display, data, code_col, value_col, cs_cols, scale)
    table, by_cs, unknown, warnings = _harmonise(long)
    return WageFile(
        table=table,
        by_cs=by_cs,
        layout=layout,
        source=f"{display} : {what}",
        vintage=vintage,
        sha256=sha,
        path=Path(path),
        rows_read=rows,
        rows_missing=missing,
        unknown_codes=unknown,
        warnings=warnings,
    )


def _parse_wage_rows(
    display: str,
    data: pd.DataFrame,
    code_col: str,
    value_col: str,
    cs_cols: dict[str, str],
    scale: float,
) -> tuple[pd.DataFrame, int]:
    """Check every value; return long rows ``code, cs ('all' or CS), annual_wage``."""
    columns = [("all", value_col), *cs_cols.items()]
    problems: list[Problem] = []
    out: list[tuple[str, str, float]] = []
    missing = 0
    for row in data.itertuples(index=False):
        line, code = int(row[0]), _text(row[1])
        if code is None:
            problems.append(Problem(line, code_col, "empty commune code"))
            continue
        for i, (cs, col) in enumerate(columns):
            raw = row[2 + i]
            try:
                v = _parse_number(raw)
            except ValueError:
                problems.append(Problem(line, col, f"{raw!r} is not a number"))
                continue
            if v is None:
                missing += cs == "all"
            elif v < 0:
                problems.append(Problem(line, col, f"negative wage {raw!r}"))
            else:
                out.append((code, cs, v * scale))
    if problems:
        raise_problems(display, problems[:MAX_PROBLEMS], len(problems), "the wage file")
    long = pd.DataFrame(out, columns=["code", "cs", "annual_wage"])
    return long, missing


def _harmonise(
    long: pd.DataFrame,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str], list[str]]:
    """Map codes to reference communes; mean wage per commune (and CS); unknown codes."""
    from maillage.reference.history import harmonise_codes

    warnings: list[str] = []
    if long.empty:
        empty = pd.DataFrame({"code": pd.Series([], dtype="str"), "annual_wage": []})
        return empty, _empty_by_cs(), [], warnings
    mapping = harmonise_codes(pd.Series(pd.unique(long["code"])))
    known = mapping[mapping["status"].isin(["ok", "mapped"])]
    unknown = sorted(set(long["code"]) - set(known["input_code"]))
    if unknown:
        warnings.append(
            f"{len(unknown)} commune code(s) of the wage file are unknown to the reference "
            f"(e.g. {', '.join(unknown[:5])}); their wages are not used"
        )
    merged = (
        long.rename(columns={"code": "input_code"})
        .merge(known[["input_code", "code"]], on="input_code")
        .groupby(["code", "cs"], as_index=False)["annual_wage"]
        .mean()
    )
    table = merged.loc[merged["cs"] == "all", ["code", "annual_wage"]].reset_index(drop=True)
    by_cs = merged.loc[merged["cs"] != "all", ["code", "cs", "annual_wage"]].reset_index(drop=True)
    return table, by_cs, unknown, warnings


def complete_wages(wages: WageFile, communes: pd.DataFrame) -> pd.DataFrame:
    """A wage for every commune of ``communes`` (columns ``code``, ``dep``).

    Communes without a value (secret, absent) get the mean of their département's communes
    that have one, else the national default. Returns ``code, annual_wage, wage_origin``
    (``file``, ``departement_mean`` or ``national_default``).
    """
    out = communes[["code", "dep"]].merge(wages.table, on="code", how="left")
    out["wage_origin"] = "file"
    out.loc[out["annual_wage"].isna(), "wage_origin"] = "departement_mean"
    dep_mean = out.groupby("dep")["annual_wage"].transform("mean")
    out["annual_wage"] = out["annual_wage"].fillna(dep_mean)
    still = out["annual_wage"].isna()
    out.loc[still, "wage_origin"] = "national_default"
    out.loc[still, "annual_wage"] = wages.default_wage
    return out[["code", "annual_wage", "wage_origin"]]


def complete_wages_by_cs(
    wages: WageFile, communes: pd.DataFrame, levels: pd.DataFrame
) -> pd.DataFrame | None:
    """A wage per commune and CS 3–6, or None when the wage file has no CS columns.

    Without a file every commune gets the national wage of each CS. From a file, a commune
    without a value for a CS (secret) gets the mean of its département's communes for that
    CS, else its own mean wage (``levels``, from :func:`complete_wages`). Returns ``code, cs,
    annual_wage, wage_origin`` (``file``, ``departement_mean``, ``commune_mean`` or
    ``national_default``).
    """
    if not wages.has_cs:
        return None
    cs = pd.DataFrame({"cs": list(CS_COLUMN_LETTERS)})
    grid = communes[["code", "dep"]].merge(cs, how="cross")
    if wages.default_by_cs and wages.by_cs.empty:
        grid["annual_wage"] = grid["cs"].map(wages.default_by_cs)
        grid["wage_origin"] = "national_default"
        return grid[["code", "cs", "annual_wage", "wage_origin"]]
    out = grid.merge(wages.by_cs, on=["code", "cs"], how="left")
    out["wage_origin"] = "file"
    out.loc[out["annual_wage"].isna(), "wage_origin"] = "departement_mean"
    dep_mean = out.groupby(["dep", "cs"])["annual_wage"].transform("mean")
    out["annual_wage"] = out["annual_wage"].fillna(dep_mean)
    still = out["annual_wage"].isna()
    own = out["code"].map(levels.set_index("code")["annual_wage"])
    out.loc[still, "wage_origin"] = "commune_mean"
    out.loc[still, "annual_wage"] = own[still]
    return out[["code", "cs", "annual_wage", "wage_origin"]]


# ---------------------------------------------------------------------------------------------
# Wage-mass totals
# ---------------------------------------------------------------------------------------------


@dataclass
class WageTotals:
    """Wage-mass totals to calibrate the estimated wage flows to.

    Attributes
    ----------
    table : DataFrame ``side`` (``work``/``residence``), ``level`` (``commune``, ``epci``,
        ``departement``, ``region``), ``code`` (reference code for communes; as written for
        other levels, checked against the store later), ``wage_mass`` (net €/year).
    layout : ``"simple"`` or ``"urssaf_region"``.
    source : human-readable provenance.
    year : year of the Urssaf masses (None for the simple layout).
    rows_read, rows_empty : data rows, rows with no mass at all.
    unknown_codes : commune codes unknown to the reference (not used).
    """

    table: pd.DataFrame
    layout: str
    source: str
    sha256: str
    path: Path
    year: int | None = None
    rows_read: int = 0
    rows_empty: int = 0
    unknown_codes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


#: Simple layout: mass column → side.
_SIMPLE_MASS = {"wage_mass_work_eur": "work", "wage_mass_residence_eur": "residence"}
#: Urssaf columns: role → accepted headers (API field name, label), matched case-insensitively.
_URSSAF_COLUMNS: dict[str, tuple[str, ...]] = {
    "code": ("code_region", "Code région"),
    "year": ("annee", "Année"),
    "quarter": ("trimestre", "Trimestre"),
    "mass": ("masse_salariale_brut", "Masse salariale (brut)"),
    "sector": ("secteur_na28i", "Secteur NA28i"),
}


def _find(header: list[str], candidates: tuple[str, ...]) -> str | None:
    lower = {h.lower(): h for h in header}
    for c in candidates:
        if c.lower() in lower:
            return lower[c.lower()]
    return None


def read_wage_totals(
    path: str | Path, *, year: int | None = None, prefer_year: int | None = None
) -> WageTotals:
    """Read a file of wage-mass totals (simple CSV or Urssaf by région).

    Parameters
    ----------
    year : Urssaf layout: the year whose four quarters are summed (default: ``prefer_year``
        when the file holds its four quarters, else the latest complete year).
    prefer_year : the year wanted by default (the vintage of the commuting flows).

    Raises
    ------
    SourceError
        an unknown layout or a missing column (file, line 1, column), values that are not
        numbers or are negative, an unknown level, a code given twice (file lines, columns).
    """
    with open_table_file(path, prefer_member=("masse", "effectifs", "totals")) as opened:
        if opened.format == "xlsx":
            raise SourceError("use the CSV version of the totals file.", path=opened.display)
        header = [h.strip() for h in opened.header]
        lower = {h.lower() for h in header}
        if "code" in lower and lower & set(_SIMPLE_MASS):
            reader = _read_simple_totals
        elif _find(header, _URSSAF_COLUMNS["code"]) or _find(header, _URSSAF_COLUMNS["mass"]):
            reader = _read_urssaf_totals
        else:
            raise SourceError(
                "not a wage-mass totals file maillage reads: expected a CSV "
                "'code;wage_mass_work_eur;wage_mass_residence_eur' (optional 'level') or "
                "Urssaf's 'masse salariale du secteur privé par région' (code_region, annee, "
                f"trimestre, masse_salariale_brut). Found columns: {', '.join(header[:8])}"
                f"{' …' if len(header) > 8 else ''}.",
                path=opened.display,
                line=1,
                column=header[0] if header else None,
            )
        con = connect()
        try:
            totals = reader(con, opened, header, year=year, prefer_year=prefer_year)
        finally:
            con.close()
        totals.sha256 = opened.sha256
    totals.path = Path(path)
    return totals


def _staged(
    con: duckdb.DuckDBPyConnection, opened: OpenedFile, keep: list[str]
) -> tuple[int, pd.DataFrame]:
    """Stage ``keep`` as text; rows ``line, c0, c1, …`` in file order."""
    rows = stage_csv(con, opened, keep, table="t")
    data = con.sql(
        "SELECT rowid + 2 AS line, "
        + ", ".join(f'"{c}" AS c{i}' for i, c in enumerate(keep))
        + " FROM t"
    ).df()
    return rows, data


def _read_simple_totals(
    con: duckdb.DuckDBPyConnection, opened: OpenedFile, header: list[str], **_: object
) -> WageTotals:
    display = opened.display
    by_lower = {h.lower(): h for h in header}
    code_col = by_lower["code"]
    level_col = by_lower.get("level")
    mass_cols = [(by_lower[m], side) for m, side in _SIMPLE_MASS.items() if m in by_lower]
    keep = [code_col, *([level_col] if level_col else []), *(c for c, _ in mass_cols)]
    rows, data = _staged(con, opened, keep)
    problems: list[Problem] = []
    records: list[tuple[str, str, str, float, int]] = []
    empty = 0
    seen: dict[tuple[str, str, str], int] = {}
    first_mass = 2 + (1 if level_col else 0)
    for row in data.itertuples(index=False):
        line, code = int(row[0]), _text(row[1])
        level = (_text(row[2]) or "commune").lower() if level_col else "commune"
        if code is None:
            problems.append(Problem(line, code_col, "empty code"))
            continue
        if level not in TOTAL_LEVELS:
            problems.append(
                Problem(line, level_col, f"unknown level {row[2]!r} ({', '.join(TOTAL_LEVELS)})")
            )
            continue
        got = 0
        for i, (col, side) in enumerate(mass_cols):
            raw = row[first_mass + i]
            try:
                v = _parse_number(raw)
            except ValueError:
                problems.append(Problem(line, col, f"{raw!r} is not a number"))
                continue
            if v is None:
                continue
            if v < 0:
                problems.append(Problem(line, col, f"negative wage mass {raw!r}"))
                continue
            key = (side, level, code)
            if key in seen:
                problems.append(
                    Problem(
                        line,
                        col,
                        f"{level} {key[2]} already has a {side} total on line {seen[key]}",
                    )
                )
                continue
            seen[key] = line
            records.append((side, level, key[2], v, line))
            got += 1
        empty += got == 0
    if problems:
        raise_problems(display, problems[:MAX_PROBLEMS], len(problems), "the totals file")
    table = pd.DataFrame(records, columns=["side", "level", "code", "wage_mass", "line"])
    table, unknown, warnings = _harmonise_totals(table)
    return WageTotals(
        table=table,
        layout="simple",
        source=f"{display} : {', '.join(c for c, _ in mass_cols)} (€ nets)",
        sha256="",
        path=Path(display),
        rows_read=rows,
        rows_empty=empty,
        unknown_codes=unknown,
        warnings=warnings,
    )


def _read_urssaf_totals(
    con: duckdb.DuckDBPyConnection,
    opened: OpenedFile,
    header: list[str],
    *,
    year: int | None,
    prefer_year: int | None,
) -> WageTotals:
    display = opened.display
    cols = {role: _find(header, names) for role, names in _URSSAF_COLUMNS.items()}
    missing = [_URSSAF_COLUMNS[r][0] for r in ("code", "year", "mass") if cols[r] is None]
    if missing:
        raise _missing_columns_error(display, missing, header)
    roles = [r for r in ("code", "year", "mass", "quarter", "sector") if cols[r]]
    keep = [str(cols[r]) for r in roles]
    rows, data = _staged(con, opened, keep)
    data.columns = ["line", *roles]
    problems: list[Problem] = []
    values: list[float | None] = []
    years: list[int | None] = []
    for line, raw_year, raw in zip(data["line"], data["year"], data["mass"], strict=True):
        try:
            y = int(str(_text(raw_year)))
        except ValueError:
            problems.append(Problem(int(line), cols["year"], f"{raw_year!r} is not a year"))
            y = None
        years.append(y)
        try:
            v = _parse_number(raw)
        except ValueError:
            problems.append(Problem(int(line), cols["mass"], f"{raw!r} is not a number"))
            v = None
        if v is not None and v < 0:
            problems.append(Problem(int(line), cols["mass"], f"negative wage mass {raw!r}"))
        values.append(v)
    if problems:
        raise_problems(display, problems[:MAX_PROBLEMS], len(problems), "the Urssaf file")
    data["year"] = years
    data["mass"] = values
    data["code"] = [_text(c) for c in data["code"]]
    chosen, warnings = _urssaf_year(data, year, prefer_year, display)
    rows_year = data[data["year"] == chosen]
    if "sector" in rows_year:
        # a total row (Ensemble / Total) would double the sum of the sectors: use it alone
        label = rows_year["sector"].fillna("").str.strip().str.lower()
        totals = label.str.startswith(("ensemble", "total"))
        if totals.any():
            rows_year = rows_year[totals]
    summed = rows_year.groupby("code", as_index=False)["mass"].sum(min_count=1)
    empty = int(summed["mass"].isna().sum())
    summed = summed.dropna(subset=["mass"])
    table = pd.DataFrame(
        {
            "side": "work",
            "level": "region",
            "code": summed["code"],
            "wage_mass": summed["mass"] * NET_TO_GROSS_2023,
        }
    )
    return WageTotals(
        table=table,
        layout="urssaf_region",
        source=(
            f"{display} : masse salariale brute Urssaf {chosen} par région × "
            f"{NET_TO_GROSS_2023:.3f} (net/brut, Insee 2023)"
        ),
        sha256="",
        path=Path(display),
        year=chosen,
        rows_read=rows,
        rows_empty=empty,
        warnings=warnings,
    )


def _urssaf_year(
    data: pd.DataFrame, year: int | None, prefer_year: int | None, display: str
) -> tuple[int, list[str]]:
    """The year to sum: asked, else preferred if complete, else the latest complete one."""
    if "quarter" in data:
        quarters = data.groupby("year")["quarter"].nunique()
        complete = sorted(int(y) for y, n in quarters.items() if n >= 4)
    else:
        complete = sorted(int(y) for y in data["year"].dropna().unique())
    if year is not None:
        if year not in set(data["year"]):
            raise SourceError(
                f"no row for year {year}; years in the file: "
                f"{', '.join(str(int(y)) for y in sorted(data['year'].dropna().unique()))}.",
                path=display,
            )
        warnings = [] if year in complete else [f"year {year} has fewer than four quarters"]
        return year, warnings
    if not complete:
        raise SourceError("no year with its four quarters in the file.", path=display)
    if prefer_year is not None and prefer_year in complete:
        return prefer_year, []
    chosen = complete[-1]
    note = (
        f"the Urssaf masses of {chosen} are used (the commuting flows are of {prefer_year}, "
        "not complete in the file)"
        if prefer_year is not None
        else f"the Urssaf masses of {chosen} are used"
    )
    return chosen, [note]


def _harmonise_totals(table: pd.DataFrame) -> tuple[pd.DataFrame, list[str], list[str]]:
    """Commune codes → reference communes (a split commune's mass shared by ratio)."""
    from maillage.reference.history import harmonise_codes

    communes = table[table["level"] == "commune"]
    others = table[table["level"] != "commune"]
    if communes.empty:
        return table.drop(columns="line"), [], []
    mapping = harmonise_codes(pd.Series(pd.unique(communes["code"])))
    known = mapping[mapping["status"].isin(["ok", "mapped"])]
    unknown = sorted(set(communes["code"]) - set(known["input_code"]))
    warnings = []
    if unknown:
        lines = communes[communes["code"].isin(unknown)]["line"].astype(int).tolist()
        warnings.append(
            f"{len(unknown)} commune code(s) of the totals file are unknown to the reference "
            f"(e.g. {', '.join(unknown[:5])}, lines {', '.join(map(str, lines[:5]))}); "
            "their totals are not used"
        )
    mapped = communes.rename(columns={"code": "input_code"}).merge(
        known[["input_code", "code", "ratio"]], on="input_code"
    )
    mapped["wage_mass"] = mapped["wage_mass"] * mapped["ratio"]
    mapped = mapped.groupby(["side", "level", "code"], as_index=False)["wage_mass"].sum()
    out = pd.concat([mapped, others.drop(columns="line")], ignore_index=True)
    return out[["side", "level", "code", "wage_mass"]], unknown, warnings
