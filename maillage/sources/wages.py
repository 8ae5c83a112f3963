"""Wage levels by commune: INSEE's "base communale" of private-sector wages, or a simple CSV.

No open file gives the wages paid for a commune-of-work × commune-of-residence pair
(DATA_SOURCES.md A.6): maillage estimates wage transfers from commuting flows × a wage level
(:mod:`maillage.analysis.wages`). This module reads that wage level, annual and net, per
commune, from one of:

``base communale`` (INSEE, "Salaires dans le secteur privé … – base communale", BTS/DADS)
    ``;``-separated, header ``CODGEO;LIBGEO;SNHM<yy>;SNHMC<yy>;SNHMP<yy>;SNHME<yy>;SNHMO<yy>;
    SNHMF<yy>;…;SNHMH5014`` (mean **net hourly** wage of all employees ``SNHM<yy>``, then by
    socio-professional group C/P/E/O, sex F/H and age 18/26/50). Missing values (statistical
    secret, too few employees) are empty or ``s``/``nd``. The hourly wage is turned into an
    annual one with :data:`HOURS_PER_FTE_YEAR` (35 h × 52 weeks, the full-time equivalent
    year of INSEE's EQTP). In recent vintages INSEE computes these commune figures at the
    **place of residence** of employees (footnote "fichier salariés au lieu de résidence");
    older DADS-based ones used the place of work.
simple CSV
    ``code;annual_wage_eur`` (``,`` also accepted): an annual net wage per job for each
    commune code, from any source the analyst trusts (Urssaf wage mass / headcount, BTS …).
no file at all
    :data:`NATIONAL_DEFAULT_ANNUAL_NET_WAGE` for every commune: INSEE Première n° 2020
    (October 2024), "Les salaires dans le secteur privé en 2023": mean net wage in full-time
    equivalent 2 735 €/month, i.e. 32 820 €/year. It is an upper bound per commuter (part-time
    and part-year jobs earn less; non-salaried workers are in the commuting counts).

Commune codes of any vintage are mapped to the reference (old codes, arrondissements); several
old codes mapped to one commune get the mean of their wages.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from maillage._errors import SourceError
from maillage.sources._files import (
    MAX_PROBLEMS,
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
        "page": "https://www.insee.fr/fr/statistiques?debut=0&theme=24&categorie=3",
        "name": "Salaires dans le secteur privé … – base communale (base-cc-salaires)",
        "note": "CSV ; CODGEO;LIBGEO;SNHMyy;… mean net hourly wage (€) by commune",
    },
    "salaires_2023_national": {
        "page": "https://www.insee.fr/fr/statistiques/8270416",
        "name": "Insee Première n° 2020, Les salaires dans le secteur privé en 2023",
        "note": "2 735 € net per month in full-time equivalent (national default)",
    },
}

#: Mean net monthly wage in full-time equivalent, private sector, 2023 (INSEE Première 2020).
NATIONAL_MONTHLY_NET_WAGE_2023 = 2735.0
#: Annual net wage per job used when no wage file is given: 12 × 2 735 €.
NATIONAL_DEFAULT_ANNUAL_NET_WAGE = 12 * NATIONAL_MONTHLY_NET_WAGE_2023
NATIONAL_DEFAULT_SOURCE = (
    "Insee Première n° 2020 (2024) : salaire net moyen en EQTP du secteur privé en 2023, "
    "2 735 €/mois"
)
NATIONAL_DEFAULT_VINTAGE = 2023
#: Hours of a full-time-equivalent year (35 h × 52 weeks); INSEE's 2023 figures give
#: 32 820 € / 17.7 €/h ≈ 1 854 h, within 2 %.
HOURS_PER_FTE_YEAR = 35.0 * 52.0

_SNHM = re.compile(r"^SNHM(\d{2})$")
_MISSING = {"", "s", "nd", "n.d.", "ns", "nc", "na", "-"}

LAYOUTS = ("base_communale", "simple", "default")


@dataclass
class WageFile:
    """Annual net wage per commune.

    Attributes
    ----------
    table : DataFrame ``code`` (reference commune code), ``annual_wage`` (€ per job and year).
    layout : ``"base_communale"``, ``"simple"`` or ``"default"``.
    source : human-readable provenance (column used, file).
    vintage : year of the wages (``SNHM21`` → 2021) or None.
    sha256 : checksum of the file (None for the default).
    rows_read, rows_missing : data rows, rows with no value (secret).
    warnings : remarks (codes unknown to the reference, …).
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


