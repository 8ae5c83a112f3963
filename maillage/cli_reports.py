"""Command-line commands for sheets, exports and batches (mounted by ``maillage.cli``).

``app`` is a Typer app with two commands the main CLI mounts at top level:

- ``maillage sheet TERRITORY [--with OTHER] -o FILE.pdf|.html``
- ``maillage batch --region 53 [--all] -o DIR [--formats pdf,xlsx,gpkg] [--workers N]``

and :func:`export_any` is what ``maillage export --to csv|xlsx|gpkg`` calls.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from maillage._cli_output import console, out
from maillage._cli_output import fail as _fail
from maillage._errors import MaillageError
from maillage.settings import Settings

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False)


def _open_store(settings: Settings) -> Any:
    from maillage.store import Store

    store = Store.open(settings, read_only=True)
    store.require_built()
    return store


def export_any(store: Any, ref: str, to: str, output: str | Path) -> list[Path]:
    """Export a territory as ``csv``, ``xlsx`` or ``gpkg`` into folder ``output``.

    Returns the files written (the last one is the provenance JSON of the bundle).
    """
    from maillage.delivery.exports import export_bundle

    return export_bundle(store, ref, Path(output), (to.strip().lower(),))


@app.command()
def sheet(
    territory: Annotated[str, typer.Argument(help="Territory (LEVEL:CODE or name).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="FILE.pdf or FILE.html.")],
    with_: Annotated[
        str | None,
        typer.Option("--with", help="Second territory: make a pair sheet (fiche binôme)."),
    ] = None,
    kind: Annotated[
        list[str] | None, typer.Option("--kind", "-k", help="Flow kind(s) to show.")
    ] = None,
) -> None:
    """A territory sheet, or a pair sheet with --with, as PDF or HTML (in French).

    Example: maillage sheet epci:242900314 --with epci:242900801 -o brest_landerneau.pdf
    """
    from maillage.delivery.reports.sheets import (
        load_register,
        pair_sheet,
        territory_sheet,
        write_sheet,
    )

    settings = Settings()
    try:
        if output.suffix.lower() not in (".pdf", ".html", ".htm"):
            raise MaillageError(f"the sheet file must end in .pdf or .html, not '{output.name}'")
        register = load_register(settings.registry_url)
        with _open_store(settings) as store, console.status("Préparation de la fiche…"):
            if with_:
                made = pair_sheet(store, territory, with_, kinds=kind, register=register)
                if made.context["no_flow"]:
                    console.print(
                        "[yellow]Note[/]: no flow at all between these two territories; "
                        "the sheet says so.",
                        highlight=False,
                    )
            else:
                made = territory_sheet(store, territory, kinds=kind, register=register)
            path = write_sheet(made, output)
    except MaillageError as exc:
        _fail(exc)
    out.print(str(path))


@app.command()
def batch(
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder.")],
    region: Annotated[
        str | None, typer.Option("--region", help="INSEE code of the région (e.g. 53).")
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every EPCI of France.")] = False,
    formats: Annotated[
        str, typer.Option("--formats", help="Comma-separated: pdf, html, csv, xlsx, gpkg.")
    ] = "pdf,xlsx,gpkg",
    workers: Annotated[
        int, typer.Option(help="Worker processes (1 = this process; see benchmarks).")
    ] = 1,
    limit: Annotated[int | None, typer.Option(help="Only the first N EPCI (trial).")] = None,
) -> None:
    """Sheets and exports for every EPCI of a région (or of France), resumable.

    Items already done (see DIR/manifest.json) are skipped; a failure never stops the batch
    and failures are listed at the end.

    Example: maillage batch --region 53 -o fiches_bretagne/ --formats pdf,xlsx
    """
    from maillage.delivery.batch import epci_refs, run_batch

    settings = Settings()
    if (region is None) == (not all_):
        _fail(MaillageError("say which EPCI: --region CODE or --all (not both)"))
    try:
        with _open_store(settings) as store:
            refs = epci_refs(store, None if all_ else region)
        if limit is not None:
            refs = refs[:limit]
        if not refs:
            raise MaillageError("no EPCI to process for this région")
        bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} échec(s)"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        )
        with bar:
            task = bar.add_task("Fiches et exports", total=len(refs), failed=0)
            failed = 0

            def progress(ref: str, status: str, n: int, total: int) -> None:
                nonlocal failed
                failed += status == "failed"
                bar.update(task, completed=n, description=f"{ref} ({status})", failed=failed)

            result = run_batch(
                settings.database_path,
                refs,
                output,
                formats.split(","),
                workers=workers,
                registry_url=settings.registry_url,
                progress=progress,
            )
    except MaillageError as exc:
        _fail(exc)
    console.print(
        f"{len(result.done)} done, {len(result.skipped)} already done (skipped), "
        f"{len(result.failed)} failed, in {result.seconds:.1f} s — manifest: {result.manifest}",
        highlight=False,
    )
    if result.failed:
        console.print("[bold red]Failures[/]:", highlight=False)
        for ref, message in result.failed.items():
            console.print(f"  • {ref}: {message}", highlight=False)
        raise typer.Exit(1)
