"""Flows between territories: partners of a territory, the pair view, lines for maps.

Everything is computed from commune-to-commune flows and aggregated through ``membership``,
so any territory or perimeter can be set against partners of any level.

For a territory P and a partner Q (flow kind commute: residence → work):

- ``out_value`` = F_PQ; ``out_share_p`` = F_PQ / R_P is the dependency of P on Q (share of P's
  residents going to Q); ``out_share_q`` = F_PQ / E_Q, the share of Q's jobs held by P's residents;
- ``in_value`` = F_QP; ``in_share_q`` = F_QP / R_Q is the dependency of Q on P (share of Q's
  residents going to P); ``in_share_p`` = F_QP / E_P;
- ``total`` = F_PQ + F_QP and ``balance`` = F_QP − F_PQ (positive when P receives more).

Partners on a partitioning level (EPCI, EPT, département, région) are read from a
:class:`LevelView`: the level's ``flow_agg`` rows, margins, names and points held in memory
once per store version, so that the partners of any unit are two array slices; the ranking,
threshold and top apply after that step. Other cases (perimeters, communes, partners of another
level) aggregate the commune flows through ``membership`` in SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from maillage._errors import ValidationError
from maillage._schema import LEVEL_PREFIX
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
PARTNER_COLUMNS = [
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
LINE_COLUMNS = [
    "origin_level",
    "origin",
    "destination_level",
    "destination",
    "value",
    "origin_name",
    "origin_lon",
    "origin_lat",
    "destination_name",
    "destination_lon",
    "destination_lat",
    "status",
]

#: ``LEVEL:CODE`` references in their usual spelling: their resolution is memoised.
_CANONICAL_REF = re.compile(r"(com|epci|ept|dep|reg|per):([0-9A-Za-z_-]{1,80})")


def default_partner_level(territory: Territory) -> str:
    """Partners are of the territory's own level; a perimeter's partners are EPCI."""
    return "epci" if territory.level == "perimeter" else territory.level


def territory_of(store: Store, ref: str) -> Territory:
    """:func:`~maillage.analysis.territories.resolve` without a query for ``LEVEL:CODE``
    references as they are usually written (``epci:242900314``): a territory of the reference
    comes from the level's table held in the store, and any other such reference is memoised
    (so the memo holds at most a few spellings per territory)."""
    match = _CANONICAL_REF.fullmatch(ref)
    if match is None:
        return resolve(store, ref)
    level = LEVEL_PREFIX[match.group(1)]
    if level != "perimeter":
        hit = _territories_by_code(store, level).get(match.group(2))
        if hit is not None:
            return hit
    return store.memo(("territory", ref), lambda: resolve(store, ref))


def _territories_by_code(store: Store, level: str) -> dict[str, Territory]:
    """code → :class:`Territory` of a level, built once per store version."""

    def build() -> dict[str, Territory]:
        table = territory_table(store, level)
        return {
            str(code): Territory(
                level=level,
                code=str(code),
                name=str(name),
                population=_float_or_none(population),
                type=None if pd.isna(type_) else str(type_),
                lon=_float_or_none(lon),
                lat=_float_or_none(lat),
            )
            for code, name, population, type_, lon, lat in zip(
                table.index,
                table["name"],
                table["population"],
                table["type"],
                table["lon"],
                table["lat"],
            )
        }

    return store.memo(("territories_by_code", level), build)


def _float_or_none(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


# -- one level held in memory ------------------------------------------------------------------


@dataclass(frozen=True)
class LevelView:
    """The territories of one level for one flow set, in memory, aligned on ``codes``.

    ``codes`` is sorted and holds the pseudo codes (``!abroad``…); names, populations, points and
    margins (R = origin_total, E = destination_total, 0 for pseudo codes) are arrays on it. For a
    partitioning level it also holds the flows between distinct units (``flow_agg``) by origin and
    by destination, so that the partners of any unit are two slices, with no query.
    """

    level: str
    codes: np.ndarray
    position: dict[str, int]
    known: np.ndarray  # bool: the code is a territory of the reference
    name: np.ndarray  # display name: territory name, pseudo name, else the code
    population: np.ndarray  # NaN when unknown
    lon: np.ndarray
    lat: np.ndarray
    origin_total: np.ndarray
    destination_total: np.ndarray
    by_origin: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None  # start, other, value
    by_destination: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def own_totals(self, code: str) -> tuple[float, float]:
        """(R, E) of one unit of the level (0 when it sends and receives nothing)."""
        i = self.position.get(code)
        if i is None:
            return 0.0, 0.0
        return float(self.origin_total[i]), float(self.destination_total[i])

    def partner_flows(self, code: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions of the partners Q ≠ P of unit ``code``, with F_PQ and F_QP."""
        if self.by_origin is None or self.by_destination is None:
            raise ValueError(f"no flows between units are held for level {self.level}")
        i = self.position.get(code)
        n = len(self.codes)
        if i is None:
            empty = np.zeros(0)
            return np.zeros(0, dtype=np.intp), empty, empty
        out = _row_slice(self.by_origin, i, n)
        inc = _row_slice(self.by_destination, i, n)
        pos = np.flatnonzero((out != 0) | (inc != 0))
        return pos, out[pos], inc[pos]


