"""Static maps for the sheets, drawn server-side with matplotlib from the embedded polygons.

No base map and no network: the territory is drawn among its neighbours (the polygons of the
partner level that fall in the view), partners are shaded by the volume of their flows with it,
flows are drawn as curved lines whose width is proportional to the volume (outgoing and incoming
curve to opposite sides), with a legend and a scale bar. Coordinates are projected to an
azimuthal equidistant projection centred on the view, so the scale bar is true in every
direction, in metropolitan France as overseas.

Every map returns PNG bytes (embedded in the HTML as a ``data:`` URI, so a sheet is one file).
"""

from __future__ import annotations

import io
import math
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import matplotlib

matplotlib.use("Agg")  # no display, thread-safe backend for servers and batches

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import shapely
from matplotlib.collections import PatchCollection
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrowPatch, Patch, PathPatch
from matplotlib.path import Path as MplPath
from pyproj import Transformer

from maillage.delivery.reports.typography import km, number

if TYPE_CHECKING:
    from maillage.analysis.territories import Territory
    from maillage.store import Store

OUT_COLOUR = "#c0392b"  # flows leaving the territory (or A → B)
IN_COLOUR = "#1f6f8b"  # flows arriving (or B → A)
SELF_COLOUR = "#f4a261"
OTHER_COLOUR = "#8ecae6"
NEIGHBOUR_FILL = "#f1f1ee"
DPI = 150


# -- polygons -------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _layer(level: str) -> tuple[pd.Index, np.ndarray, shapely.STRtree]:
    """Codes, polygons and a spatial index of one geometry level (loaded once per process)."""
    from maillage import reference

    s = reference.shapes(level)
    geoms = s.to_numpy()
    return s.index, geoms, shapely.STRtree(geoms)


def polygon_of(store: Store, territory: Territory) -> Any:
    """The polygon of a territory; a perimeter's is the union of its member communes."""
    from maillage import reference

    if territory.level in reference.GEOMETRY_LEVELS and territory.level != "arm":
        codes, geoms, _ = _layer(territory.level)
        pos = codes.get_indexer([territory.code])
        if pos[0] >= 0:
            return geoms[pos[0]]
    members = store.df(
        "SELECT commune FROM membership WHERE level = ? AND code = ?",
        [territory.level, territory.code],
    )["commune"]
    return polygons_of_communes(members.tolist())


def polygons_of_communes(communes: list[str]) -> Any:
    """Union of the polygons of some communes (None when none has a polygon)."""
    codes, geoms, _ = _layer("commune")
    pos = codes.get_indexer(communes)
    parts = geoms[pos[pos >= 0]]
    if len(parts) == 0:
        return None
    return shapely.union_all(parts)


def polygons(level: str, codes: list[str]) -> dict[str, Any]:
    """Polygons of some territories of a geometry level, by code (missing ones left out)."""
    index, geoms, _ = _layer(level)
    pos = index.get_indexer(codes)
    return {c: geoms[p] for c, p in zip(codes, pos) if p >= 0}


def _in_view(level: str, bbox: tuple[float, float, float, float]) -> tuple[list[str], np.ndarray]:
    index, geoms, tree = _layer(level)
    hits = tree.query(shapely.box(*bbox))
    return [index[i] for i in hits], geoms[hits]


# -- projection and drawing helpers ---------------------------------------------------------


