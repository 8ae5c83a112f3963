"""Command line for firm flows and wage transfers: a Typer sub-app the main CLI mounts.

Proposed wiring (in ``maillage/cli.py``, owned by the lead)::

    from maillage.cli_firms import app as firms_app, sirene, wages
    app.add_typer(firms_app, name="import-firms")   # maillage import-firms sirene PATH…
    # or, once ``import`` becomes a group: import_app.command("sirene")(sirene), …

Commands: ``sirene PATH-OR-URL…``, ``wages [PATH-OR-URL]``, ``metropoles`` (the wage
redistribution benchmark of the metropoles).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from maillage._errors import MaillageError
from maillage.settings import Settings

app = typer.Typer(
    help="Flux d'entreprises (Sirene) et transferts de masse salariale.", no_args_is_help=True
)
console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def _fail(exc: BaseException) -> None:
    console.print(f"[bold red]Erreur[/]: {exc}", highlight=False)
    raise typer.Exit(1)


def _local(path_or_url: str) -> Path:
    """A local path, downloading an http(s) address into the cache first."""
    from maillage.sources._download import local_path

    return local_path(path_or_url, Settings().cache_path)


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
            help="Wage file (INSEE base communale SNHMyy, or code;annual_wage_eur); "
            "none: national default."
        ),
    ] = None,
    wage_at: Annotated[
        str, typer.Option(help="Wage of the place of 'work' or 'residence'.")
    ] = "work",
    as_json: Annotated[bool, typer.Option("--json", help="JSON output.")] = False,
) -> None:
    """Estimate wage transfers (commuting × wage level) and store them as modelled."""
    from maillage.import_firms import import_wages
    from maillage.store import Store

    try:
        local = _local(path) if path else None
        with Store.open(Settings()) as store, _progress() as prog:
            rep = import_wages(store, local, prog, wage_at=wage_at)
    except MaillageError as exc:
        _fail(exc)
    _print_report(rep.as_dict(), as_json)


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
