"""Models and functional territories on the observatory's flows (glue to ``maillage.models``).

``maillage.models`` holds pure computations on arrays; this module takes the flows of the
store at a level (communes, EPCI…), optionally restricted to a scope (a département, a
région, a perimeter), and returns named tables:

- :func:`fit_report` — every law × model calibrated by CPC, with CPC, CPL, CPC by 2-km
  distance class and NRMSE overall and on flows ≥ 100 (Lenormand et al. 2016, TDLM);
- :func:`ties` — observed / expected and Pearson residuals against the calibrated
  doubly-constrained gravity model: ties stronger or weaker than size and distance explain;
- :func:`delineate` — functional territories (INSEE attraction rule, Leiden communities,
  travel-to-work areas) and :func:`compare` with EPCI; :func:`as_perimeter_file` turns them
  into perimeters like any other.

Expected flows are modelled figures and are labelled so (``status = modelled``).
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from maillage._errors import ModelError
from maillage.analysis.indicators import PARTITION_LEVELS, _resolve_current
from maillage.analysis.territories import Territory, resolve

if TYPE_CHECKING:
    from pathlib import Path

    from maillage.store import Store

DEFAULT_LAWS = ("NGravExp", "NGravPow", "GravExp", "GravPow", "Schneider", "Rad", "RadExt", "Rand")
DEFAULT_MODELS = ("UM", "PCM", "ACM", "DCM")
MAX_DENSE = 3000


def _scope_units(store: Store, level: str, scope: Territory | None) -> pd.DataFrame:
    """Units of ``level`` inside ``scope`` (all when None), with point, area and population."""
    if level == "commune":
        base = (
            "SELECT t.code, t.name, t.lon, t.lat, t.population FROM territory t "
            "WHERE t.level = 'commune'"
        )
    else:
        base = (
            f"SELECT t.code, t.name, t.lon, t.lat, t.population FROM territory t "
            f"WHERE t.level = '{level}'"
        )
    units = store.df(base)
    if scope is not None:
        inside = store.df(
            """SELECT DISTINCT m2.code FROM membership m1
               JOIN membership m2 ON m2.commune = m1.commune AND m2.level = ?
               WHERE m1.level = ? AND m1.code = ?""",
            [level, scope.level, scope.code],
        )["code"]
        units = units[units["code"].isin(set(inside))]
    from maillage import reference

    area = reference.communes().set_index("code")["area_km2"]
    if level == "commune":
        units["area_km2"] = units["code"].map(area)
    else:
        mem = store.df("SELECT commune, code FROM membership WHERE level = ?", [level])
        units["area_km2"] = units["code"].map(
            mem.assign(a=mem.commune.map(area)).groupby("code")["a"].sum()
        )
    return units.reset_index(drop=True)


def observed_pairs(
    store: Store,
    kind: str,
    level: str,
    *,
    scope: Territory | None = None,
    vintage: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Flows between units of ``level`` inside ``scope``: (pairs, units, status).

    ``pairs`` has origin, destination (codes), i, j (positions in ``units``) and value;
    flows abroad or leaving the scope are left out, internal flows kept.
    """
    if level not in ("commune", *PARTITION_LEVELS):
        raise ModelError(f"models run on communes or {', '.join(PARTITION_LEVELS)}, not {level}")
    vint, status = _resolve_current(store, kind, vintage)
    units = _scope_units(store, level, scope)
    table = "flow" if level == "commune" else "flow_agg"
    lvl = "" if level == "commune" else f"AND level = '{level}'"
    pairs = store.df(
        f"""SELECT origin, destination, value FROM {table}
            WHERE kind = ? AND vintage = ? AND status = ? {lvl} AND value > 0""",
        [kind, vint, status],
    )
    pos = pd.Series(np.arange(len(units)), index=units["code"])
    pairs = pairs[pairs["origin"].isin(pos.index) & pairs["destination"].isin(pos.index)]
    pairs = pairs.assign(
        i=pairs["origin"].map(pos).to_numpy(int), j=pairs["destination"].map(pos).to_numpy(int)
    )
    return pairs.reset_index(drop=True), units, status


