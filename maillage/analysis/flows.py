"""Flows between territories: partners of a territory, the pair view, lines for maps.

Everything is computed from commune-to-commune flows and aggregated through ``membership``,
so any territory or perimeter can be set against partners of any level.

For a territory P and a partner Q (flow kind commute: residence → work):

- ``out_value`` = F_PQ; ``out_share_p`` = F_PQ / R_P is the dependency of P on Q (share of P's
  residents going to Q); ``out_share_q`` = F_PQ / E_Q, the share of Q's jobs held by P's residents;
- ``in_value`` = F_QP; ``in_share_q`` = F_QP / R_Q is the dependency of Q on P (share of Q's
  residents going to P); ``in_share_p`` = F_QP / E_P;
- ``total`` = F_PQ + F_QP and ``balance`` = F_QP − F_PQ (positive when P receives more).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd

from maillage._errors import ValidationError
from maillage.analysis.indicators import (
    PARTITION_LEVELS,
    _resolve_current,
    derive,
    margins,
    reliability,
    source_meta,
)
from maillage.analysis.territories import Territory, resolve

if TYPE_CHECKING:
    from maillage.store import Store

PSEUDO_NAMES = {"!abroad": "Étranger", "!unknown": "Code inconnu", "!none": "Hors niveau"}
DIRECTIONS = ("out", "in", "both")


def default_partner_level(territory: Territory) -> str:
    """Partners are of the territory's own level; a perimeter's partners are EPCI."""
    return "epci" if territory.level == "perimeter" else territory.level


def _members_cte(territory: Territory) -> tuple[str, list[Any]]:
    return (
        "p AS (SELECT commune FROM membership WHERE level = ? AND code = ?)",
        [territory.level, territory.code],
    )


def _raw_partner_flows(
    store: Store, territory: Territory, kind: str, level: str, vintage: int, status: str
) -> pd.DataFrame:
    """F_PQ and F_QP for every partner Q of ``level`` (Q ≠ P), from commune flows."""
    if territory.level == level and level in PARTITION_LEVELS:
        return store.df(
            """
            SELECT partner, sum(out_value) AS out_value, sum(in_value) AS in_value FROM (
              SELECT destination AS partner, value AS out_value, 0.0 AS in_value FROM flow_agg
              WHERE kind = ? AND vintage = ? AND status = ? AND level = ? AND origin = ?
                AND destination <> origin
              UNION ALL
              SELECT origin, 0.0, value FROM flow_agg
              WHERE kind = ? AND vintage = ? AND status = ? AND level = ? AND destination = ?
                AND destination <> origin)
            GROUP BY partner
            """,
            [kind, vintage, status, level, territory.code] * 2,
        )
    cte, p_params = _members_cte(territory)
    partner_of = "SELECT commune, code FROM membership WHERE level = ?"
    return store.df(
        f"""
        WITH {cte},
        f AS (SELECT origin, destination, value, flag FROM flow
              WHERE kind = ? AND vintage = ? AND status = ?),
        q AS ({partner_of}),
        outgoing AS (
            SELECT coalesce(q.code, '!' || coalesce(f.flag, 'none')) AS partner,
                   sum(f.value) AS v
            FROM f JOIN p ON p.commune = f.origin
            LEFT JOIN q ON q.commune = f.destination
            WHERE f.destination NOT IN (SELECT commune FROM p)
            GROUP BY 1),
        incoming AS (
            SELECT coalesce(q.code, '!' || coalesce(f.flag, 'none')) AS partner,
                   sum(f.value) AS v
            FROM f JOIN p ON p.commune = f.destination
            LEFT JOIN q ON q.commune = f.origin
            WHERE f.origin NOT IN (SELECT commune FROM p)
            GROUP BY 1)
        SELECT coalesce(o.partner, i.partner) AS partner,
               coalesce(o.v, 0.0) AS out_value, coalesce(i.v, 0.0) AS in_value
        FROM outgoing o FULL JOIN incoming i ON o.partner = i.partner
        """,
        [*p_params, kind, vintage, status, level],
    )


def partners(
    store: Store,
    ref: str | Territory,
    kind: str,
    *,
    direction: str = "both",
    level: str | None = None,
    top: int | None = 10,
    threshold: float = 0.0,
    vintage: int | None = None,
) -> pd.DataFrame:
    """Top partners of a territory for one flow kind, with the shares on each side.

    Parameters
    ----------
    direction : ``out`` ranks by F_PQ, ``in`` by F_QP, ``both`` by F_PQ + F_QP.
    level : level of the partners (default: :func:`default_partner_level`).
    top : keep the ``top`` first partners (None keeps all).
    threshold : drop partners whose ranking value is below it.
    """
    if direction not in DIRECTIONS:
        raise ValidationError(
            f"direction must be one of {', '.join(DIRECTIONS)}, not '{direction}'"
        )
    territory = ref if isinstance(ref, Territory) else resolve(store, ref)
    level = level or default_partner_level(territory)
    vint, status = _resolve_current(store, kind, vintage)
    raw = _raw_partner_flows(store, territory, kind, level, vint, status)
    own = derive(margins(store, territory.level, kind, vintage=vint, code=territory.code))
    r_p = float(own["origin_total"].iloc[0]) if not own.empty else 0.0
    e_p = float(own["destination_total"].iloc[0]) if not own.empty else 0.0
    raw["total"] = raw["out_value"] + raw["in_value"]
    raw["balance"] = raw["in_value"] - raw["out_value"]
    rank_col = {"out": "out_value", "in": "in_value", "both": "total"}[direction]
    raw = raw[raw[rank_col] > 0]
    raw = raw[raw[rank_col] >= threshold].sort_values(
        [rank_col, "partner"], ascending=[False, True]
    )
    if top is not None:
        raw = raw.head(int(top))
    codes = [c for c in raw["partner"] if not str(c).startswith("!")]
    pm = level_margins(store, level, kind, vint) if codes else pd.DataFrame()
    names = territory_table(store, level)
    rows = []
    for rec in raw.itertuples(index=False):
        code = str(rec.partner)
        r_q = float(pm["origin_total"].get(code, 0.0)) if code in pm.index else 0.0
        e_q = float(pm["destination_total"].get(code, 0.0)) if code in pm.index else 0.0
        rows.append(
            {
                "partner_level": level if not code.startswith("!") else None,
                "partner_code": code,
                "partner_name": PSEUDO_NAMES.get(code)
                or (names["name"].get(code, code) if code in names.index else code),
                "partner_population": float(names["population"].get(code))
                if code in names.index and pd.notna(names["population"].get(code))
                else None,
                "out_value": float(rec.out_value),
                "in_value": float(rec.in_value),
                "total": float(rec.total),
                "balance": float(rec.balance),
                "out_share_p": _share(rec.out_value, r_p),
                "out_share_q": _share(rec.out_value, e_q),
                "in_share_q": _share(rec.in_value, r_q),
                "in_share_p": _share(rec.in_value, e_p),
                "reliability": reliability(float(rec.total), status),
                "status": status,
            }
        )
    cols = [
        "partner_level",
        "partner_code",
        "partner_name",
        "partner_population",
        "out_value",
        "in_value",
        "total",
        "balance",
        "out_share_p",
        "out_share_q",
        "in_share_q",
        "in_share_p",
        "reliability",
        "status",
    ]
    return pd.DataFrame(rows, columns=cols)


def level_margins(store: Store, level: str, kind: str, vintage: int) -> pd.DataFrame:
    """Margins of every territory of a level, cached in the store until the next write."""
    return store.memo(
        ("margins", level, kind, vintage), lambda: margins(store, level, kind, vintage=vintage)
    )


def territory_table(store: Store, level: str) -> pd.DataFrame:
    """code → name, population, type of a level, cached in the store until the next write."""
    return store.memo(
        ("territories", level),
        lambda: store.df(
            "SELECT code, name, population, type FROM territory WHERE level = ?", [level]
        ).set_index("code"),
    )


def _share(value: float, total: float) -> float | None:
    return float(value) / total if total > 0 else None


def between(
    store: Store,
    a: str | Territory,
    b: str | Territory,
    kind: str,
    *,
    vintage: int | None = None,
) -> dict[str, Any]:
    """Flows both ways between two territories of any level for one kind, with the detail.

    The detail lists the commune pairs behind the totals (largest first). Overlapping
    territories are allowed: a commune that belongs to both counts on both sides.
    """
    ta = a if isinstance(a, Territory) else resolve(store, a)
    tb = b if isinstance(b, Territory) else resolve(store, b)
    vint, status = _resolve_current(store, kind, vintage)
    detail = store.df(
        """
        WITH a AS (SELECT commune FROM membership WHERE level = ? AND code = ?),
             b AS (SELECT commune FROM membership WHERE level = ? AND code = ?)
        SELECT CASE WHEN f.origin IN (SELECT commune FROM a) THEN 'a_to_b' ELSE 'b_to_a' END
                   AS direction,
               f.origin, o.name AS origin_name, f.destination, d.name AS destination_name,
               f.value
        FROM flow f
        LEFT JOIN territory o ON o.level = 'commune' AND o.code = f.origin
        LEFT JOIN territory d ON d.level = 'commune' AND d.code = f.destination
        WHERE f.kind = ? AND f.vintage = ? AND f.status = ?
          AND ((f.origin IN (SELECT commune FROM a) AND f.destination IN (SELECT commune FROM b))
            OR (f.origin IN (SELECT commune FROM b) AND f.destination IN (SELECT commune FROM a)))
          AND f.origin <> f.destination
        ORDER BY f.value DESC
        """,
        [ta.level, ta.code, tb.level, tb.code, kind, vint, status],
    )
    a_to_b = float(detail.loc[detail.direction == "a_to_b", "value"].sum())
    b_to_a = float(detail.loc[detail.direction == "b_to_a", "value"].sum())
    ma = derive(margins(store, ta.level, kind, vintage=vint, code=ta.code))
    mb = derive(margins(store, tb.level, kind, vintage=vint, code=tb.code))

    def side(m: pd.DataFrame, col: str) -> float:
        return float(m[col].iloc[0]) if not m.empty else 0.0

    return {
        "kind": kind,
        "a": ta.as_dict(),
        "b": tb.as_dict(),
        "a_to_b": a_to_b,
        "b_to_a": b_to_a,
        "total": a_to_b + b_to_a,
        "balance_for_a": b_to_a - a_to_b,
        "share_of_a_origin_to_b": _share(a_to_b, side(ma, "origin_total")),
        "share_of_b_origin_to_a": _share(b_to_a, side(mb, "origin_total")),
        "share_of_b_destination_from_a": _share(a_to_b, side(mb, "destination_total")),
        "share_of_a_destination_from_b": _share(b_to_a, side(ma, "destination_total")),
        "reliability": reliability(a_to_b + b_to_a, status),
        "status": status,
        "meta": source_meta(store, kind, vint),
        "detail": detail,
    }


def pair(store: Store, a: str, b: str, *, kinds: list[str] | None = None) -> dict[str, Any]:
    """The pair view: :func:`between` for every flow kind held (or those asked)."""
    ta, tb = resolve(store, a), resolve(store, b)
    if ta.level == tb.level and ta.code == tb.code:
        raise ValidationError("a pair needs two different territories")
    held = kinds or sorted(store.kinds())
    return {
        "a": ta.as_dict(),
        "b": tb.as_dict(),
        "kinds": {k: between(store, ta, tb, k) for k in held},
    }


def flow_lines(
    store: Store,
    level: str,
    kind: str,
    *,
    ref: str | Territory | None = None,
    direction: str = "both",
    top: int = 5000,
    threshold: float = 0.0,
    vintage: int | None = None,
) -> pd.DataFrame:
    """Flows between territories of ``level`` for drawing: origin, destination, value, points.

    With ``ref``, only the flows from and/or to that territory (aggregated at ``level`` on the
    other side); without, the ``top`` largest flows between distinct units of the level.
    Flows abroad are left out of lines (they have no point); internal flows too.
    """
    if direction not in DIRECTIONS:
        raise ValidationError(
            f"direction must be one of {', '.join(DIRECTIONS)}, not '{direction}'"
        )
    vint, status = _resolve_current(store, kind, vintage)
    if ref is not None:
        territory = ref if isinstance(ref, Territory) else resolve(store, ref)
        p = partners(
            store,
            territory,
            kind,
            direction=direction,
            level=level,
            top=top,
            threshold=threshold,
            vintage=vint,
        )
        p = p[~p["partner_code"].str.startswith("!")]
        rows = []
        for r in p.itertuples(index=False):
            if direction in ("out", "both") and r.out_value > 0:
                rows.append((territory.level, territory.code, level, r.partner_code, r.out_value))
            if direction in ("in", "both") and r.in_value > 0:
                rows.append((level, r.partner_code, territory.level, territory.code, r.in_value))
        df = pd.DataFrame(
            rows, columns=["origin_level", "origin", "destination_level", "destination", "value"]
        )
    else:
        table = "flow" if level == "commune" else "flow_agg"
        lvl = "" if level == "commune" else "AND level = ?"
        params: list[Any] = [kind, vint, status] + ([] if level == "commune" else [level])
        df = store.df(
            f"""SELECT origin, destination, value FROM {table}
                WHERE kind = ? AND vintage = ? AND status = ? {lvl}
                  AND origin <> destination AND value >= ?
                  AND NOT starts_with(origin, '!') AND NOT starts_with(destination, '!')
                  {"AND flag IS NULL" if level == "commune" else ""}
                ORDER BY value DESC, origin, destination LIMIT ?""",
            params + [threshold, top],
        )
        df.insert(0, "origin_level", level)
        df.insert(2, "destination_level", level)
    pts = store.memo(
        ("points",),
        lambda: store.df("SELECT level, code, name, lon, lat FROM territory").set_index(
            ["level", "code"]
        ),
    )
    for side in ("origin", "destination"):
        keys = list(zip(df[f"{side}_level"], df[side]))
        sub = pts.reindex(keys)
        df[f"{side}_name"] = sub["name"].to_numpy()
        df[f"{side}_lon"] = sub["lon"].to_numpy()
        df[f"{side}_lat"] = sub["lat"].to_numpy()
    df["status"] = status
    return df.reset_index(drop=True)
