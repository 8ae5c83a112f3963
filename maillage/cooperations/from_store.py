"""Links measured in the observatory, in the shape :func:`coverage.coverage` expects.

A link between P and a partner Q for one flow kind carries ``value`` = F_PQ + F_QP (both
ways), ``share_a`` = max(F_PQ / R_P, F_QP / E_P) — the larger dependency of P on Q, as a
sender or as a receiver — and ``share_b`` = max(F_QP / R_Q, F_PQ / E_Q), the same for Q.
(For commuting, R is resident workers and E jobs; see ``maillage.analysis.indicators``.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from maillage._schema import PREFIX_OF_LEVEL
from maillage.analysis.flows import default_partner_level, partners
from maillage.analysis.indicators import _resolve_current, margins
from maillage.analysis.territories import Territory, resolve
from maillage.cooperations._reference import TerritoryIndex
from maillage.cooperations.coverage import CoverageResult, Thresholds, coverage
from maillage.cooperations.records import Cooperation

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from maillage.store import Store


def _max_share(a: pd.Series, b: pd.Series) -> pd.Series:
    return pd.concat([a, b], axis=1).max(axis=1, skipna=True).fillna(0.0)


def links_of(
    store: Store,
    ref: str | Territory,
    *,
    kinds: list[str] | None = None,
    level: str | None = None,
) -> pd.DataFrame:
    """Links ``a, b, kind, value, share_a, share_b`` between a territory and its partners."""
    territory = ref if isinstance(ref, Territory) else resolve(store, ref)
    level = level or default_partner_level(territory)
    frames = []
    for kind in kinds or store.kinds():
        p = partners(store, territory, kind, level=level, top=None)
        p = p[~p["partner_code"].str.startswith("!")]
        if p.empty:
            continue
        frames.append(
            pd.DataFrame(
                {
                    "a": territory.ref,
                    "b": [f"{PREFIX_OF_LEVEL[level]}:{c}" for c in p["partner_code"]],
                    "kind": kind,
                    "value": p["total"].to_numpy(float),
                    "share_a": _max_share(p["out_share_p"], p["in_share_p"]).to_numpy(float),
                    "share_b": _max_share(p["in_share_q"], p["out_share_q"]).to_numpy(float),
                }
            )
        )
    cols = ["a", "b", "kind", "value", "share_a", "share_b"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def links_all(store: Store, *, level: str = "epci", kinds: list[str] | None = None) -> pd.DataFrame:
    """Links between every pair of territories of a partitioning level, in one pass."""
    frames = []
    prefix = PREFIX_OF_LEVEL[level]
    for kind in kinds or store.kinds():
        vint, status = _resolve_current(store, kind, None)
        f = store.df(
            """SELECT origin, destination, value FROM flow_agg
               WHERE kind = ? AND vintage = ? AND status = ? AND level = ?
                 AND origin <> destination AND NOT starts_with(origin, '!')
                 AND NOT starts_with(destination, '!')""",
            [kind, vint, status, level],
        )
        if f.empty:
            continue
        m = margins(store, level, kind, vintage=vint)
        r = m["origin_total"]
        e = m["destination_total"]
        # unordered pairs: a < b, with both directions
        a = np.where(f.origin < f.destination, f.origin, f.destination)
        b = np.where(f.origin < f.destination, f.destination, f.origin)
        f = f.assign(
            a=a,
            b=b,
            ab=np.where(f.origin == a, f.value, 0.0),
            ba=np.where(f.origin == b, f.value, 0.0),
        )
        g = f.groupby(["a", "b"], as_index=False)[["ab", "ba"]].sum()

        def ratio(x: pd.Series, tot: pd.Series, codes: pd.Series) -> pd.Series:
            den = codes.map(tot).astype(float)
            return (x / den.where(den > 0)).fillna(0.0)

        share_a = np.maximum(ratio(g.ab, r, g.a), ratio(g.ba, e, g.a))
        share_b = np.maximum(ratio(g.ba, r, g.b), ratio(g.ab, e, g.b))
        frames.append(
            pd.DataFrame(
                {
                    "a": prefix + ":" + g["a"],
                    "b": prefix + ":" + g["b"],
                    "kind": kind,
                    "value": g.ab + g.ba,
                    "share_a": share_a,
                    "share_b": share_b,
                }
            )
        )
    cols = ["a", "b", "kind", "value", "share_a", "share_b"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


def territory_index(store: Store) -> TerritoryIndex:
    """Communes of every territory and perimeter of the store, built once per store."""

    def build() -> TerritoryIndex:
        terr = store.df("SELECT level, code, name FROM territory")
        mem = store.df("SELECT commune, level, code FROM membership")
        return TerritoryIndex(terr, mem)

    return store.memo(("territory_index",), build)


def register_fingerprint(session: Session) -> tuple[Any, ...]:
    """Changes when the register changes (every write is logged in ``change``)."""
    from sqlalchemy import text

    return tuple(session.execute(text("SELECT count(*), max(id) FROM change")).one())


_PARTY_INDEX: dict[str, Any] = {"register": None, "by_commune": {}}


def _overlapping(register: list[Cooperation], index: TerritoryIndex, ref: str) -> list[Cooperation]:
    """Cooperations having a party that shares a commune with ``ref`` (a superset of those
    the territory takes part in), through an inverted index kept for the last register."""
    if _PARTY_INDEX["register"] is not register:
        by_commune: dict[str, set[int]] = {}
        for pos, coop in enumerate(register):
            for party in coop.parties:
                if not party.ref:
                    continue
                for commune in index.communes(party.ref):
                    by_commune.setdefault(commune, set()).add(pos)
        _PARTY_INDEX.update(register=register, by_commune=by_commune)
    hits: set[int] = set()
    for commune in index.communes(ref):
        hits |= _PARTY_INDEX["by_commune"].get(commune, set())
    return [register[i] for i in sorted(hits)]


def territory_coverage(
    store: Store,
    session: Session,
    ref: str,
    *,
    kinds: list[str] | None = None,
    level: str | None = None,
    thresholds: Thresholds | None = None,
    register: list[Cooperation] | None = None,
) -> tuple[Territory, CoverageResult]:
    """Coverage of a territory's strong links by the cooperations of the register.

    Only the cooperations the territory takes part in (directly, through its EPCI or
    perimeters, or through territories inside it) can cover its links or lack one, so the
    register is narrowed to them first. ``register`` may be passed to reuse records
    already read (see :func:`register_fingerprint`).
    """
    from maillage.cooperations import crud
    from maillage.cooperations.network import bodies_of

    territory = resolve(store, ref)
    index = territory_index(store)
    links = links_of(store, territory, kinds=kinds, level=level)
    register = register if register is not None else crud.list_cooperations(session)
    candidates = _overlapping(register, index, territory.ref)
    mine = set(bodies_of(territory.ref, candidates, index, include_inside=True)["slug"])
    relevant = [c for c in candidates if c.slug in mine]
    res = coverage(links, index, relevant, index, thresholds)
    return territory, res


def coverage_summary(res: CoverageResult) -> dict[str, Any]:
    """Counts for a headline: strong links, covered, uncovered, unsupported cooperations."""
    return {
        "strong_links": len(res.links),
        "covered": int((res.links["n_cooperations"] > 0).sum()) if len(res.links) else 0,
        "uncovered": len(res.uncovered),
        "cooperations_without_link": len(res.unsupported),
    }