class _Projection:
    """Azimuthal equidistant projection centred on (lon0, lat0), in metres."""

    def __init__(self, lon0: float, lat0: float) -> None:
        self._t = Transformer.from_crs(
            "EPSG:4326", f"+proj=aeqd +lat_0={lat0} +lon_0={lon0} +datum=WGS84 +units=m",
            always_xy=True,
        )  # fmt: skip

    def geom(self, g: Any) -> Any:
        return shapely.transform(
            g, lambda xy: np.column_stack(self._t.transform(xy[:, 0], xy[:, 1]))
        )

    def points(self, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x, y = self._t.transform(np.asarray(lon, float), np.asarray(lat, float))
        return np.asarray(x), np.asarray(y)


def _path(geom: Any) -> MplPath | None:
    """A matplotlib path of a (multi)polygon, holes included."""
    verts: list[np.ndarray] = []
    codes: list[np.ndarray] = []
    polys = getattr(geom, "geoms", [geom])
    for poly in polys:
        if poly.is_empty or poly.geom_type != "Polygon":
            continue
        for ring in [poly.exterior, *poly.interiors]:
            xy = np.asarray(ring.coords)[:, :2]
            if len(xy) < 3:
                continue
            c = np.full(len(xy), MplPath.LINETO, dtype=np.uint8)
            c[0] = MplPath.MOVETO
            c[-1] = MplPath.CLOSEPOLY
            verts.append(xy)
            codes.append(c)
    if not verts:
        return None
    return MplPath(np.concatenate(verts), np.concatenate(codes))


def _patches(geoms: list[Any]) -> list[PathPatch]:
    out = []
    for g in geoms:
        p = _path(g) if g is not None else None
        if p is not None:
            out.append(PathPatch(p))
    return out


def _nice_length(width_m: float) -> float:
    """A round scale-bar length (1, 2 or 5 × 10^k metres) near a fifth of the map width."""
    target = max(width_m / 5.0, 1.0)
    exp = 10 ** math.floor(math.log10(target))
    for m in (5, 2, 1):
        if m * exp <= target:
            return m * exp
    return exp


def _scale_bar(ax: Any) -> None:
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    length = _nice_length(x1 - x0)
    bx, by = x0 + 0.04 * (x1 - x0), y0 + 0.05 * (y1 - y0)
    h = 0.012 * (y1 - y0)
    ax.add_patch(plt.Rectangle((bx, by), length / 2, h, fc="black", ec="black", lw=0.6, zorder=9))
    ax.add_patch(
        plt.Rectangle(
            (bx + length / 2, by), length / 2, h, fc="white", ec="black", lw=0.6, zorder=9
        )
    )
    ax.text(bx, by + 2.2 * h, "0", fontsize=6.5, ha="center", zorder=9)
    ax.text(bx + length, by + 2.2 * h, km(length), fontsize=6.5, ha="center", zorder=9)


def _north(ax: Any) -> None:
    ax.annotate(
        "N", xy=(0.965, 0.95), xytext=(0.965, 0.86), xycoords="axes fraction",
        ha="center", va="center", fontsize=8, fontweight="bold",
        arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 0.8},
    )  # fmt: skip


def _width(value: float, vmax: float, wmax: float = 7.0) -> float:
    """Line width (points) proportional to the volume: 0.4 + wmax · value / vmax."""
    return 0.4 + wmax * (value / vmax if vmax > 0 else 0.0)


def _arc(ax: Any, p: tuple[float, float], q: tuple[float, float], lw: float, colour: str,
         bend: float) -> None:  # fmt: skip
    ax.add_patch(
        FancyArrowPatch(
            p,
            q,
            connectionstyle=f"arc3,rad={bend}",
            arrowstyle="-",
            lw=lw,
            color=colour,
            alpha=0.8,
            zorder=6,
            capstyle="round",
        )
    )


def _width_legend(values: list[float], vmax: float, colour: str, unit: str) -> list[Line2D]:
    handles = []
    for v in values:
        handles.append(
            Line2D([], [], color=colour, lw=_width(v, vmax), label=f"{number(v)} {unit}")
        )
    return handles


def _legend_values(vmax: float) -> list[float]:
    if vmax <= 0:
        return []
    exp = 10 ** math.floor(math.log10(vmax))
    top = math.floor(vmax / exp) * exp
    return sorted({top, top / 2, top / 10} - {0})


def _legend(ax: Any, handles: list[Any]) -> None:
    ax.legend(
        handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=6.5,
        frameon=False, borderaxespad=0.2,
    )  # fmt: skip


def _view(bounds: list[tuple[float, float, float, float]], margin: float = 0.12) -> tuple:
    b = np.array(bounds, float)
    x0, y0 = b[:, 0].min(), b[:, 1].min()
    x1, y1 = b[:, 2].max(), b[:, 3].max()
    dx, dy = max(x1 - x0, 0.05), max(y1 - y0, 0.05)
    return (x0 - margin * dx, y0 - margin * dy, x1 + margin * dx, y1 + margin * dy)


def _short(name: str, width: int = 28) -> str:
    """A name wrapped on lines of at most ``width`` characters (for legends)."""
    import textwrap

    return "\n".join(textwrap.wrap(name, width)) or name


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return buf.getvalue()


