"""``maillage model …`` and ``maillage functional …``: models and functional territories.

Thin commands over :mod:`maillage.analysis.modelling`; output as table, JSON or CSV.
"""

from __future__ import annotations

from typing import Annotated

import typer

from maillage._errors import MaillageError
from maillage.cli import Fmt, FormatOpt, _fail, _store, console, emit_frame, emit_json, out
from maillage.settings import Settings

model_app = typer.Typer(
    help="Spatial-interaction models: fit, score, surprising ties.", no_args_is_help=True
)
functional_app = typer.Typer(
    help="Functional territories set against institutional perimeters.", no_args_is_help=True
)

ScopeOpt = Annotated[
    str | None, typer.Option(help="Restrict to a territory (dep:29, reg:53, per:slug…).")
]
KindOpt = Annotated[str, typer.Option("--kind", "-k", help="Flow kind.")]


def _warn_if_modelled(status: str) -> None:
    if status == "modelled":
        console.print(
            "[bold yellow]⚠[/] the flows held are MODELLED (no INSEE file imported): "
            "fitting a model to them says nothing about reality. Import MOBPRO "
            "first (`maillage import`).",
            highlight=False,
        )


@model_app.command("fit")
def fit(
    level: Annotated[str, typer.Option(help="commune or a partitioning level.")] = "epci",
    scope: ScopeOpt = None,
    kind: KindOpt = "commute",
    law: Annotated[
        list[str] | None,
        typer.Option(
            help="Laws (NGravExp, NGravPow, GravExp, GravPow, Schneider, Rad, RadExt, Rand)."
        ),
    ] = None,
    model: Annotated[list[str] | None, typer.Option(help="Models (UM, PCM, ACM, DCM).")] = None,
    by_region: Annotated[bool, typer.Option("--by-region", help="One fit per région.")] = False,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """Calibrate every law × model by CPC and report CPC, CPL, CPC_d, NRMSE.

    Example: maillage model fit --level commune --scope dep:29
    """
    from maillage.analysis.modelling import (
        DEFAULT_LAWS,
        DEFAULT_MODELS,
        fit_by_region,
        fit_report,
    )

    try:
        with _store(read_only=True) as store, console.status("Calibration des modèles…"):
            if by_region:
                df = fit_by_region(
                    store,
                    kind=kind,
                    level=level,
                    laws=tuple(law or DEFAULT_LAWS),
                    models=tuple(model or DEFAULT_MODELS),
                )
            else:
                df = fit_report(
                    store,
                    kind=kind,
                    level=level,
                    scope=scope,
                    laws=tuple(law or DEFAULT_LAWS),
                    models=tuple(model or DEFAULT_MODELS),
                )
    except MaillageError as exc:
        _fail(exc)
    if fmt is Fmt.table and len(df):
        _warn_if_modelled(df["observed_status"].iloc[0])
    emit_frame(df, fmt, title="Ajustement des modèles (CPC décroissant)")


@model_app.command("ties")
def ties_cmd(
    ref: Annotated[str | None, typer.Argument(help="Only the ties of this territory.")] = None,
    level: Annotated[str, typer.Option(help="Level of the pairs.")] = "epci",
    scope: ScopeOpt = None,
    kind: KindOpt = "commute",
    top: int = 30,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """Ties stronger than size and distance explain (observed / expected, Pearson residual).

    Example: maillage model ties epci:242900314 --scope reg:53
    """
    from maillage.analysis.modelling import ties

    try:
        with _store(read_only=True) as store, console.status("Modèle doublement contraint…"):
            df = ties(store, kind=kind, level=level, scope=scope, ref=ref, top=top)
    except MaillageError as exc:
        _fail(exc)
    if fmt is Fmt.table:
        if len(df):
            _warn_if_modelled(df["observed_status"].iloc[0])
        console.print(
            f"β calibré = {df.attrs.get('beta', float('nan')):.4f} km⁻¹, CPC = "
            f"{df.attrs.get('cpc', float('nan')):.3f}; « expected » est MODÉLISÉ.",
            highlight=False,
        )
    emit_frame(df, fmt, title="Liens plus forts que la taille et la distance ne l'expliquent")


def _delineate_and_report(
    method: str, scope: str | None, kind: str, save: str | None, fmt: Fmt, **params: object
) -> None:
    from maillage.analysis.modelling import as_perimeter_file, compare, delineate

    try:
        with _store(read_only=True) as store, console.status("Délimitation…"):
            areas = delineate(store, method, kind=kind, scope=scope, **params)
            cmp = compare(store, areas)
    except MaillageError as exc:
        _fail(exc)
    if save:
        folder = Settings().home / "perimeters"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"{save}.yaml"
        n = as_perimeter_file(areas, path, prefix=save, title=f"{method.upper()} {save}")
        console.print(
            f"{n} territoires fonctionnels écrits dans {path}; chargez-les avec "
            f"`maillage perimeter add {path}`",
            highlight=False,
        )
    areas_t = cmp.areas.rename_axis(cmp.areas.index.name or "area").reset_index()
    perims_t = cmp.perimeters.rename_axis(cmp.perimeters.index.name or "epci").reset_index()
    if fmt is Fmt.json:
        emit_json(
            {
                "areas": areas_t,
                "perimeters": perims_t,
                "membership": areas.rename_axis("commune").reset_index(),
            }
        )
        return
    emit_frame(areas_t, fmt, title=f"Territoires fonctionnels ({method}) face aux EPCI")
    if fmt is Fmt.table and "split" in perims_t:
        split = perims_t[perims_t["split"].astype(bool)]
        out.print(f"{len(split)} EPCI partagés entre plusieurs territoires fonctionnels.")


@functional_app.command("aav")
def aav(
    pole: Annotated[list[str], typer.Option(help="A pole (repeatable): com:…, epci:…")],
    scope: ScopeOpt = None,
    kind: KindOpt = "commute",
    threshold: float = 0.15,
    save: Annotated[str | None, typer.Option(help="Save as perimeters under this name.")] = None,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """Attraction areas by INSEE's rule (≥ 15 % of employed residents working in the pole).

    Example: maillage functional aav --pole com:29019 --scope dep:29
    """
    _delineate_and_report("aav", scope, kind, save, fmt, poles=pole, threshold=threshold)


@functional_app.command("leiden")
def leiden(
    scope: ScopeOpt = None,
    kind: KindOpt = "commute",
    resolution: float = 1.0,
    seed: int = 0,
    save: Annotated[str | None, typer.Option(help="Save as perimeters under this name.")] = None,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """Communities of the commuting network (Leiden, seeded).

    Example: maillage functional leiden --scope reg:53 --resolution 1.0
    """
    _delineate_and_report("leiden", scope, kind, save, fmt, resolution=resolution, seed=seed)


@functional_app.command("ttwa")
def ttwa(
    scope: ScopeOpt = None,
    kind: KindOpt = "commute",
    save: Annotated[str | None, typer.Option(help="Save as perimeters under this name.")] = None,
    fmt: FormatOpt = Fmt.table,
) -> None:
    """Travel-to-work areas by self-containment (≥ 75 % with ≥ 3,500 workers…).

    Example: maillage functional ttwa --scope dep:29
    """
    _delineate_and_report("ttwa", scope, kind, save, fmt)


__all__ = ["functional_app", "model_app"]