def national_default() -> WageFile:
    """The documented national default: one annual net wage for every commune."""
    return WageFile(
        table=pd.DataFrame({"code": pd.Series([], dtype="str"), "annual_wage": []}),
        layout="default",
        source=NATIONAL_DEFAULT_SOURCE,
        vintage=NATIONAL_DEFAULT_VINTAGE,
        sha256=None,
    )


def _parse_number(text: str | None) -> float | None:
    """'13,52' or '13.52' → 13.52; secret markers and blanks → None; else ValueError."""
    if text is None:
        return None
    t = text.strip().strip('"')
    if t.lower() in _MISSING:
        return None
    t = t.replace("\u00a0", "").replace(" ", "").replace(",", ".")
    return float(t)


def read_wages(path: str | Path) -> WageFile:
    """Read a wage file: INSEE base communale (SNHMyy) or ``code;annual_wage_eur``.

    Raises
    ------
    SourceError
        unknown layout (naming the columns expected), a value that is not a number or is
        negative (listing file lines), or an unreadable file.
    """
    with open_table_file(path, prefer_member=("base-cc", "salaires")) as opened:
        header = [h.strip() for h in opened.header]
        upper = [h.upper() for h in header]
        snhm = [(h, m.group(1)) for h, m in ((h, _SNHM.match(h.upper())) for h in header) if m]
        if "CODGEO" in upper and snhm:
            code_col = header[upper.index("CODGEO")]
            value_col, yy = snhm[0]
            layout, scale = "base_communale", HOURS_PER_FTE_YEAR
            vintage: int | None = 2000 + int(yy)
            what = f"{value_col} (salaire net horaire moyen) × {HOURS_PER_FTE_YEAR:g} h"
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
            rows = stage_csv(con, opened, [code_col, value_col], table="w")
            data = con.sql(
                f'SELECT rowid + 2 AS line, "{code_col}" AS code, "{value_col}" AS v FROM w'
            ).df()
        finally:
            con.close()
        sha = opened.sha256
        display = opened.display
    problems: list[Problem] = []
    values: list[float | None] = []
    for line, code, raw in data.itertuples(index=False):
        try:
            v = _parse_number(raw)
        except ValueError:
            problems.append(Problem(int(line), value_col, f"{raw!r} is not a number"))
            values.append(None)
            continue
        if v is not None and v < 0:
            problems.append(Problem(int(line), value_col, f"negative wage {raw!r}"))
        if not code or not str(code).strip():
            problems.append(Problem(int(line), code_col, "empty commune code"))
        values.append(None if v is None else v * scale)
    if problems:
        raise_problems(display, problems[:MAX_PROBLEMS], len(problems), "the wage file")
    data["annual_wage"] = values
    missing = int(data["annual_wage"].isna().sum())
    table, warnings = _harmonise(data.dropna(subset=["annual_wage"]))
    src = f"{display} : {what}"
    return WageFile(
        table=table,
        layout=layout,
        source=src,
        vintage=vintage,
        sha256=sha,
        path=Path(path),
        rows_read=rows,
        rows_missing=missing,
        warnings=warnings,
    )


def _harmonise(data: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Map codes to reference communes; mean wage per commune; unknown codes reported."""
    from maillage.reference.history import harmonise_codes

    warnings: list[str] = []
    if data.empty:
        return pd.DataFrame({"code": pd.Series([], dtype="str"), "annual_wage": []}), warnings
    codes = data["code"].astype(str).str.strip()
    mapping = harmonise_codes(pd.Series(pd.unique(codes)))
    known = mapping[mapping["status"].isin(["ok", "mapped"])]
    unknown = sorted(set(mapping.loc[mapping["status"] == "unknown", "input_code"]))
    if unknown:
        warnings.append(
            f"{len(unknown)} commune code(s) of the wage file are unknown to the reference "
            f"(e.g. {', '.join(unknown[:5])}); their wages are not used"
        )
    merged = (
        pd.DataFrame({"input_code": codes.to_numpy(), "annual_wage": data["annual_wage"]})
        .merge(known[["input_code", "code"]], on="input_code")
        .groupby("code", as_index=False)["annual_wage"]
        .mean()
    )
    return merged[["code", "annual_wage"]], warnings


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
