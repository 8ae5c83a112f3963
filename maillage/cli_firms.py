"""Command line for firm flows and wage transfers: a Typer sub-app the main CLI mounts.

``maillage/cli.py`` mounts it as ``maillage firms …`` and its ``import`` command dispatches
``maillage import sirene …`` / ``maillage import wages …`` to :func:`sirene` and
:func:`wages`.

Commands: ``sirene PATH-OR-URL…``, ``wages [PATH-OR-URL] [--totals PATH-OR-URL]…``,
``metropoles`` (the wage redistribution benchmark of the metropoles).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from maillage._cli_output import console, out
from maillage._cli_output import fail as _fail
from maillage._errors import MaillageError
from maillage.settings import Settings

app = typer.Typer(
    help="Flux d'entreprises (Sirene) et transferts de masse salariale.", no_args_is_help=True
)


def _local(path_or_url: str) -> Path:
    """A local path, downloading an http(s) or ``catalog:<source>:<vintage>`` address first."""
    from maillage.sources._download import local_path

    if path_or_url.startswith("catalog:"):
        path_or_url = _catalog_url(path_or_url)
    return local_path(path_or_url, Settings().cache_path)


def _catalog_url(ref: str) -> str:
    from maillage.sources import catalog

    _, source, vintage = (ref.split(":") + ["", ""])[:3]
    if not vintage.isdigit():
        raise MaillageError(f"write catalog:<source>:<vintage>, not '{ref}'")
    entry = catalog.find(source, int(vintage))
    if not entry.url:
        raise MaillageError(
            f"the catalogue knows the file of {source} {entry.vintage} but not a checked "
            f"download address; download it from {entry.page or 'its publisher'} and pass the "
            "local file"
        )
    return entry.url


def _progress() -> Any:
    from maillage.cli import _RichProgress

    return _RichProgress()


def _print_report(d: dict[str, Any], as_json: bool) -> None:
    if as_json:
        out.print_json(json.dumps(d, default=str))
        return
    for w in d.get("warnings", []):
        console.print(f"[yellow]Attention[/]: {w}", highlight=False)
    for r in d.get("reports", [d]):
        status = "déjà importé" if r.get("skipped") else "importé"
        out.print(
            f"{r['kind']} {r['vintage']}: {status} — {r['rows_kept']:,} paires, "
            f"total {r['total_value']:,.0f}, {r['rows_abroad']:,} vers/depuis l'étranger, "
            f"{r['rows_unknown']:,} codes inconnus",
            highlight=False,
        )


@app.command()
def sirene(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Folder or files (StockEtablissement, StockUniteLegale, "
            "StockEtablissementLiensSuccession), local or URL."
        ),
    ],
    measure: Annotated[
        str, typer.Option(help="jobs (headcount bands) or establishments.")
    ] = "jobs",
    year: Annotated[
        list[int] | None, typer.Option("--year", help="Year(s) of succession links to import.")
    ] = None,
    memory_limit: Annotated[str, typer.Option(help="DuckDB memory limit.")] = "2GB",
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Import head-office links and establishment transfers from the Sirene stock files."""
    from maillage.import_firms import import_sirene
    from maillage.store import Store

    try:
        local = [_local(p) for p in paths]
        with Store.open(Settings()) as store, _progress() as prog:
            rep = import_sirene(
                store, local, prog, measure=measure, years=year, memory_limit=memory_limit
            )
    except MaillageError as exc:
        _fail(exc)
    _print_report(rep.as_dict(), as_json)


@app.command()
def wages(
    path: Annotated[
        str | None,
        typer.Argument(
            help="Wage file (INSEE base communale SNHMyy with the CS columns SNHMCyy…, or "
            "code;annual_wage_eur), local, URL or catalog:<source>:<vintage>; none: national "
            "defaults."
        ),
    ] = None,
    wage_at: Annotated[
        str, typer.Option(help="Wage of the place of 'work' or 'residence'.")
    ] = "work",
    totals: Annotated[
        list[str] | None,
        typer.Option(
            "--totals",
            help="Wage-mass totals to calibrate to by RAS (code;wage_mass_work_eur;"
            "wage_mass_residence_eur[;level], or Urssaf by région); repeatable.",
        ),
    ] = None,
    totals_year: Annotated[
        int | None, typer.Option(help="Year of the Urssaf masses (default: commuting vintage).")
    ] = None,
    tolerance: Annotated[
        float | None, typer.Option(help="RAS: relative gap allowed on every total (1e-4).")
    ] = None,
    max_iterations: Annotated[
        int | None, typer.Option(help="RAS: most sweeps over the margins (1000).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Estimate wage transfers (commuting × wage, by CS when known) and store them as modelled."""
    from maillage.import_firms import import_wages
    from maillage.store import Store

    try:
        local = _local(path) if path else None
        local_totals = [_local(t) for t in totals or []]
        with Store.open(Settings()) as store, _progress() as prog:
            rep = import_wages(
                store,
                local,
                prog,
                wage_at=wage_at,
                totals=local_totals,
                totals_year=totals_year,
                tolerance=tolerance,
                max_iterations=max_iterations,
            )
    except MaillageError as exc:
        _fail(exc)
    d = rep.as_dict()
    _print_report(d, as_json)
    if not as_json:
        out.print(f"Méthode (estimation modélisée) : {d['method_label']}", highlight=False)
        cal = d.get("calibration")
        if cal:
            state = "convergé" if cal["converged"] else "NON convergé"
            out.print(
                f"Calage RAS : {state} en {cal['iterations']} itération(s), masse "
                f"{cal['mass_before']:,.0f} € → {cal['mass_after']:,.0f} €",
                highlight=False,
            )


@app.command()
def metropoles(
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write CSV here.")] = None,
) -> None:
    """Wage mass each metropole redistributes to the rest of France (modelled), and the mean."""
    from maillage.analysis.wages import benchmark_sentence, metropole_redistribution
    from maillage.store import Store

    try:
        with Store.open(Settings(), read_only=True) as store:
            table = metropole_redistribution(store)
    except MaillageError as exc:
        _fail(exc)
    if output:
        table.to_csv(output)
    shown = table[["name", "generated", "to_rest_of_france", "share_rest_of_france"]]
    for code, r in shown.iterrows():
        out.print(
            f"{code:>10}  {r['name'][:40]:40}  {r['generated'] / 1e6:10,.1f} M€  "
            f"{r['to_rest_of_france'] / 1e6:10,.1f} M€  {r['share_rest_of_france'] * 100:5.1f} %",
            highlight=False,
        )
    out.print(benchmark_sentence(table), highlight=False)