def _xy(units: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    from maillage.models.laws import project_km

    return project_km(units["lon"].to_numpy(float), units["lat"].to_numpy(float))


def fit_report(
    store: Store,
    *,
    kind: str = "commute",
    level: str = "epci",
    scope: str | Territory | None = None,
    laws: tuple[str, ...] = DEFAULT_LAWS,
    models: tuple[str, ...] = DEFAULT_MODELS,
    seed: int = 0,
) -> pd.DataFrame:
    """Calibrate every law × model on the observed flows (internal flows excluded, as TDLM).

    Masses are the observed margins: residents O_i at the origin, jobs D_j at destination.
    Returns one row per law × model with the calibrated parameter and CPC, CPL (on one
    seeded multinomial draw), CPC_d (2-km classes), NRMSE, and CPC on flows ≥ 100.
    """
    from maillage.models import (
        calibrate_law,
        cpc,
        cpc_distance,
        cpl,
        distance_matrix,
        law_weights,
        nrmse,
        run_model,
        sample_flows,
    )
    from maillage.models.laws import ModelWarning

    sc = scope if isinstance(scope, Territory) or scope is None else resolve(store, scope)
    pairs, units, status = observed_pairs(store, kind, level, scope=sc)
    n = len(units)
    if n < 3:
        raise ModelError(f"fit_report: {n} units in the scope; at least 3 are needed")
    if n > MAX_DENSE:
        raise ModelError(
            f"fit_report: {n} units is too many for dense calibration (max {MAX_DENSE}); "
            "restrict with a scope (e.g. --scope dep:29) or use a coarser level"
        )
    t = np.zeros((n, n))
    np.add.at(t, (pairs["i"].to_numpy(), pairs["j"].to_numpy()), pairs["value"].to_numpy())
    np.fill_diagonal(t, 0.0)
    o, d = t.sum(axis=1), t.sum(axis=0)
    x, y = _xy(units)
    dist = distance_matrix(x, y)
    big = t >= 100
    rows = []
    for law in laws:
        for model in models:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ModelWarning)
                cal = calibrate_law(law, model, t, o, d, dist)
                param = cal.param if np.isfinite(cal.param) else 1.0
                w = law_weights(law, o, d, dist, param=param)
                est = np.asarray(run_model(w, model, o, d))
                drawn = sample_flows(
                    est, by="origin" if model != "ACM" else "destination", seed=seed
                )
            rows.append(
                {
                    "law": law,
                    "model": model,
                    "param": cal.param,
                    "n_units": n,
                    "cpc": cpc(t, est),
                    "cpl": cpl(t, drawn),
                    "cpc_distance": cpc_distance(t, est, dist),
                    "nrmse": nrmse(t, est),
                    "cpc_ge100": cpc(np.where(big, t, 0), np.where(big, est, 0)),
                    "observed_status": status,
                }
            )
    return pd.DataFrame(rows).sort_values("cpc", ascending=False).reset_index(drop=True)


def fit_by_region(
    store: Store,
    *,
    kind: str = "commute",
    level: str = "epci",
    laws: tuple[str, ...] = DEFAULT_LAWS,
    models: tuple[str, ...] = DEFAULT_MODELS,
) -> pd.DataFrame:
    """:func:`fit_report` run inside every région (the flows between régions left out).

    Régions with fewer than three units of ``level`` (e.g. Mayotte at EPCI level) are skipped.
    """
    regions = store.df("SELECT code, name FROM territory WHERE level = 'region' ORDER BY code")
    frames = []
    for reg in regions.itertuples(index=False):
        scope = resolve(store, f"reg:{reg.code}")
        try:
            df = fit_report(store, kind=kind, level=level, scope=scope, laws=laws, models=models)
        except ModelError:
            continue
        frames.append(df.assign(region=reg.code, region_name=reg.name))
    if not frames:
        raise ModelError("fit_by_region: no région has enough units to fit a model")
    out = pd.concat(frames, ignore_index=True)
    return out[
        ["region", "region_name", *[c for c in out.columns if c not in ("region", "region_name")]]
    ]


