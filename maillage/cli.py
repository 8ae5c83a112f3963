"""The ``maillage`` command line: a thin layer over the library.

Each command opens the store, calls one library function and formats its result as a table,
JSON or CSV (``--format``). Errors of maillage become one readable line and exit code 1.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import math
import sys
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import pandas as pd
import typer
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from maillage import __version__
from maillage._cli_output import console, out
from maillage._cli_output import fail as _fail
from maillage._errors import MaillageError
from maillage._jsonsafe import deep_clean
from maillage._schema import FLOW_KINDS, KIND_LABELS_FR
from maillage.settings import Settings

app = typer.Typer(
    name="maillage",
    help="Observatoire des interdépendances et des coopérations entre territoires.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
perimeter_app = typer.Typer(
    help="Perimeters: shipped ones and your own (YAML or CSV files).", no_args_is_help=True
)
app.add_typer(perimeter_app, name="perimeter")


class Fmt(str, Enum):
    table = "table"
    json = "json"
    csv = "csv"


FormatOpt = Annotated[Fmt, typer.Option("--format", "-f", help="Output format.")]


def _store(read_only: bool = False, *, need_built: bool = True) -> Any:
    from maillage.store import Store

    store = Store.open(Settings(), read_only=read_only)
    if need_built:
        store.require_built()
    return store


class _RichProgress:
    """Adapter from the library's ``progress(message, fraction)`` callback to a rich bar."""

    def __init__(self) -> None:
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f} %"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self.task = self.bar.add_task("…", total=1.0)

    def __enter__(self) -> _RichProgress:
        self.bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.__exit__(*exc)  # type: ignore[arg-type]

    def __call__(self, message: str, fraction: float) -> None:
        self.bar.update(self.task, description=message, completed=fraction)


# -- output ---------------------------------------------------------------------------------


