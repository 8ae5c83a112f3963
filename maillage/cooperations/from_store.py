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
from maillage.cooperations.coverage import CoverageResult, Thresholds, coverage

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


def territory_coverage(
    store: Store,
    session: Session,
    ref: str,
    *,
    kinds: list[str] | None = None,
    level: str | None = None,
    thresholds: Thresholds | None = None,
) -> tuple[Territory, CoverageResult]:
    """Coverage of a territory's strong links by the cooperations of the register."""
    from maillage.cooperations import crud
    from maillage.cooperations.network import bodies_of

    territory = resolve(store, ref)
    links = links_of(store, territory, kinds=kinds, level=level)
    terr = store.df("SELECT level, code, name FROM territory")
    mem = store.df("SELECT commune, level, code FROM membership")
    register = crud.list_cooperations(session)
    res = coverage(links, terr, register, mem, thresholds)
    # cooperations without a measured link: only those this territory takes part in
    mine = set(bodies_of(territory.ref, register, mem, include_inside=True)["slug"])
    res.unsupported = res.unsupported[res.unsupported["slug"].isin(mine)].reset_index(drop=True)
    return territory, res


def coverage_summary(res: CoverageResult) -> dict[str, Any]:
    """Counts for a headline: strong links, covered, uncovered, unsupported cooperations."""
    return {
        "strong_links": len(res.links),
        "covered": int((res.links["n_cooperations"] > 0).sum()) if len(res.links) else 0,
        "uncovered": len(res.uncovered),
        "cooperations_without_link": len(res.unsupported),
    }
