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
  level per commune (:mod:`maillage.sources.wages`, :mod:`maillage.analysis.wages`) — by
  socio-professional group when the commuting flows carry a ``csp`` breakdown and wages by CS
  are known, else with the mean wage —, optionally calibrates them to wage-mass totals (RAS),
  and stores them as kind ``wage``, status ``modelled``, vintage = that of the commuting
  flows, with their ``csp`` breakdown when there is one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from maillage._errors import StoreError
from maillage.build import ImportReport, Progress, _noop, store_flows
from maillage.store import Store

#: Bump when the wage estimate changes: it enters the checksum.
WAGE_METHOD_VERSION = "wage-2"


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


@dataclass
class WageImportReport(ImportReport):
    """What :func:`import_wages` did: the store report, the method and the calibration.

    ``method`` is ``"cs"`` (commuters by socio-professional group × wage of the group) or
    ``"mean"`` (commuters × mean wage); ``method_label`` says it in French;
    ``workers_by_cs`` counts the commuters of each CS (cs method); ``calibration`` is
    :meth:`~maillage.analysis.wages.Calibration.as_dict` when totals were given.
    """

    method: str = "mean"
    method_label: str = ""
    workers_by_cs: dict[str, float] = field(default_factory=dict)
    calibration: dict[str, Any] | None = None


def _as_list(totals: Sequence[str | Path] | str | Path | None) -> list[str | Path]:
    if totals is None:
        return []
    if isinstance(totals, (str, Path)):
        return [totals]
    return list(totals)