def _fmt_num(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    if isinstance(v, float):
        if abs(v) < 10 and v != int(v):
            return f"{v:.3f}".replace(".", ",")
        return f"{v:,.0f}".replace(",", "\u202f")
    return str(v)


def emit_frame(df: pd.DataFrame, fmt: Fmt, *, title: str | None = None) -> None:
    """Print a frame as a rich table, JSON records or CSV."""
    if fmt is Fmt.json:
        out.print_json(json.dumps(deep_clean(df), ensure_ascii=False, default=str))
    elif fmt is Fmt.csv:
        buf = io.StringIO()
        df.to_csv(buf, index=False, quoting=csv.QUOTE_MINIMAL)
        sys.stdout.write(buf.getvalue())
    else:
        table = Table(title=title, show_lines=False)
        for col in df.columns:
            table.add_column(
                str(col), justify="right" if pd.api.types.is_numeric_dtype(df[col]) else "left"
            )
        for row in df.itertuples(index=False):
            table.add_row(*[_fmt_num(v) for v in row])
        out.print(table)


def emit_json(data: Any) -> None:
    out.print_json(json.dumps(deep_clean(data), ensure_ascii=False, default=str))


def _modelled_banner(status: str) -> None:
    if status == "modelled":
        console.print(
            "[bold yellow]⚠ MODÉLISÉ[/]: ces flux sont estimés par un modèle "
            "gravitaire, pas observés. Importez les fichiers INSEE pour des flux "
            "observés (`maillage import`).",
            highlight=False,
        )


# -- commands -------------------------------------------------------------------------------


@app.callback()
def _main(
    verbose: Annotated[
        int, typer.Option("--verbose", "-v", count=True, help="More log output (-vv for debug).")
    ] = 0,
) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


@app.command()
def version() -> None:
    """Print the version of maillage."""
    out.print(f"maillage {__version__}")


@app.command()
def build(
    force: Annotated[bool, typer.Option(help="Reload the reference and re-run the model.")] = False,
) -> None:
    """Build the observatory: territorial reference, perimeters and the default model.

    Example: maillage build
    """
    from maillage.build import build as do_build
    from maillage.build import user_perimeter_files

    try:
        with _store(need_built=False) as store, _RichProgress() as prog:
            done = do_build(
                store,
                force=force,
                progress=prog,
                extra_perimeters=user_perimeter_files(Settings().home),
            )
            path = store.path
        n = _seed_register()
    except MaillageError as exc:
        _fail(exc)
    console.print(
        f"Observatoire prêt: {path} ({done['seconds']:.1f} s); registre des "
        f"coopérations: {n} fiches"
    )


def _seed_register() -> int:
    """Load the seed cooperations of the mission document into the register (idempotent)."""
    from maillage.cooperations import crud
    from maillage.cooperations.db import open_registry, session_factory
    from maillage.cooperations.seed import load_seed

    engine = open_registry(Settings().registry_url)
    with session_factory(engine)() as session, session.begin():
        load_seed(session)
        return len(crud.list_cooperations(session))


@app.command()
def status(fmt: FormatOpt = Fmt.table) -> None:
    """What the observatory holds: flow kinds, vintages, observed or modelled.

    Example: maillage status
    """
    try:
        with _store(read_only=True) as store:
            emit_frame(store.available(), fmt, title=f"Observatoire {store.path}")
    except MaillageError as exc:
        _fail(exc)


@app.command()
def search(
    query: str,
    level: Annotated[list[str] | None, typer.Option(help="Restrict to levels.")] = None,
    limit: int = 10,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """Search territories by name or code (accents and case ignored).

    Example: maillage search "saint etienne"
    """
    from maillage.analysis.territories import search as do_search

    try:
        with _store(read_only=True) as store:
            emit_frame(do_search(store, query, levels=level, limit=limit), fmt)
    except MaillageError as exc:
        _fail(exc)


KindOpt = Annotated[list[str] | None, typer.Option("--kind", "-k", help="Flow kind(s).")]


@app.command()
def territory(
    ref: Annotated[
        str,
        typer.Argument(
            help="LEVEL:CODE (com:29019, epci:242900314, dep:29, "
            "reg:53, per:slug), a code or a name."
        ),
    ],
    kind: KindOpt = None,
    top: Annotated[int, typer.Option(help="Number of partners listed.")] = 10,
    vintage: int | None = None,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """Profile of a territory: indicators against its stratum and top partners per flow kind.

    Example: maillage territory "Brest Métropole"
    """
    from maillage.analysis.flows import partners
    from maillage.analysis.indicators import profile

    try:
        with _store(read_only=True) as store:
            prof = profile(store, ref, kinds=kind, vintage=vintage)
            tops = {
                k: partners(store, prof["territory"]["ref"], k, top=top, vintage=vintage)
                for k in prof["kinds"]
            }
    except MaillageError as exc:
        _fail(exc)
    if fmt is Fmt.json:
        prof["partners"] = {k: deep_clean(v) for k, v in tops.items()}
        emit_json(prof)
        return
    rows = []
    for k, block in prof["kinds"].items():
        for ind in block["indicators"]:
            st = ind["stratum"]
            rows.append(
                {
                    "kind": k,
                    "indicator": ind["name"],
                    "label": ind["label"],
                    "value": ind["value"],
                    "status": ind["status"],
                    "stratum_median": st["median"],
                    "stratum_q1": st["q1"],
                    "stratum_q3": st["q3"],
                    "rank": f"{st['rank']}/{st['n']}" if st["rank"] else None,
                }
            )
    df = pd.DataFrame(rows)
    if fmt is Fmt.csv:
        emit_frame(df, fmt)
        return
    t = prof["territory"]
    out.print(
        f"[bold]{t['name']}[/] ({t['level_label']} {t['code']}) — population "
        f"{_fmt_num(t['population'])}, {t['n_communes']} commune(s)"
    )
    for k, block in prof["kinds"].items():
        _modelled_banner(block["meta"]["status"])
        out.print(
            f"Strate: {block['stratum']} ({block['stratum_size']} territoires) — source: "
            f"{block['meta']['source']} {block['meta']['vintage']}",
            highlight=False,
        )
        emit_frame(df[df.kind == k].drop(columns=["kind"]), fmt, title=KIND_LABELS_FR.get(k, k))
        emit_frame(
            tops[k][
                [
                    "partner_code",
                    "partner_name",
                    "out_value",
                    "in_value",
                    "out_share_p",
                    "in_share_q",
                    "reliability",
                ]
            ],
            fmt,
            title=f"Principaux partenaires — {KIND_LABELS_FR.get(k, k)}",
        )


@app.command()
def flows(
    from_: Annotated[str, typer.Option("--from", help="Territory (LEVEL:CODE or name).")],
    to: Annotated[str | None, typer.Option("--to", help="Second territory: the pair view.")] = None,
    kind: Annotated[str, typer.Option("--kind", "-k", help="Flow kind.")] = "commute",
    direction: Annotated[str, typer.Option(help="out, in or both.")] = "both",
    level: Annotated[str | None, typer.Option(help="Partner level.")] = None,
    top: int = 20,
    threshold: float = 0.0,
    vintage: int | None = None,
    detail: Annotated[bool, typer.Option(help="With --to: list the commune pairs.")] = False,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """Flows from a territory to its partners, or between two territories (--to).

    Example: maillage flows --from "Brest Métropole" --to "CC du Pays d'Iroise" --kind commute
    """
    from maillage.analysis.flows import between, partners

    try:
        with _store(read_only=True) as store:
            if to is None:
                df = partners(
                    store,
                    from_,
                    kind,
                    direction=direction,
                    level=level,
                    top=top,
                    threshold=threshold,
                    vintage=vintage,
                )
                if fmt is not Fmt.json:
                    _modelled_banner(df["status"].iloc[0] if len(df) else "")
                emit_frame(df, fmt)
                return
            res = between(store, from_, to, kind, vintage=vintage)
    except MaillageError as exc:
        _fail(exc)
    det = res.pop("detail")
    if fmt is Fmt.json:
        res["detail"] = deep_clean(det.head(top) if not detail else det)
        emit_json(res)
        return
    summary = pd.DataFrame(
        [
            {
                "from": res["a"]["name"],
                "to": res["b"]["name"],
                "value": res["a_to_b"],
                "share_of_origin": res["share_of_a_origin_to_b"],
                "status": res["status"],
            },
            {
                "from": res["b"]["name"],
                "to": res["a"]["name"],
                "value": res["b_to_a"],
                "share_of_origin": res["share_of_b_origin_to_a"],
                "status": res["status"],
            },
        ]
    )
    if fmt is Fmt.table:
        _modelled_banner(res["status"])
    emit_frame(
        summary if not detail else det,
        fmt,
        title=f"{KIND_LABELS_FR.get(kind, kind)} — solde pour {res['a']['name']}: "
        f"{_fmt_num(res['balance_for_a'])}",
    )


@app.command()
def indicators(
    level: Annotated[
        str, typer.Option(help="commune, epci, ept, departement, region, perimeter")
    ] = "epci",
    kind: Annotated[str, typer.Option("--kind", "-k")] = "commute",
    vintage: int | None = None,
    output: Annotated[Path | None, typer.Option("-o", "--output", help="Write CSV here.")] = None,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """All indicators for every territory of a level, in one pass.

    Example: maillage indicators --level epci --kind commute -o epci.csv
    """
    from maillage.analysis.indicators import indicator_table

    try:
        with _store(read_only=True) as store:
            df = indicator_table(store, level, kind, vintage=vintage).reset_index()
    except MaillageError as exc:
        _fail(exc)
    if output:
        df.to_csv(output, index=False)
        console.print(f"{len(df)} lignes écrites dans {output}")
    else:
        emit_frame(df, fmt)


class ImportSource(str, Enum):
    auto = "auto"
    flux_commute = "flux-commute"
    flux_residential = "flux-residential"
    flux_school = "flux-school"
    detail_commute = "detail-commute"
    detail_residential = "detail-residential"
    detail_school = "detail-school"
    sirene = "sirene"
    wages = "wages"


@app.command(name="import")
def import_(
    source: Annotated[ImportSource, typer.Argument(help="What the file is (auto: detect).")],
    paths: Annotated[
        list[str] | None,
        typer.Argument(
            help="Local file(s) (zip, csv, xlsx) or URL, or 'catalog:<source>:"
            "<vintage>'; sirene takes the three stock files; wages none or one."
        ),
    ] = None,
    vintage: int | None = None,
    totals: Annotated[
        list[str] | None,
        typer.Option("--totals", help="wages only: wage-mass totals to calibrate to (RAS)."),
    ] = None,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """Import an INSEE or Sirene file as published, all-or-nothing.

    Example: maillage import flux-commute base-flux-mobilite-domicile-lieu-travail-2021-csv.zip
    """
    from maillage import cli_firms
    from maillage.build import import_flows

    src = source.value
    paths = paths or []
    if totals and src != "wages":
        _fail(MaillageError("--totals only applies to `maillage import wages`"))
    if src == "sirene":
        cli_firms.sirene(
            paths=paths, measure="jobs", year=None, memory_limit="2GB", as_json=fmt is Fmt.json
        )
        return
    if src == "wages":
        if len(paths) > 1:
            _fail(MaillageError("maillage import wages takes at most one wage file"))
        cli_firms.wages(
            path=paths[0] if paths else None,
            wage_at="work",
            totals=totals,
            as_json=fmt is Fmt.json,
        )
        return
    if len(paths) != 1:
        _fail(MaillageError(f"maillage import {src} takes exactly one file or URL"))
    kind = None if src == "auto" else src.split("-", 1)[1]
    try:
        path = _fetch_if_url(paths[0], src, vintage)
        with _store() as store, _RichProgress() as prog:
            rep = import_flows(
                store, path, source=src.replace("-", "_"), kind=kind, vintage=vintage, progress=prog
            )
    except MaillageError as exc:
        _fail(exc)
    for w in rep.warnings:
        console.print(f"[yellow]Attention[/]: {w}", highlight=False)
    d = rep.as_dict()
    if fmt is Fmt.json:
        emit_json(d)
    else:
        d.pop("unknown_codes")
        d.pop("warnings")
        emit_frame(pd.DataFrame({"field": list(d), "value": [str(v) for v in d.values()]}), fmt)


def _fetch_if_url(path_or_url: str, source: str, vintage: int | None) -> Path:
    from maillage.sources import _download, catalog

    settings = Settings()
    if path_or_url.startswith("catalog:"):
        _, src, vint = (path_or_url.split(":") + ["", ""])[:3]
        entry = catalog.find(src, int(vint) if vint else vintage)
        if not entry.url:
            raise MaillageError(
                f"the catalogue knows the file of {src} {entry.vintage} but not a checked "
                f"download address; download it from {entry.page or 'insee.fr'} and pass the "
                "local file"
            )
        path_or_url = entry.url
    return _download.local_path(path_or_url, settings.cache_path)


@app.command()
def imports(fmt: FormatOpt = Fmt.table) -> None:
    """The import log: source, vintage, file, checksum, rows read, kept and flagged."""
    try:
        with _store(read_only=True) as store:
            emit_frame(store.imports(), fmt)
    except MaillageError as exc:
        _fail(exc)


@app.command()
def export(
    ref: Annotated[str, typer.Argument(help="Territory (LEVEL:CODE or name).")],
    to: Annotated[str, typer.Option(help="csv, xlsx or gpkg.")] = "csv",
    output: Annotated[Path, typer.Option("-o", "--output", help="Output folder.")] = Path("."),
) -> None:
    """Export a territory's indicators, partners and flows (CSV, XLSX or GeoPackage).

    Every bundle ends with a provenance file. Example: maillage export epci:242900314 --to xlsx
    -o exports/
    """
    from maillage.cli_reports import export_any

    if to.strip().lower() not in ("csv", "xlsx", "gpkg"):
        _fail(MaillageError(f"unknown export format '{to}': use csv, xlsx or gpkg"))
    try:
        with _store(read_only=True) as store:
            files = export_any(store, ref, to, output)
    except MaillageError as exc:
        _fail(exc)
    except OSError as exc:
        _fail(MaillageError(f"cannot write into {output}: {exc.strerror}"))
    for f in files:
        out.print(str(f))


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port.")] = None,
) -> None:
    """Serve the web application (builds the observatory first if needed).

    Example: maillage serve --port 8000
    """
    import uvicorn

    from maillage.build import build as do_build
    from maillage.store import Store

    settings = Settings()
    try:
        with Store.open(settings) as store:
            if not store.is_built():
                with _RichProgress() as prog:
                    do_build(store, progress=prog)
        _seed_register()
    except MaillageError as exc:
        _fail(exc)
    from maillage.delivery.api import create_app

    h, p = host or settings.host, port or settings.port
    console.print(f"maillage {__version__} — http://{h}:{p}/", highlight=False)
    uvicorn.run(create_app(settings), host=h, port=p, log_level="warning")


@app.command()
def coverage(
    ref: Annotated[str, typer.Argument(help="Territory (LEVEL:CODE or name).")],
    kind: KindOpt = None,
    level: Annotated[str | None, typer.Option(help="Level of the partners.")] = None,
    min_share: Annotated[float, typer.Option(help="Strong link: share of one side ≥ this.")] = 0.05,
    min_value: Annotated[float, typer.Option(help="Strong link: flow ≥ this.")] = 50.0,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """Strong links of a territory, the cooperations covering them, and the gaps.

    Example: maillage coverage "Brest Métropole" --kind commute
    """
    from maillage.cooperations.coverage import Thresholds
    from maillage.cooperations.db import open_registry, session_factory
    from maillage.cooperations.from_store import coverage_summary, territory_coverage

    th = Thresholds(min_share=min_share, min_value=min_value)
    try:
        engine = open_registry(Settings().registry_url)
        with _store(read_only=True) as store, session_factory(engine)() as session:
            territory, res = territory_coverage(
                store, session, ref, kinds=kind, level=level, thresholds=th
            )
    except MaillageError as exc:
        _fail(exc)
    if fmt is Fmt.json:
        emit_json(
            {
                "territory": territory.as_dict(),
                "summary": coverage_summary(res),
                "links": res.links,
                "uncovered": res.uncovered,
                "cooperations_without_link": res.unsupported,
            }
        )
        return
    links = res.links.copy()
    for col in ("cooperations", "suggested_themes", "missing_themes"):
        links[col] = links[col].map(lambda v: ", ".join(v))
    if fmt is Fmt.csv:
        emit_frame(links, fmt)
        return
    s = coverage_summary(res)
    out.print(
        f"[bold]{territory.name}[/]: {s['strong_links']} liens forts, {s['covered']} "
        f"couverts par une coopération, {s['uncovered']} sans coopération, "
        f"{s['cooperations_without_link']} coopération(s) sans lien mesuré."
    )
    emit_frame(
        links[
            ["b", "name_b", "kind", "value", "share_a", "share_b", "cooperations", "missing_themes"]
        ],
        fmt,
        title="Liens forts",
    )
    if len(res.unsupported):
        emit_frame(res.unsupported, fmt, title="Coopérations sans lien mesuré")


# -- perimeters -----------------------------------------------------------------------------


@perimeter_app.command("list")
def perimeter_list(fmt: FormatOpt = Fmt.table) -> None:
    """List the perimeters of the observatory."""
    try:
        with _store(read_only=True) as store:
            df = store.df("""SELECT t.code AS slug, t.name, t.type AS kind, t.population,
                             count(m.commune) AS communes FROM territory t
                             LEFT JOIN membership m ON m.level = 'perimeter' AND m.code = t.code
                             WHERE t.level = 'perimeter' GROUP BY ALL ORDER BY t.name""")
    except MaillageError as exc:
        _fail(exc)
    emit_frame(df, fmt)


@perimeter_app.command("show")
def perimeter_show(slug: str, fmt: FormatOpt = Fmt.table) -> None:
    """Show the member communes of a perimeter with their EPCI."""
    try:
        with _store(read_only=True) as store:
            df = store.df(
                """SELECT m.commune, c.name, c.population, e.code AS epci,
                             te.name AS epci_name FROM membership m
                             JOIN territory c ON c.level = 'commune' AND c.code = m.commune
                             LEFT JOIN membership e ON e.commune = m.commune AND e.level = 'epci'
                             LEFT JOIN territory te ON te.level = 'epci' AND te.code = e.code
                             WHERE m.level = 'perimeter' AND m.code = ? ORDER BY m.commune""",
                [slug],
            )
            if df.empty:
                raise MaillageError(f"no perimeter '{slug}'; see `maillage perimeter list`")
    except MaillageError as exc:
        _fail(exc)
    emit_frame(df, fmt)


@perimeter_app.command("add")
def perimeter_add(
    files: Annotated[list[Path], typer.Argument(help="YAML or CSV perimeter files.")],
) -> None:
    """Add your perimeters from YAML or CSV files (validated; all-or-nothing).

    Example: maillage perimeter add mes_perimetres.yaml
    """
    from maillage.build import reload_perimeters, user_perimeter_files

    settings = Settings()
    user_dir = settings.home / "perimeters"
    try:
        from maillage.reference.perimeters import load_perimeters, validate

        validate(load_perimeters(extra_paths=tuple(files)))  # before anything is copied
        user_dir.mkdir(parents=True, exist_ok=True)
        for f in files:
            (user_dir / f.name).write_bytes(f.read_bytes())
        with _store() as store:
            n = reload_perimeters(store, user_perimeter_files(settings.home))
            store.refresh_aggregates()
    except MaillageError as exc:
        _fail(exc)
    console.print(f"{n} périmètres dans l'observatoire")


def _mount_optional() -> None:
    """Mount the sub-commands of rooms that may be absent in a partial install."""
    try:
        from maillage.cli_cooperations import app as coop_app

        app.add_typer(coop_app, name="cooperations")
    except ImportError:  # pragma: no cover
        pass
    try:
        from maillage.cli_reports import app as reports_app

        app.registered_commands += reports_app.registered_commands  # sheet, batch
    except ImportError:  # pragma: no cover
        pass
    try:
        from maillage.cli_firms import app as firms_app

        app.add_typer(firms_app, name="firms")
    except ImportError:  # pragma: no cover
        pass
    try:
        from maillage.cli_models import functional_app, model_app

        app.add_typer(model_app, name="model")
        app.add_typer(functional_app, name="functional")
    except ImportError:  # pragma: no cover
        pass


_mount_optional()


def main() -> None:
    """Entry point of the ``maillage`` command."""
    app()


if __name__ == "__main__":  # pragma: no cover
    main()


__all__ = ["FLOW_KINDS", "app", "main"]