def _base_axes(width_in: float, height_in: float) -> tuple[Any, Any]:
    fig, ax = plt.subplots(figsize=(width_in, height_in))
    ax.set_aspect("equal")
    ax.set_axis_off()
    return fig, ax


def _draw_neighbours(ax: Any, proj: _Projection, level: str, bbox: tuple) -> list[str]:
    codes, geoms = _in_view(level, bbox)
    coll = PatchCollection(
        _patches([proj.geom(g) for g in geoms]), facecolor=NEIGHBOUR_FILL, edgecolor="#b5b5b0",
        linewidth=0.35, zorder=1,
    )  # fmt: skip
    ax.add_collection(coll)
    return codes


def _set_limits(ax: Any, proj: _Projection, bbox: tuple) -> None:
    corners = shapely.box(*bbox)
    x0, y0, x1, y1 = proj.geom(corners).bounds
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)


# -- the two maps of the sheets -------------------------------------------------------------


def territory_map(
    store: Store,
    territory: Territory,
    partners: pd.DataFrame,
    *,
    partner_level: str,
    unit: str = "pers.",
    modelled: bool = False,
    width_in: float = 7.2,
    height_in: float = 5.2,
) -> bytes:
    """Map of a territory, its partners shaded by total flow, flows as lines by volume.

    Parameters
    ----------
    partners : a frame of :func:`maillage.analysis.flows.partners` (the rows drawn).
    partner_level : level of the partners (their polygons and points).
    modelled : add « modélisé » to the legend titles.
    """
    own = polygon_of(store, territory)
    drawn = partners[~partners["partner_code"].astype(str).str.startswith("!")]
    shapes = polygons(partner_level, drawn["partner_code"].astype(str).tolist())
    bounds = [g.bounds for g in [own, *shapes.values()] if g is not None]
    if not bounds and territory.lon is not None:
        bounds = [(territory.lon, territory.lat, territory.lon, territory.lat)]
    bbox = _view(bounds)
    proj = _Projection((bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2)
    fig, ax = _base_axes(width_in, height_in)
    _draw_neighbours(ax, proj, partner_level, bbox)
    suffix = " — modélisé" if modelled else ""
    vmax = float(drawn["total"].max()) if len(drawn) else 0.0
    cmap = plt.get_cmap("Blues")
    if shapes:
        totals = drawn.set_index("partner_code")["total"]
        coll = PatchCollection(
            _patches([proj.geom(g) for g in shapes.values()]), edgecolor="#6b7b8c",
            linewidth=0.5, zorder=2, cmap=cmap,
        )  # fmt: skip
        coll.set_array(np.array([float(totals[c]) for c in shapes]))
        coll.set_clim(0, vmax or 1.0)
        ax.add_collection(coll)
        cbar = fig.colorbar(coll, ax=ax, orientation="horizontal", fraction=0.04, pad=0.02)
        cbar.set_label(f"Flux total avec le territoire ({unit}){suffix}", fontsize=7)
        cbar.ax.tick_params(labelsize=6)
        cbar.ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: number(v)))
    if own is not None:
        ax.add_collection(
            PatchCollection(_patches([proj.geom(own)]), facecolor=SELF_COLOUR,
                            edgecolor="#7a3e00", linewidth=1.2, zorder=3)
        )  # fmt: skip
    # flows: curved lines between representative points
    pts = _points(store, partner_level, drawn["partner_code"].astype(str).tolist())
    if territory.lon is not None and len(drawn):
        px, py = proj.points(np.array([territory.lon]), np.array([territory.lat]))
        vflow = float(max(drawn["out_value"].max(), drawn["in_value"].max()))
        for r in drawn.itertuples(index=False):
            if r.partner_code not in pts:
                continue
            qx, qy = proj.points(*pts[r.partner_code])
            p, q = (float(px[0]), float(py[0])), (float(qx[0]), float(qy[0]))
            if r.out_value > 0:
                _arc(ax, p, q, _width(r.out_value, vflow), OUT_COLOUR, 0.18)
            if r.in_value > 0:
                _arc(ax, q, p, _width(r.in_value, vflow), IN_COLOUR, 0.18)
        handles = [
            Patch(facecolor=SELF_COLOUR, edgecolor="#7a3e00", label=_short(territory.name)),
            Line2D([], [], color=OUT_COLOUR, lw=2.5, label=f"Flux sortants{suffix}"),
            Line2D([], [], color=IN_COLOUR, lw=2.5, label=f"Flux entrants{suffix}"),
            *_width_legend(_legend_values(vflow), vflow, "#555555", unit),
        ]
        _legend(ax, handles)
    _set_limits(ax, proj, bbox)
    _scale_bar(ax)
    _north(ax)
    return _png(fig)