def import_wages(
    store: Store,
    path: str | Path | None = None,
    progress: Progress = _noop,
    *,
    wage_at: str = "work",
    commute_vintage: int | None = None,
    totals: Sequence[str | Path] | str | Path | None = None,
    totals_year: int | None = None,
    tolerance: float | None = None,
    max_iterations: int | None = None,
) -> WageImportReport:
    """Estimate wage transfers (commuting × wage level), calibrate them, store them ``modelled``.

    Parameters
    ----------
    path : a wage file (INSEE base communale ``SNHMyy`` with or without the CS columns
        ``SNHMCyy…``, or ``code;annual_wage_eur``); None uses the documented national
        defaults (:data:`~maillage.sources.wages.NATIONAL_DEFAULT_ANNUAL_NET_WAGE`, and per
        CS :data:`~maillage.sources.wages.NATIONAL_CS_MONTHLY_NET_2023`).
    wage_at : apply the wage of the place of ``"work"`` (default) or of ``"residence"``.
    commute_vintage : which commuting flows (default: the store's current set, observed
        before modelled).
    totals : one or more files of wage-mass totals
        (:func:`~maillage.sources.wages.read_wage_totals`); the estimate is then calibrated
        to them by RAS (:func:`~maillage.analysis.wages.calibrate_ras`).
    totals_year : year of the Urssaf masses to use (default: the commuting vintage when the
        file holds it whole, else its latest complete year).
    tolerance, max_iterations : RAS stopping rule (defaults
        :data:`~maillage.analysis.wages.RAS_TOLERANCE`,
        :data:`~maillage.analysis.wages.RAS_MAX_ITERATIONS`).

    The method is ``cs`` when the commuting flows carry a ``csp`` breakdown (FD_MOBPRO detail
    file) and wages by CS are known (the CS columns of the base communale, or the national
    defaults without a file), else ``mean``; the report says which and why.
    """
    from maillage.analysis import wages as aw
    from maillage.sources.wages import (
        complete_wages,
        complete_wages_by_cs,
        national_default,
        read_wage_totals,
        read_wages,
    )

    tol = aw.RAS_TOLERANCE if tolerance is None else float(tolerance)
    cap = aw.RAS_MAX_ITERATIONS if max_iterations is None else int(max_iterations)
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
    totals_files = [
        read_wage_totals(t, year=totals_year, prefer_year=vintage) for t in _as_list(totals)
    ]
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
    by_cs_commute = store.df(
        "SELECT origin, destination, category, value FROM flow_breakdown "
        "WHERE kind = 'commute' AND vintage = ? AND status = ? AND dimension = ?",
        [vintage, status, aw.CS_DIMENSION],
    )
    cs_levels = complete_wages_by_cs(wages, communes, levels)
    notes: list[str] = []
    breakdown: pd.DataFrame | None = None
    if not by_cs_commute.empty and cs_levels is not None:
        method = "cs"
        flows, breakdown, info = aw.estimate_wage_flows_by_cs(
            commute, by_cs_commute, levels, cs_levels, wage_at=wage_at
        )
        notes.append(_cs_note(info, cs_levels))
    else:
        method = "mean"
        flows, info = aw.estimate_wage_flows(commute, levels, wage_at=wage_at)
        notes.append(_mean_reason(by_cs_commute.empty, wages.layout))
    counts = levels["wage_origin"].value_counts().to_dict()
    warnings = [
        f"modelled: commuting flows {vintage} ({status}) × annual net wage at place of "
        f"{'work' if wage_at == 'work' else 'residence'}; wages from {wages.source}",
        f"method {method}: {aw.METHOD_LABELS_FR[method]}",
        *notes,
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
    calibration = None
    sides: list[str] = []
    if totals_files:
        progress("Calage sur les masses salariales (RAS)", 0.25)
        margins, margin_notes = _margins(store, totals_files)
        warnings += margin_notes
        if margins:
            calibrated, cal = aw.calibrate_ras(flows, margins, tolerance=tol, max_iterations=cap)
            if breakdown is not None:
                breakdown = aw.scale_breakdown(breakdown, flows, calibrated)
            flows = calibrated
            calibration = cal.as_dict()
            sides = sorted({m.side for m in margins}, key=aw.WAGE_AT.index)
            warnings += _calibration_notes(store, cal)
    digest = hashlib.sha256(
        ";".join(
            [
                WAGE_METHOD_VERSION,
                wage_at,
                method,
                wages.sha256 or f"default:{wages.default_wage}",
                _commute_identity(store, vintage, status),
                f"{len(by_cs_commute)}:{float(by_cs_commute['value'].sum()):.6f}",
                *(f"{t.sha256}:{t.year}" for t in totals_files),
                f"{tol}:{cap}" if totals_files else "",
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
    bd_table = None
    if breakdown is not None:
        bd_table = pa.table(
            {
                "origin": pa.array(breakdown["origin"], pa.string()),
                "destination": pa.array(breakdown["destination"], pa.string()),
                "dimension": pa.array(breakdown["dimension"], pa.string()),
                "category": pa.array(breakdown["category"], pa.string()),
                "value": pa.array(breakdown["value"], pa.float64()),
            }
        )
    report = store_flows(
        store,
        table,
        kind="wage",
        vintage=vintage,
        source=aw.wage_source(wages.layout, method, sides),
        file_name=wages.path.name if wages.path else "national default",
        sha256=digest,
        rows_read=len(commute),
        status="modelled",
        breakdown=bd_table,
        warnings=warnings,
        progress=_scaled(progress, 0.3, 1.0),
    )
    return WageImportReport(
        **report.__dict__,
        method=method,
        method_label=aw.parse_wage_source(aw.wage_source(wages.layout, method, sides))["label"],
        workers_by_cs=dict(info.get("workers_by_cs", {})),
        calibration=calibration,
    )


def _cs_note(info: dict[str, Any], cs_levels: pd.DataFrame) -> str:
    from maillage.sources.wages import CS_LABELS_FR

    workers = info["workers"] or 1.0
    shares = ", ".join(
        f"{CS_LABELS_FR.get(cs, cs)} {n / workers:.0%}"
        for cs, n in sorted(info["workers_by_cs"].items())
    )
    origins = cs_levels["wage_origin"].value_counts().to_dict()
    return (
        f"wage by socio-professional group: CS 3–6 at the wage of their group, the other "
        f"{info['workers_at_mean_wage']:,.0f} commuters (CS 1, 2, unknown) at the mean wage; "
        f"commuters by CS: {shares}; commune × CS wages: {origins.get('file', 0):,} from the "
        f"file, {origins.get('departement_mean', 0):,} from the département's mean, "
        f"{origins.get('commune_mean', 0):,} from the commune's mean wage, "
        f"{origins.get('national_default', 0):,} national defaults"
        + (
            f"; {info['pairs_without_breakdown']:,} pairs had no CS breakdown (counted as "
            "unknown CS)"
            if info["pairs_without_breakdown"]
            else ""
        )
    )


def _mean_reason(no_breakdown: bool, layout: str) -> str:
    if no_breakdown:
        return (
            "mean wage used: the commuting flows carry no breakdown by socio-professional "
            "group (import the FD_MOBPRO detail file to get one)"
        )
    return (
        f"mean wage used: the wage file ({layout}) has no wage by socio-professional group "
        "(columns SNHMCyy, SNHMPyy, SNHMEyy, SNHMOyy of the base communale)"
    )


def _margins(store: Store, totals_files: list[Any]) -> tuple[list[Any], list[str]]:
    """One RAS margin per (file, side, level), with commune → territory maps for levels."""
    from maillage.analysis.wages import Margin

    margins: list[Margin] = []
    notes: list[str] = []
    for tf in totals_files:
        notes.append(f"wage-mass totals: {tf.source}")
        notes += tf.warnings  # among them the unknown commune codes, with their lines
        for (side, level), part in tf.table.groupby(["side", "level"], sort=False):
            targets = part.set_index("code")["wage_mass"]
            group_of = None
            if level != "commune":
                mem = store.df("SELECT commune, code FROM membership WHERE level = ?", [str(level)])
                unknown = sorted(set(targets.index) - set(mem["code"]))
                if unknown:
                    notes.append(
                        f"{len(unknown)} {level} code(s) of the totals file are unknown to the "
                        f"reference and not used (e.g. {', '.join(unknown[:5])})"
                    )
                    targets = targets.drop(unknown)
                group_of = mem.set_index("commune")["code"]
            if not targets.empty:
                margins.append(Margin(str(side), targets, str(level), group_of))
    return margins, notes


def _names(store: Store, level: str, codes: list[str]) -> list[str]:
    if not codes:
        return []
    names = store.df("SELECT code, name FROM territory WHERE level = ?", [level]).set_index("code")[
        "name"
    ]
    return [f"{c} {names.get(c, '?')}" for c in codes]


def _calibration_notes(store: Store, cal: Any) -> list[str]:
    f = cal.factors
    notes = [
        f"calibrated by RAS ({'converged' if cal.converged else 'NOT converged'} after "
        f"{cal.iterations} sweep(s), tolerance {cal.tolerance:g}, cap {cal.max_iterations}): "
        f"wage mass {cal.mass_before:,.0f} € → {cal.mass_after:,.0f} €; pair scale factors "
        + (
            f"min {f['min']:.3g}, quartiles {f['q1']:.3g} / {f['median']:.3g} / {f['q3']:.3g}, "
            f"max {f['max']:.3g}"
            if f
            else "none"
        ),
        *cal.warnings,
    ]
    for m in cal.margins:
        place = "work" if m.side == "work" else "residence"
        notes.append(
            f"totals at place of {place} ({m.level}): {m.met:,} of {m.targeted:,} met within "
            f"the tolerance; territory factors (total / estimate) "
            + (
                f"min {m.factors['min']:.3g}, median {m.factors['median']:.3g}, "
                f"max {m.factors['max']:.3g}"
                if m.factors
                else "none"
            )
        )
        if m.no_flow:
            notes.append(
                f"{len(m.no_flow):,} total(s) at place of {place} cannot be met: no estimated "
                f"wage flow {'leaves' if m.side == 'work' else 'reaches'} the territory "
                f"(absent from the commuting flows): "
                + ", ".join(_names(store, m.level, m.no_flow[:10]))
                + (" …" if len(m.no_flow) > 10 else "")
            )
        if m.unmet:
            worst = [str(u["code"]) for u in m.unmet[:10]]
            notes.append(
                f"{len(m.unmet):,} total(s) at place of {place} still off by more than the "
                f"tolerance (largest gap {m.max_gap:.2%}): "
                + ", ".join(_names(store, m.level, worst))
                + (" …" if len(m.unmet) > 10 else "")
            )
    return notes