def ties(
    store: Store,
    *,
    kind: str = "commute",
    level: str = "epci",
    scope: str | Territory | None = None,
    ref: str | Territory | None = None,
    top: int | None = 50,
) -> pd.DataFrame:
    """Ties stronger (or weaker) than size and distance explain.

    Expected flows come from the doubly-constrained exponential gravity model calibrated by
    CPC on the observed pairs of the scope (internal flows excluded); for each observed pair:
    observed, expected (``modelled``), ratio, log-ratio and Pearson residual
    (T − T̂)/√T̂. With ``ref``, only pairs with that territory at one end. Sorted by residual.
    """
    from maillage.models.ties import surprising_ties

    sc = scope if isinstance(scope, Territory) or scope is None else resolve(store, scope)
    pairs, units, status = observed_pairs(store, kind, level, scope=sc)
    if len(units) < 3 or pairs.empty:
        raise ModelError("ties: not enough flows in the scope to fit a model")
    x, y = _xy(units)
    res = surprising_ties(
        pairs["i"].to_numpy(), pairs["j"].to_numpy(), pairs["value"].to_numpy(float), x, y
    )
    codes, names = units["code"].to_numpy(), units["name"].to_numpy()
    out = res.copy()
    oi = out.pop("origin").to_numpy(int)
    dj = out.pop("destination").to_numpy(int)
    out.insert(0, "origin", codes[oi])
    out.insert(1, "origin_name", names[oi])
    out.insert(2, "destination", codes[dj])
    out.insert(3, "destination_name", names[dj])
    out["observed_status"] = status
    out["expected_status"] = "modelled"
    out.attrs = dict(res.attrs)
    if ref is not None:
        t = ref if isinstance(ref, Territory) else resolve(store, ref)
        if t.level != level:
            raise ModelError(f"ties: {t.ref} is not a {level}; use --level {t.level}")
        out = out[(out["origin"] == t.code) | (out["destination"] == t.code)]
    out = out.sort_values("pearson", ascending=False, na_position="last")
    return (out.head(top) if top else out).reset_index(drop=True)


def delineate(
    store: Store,
    method: str,
    *,
    kind: str = "commute",
    scope: str | Territory | None = None,
    **params: Any,
) -> pd.Series:
    """Functional territories of the communes of ``scope``: commune → area code.

    ``method`` is ``aav`` (INSEE attraction rule around ``poles``: a list of territory refs,
    each pole made of its communes), ``leiden`` (communities of the commuting network) or
    ``ttwa`` (travel-to-work areas by self-containment).
    """
    from maillage.models import aav_couronnes, leiden_communities, travel_to_work_areas

    sc = scope if isinstance(scope, Territory) or scope is None else resolve(store, scope)
    pairs, _units, _ = observed_pairs(store, kind, "commune", scope=sc)
    flows = pairs[["origin", "destination", "value"]]
    if method == "leiden":
        res = leiden_communities(flows, **params)
        return res.membership.astype(str).rename("area")
    if method == "ttwa":
        return travel_to_work_areas(flows, **params).astype(str).rename("area")
    if method == "aav":
        poles_refs = params.pop("poles", None)
        if not poles_refs:
            raise ModelError("delineate aav: give the poles (e.g. --pole com:29019)")
        poles = {}
        for r in poles_refs:
            t = resolve(store, r)
            for c in store.df(
                "SELECT commune FROM membership WHERE level = ? AND code = ?", [t.level, t.code]
            )["commune"]:
                poles[c] = t.code
        res = aav_couronnes(flows, pd.Series(poles), **params)
        return res.astype(str).rename("area")
    raise ModelError(f"unknown delineation method '{method}'; use aav, leiden or ttwa")


def compare(store: Store, areas: pd.Series) -> Any:
    """Set functional areas against EPCI (see ``models.compare_with_perimeters``)."""
    from maillage.models import compare_with_perimeters

    mem = store.df("SELECT commune, code FROM membership WHERE level = 'epci'")
    epci = mem.set_index("commune")["code"]
    pop = store.df("SELECT code, population FROM territory WHERE level = 'commune'")
    pop = pop.set_index("code")["population"].fillna(0.0)
    areas = areas[areas.index.isin(epci.index)]
    return compare_with_perimeters(areas, epci, pop)


def as_perimeter_file(
    areas: pd.Series, path: Path, *, prefix: str, title: str, min_communes: int = 2
) -> int:
    """Write functional areas as a perimeter YAML file (commune members). Returns the count."""
    import yaml

    docs = []
    for area, communes in areas.groupby(areas).groups.items():
        members = sorted(str(c) for c in communes)
        if len(members) < min_communes:
            continue
        docs.append(
            {
                "slug": f"{prefix}-{area}".lower(),
                "name": f"{title} {area}",
                "kind": "functional",
                "members": [f"com:{c}" for c in members],
            }
        )
    path.write_text(
        yaml.safe_dump({"perimeters": docs}, allow_unicode=True, sort_keys=False), "utf-8"
    )
    return len(docs)