def _points(store: Store, level: str, codes: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    if not codes:
        return {}
    df = store.df(
        "SELECT code, lon, lat FROM territory WHERE level = ? AND code IN "
        f"({','.join('?' for _ in codes)}) AND lon IS NOT NULL",
        [level, *codes],
    )
    return {str(r.code): (np.array([r.lon]), np.array([r.lat])) for r in df.itertuples(index=False)}


def pair_map(
    store: Store,
    a: Territory,
    b: Territory,
    detail: pd.DataFrame,
    *,
    unit: str = "pers.",
    modelled: bool = False,
    top: int = 40,
    width_in: float = 7.2,
    height_in: float = 5.2,
) -> bytes:
    """Map of two territories and the commune-to-commune flows between them.

    ``detail`` is the ``detail`` frame of :func:`maillage.analysis.flows.between`
    (direction, origin, destination, value); its ``top`` largest rows are drawn.
    """
    ga, gb = polygon_of(store, a), polygon_of(store, b)
    bounds = [g.bounds for g in (ga, gb) if g is not None]
    if not bounds:
        bounds = [(t.lon, t.lat, t.lon, t.lat) for t in (a, b) if t.lon is not None]
    bbox = _view(bounds, margin=0.08)
    proj = _Projection((bbox[0] + bbox[2]) / 2, (bbox[1] + bbox[3]) / 2)
    fig, ax = _base_axes(width_in, height_in)
    level = "commune" if a.level == b.level == "commune" else "epci"
    _draw_neighbours(ax, proj, level, bbox)
    for g, colour, edge in ((gb, OTHER_COLOUR, "#1d4e63"), (ga, SELF_COLOUR, "#7a3e00")):
        if g is not None:
            ax.add_collection(
                PatchCollection(_patches([proj.geom(g)]), facecolor=colour, edgecolor=edge,
                                linewidth=1.1, alpha=0.85, zorder=2)
            )  # fmt: skip
    shown = detail.head(top)
    suffix = " — modélisé" if modelled else ""
    handles: list[Any] = [
        Patch(facecolor=SELF_COLOUR, edgecolor="#7a3e00", label=f"A\u00a0: {_short(a.name)}"),
        Patch(facecolor=OTHER_COLOUR, edgecolor="#1d4e63", label=f"B\u00a0: {_short(b.name)}"),
    ]
    if len(shown):
        communes = sorted(set(shown["origin"]) | set(shown["destination"]))
        pts = _points(store, "commune", communes)
        vmax = float(shown["value"].max())
        for r in shown.itertuples(index=False):
            if r.origin not in pts or r.destination not in pts:
                continue
            ox, oy = proj.points(*pts[r.origin])
            dx, dy = proj.points(*pts[r.destination])
            colour = OUT_COLOUR if r.direction == "a_to_b" else IN_COLOUR
            _arc(ax, (float(ox[0]), float(oy[0])), (float(dx[0]), float(dy[0])),
                 _width(r.value, vmax, 5.0), colour, 0.15)  # fmt: skip
        handles += [
            Line2D([], [], color=OUT_COLOUR, lw=2.5, label=f"A → B{suffix}"),
            Line2D([], [], color=IN_COLOUR, lw=2.5, label=f"B → A{suffix}"),
            *_width_legend(_legend_values(vmax), vmax, "#555555", unit),
        ]
    else:
        ax.text(0.5, 0.04, "Aucun flux mesuré entre ces deux territoires", transform=ax.transAxes,
                ha="center", fontsize=8, style="italic", zorder=9)  # fmt: skip
    _legend(ax, handles)
    _set_limits(ax, proj, bbox)
    _scale_bar(ax)
    _north(ax)
    return _png(fig)
