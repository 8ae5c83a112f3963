"""Functional territories from commuting flows, and their fit with institutional perimeters.

Pure functions on flow tables ``(origin, destination, value)`` (commune codes as strings,
residence → workplace) and commune attributes:

- :func:`aav_couronnes` — INSEE's 2020 attraction rule (aires d'attraction des villes);
- :func:`leiden_communities` — Leiden modularity communities of the commuting graph;
- :func:`travel_to_work_areas` — self-containment areas (Coombes & Bond / ONS TTWA rule);
- :func:`compare_with_perimeters` — how a functional delineation cuts across EPCI.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from dataclasses import dataclass

import numpy as np
import pandas as pd

from maillage._errors import ModelError

__all__ = [
    "Communities",
    "PerimeterComparison",
    "aav_couronnes",
    "compare_with_perimeters",
    "leiden_communities",
    "travel_to_work_areas",
    "ttwa_validity",
]


def _flows(flows: pd.DataFrame, origin: str, destination: str, value: str) -> pd.DataFrame:
    """Checked flows ``o, d, v`` (codes as strings), summed per (o, d) and sorted."""
    f = _checked_flows(flows, origin, destination, value)
    return f.groupby(["o", "d"], as_index=False, sort=True)["v"].sum()


def _checked_flows(flows: pd.DataFrame, origin: str, destination: str, value: str) -> pd.DataFrame:
    """Flows renamed ``o, d, v`` with string codes and checked non-negative float values."""
    missing = [c for c in (origin, destination, value) if c not in flows.columns]
    if missing:
        raise ModelError(f"flows: missing columns {missing}; have {list(flows.columns)}.")
    f = flows[[origin, destination, value]].copy()
    f.columns = ["o", "d", "v"]
    f["o"] = f["o"].astype(str)
    f["d"] = f["d"].astype(str)
    v = pd.to_numeric(f["v"], errors="coerce")
    bad = v.isna() | (v < 0)
    if bad.any():
        first = bad.to_numpy().nonzero()[0][:5].tolist()
        raise ModelError(
            f"flows: {int(bad.sum())} values in column {value!r} are missing or negative "
            f"(rows {first})."
        )
    f["v"] = v.astype(float)
    return f


# --------------------------------------------------------------------------- AAV


def aav_couronnes(
    flows: pd.DataFrame,
    poles: pd.Series,
    *,
    threshold: float = 0.15,
    target: str = "pole",
    employed: pd.Series | None = None,
    origin: str = "origin",
    destination: str = "destination",
    value: str = "value",
) -> pd.Series:
    """Attach communes to poles by INSEE's attraction rule (AAV 2020 couronnes).

    A commune c outside every pole joins the couronne of pole P when at least ``threshold``
    (15 %) of its employed residents work in P::

        share(c, P) = Σ_{w ∈ target(P)} F_cw / R_c  ≥ 0.15

    with R_c the employed residents of c (``employed``, or the sum of c's outgoing flows,
    internal and abroad included when present in ``flows``).

    ``target="pole"`` (default) counts only the pole's communes: INSEE's published
    definition ("couronne constituée des communes dont au moins 15 % des actifs travaillent
    dans le pôle"). ``target="pole_and_couronne"`` counts the pole plus the couronne found so
    far and iterates until no commune joins (the recursive 2010 aires-urbaines logic).

    Multipolarisation: a commune reaching the threshold for several poles joins the pole
    towards which its share is largest (ties → the pole whose code sorts first). The 2010
    "communes multipolarisées" category (≥ 40 % towards several aires together) is not
    produced; the contiguity corrections of INSEE (aires "d'un seul tenant et sans
    enclave") need geometry and are not applied; pole merging (a pole sending ≥ 15 % of
    its workers to another pole) must be done on ``poles`` beforehand.

    Parameters
    ----------
    poles : Series commune → pole id, for the pole communes only.

    Returns
    -------
    pandas.Series
        ``aav``: commune → pole id for pole and couronne communes (index sorted). Communes
        outside every aire are absent.
    """
    if target not in ("pole", "pole_and_couronne"):
        raise ModelError(
            f"aav_couronnes: target must be 'pole' or 'pole_and_couronne', not {target!r}."
        )
    f = _flows(flows, origin, destination, value)
    members = {str(k): str(v) for k, v in poles.items()}
    if not members:
        raise ModelError("aav_couronnes: no pole given.")
    r = f.groupby("o")["v"].sum() if employed is None else employed.rename(str).astype(float)
    r.index = r.index.astype(str)
    poles_only = dict(members)
    couronne: dict[str, str] = {}
    for _ in range(100):
        current = {**couronne, **poles_only}
        towards = f.assign(area=f["d"].map(current)).dropna(subset=["area"])
        towards = towards[~towards["o"].isin(poles_only.keys()) & (towards["o"] != towards["d"])]
        g = towards.groupby(["o", "area"], as_index=False)["v"].sum()
        g["share"] = g["v"] / g["o"].map(r).to_numpy()
        g = g[g["share"] >= threshold]
        g = g.sort_values(["o", "share", "area"], ascending=[True, False, True])
        best = g.drop_duplicates("o").set_index("o")["area"].to_dict()
        if target == "pole" or best == couronne:
            couronne = best
            break
        couronne = best
    else:
        raise ModelError("aav_couronnes: the assignment did not stabilise in 100 iterations.")
    members = {**couronne, **poles_only}
    out = pd.Series(members, name="aav").sort_index()
    out.index.name = "commune"
    return out


# --------------------------------------------------------------------------- Leiden


@dataclass
class Communities:
    """Result of :func:`leiden_communities`: membership (commune → community) and modularity."""

    membership: pd.Series
    modularity: float


def _undirected_graph(f: pd.DataFrame):
    """igraph Graph of the symmetrised flows between distinct communes, with its codes.

    Built from numpy arrays: codes factorised once, pairs (min, max) aggregated by an integer
    key, edges handed to igraph as a list of int tuples and weights as a list.
    """
    import igraph as ig

    f = f[f["o"] != f["d"]]
    inv, codes = pd.factorize(  # hashing the string column; np.unique would sort 2.6M strings
        pd.concat([f["o"], f["d"]], ignore_index=True), sort=True
    )
    codes = np.asarray(codes, dtype=object)
    if codes.size == 0:
        raise ModelError("leiden_communities: no flow between distinct communes.")
    a, b = inv[: len(f)].astype(np.int64), inv[len(f) :].astype(np.int64)
    key = np.minimum(a, b) * codes.size + np.maximum(a, b)
    ukey, pos = np.unique(key, return_inverse=True)
    w = np.bincount(pos, weights=f["v"].to_numpy(), minlength=ukey.size)
    keep = w > 0
    ukey, w = ukey[keep], w[keep]
    # a list of int tuples converts twice as fast as an (m, 2) array in igraph 1.0
    edges = list(zip((ukey // codes.size).tolist(), (ukey % codes.size).tolist(), strict=True))
    return ig.Graph(n=codes.size, edges=edges), w.tolist(), codes


def leiden_communities(
    flows: pd.DataFrame,
    *,
    resolution: float = 1.0,
    seed: int = 0,
    n_iterations: int = -1,
    origin: str = "origin",
    destination: str = "destination",
    value: str = "value",
    backend: str = "igraph",
) -> Communities:
    """Leiden communities (modularity, RB configuration) of the symmetrised commuting graph.

    Edge weight w_AB = F_AB + F_BA for A ≠ B; self-loops (internal flows) are excluded. The
    objective is the modularity at resolution γ::

        Q = 1/(2W) Σ_AB (w_AB - γ k_A k_B / (2W)) δ(c_A, c_B)

    ``backend="igraph"`` (default) runs igraph's built-in C implementation
    (``Graph.community_leiden(objective_function="modularity")``), about 10× faster than the
    ``leidenalg`` package at commune scale with an equal or higher modularity;
    ``backend="leidenalg"`` runs ``leidenalg.RBConfigurationVertexPartition`` (the same
    objective). Both are deterministic for a given ``seed``: igraph draws from a private
    ``random.Random(seed)`` installed for the call only (igraph's global generator is restored
    afterwards). ``n_iterations=-1`` iterates until an iteration no longer improves Q.
    The modularity reported is igraph's weighted modularity at the same resolution. Communes
    with no exchange with another commune form singleton communities.
    """
    if backend not in ("igraph", "leidenalg"):
        raise ModelError(
            f"leiden_communities: backend must be 'igraph' or 'leidenalg', not {backend!r}."
        )
    f = _checked_flows(flows, origin, destination, value)  # pairs summed in the graph build
    g, weights, codes = _undirected_graph(f)
    if backend == "leidenalg":
        import leidenalg

        g.es["weight"] = weights
        membership = leidenalg.find_partition(
            g,
            leidenalg.RBConfigurationVertexPartition,
            weights="weight",
            resolution_parameter=resolution,
            n_iterations=n_iterations,
            seed=seed,
        ).membership
    else:
        membership = _igraph_leiden(g, weights, resolution, seed, n_iterations)
    q = g.modularity(membership, weights=weights, resolution=resolution)
    series = pd.Series(membership, index=pd.Index(codes, name="commune"), name="community")
    return Communities(series, float(q))


def _igraph_leiden(g, weights: list, resolution: float, seed: int, n_iterations: int) -> list:
    """igraph's C Leiden (modularity) with a private seeded generator."""
    import random

    import igraph as ig

    ig.set_random_number_generator(random.Random(seed))
    try:
        clustering = g.community_leiden(
            objective_function="modularity",
            weights=weights,
            resolution=resolution,
            n_iterations=n_iterations,
        )
    finally:
        ig.set_random_number_generator(random)
    return list(clustering.membership)


# --------------------------------------------------------------------------- TTWA


def ttwa_validity(
    self_containment,
    workers,
    *,
    min_sc: float = 0.667,
    target_sc: float = 0.75,
    min_size: float = 3500.0,
    target_size: float = 25000.0,
) -> np.ndarray:
    """Validity score of candidate areas; an area is valid when the score is ≥ 1.

    Coombes & Bond (2008) trade-off: an area of ``size`` workers needs a self-containment
    SC = min(supply-side, demand-side) of at least::

        required(size) = target_sc                                        size ≤ min_size
                       = target_sc - (target_sc - min_sc)·(size - min_size)/(target_size - min_size)
                       = min_sc                                           size ≥ target_size

    and at least ``min_size`` workers. Score = min(SC / required(size), size / min_size).
    """
    sc = np.asarray(self_containment, dtype=float)
    size = np.asarray(workers, dtype=float)
    t = np.clip((size - min_size) / (target_size - min_size), 0.0, 1.0)
    required = target_sc - (target_sc - min_sc) * t
    return np.minimum(sc / required, size / min_size)


def travel_to_work_areas(
    flows: pd.DataFrame,
    *,
    min_sc: float = 0.667,
    target_sc: float = 0.75,
    min_size: float = 3500.0,
    target_size: float = 25000.0,
    origin: str = "origin",
    destination: str = "destination",
    value: str = "value",
) -> pd.Series:
    """Travel-to-work areas by agglomeration until every area is self-contained.

    Algorithm (a simple agglomerative reading of the CURDS/ONS rule, documented here because
    it is not the full Coombes & Bond procedure, which also dissolves areas):

    1. every commune starts as its own area;
    2. take the area with the LOWEST validity score (:func:`ttwa_validity`, with
       SC = min(internal/residents, internal/jobs) and size = employed residents);
       if it is ≥ 1 every area is valid: stop;
    3. merge it into the area with which its tie is strongest,
       tie(A, B) = F_AB²/(R_A·E_B) + F_BA²/(R_B·E_A) (CURDS), ties broken by area code;
       an area with no tie to any other cannot grow and is left as it is;
    4. go to 2.

    Returns a Series commune → area code (the code of the commune with the most workers).
    """
    f = _flows(flows, origin, destination, value)
    out_flows: dict[str, dict[str, float]] = defaultdict(dict)
    in_flows: dict[str, dict[str, float]] = defaultdict(dict)
    internal: dict[str, float] = defaultdict(float)
    res: dict[str, float] = defaultdict(float)
    jobs: dict[str, float] = defaultdict(float)
    for o, d, v in f.itertuples(index=False):
        res[o] += v
        jobs[d] += v
        if o == d:
            internal[o] += v
        else:
            out_flows[o][d] = out_flows[o].get(d, 0.0) + v
            in_flows[d][o] = in_flows[d].get(o, 0.0) + v
    areas = sorted(set(res) | set(jobs))
    own = dict(res)
    members = {a: [a] for a in areas}

    def score(a: str) -> float:
        r, e, x = res[a], jobs[a], internal[a]
        sc = min(x / r if r > 0 else 0.0, x / e if e > 0 else 0.0)
        return float(
            ttwa_validity(
                sc,
                r,
                min_sc=min_sc,
                target_sc=target_sc,
                min_size=min_size,
                target_size=target_size,
            )
        )

    def tie(a: str, b: str) -> float:
        t = 0.0
        fab, fba = out_flows[a].get(b, 0.0), out_flows[b].get(a, 0.0)
        if fab and res[a] > 0 and jobs[b] > 0:
            t += fab * fab / (res[a] * jobs[b])
        if fba and res[b] > 0 and jobs[a] > 0:
            t += fba * fba / (res[b] * jobs[a])
        return t

    heap = [(score(a), a) for a in areas]
    heapq.heapify(heap)
    stuck: set[str] = set()
    while heap:
        s, a = heapq.heappop(heap)
        if a not in members or a in stuck or s != score(a):
            continue  # merged away, or stale entry
        if s >= 1.0:
            break
        partners = set(out_flows[a]) | set(in_flows[a])
        if not partners:
            stuck.add(a)
            continue
        b = max(sorted(partners), key=lambda p: tie(a, p))
        _merge(a, b, out_flows, in_flows, internal, res, jobs, members)
        heapq.heappush(heap, (score(b), b))
    labels = {}
    for coms in members.values():
        head = max(sorted(coms), key=lambda c: own.get(c, 0.0))
        for c in coms:
            labels[c] = head
    return pd.Series(labels, name="ttwa").rename_axis("commune").sort_index()


def _merge(a, b, out_flows, in_flows, internal, res, jobs, members) -> None:
    """Merge area a into area b, updating flows between areas."""
    internal[b] += internal.pop(a, 0.0) + out_flows[a].pop(b, 0.0) + out_flows[b].pop(a, 0.0)
    in_flows[b].pop(a, None)
    in_flows[a].pop(b, None)
    for c, v in out_flows.pop(a).items():
        out_flows[b][c] = out_flows[b].get(c, 0.0) + v
        in_flows[c].pop(a, None)
        in_flows[c][b] = in_flows[c].get(b, 0.0) + v
    for c, v in in_flows.pop(a).items():
        in_flows[b][c] = in_flows[b].get(c, 0.0) + v
        out_flows[c].pop(a, None)
        out_flows[c][b] = out_flows[c].get(b, 0.0) + v
    res[b] += res.pop(a, 0.0)
    jobs[b] += jobs.pop(a, 0.0)
    members[b].extend(members.pop(a))


# --------------------------------------------------------------------------- perimeters


@dataclass
class PerimeterComparison:
    """Result of :func:`compare_with_perimeters`.

    overlap : one row per (area, perimeter) with communes, population, workers and the
        shares of the area and of the perimeter they represent.
    areas : one row per functional area: main perimeter, shares (communes, population,
        workers) outside it, number of perimeters touched, and the suggested perimeter of
        whole EPCI with its population coverage.
    perimeters : one row per institutional perimeter: number of areas it is split between,
        share of its population in its main area, ``split`` flag.
    """

    overlap: pd.DataFrame
    areas: pd.DataFrame
    perimeters: pd.DataFrame


def compare_with_perimeters(
    functional: pd.Series,
    institutional: pd.Series,
    population: pd.Series,
    workers: pd.Series | None = None,
) -> PerimeterComparison:
    """Compare a functional delineation with institutional perimeters (e.g. EPCI).

    Parameters
    ----------
    functional : commune → functional area (AAV, Leiden community, TTWA…). Communes outside
        every area are simply absent.
    institutional : commune → perimeter (EPCI).
    population : commune → population; ``workers`` : commune → employed residents (optional,
        population is used when absent).

    The suggested perimeter of an area is the set of whole EPCI whose majority (> 50 %) of
    population (of workers when given) lies in the area.
    """
    fn = functional.astype(str).rename("area")
    inst = institutional.astype(str).rename("perimeter")
    missing = fn.index.difference(inst.index)
    if len(missing):
        raise ModelError(
            f"compare_with_perimeters: {len(missing)} communes of the functional areas have no "
            f"institutional perimeter (e.g. {list(missing[:5])})."
        )
    pop = population.astype(float).rename("population")
    wrk = (workers if workers is not None else population).astype(float).rename("workers")
    base = pd.concat([inst, pop, wrk], axis=1, join="outer")
    base = base[base["perimeter"].notna()]
    base[["population", "workers"]] = base[["population", "workers"]].fillna(0.0)
    base["area"] = fn.reindex(base.index)
    base["communes"] = 1

    inside = base[base["area"].notna()]
    overlap = inside.groupby(["area", "perimeter"])[["communes", "population", "workers"]].sum()
    area_tot = overlap.groupby(level="area").sum()
    per_tot = base.groupby("perimeter")[["communes", "population", "workers"]].sum()
    for col in ("communes", "population", "workers"):
        overlap[f"share_of_area_{col}"] = (
            overlap[col] / area_tot[col].reindex(overlap.index.get_level_values("area")).to_numpy()
        )
        denom = per_tot[col].reindex(overlap.index.get_level_values("perimeter")).to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            overlap[f"share_of_perimeter_{col}"] = np.where(denom > 0, overlap[col] / denom, 0.0)
    overlap = overlap.reset_index()

    key = "workers" if workers is not None else "population"
    main = overlap.sort_values(
        ["area", f"share_of_area_{key}", "perimeter"], ascending=[True, False, True]
    ).drop_duplicates("area")
    areas = main.set_index("area")[["perimeter"]].rename(columns={"perimeter": "main_perimeter"})
    for col in ("communes", "population", "workers"):
        areas[f"share_outside_main_{col}"] = 1.0 - main.set_index("area")[f"share_of_area_{col}"]
    areas["n_perimeters"] = overlap.groupby("area")["perimeter"].nunique()
    suggested = overlap[overlap[f"share_of_perimeter_{key}"] > 0.5]
    sugg = suggested.groupby("area")["perimeter"].apply(lambda s: sorted(s))
    areas["suggested_perimeters"] = sugg.reindex(areas.index).apply(
        lambda v: v if isinstance(v, list) else []
    )
    sugg_pop = areas["suggested_perimeters"].apply(lambda ps: per_tot.loc[ps, "population"].sum())
    covered = suggested.groupby("area")["population"].sum().reindex(areas.index).fillna(0.0)
    areas["suggested_population"] = sugg_pop
    areas["suggested_covers_area_population"] = covered / area_tot["population"]
    areas["suggested_outside_population"] = sugg_pop - covered

    per = overlap.groupby("perimeter").agg(
        n_areas=("area", "nunique"), share_in_main_area=(f"share_of_perimeter_{key}", "max")
    )
    per = per.reindex(per_tot.index).fillna({"n_areas": 0, "share_in_main_area": 0.0})
    per["n_areas"] = per["n_areas"].astype(int)
    per["split"] = per["n_areas"] > 1
    return PerimeterComparison(overlap, areas, per)
