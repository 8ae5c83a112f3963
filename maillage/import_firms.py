"""Importing firm flows (Sirene) and wage transfers into the observatory.

- :func:`import_sirene` reads the Sirene stock files (:mod:`maillage.sources.sirene`), checks
  them whole, then stores ``hq_link`` (vintage = year of the stock) and
  ``establishment_transfer`` (one vintage per year of ``dateLienSuccession``) through
  :func:`maillage.build.store_flows`: codes mapped to the reference, places abroad and unknown
  codes flagged, each (kind, vintage) replaced in one transaction, a file already imported
  skipped. Nothing is written before every file has been read and checked; each (kind,
  vintage) then lands whole or not at all (an interruption between two years leaves the
  earlier years written — running the import again completes it, the written ones being
  skipped).
- :func:`import_wages` estimates wage transfers from the current commuting flows and a wage
  level per commune (:mod:`maillage.sources.wages`, :mod:`maillage.analysis.wages`) and stores
  them as kind ``wage``, status ``modelled``, vintage = that of the commuting flows.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from maillage._errors import StoreError
from maillage.build import ImportReport, Progress, _noop, store_flows
from maillage.store import Store

#: Bump when the wage estimate changes: it enters the checksum.
WAGE_METHOD_VERSION = "wage-1"


@dataclass
class SireneImport:
    """What :func:`import_sirene` did: one ImportReport per (kind, vintage) stored."""

    reports: list[ImportReport] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "reports": [r.as_dict() for r in self.reports],
            "summary": self.summary,
            "warnings": self.warnings,
        }


def _scaled(progress: Progress, lo: float, hi: float) -> Progress:
    return lambda message, fraction: progress(message, lo + (hi - lo) * fraction)


def import_sirene(
    store: Store,
    paths: Sequence[str | Path] | str | Path,
    progress: Progress = _noop,
    *,
    measure: str = "jobs",
    years: Sequence[int] | None = None,
    last_years: int = 10,
    memory_limit: str = "2GB",
) -> SireneImport:
    """Import head-office links and establishment transfers from the Sirene stock files.

    Parameters
    ----------
    paths : a folder or files: StockEtablissement (required), StockUniteLegale and
        StockEtablissementLiensSuccession (optional), zipped as published or extracted.
    measure : ``"jobs"`` (headcount-band midpoints, default) or ``"establishments"``.
    years : years of succession links to import (default: the ``last_years`` complete years
        before the stock's date).
    memory_limit : DuckDB memory limit for reading (beyond it the work spills to disk).
    """
    from maillage.sources.sirene import read_sirene

    store.require_built()
    flows = read_sirene(
        paths,
        measure=measure,
        years=years,
        last_years=last_years,
        memory_limit=memory_limit,
        progress=_scaled(progress, 0.0, 0.6),
    )
    result = SireneImport(warnings=list(flows.warnings))
    result.summary = {
        "measure": flows.measure,
        "hq_vintage": flows.hq_vintage,
        "transfer_years": sorted(flows.transfers),
        "files": flows.files,
        "rows": flows.rows,
        "counts": flows.counts,
    }
    unit = "emplois estimés" if measure == "jobs" else "établissements"
    note = f"value = {unit} ({measure})"
    steps = 1 + len(flows.transfers)
    if flows.hq.num_rows:
        result.reports.append(
            store_flows(
                store,
                flows.hq,
                kind="hq_link",
                vintage=flows.hq_vintage,
                source="sirene_hq_link",
                file_name=Path(flows.files["etablissements"]).name,
                sha256=flows.digest("hq_link", flows.hq_vintage),
                rows_read=flows.rows["etablissements"],
                breakdown=flows.hq_breakdown,
                warnings=[note, *flows.warnings],
                progress=_scaled(progress, 0.6, 0.6 + 0.4 / steps),
            )
        )
    else:
        result.warnings.append("no active establishment could be linked to its head office")
    for i, (year, (table, breakdown)) in enumerate(sorted(flows.transfers.items()), start=1):
        lo = 0.6 + 0.4 * i / steps
        result.reports.append(
            store_flows(
                store,
                table,
                kind="establishment_transfer",
                vintage=year,
                source="sirene_succession",
                file_name=Path(flows.files["successions"]).name,
                sha256=flows.digest("establishment_transfer", year),
                rows_read=flows.rows["successions"],
                breakdown=breakdown,
                warnings=[note, *flows.warnings],
                progress=_scaled(progress, lo, lo + 0.4 / steps),
            )
        )
    progress("Terminé", 1.0)
    return result


def _commute_identity(store: Store, vintage: int, status: str) -> str:
    row = store.df(
        """SELECT count(*) AS n, sum(value) AS total, min(import_id) AS i0, max(import_id) AS i1
           FROM flow WHERE kind = 'commute' AND vintage = ? AND status = ?""",
        [vintage, status],
    ).iloc[0]
    return f"{int(row['n'])}:{float(row['total'] or 0):.6f}:{row['i0']}:{row['i1']}"


def import_wages(
    store: Store,
    path: str | Path | None = None,
    progress: Progress = _noop,
    *,
    wage_at: str = "work",
    commute_vintage: int | None = None,
) -> ImportReport:
    """Estimate wage transfers (commuting × wage level) and store them as ``modelled``.

    Parameters
    ----------
    path : a wage file (INSEE base communale ``SNHMyy`` or ``code;annual_wage_eur``); None
        uses the documented national default (:data:`~maillage.sources.wages.
        NATIONAL_DEFAULT_ANNUAL_NET_WAGE`).
    wage_at : apply the wage of the place of ``"work"`` (default) or of ``"residence"``.
    commute_vintage : which commuting flows (default: the store's current set, observed
        before modelled).
    """
    from maillage.analysis.wages import estimate_wage_flows
    from maillage.sources.wages import complete_wages, national_default, read_wages

    store.require_built()
    cur = store.current("commute", commute_vintage)
    if cur is None:
        raise StoreError(
            "no commuting flows in the observatory, so no wage transfers can be estimated. "
            "Run `maillage build` (modelled flows) or import a MOBPRO file first."
        )
    vintage, status = cur
    progress("Lecture des salaires", 0.05)
    wages = read_wages(path) if path is not None else national_default()
    communes = store.df(
        "SELECT commune AS code, code AS dep FROM membership WHERE level = 'departement'"
    )
    levels = complete_wages(wages, communes)
    progress("Navettes × salaires", 0.2)
    commute = store.df(
        "SELECT origin, destination, value, flag FROM flow "
        "WHERE kind = 'commute' AND vintage = ? AND status = ?",
        [vintage, status],
    )
    flows, info = estimate_wage_flows(commute, levels, wage_at=wage_at)
    counts = levels["wage_origin"].value_counts().to_dict()
    warnings = [
        f"modelled: commuting flows {vintage} ({status}) × annual net wage at place of "
        f"{'work' if wage_at == 'work' else 'residence'}; wages from {wages.source}",
        f"wage per commune: {counts.get('file', 0):,} from the file, "
        f"{counts.get('departement_mean', 0):,} from their département's mean, "
        f"{counts.get('national_default', 0):,} from the national default",
        *wages.warnings,
    ]
    if wages.rows_missing:
        warnings.append(f"{wages.rows_missing:,} row(s) of the wage file have no value (secret)")
    if info["workers_left_out"]:
        warnings.append(
            f"{info['workers_left_out']:,.0f} commuters working or living outside the "
            "reference (abroad, unknown code) have no wage level: left out of the wage flows"
        )
    digest = hashlib.sha256(
        ";".join(
            [
                WAGE_METHOD_VERSION,
                wage_at,
                wages.sha256 or f"default:{wages.default_wage}",
                _commute_identity(store, vintage, status),
            ]
        ).encode()
    ).hexdigest()
    table = pa.table(
        {
            "origin": pa.array(flows["origin"], pa.string()),
            "destination": pa.array(flows["destination"], pa.string()),
            "value": pa.array(flows["value"], pa.float64()),
        }
    )
    return store_flows(
        store,
        table,
        kind="wage",
        vintage=vintage,
        source=f"wage_estimate:{wages.layout}",
        file_name=wages.path.name if wages.path else "national default",
        sha256=digest,
        rows_read=len(commute),
        status="modelled",
        warnings=warnings,
        progress=_scaled(progress, 0.3, 1.0),
    )
