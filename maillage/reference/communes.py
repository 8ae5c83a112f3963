"""Communes and the territories built from them: EPCI, EPT, départements, régions.

The tables are read from the Parquet files of ``maillage/reference/data/`` (built by
``scripts/build_reference.py``) on first use and cached; every call returns a fresh copy, so
callers may modify what they get. Codes are always strings ("01001", "2A004", "242900314").

Reference vintage: communes of the COG of 1 January 2026 (34,875 communes of France
métropolitaine and the DROM incl. Mayotte; collectivités d'outre-mer excluded), EPCI and EPT
of 1 January 2026, populations légales 2023 (municipal population).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import pandas as pd

DATA_DIR = Path(__file__).parent / "data"

#: Territory levels of the reference, finest first.
REFERENCE_LEVELS: tuple[str, ...] = ("commune", "epci", "ept", "departement", "region")

#: Membership column of the commune table for each aggregate level.
LEVEL_COLUMN: dict[str, str] = {"epci": "epci", "ept": "ept", "departement": "dep", "region": "reg"}


@cache
def _read(name: str) -> pd.DataFrame:
    """Read ``data/<name>.parquet`` once (cached); code-like columns stay strings."""
    path = DATA_DIR / f"{name}.parquet"
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: the embedded reference is missing; rebuild it with "
            "scripts/build_reference.py (see maillage/reference/data/README.md)"
        )
    df = pd.read_parquet(path)
    if "population" in df.columns:
        df["population"] = df["population"].astype("Int64")
    return df


def communes(include_arm: bool = False) -> pd.DataFrame:
    """Communes of the reference, one row each.

    Parameters
    ----------
    include_arm : also return the 45 municipal arrondissements of Paris, Lyon and Marseille
        (``type == 'ARM'``, ``parent`` = 75056, 69123 or 13055).

    Returns
    -------
    DataFrame with columns ``code, name, type, parent, population, epci, ept, dep, reg, lon,
    lat, area_km2, point_source, geometry_source``.
    """
    df = _read("communes")
    if not include_arm:
        df = df[df["type"] == "COM"]
    return df.reset_index(drop=True).copy()


def epci() -> pd.DataFrame:
    """EPCI à fiscalité propre: ``code`` (SIREN), ``name``, ``type`` ∈ {MET, MET69, CU, CA, CC},
    ``population`` (sum of member communes), ``n_communes``, ``dep``/``reg`` (those holding the
    largest share of the population), ``lon``/``lat`` (population-weighted point)."""
    return _read("epci").copy()


def ept() -> pd.DataFrame:
    """Établissements publics territoriaux of the Métropole du Grand Paris (same columns as
    :func:`epci`, ``type == 'EPT'``). Paris itself belongs to no EPT."""
    return _read("ept").copy()


def departements() -> pd.DataFrame:
    """Départements: ``code, name, reg, population, n_communes, lon, lat``."""
    return _read("departements").copy()


def regions() -> pd.DataFrame:
    """Régions: ``code, name, population, n_communes, lon, lat``."""
    return _read("regions").copy()


def territories() -> pd.DataFrame:
    """Every territory of every level in one table.

    Returns
    -------
    DataFrame with columns ``level, code, name, population, type, lon, lat``; ``type`` is
    'COM' for communes, MET/MET69/CU/CA/CC for EPCI, 'EPT', 'DEP' and 'REG'. The point of an
    aggregate is the population-weighted mean of its communes' points,
    :math:`(\\sum_i p_i x_i / \\sum_i p_i, \\sum_i p_i y_i / \\sum_i p_i)`.
    """
    cols = ["level", "code", "name", "population", "type", "lon", "lat"]
    parts = [
        communes().assign(level="commune"),
        epci().assign(level="epci"),
        ept().assign(level="ept"),
        departements().assign(level="departement", type="DEP"),
        regions().assign(level="region", type="REG"),
    ]
    out = pd.concat([p[cols] for p in parts], ignore_index=True)
    out["population"] = out["population"].astype("Int64")
    return out


def memberships() -> pd.DataFrame:
    """Commune → territory for each level (the commune itself included).

    Returns
    -------
    DataFrame with columns ``commune, level, code``: one row per commune for the levels
    commune, departement and region; one per commune that has one for epci (4 island communes
    have none) and ept (the 123 communes of the Métropole du Grand Paris outside Paris).
    """
    com = communes()
    parts = [pd.DataFrame({"commune": com["code"], "level": "commune", "code": com["code"]})]
    for level, column in LEVEL_COLUMN.items():
        part = com[["code", column]].dropna()
        parts.append(pd.DataFrame({"commune": part["code"], "level": level, "code": part[column]}))
    return pd.concat(parts, ignore_index=True)


def table(level: str) -> pd.DataFrame:
    """The table of one level of the reference (``commune``, ``epci``, ``ept``,
    ``departement`` or ``region``)."""
    readers = {
        "commune": communes,
        "epci": epci,
        "ept": ept,
        "departement": departements,
        "region": regions,
    }
    if level not in readers:
        raise ValueError(f"unknown level {level!r}; expected one of {', '.join(readers)}")
    return readers[level]()