def _row_slice(rows: tuple[np.ndarray, np.ndarray, np.ndarray], i: int, n: int) -> np.ndarray:
    start, other, value = rows
    lo, hi = start[i], start[i + 1]
    return np.bincount(other[lo:hi], weights=value[lo:hi], minlength=n)


def _compressed_rows(
    key: np.ndarray, other: np.ndarray, value: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(key, kind="stable")
    start = np.searchsorted(key[order], np.arange(n + 1))
    return start, other[order], value[order]


def level_view(store: Store, level: str, kind: str, vintage: int, status: str) -> LevelView:
    """The :class:`LevelView` of ``level`` for one flow set, built once per store version."""
    return store.memo(
        ("level_view", level, kind, vintage, status),
        lambda: _build_level_view(store, level, kind, vintage, status),
    )


def _build_level_view(store: Store, level: str, kind: str, vintage: int, status: str) -> LevelView:
    """One read of the level's ``flow_agg`` rows, territories and margins, aligned on the sorted
    codes of all of them (a code of the flows missing from the reference keeps its code as
    name and no point)."""
    terr = territory_table(store, level)
    parts = [terr.index.to_numpy(dtype=str), np.array(list(PSEUDO_NAMES), dtype=str)]
    rows = None
    if level in PARTITION_LEVELS:
        rows = store.df(
            """SELECT origin, destination, value FROM flow_agg
               WHERE kind = ? AND vintage = ? AND status = ? AND level = ?
                 AND origin <> destination""",
            [kind, vintage, status, level],
        )
        parts += [rows["origin"].to_numpy(dtype=str), rows["destination"].to_numpy(dtype=str)]
    codes = np.unique(np.concatenate(parts))
    n = len(codes)
    t = terr.reindex(codes)
    known = t["name"].notna().to_numpy()
    pseudo = np.array([PSEUDO_NAMES.get(c) for c in codes], dtype=object)
    name = np.where(known, t["name"].to_numpy(dtype=object), pseudo)
    name = np.where(pd.isna(name), codes.astype(object), name)
    m = level_margins(store, level, kind, vintage).reindex(codes)
    by_origin = by_destination = None
    if rows is not None:
        o = np.searchsorted(codes, rows["origin"].to_numpy(dtype=str))
        d = np.searchsorted(codes, rows["destination"].to_numpy(dtype=str))
        v = rows["value"].to_numpy(dtype=float)
        by_origin = _compressed_rows(o, d, v, n)
        by_destination = _compressed_rows(d, o, v, n)
    return LevelView(
        level=level,
        codes=codes,
        position={str(c): i for i, c in enumerate(codes)},
        known=known,
        name=name,
        population=t["population"].to_numpy(dtype=float, na_value=np.nan),
        lon=t["lon"].to_numpy(dtype=float, na_value=np.nan),
        lat=t["lat"].to_numpy(dtype=float, na_value=np.nan),
        origin_total=m["origin_total"].to_numpy(dtype=float, na_value=0.0),
        destination_total=m["destination_total"].to_numpy(dtype=float, na_value=0.0),
        by_origin=by_origin,
        by_destination=by_destination,
    )


# -- partners ---------------------------------------------------------------------------------


def _members_cte(territory: Territory) -> tuple[str, list[Any]]:
    return (
        "p AS (SELECT commune FROM membership WHERE level = ? AND code = ?)",
        [territory.level, territory.code],
    )


def _raw_partner_flows(
    store: Store, territory: Territory, kind: str, level: str, vintage: int, status: str
) -> pd.DataFrame:
    """F_PQ and F_QP for every partner Q of ``level`` (Q ≠ P), from commune flows through
    ``membership`` (any territory, any partner level; see :meth:`LevelView.partner_flows` for
    the same on a partitioning level)."""
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


@dataclass(frozen=True)
class _Ranked:
    """Partners kept, in rank order: codes with F_PQ, F_QP and the partner's margins."""

    codes: list[str]
    out: np.ndarray
    inc: np.ndarray
    r_q: np.ndarray
    e_q: np.ndarray
    position: np.ndarray  # in the partner level's view; -1 for a code it does not hold


def _ranked_partners(
    store: Store,
    territory: Territory,
    view: LevelView,
    kind: str,
    vintage: int,
    status: str,
    direction: str,
    top: int | None,
    threshold: float,
) -> _Ranked:
    """Partner flows of ``territory`` at the view's level, ranked, cut at ``threshold``/``top``.

    The aggregation comes from the view (a partitioning level against itself) or from the
    commune flows; the ranking, threshold and top apply afterwards, on arrays.
    """
    if territory.level == view.level and view.by_origin is not None:
        pos, out, inc = view.partner_flows(territory.code)
        codes = view.codes[pos]
        order_key = pos  # view codes are sorted: position order is code order
    else:
        raw = _raw_partner_flows(store, territory, kind, view.level, vintage, status)
        codes = raw["partner"].to_numpy(dtype=str)
        pos = np.array([view.position.get(c, -1) for c in codes], dtype=np.intp)
        out = raw["out_value"].to_numpy(dtype=float)
        inc = raw["in_value"].to_numpy(dtype=float)
        order_key = np.argsort(np.argsort(codes, kind="stable"))
    rank = {"out": out, "in": inc, "both": out + inc}[direction]
    keep = np.flatnonzero((rank > 0) & (rank >= threshold))
    keep = keep[np.lexsort((order_key[keep], -rank[keep]))]
    if top is not None:
        keep = keep[: int(top)]
    pos = pos[keep]
    held = pos >= 0
    safe = np.where(held, pos, 0)
    return _Ranked(
        codes=[str(c) for c in codes[keep]],
        out=out[keep],
        inc=inc[keep],
        r_q=np.where(held, view.origin_total[safe], 0.0),
        e_q=np.where(held, view.destination_total[safe], 0.0),
        position=pos,
    )


def _own_totals(
    store: Store, territory: Territory, kind: str, vint: int, status: str
) -> tuple[float, float]:
    """(R_P, E_P) of the territory, from the view of its own level."""
    return level_view(store, territory.level, kind, vint, status).own_totals(territory.code)


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
    columns = _partner_columns(store, ref, kind, direction, level, top, threshold, vintage)
    if not columns["partner_code"]:
        return pd.DataFrame(columns=PARTNER_COLUMNS)
    return pd.DataFrame(columns, columns=PARTNER_COLUMNS)


def partner_rows(
    store: Store,
    ref: str | Territory,
    kind: str,
    *,
    direction: str = "both",
    level: str | None = None,
    top: int | None = 10,
    threshold: float = 0.0,
    vintage: int | None = None,
) -> list[dict[str, Any]]:
    """:func:`partners` as JSON-safe rows (what the API sends), without building a frame."""
    return _rows(_partner_columns(store, ref, kind, direction, level, top, threshold, vintage))


def _partner_columns(
    store: Store,
    ref: str | Territory,
    kind: str,
    direction: str,
    level: str | None,
    top: int | None,
    threshold: float,
    vintage: int | None,
) -> dict[str, list[Any]]:
    """The columns of :func:`partners` as lists of Python values."""
    _check_direction(direction)
    territory = ref if isinstance(ref, Territory) else resolve(store, ref)
    level = level or default_partner_level(territory)
    vint, status = _resolve_current(store, kind, vintage)
    view = level_view(store, level, kind, vint, status)
    ranked = _ranked_partners(store, territory, view, kind, vint, status, direction, top, threshold)
    r_p, e_p = _own_totals(store, territory, kind, vint, status) if ranked.codes else (0, 0)
    out, inc = ranked.out, ranked.inc
    total = out + inc
    held = ranked.position >= 0
    population = np.where(held, view.population[np.where(held, ranked.position, 0)], np.nan)
    names = [
        str(view.name[p]) if p >= 0 else PSEUDO_NAMES.get(c, c)
        for c, p in zip(ranked.codes, ranked.position)
    ]
    return {
        "partner_level": [None if c.startswith("!") else level for c in ranked.codes],
        "partner_code": ranked.codes,
        "partner_name": names,
        "partner_population": [None if np.isnan(x) else float(x) for x in population],
        "out_value": out.tolist(),
        "in_value": inc.tolist(),
        "total": total.tolist(),
        "balance": (inc - out).tolist(),
        "out_share_p": _shares(out, np.full(len(out), r_p)),
        "out_share_q": _shares(out, ranked.e_q),
        "in_share_q": _shares(inc, ranked.r_q),
        "in_share_p": _shares(inc, np.full(len(inc), e_p)),
        "reliability": [reliability(x, status) for x in total.tolist()],
        "status": [status] * len(out),
    }


def _rows(columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Columns of Python values as rows, NaN written None (JSON has no NaN)."""
    keys = list(columns)
    return [
        {k: None if v != v else v for k, v in zip(keys, values)}  # v != v only for NaN
        for values in zip(*columns.values())
    ]


def _check_direction(direction: str) -> None:
    if direction not in DIRECTIONS:
        raise ValidationError(
            f"direction must be one of {', '.join(DIRECTIONS)}, not '{direction}'"
        )


def _shares(values: np.ndarray, totals: np.ndarray) -> list[float | None]:
    """value / total per row, None where the total is not positive (as :func:`_share`)."""
    return [float(v) / float(t) if t > 0 else None for v, t in zip(values, totals)]


def level_margins(store: Store, level: str, kind: str, vintage: int) -> pd.DataFrame:
    """Margins of every territory of a level, cached in the store until the next write."""
    return store.memo(
        ("margins", level, kind, vintage), lambda: margins(store, level, kind, vintage=vintage)
    )


def territory_table(store: Store, level: str) -> pd.DataFrame:
    """code → name, population, type, lon, lat of a level, cached in the store until the next
    write."""
    return store.memo(
        ("territories", level),
        lambda: store.df(
            "SELECT code, name, population, type, lon, lat FROM territory WHERE level = ?",
            [level],
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
    _check_direction(direction)
    vint, status = _resolve_current(store, kind, vintage)
    if ref is None:
        df = _lines_between(store, level, kind, vint, status, top, threshold)
        df["status"] = status
        return df
    territory = ref if isinstance(ref, Territory) else resolve(store, ref)
    rows = _lines_around(
        store, territory, level, kind, vint, status, direction, top, threshold, np.nan
    )
    return pd.DataFrame(rows, columns=LINE_COLUMNS)


def flow_line_rows(
    store: Store,
    level: str,
    kind: str,
    *,
    ref: str | Territory | None = None,
    direction: str = "both",
    top: int = 5000,
    threshold: float = 0.0,
    vintage: int | None = None,
) -> list[dict[str, Any]]:
    """:func:`flow_lines` as JSON-safe rows (what the API sends); around a territory, built
    without a frame."""
    if ref is None:
        from maillage._jsonsafe import records

        return records(
            flow_lines(store, level, kind, top=top, threshold=threshold, vintage=vintage)
        )
    _check_direction(direction)
    vint, status = _resolve_current(store, kind, vintage)
    territory = ref if isinstance(ref, Territory) else resolve(store, ref)
    return _lines_around(
        store, territory, level, kind, vint, status, direction, top, threshold, None
    )


def _lines_around(
    store: Store,
    territory: Territory,
    level: str,
    kind: str,
    vint: int,
    status: str,
    direction: str,
    top: int,
    threshold: float,
    missing: float | None,
) -> list[dict[str, Any]]:
    """Lines between a territory and its partners of ``level`` (ranked as :func:`partners`),
    one dict per line; ``missing`` stands for a point or name the reference lacks (NaN in a
    frame, None in JSON)."""
    view = level_view(store, level, kind, vint, status)
    ranked = _ranked_partners(store, territory, view, kind, vint, status, direction, top, threshold)
    me = (
        territory.level,
        territory.code,
        territory.name,
        missing if territory.lon is None else territory.lon,
        missing if territory.lat is None else territory.lat,
    )
    rows = []
    for code, p, out, inc in zip(
        ranked.codes, ranked.position.tolist(), ranked.out.tolist(), ranked.inc.tolist()
    ):
        if code.startswith("!"):
            continue
        other = (level, code, *_point(view, p, missing))
        if direction in ("out", "both") and out > 0:
            rows.append(_line(me, other, out, status))
        if direction in ("in", "both") and inc > 0:
            rows.append(_line(other, me, inc, status))
    return rows


def _line(
    origin: tuple[Any, ...], destination: tuple[Any, ...], value: float, status: str
) -> dict[str, Any]:
    """One line; each end is (level, code, name, lon, lat)."""
    return {
        "origin_level": origin[0],
        "origin": origin[1],
        "destination_level": destination[0],
        "destination": destination[1],
        "value": value,
        "origin_name": origin[2],
        "origin_lon": origin[3],
        "origin_lat": origin[4],
        "destination_name": destination[2],
        "destination_lon": destination[3],
        "destination_lat": destination[4],
        "status": status,
    }


def _lines_between(
    store: Store, level: str, kind: str, vint: int, status: str, top: int, threshold: float
) -> pd.DataFrame:
    """The ``top`` largest flows between distinct units of ``level`` (national view)."""
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
    terr = territory_table(store, level)
    for side in ("origin", "destination"):
        sub = terr.reindex(df[side].to_numpy())
        df[f"{side}_name"] = sub["name"].to_numpy()
        df[f"{side}_lon"] = sub["lon"].to_numpy()
        df[f"{side}_lat"] = sub["lat"].to_numpy()
    return df


def _point(view: LevelView, position: int, missing: float | None) -> tuple[Any, Any, Any]:
    """Name, longitude, latitude of a unit of the view (``missing`` when the reference lacks
    it)."""
    if position < 0 or not view.known[position]:
        return missing, missing, missing
    lon, lat = float(view.lon[position]), float(view.lat[position])
    return (
        view.name[position],
        missing if np.isnan(lon) else lon,
        missing if np.isnan(lat) else lat,
    )
