"""Exports read back with independent readers (csv, openpyxl, pyogrio) against the library."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from maillage.analysis.flows import flow_lines, partners
from maillage.analysis.indicators import indicator_table, profile
from maillage.delivery.exports import (
    OutputError,
    atomic_write,
    export_bundle,
    export_csv,
    export_gpkg,
    export_xlsx,
)
from maillage.store import Store

BREST = "epci:242900314"


@pytest.fixture(scope="module")
def ro(built_db):
    with Store(built_db, read_only=True) as store:
        yield store


@pytest.fixture(scope="module")
def bundle(ro, tmp_path_factory):
    folder = tmp_path_factory.mktemp("bundle")
    return folder, export_bundle(ro, BREST, folder)


def _missing(v):
    return v is None or (isinstance(v, float) and math.isnan(v))


def _close(a, b):
    if _missing(a) or _missing(b):
        return _missing(a) and _missing(b)
    return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-6)


def test_bundle_files_and_provenance(bundle):
    folder, files = bundle
    names = sorted(p.name for p in files)
    assert names == sorted([
        "epci_242900314_indicators.csv", "epci_242900314_partners_commute.csv",
        "epci_242900314.xlsx", "epci_242900314.gpkg", "epci_242900314_provenance.json",
    ])  # fmt: skip
    prov = json.loads((folder / "epci_242900314_provenance.json").read_text("utf-8"))
    assert prov["crs"] == "EPSG:4326"
    assert prov["sources"]["commute"]["status"] == "modelled"
    assert set(prov["files"]) == set(names) - {"epci_242900314_provenance.json"}
    assert not list(folder.glob(".part-*"))


def test_csv_read_back_equals_profile(ro, bundle):
    folder, _ = bundle
    with open(folder / "epci_242900314_indicators.csv", encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    prof = profile(ro, BREST)
    expected = {i["name"]: i["value"] for i in prof["kinds"]["commute"]["indicators"]}
    got = {r["indicator"]: float(r["value"]) for r in rows if r["kind"] == "commute"}
    assert set(got) == set(expected)
    for name, value in expected.items():
        assert _close(got[name], value), name
    with open(folder / "epci_242900314_partners_commute.csv", encoding="utf-8-sig") as f:
        prow = list(csv.DictReader(f))
    lib = partners(ro, BREST, "commute", top=None)
    assert len(prow) == len(lib)
    assert [r["partner_code"] for r in prow] == lib["partner_code"].tolist()
    assert all(_close(r["out_value"], v) for r, v in zip(prow, lib["out_value"]))


def test_export_csv_keeps_its_behaviour(ro, tmp_path):
    files = export_csv(ro, BREST, tmp_path)
    assert [p.name for p in files] == [
        "epci_242900314_indicators.csv",
        "epci_242900314_partners_commute.csv",
        "epci_242900314_provenance.json",
    ]


def test_xlsx_read_back_with_openpyxl(ro, bundle):
    from openpyxl import load_workbook

    folder, _ = bundle
    wb = load_workbook(folder / "epci_242900314.xlsx")
    assert wb.sheetnames == ["Indicateurs", "Flux", "Partenaires", "Sources"]
    ws = wb["Indicateurs"]
    header = [c.value for c in ws[1]]
    assert ws.freeze_panes == "A2"
    assert ws[1][0].font.bold and ws[1][0].fill.fgColor.rgb.endswith("1F4E79")
    assert ws.column_dimensions["B"].width >= 40
    col = {name: i for i, name in enumerate(header)}
    prof = profile(ro, BREST)
    expected = {i["label"]: i for i in prof["kinds"]["commute"]["indicators"]}
    seen = 0
    for row in ws.iter_rows(min_row=2):
        label = row[col["Indicateur"]].value
        ind = expected[label]
        assert _close(row[col["Valeur"]].value, ind["value"]), label
        assert row[col["Modélisé"]].value == "oui"
        fmt = row[col["Valeur"]].number_format
        assert fmt == {"share": "0.0%", "persons": "#,##0", "index": "0.0"}[ind["unit"]]
        seen += 1
    assert seen == len(expected)
    wp = wb["Partenaires"]
    hp = {c.value: i for i, c in enumerate(wp[1])}
    lib = partners(ro, BREST, "commute", top=None)
    rows = list(wp.iter_rows(min_row=2, values_only=True))
    assert len(rows) == len(lib)
    for r, (_, e) in zip(rows, lib.iterrows()):
        assert r[hp["Code du partenaire"]] == e["partner_code"]
        assert _close(r[hp["Flux entrants (depuis le partenaire)"]], e["in_value"])
        assert _close(r[hp["Dépendance du partenaire envers le territoire"]], e["in_share_q"])
    wf = wb["Flux"]
    lines = flow_lines(ro, "epci", "commute", ref=BREST, top=100_000)
    assert wf.max_row - 1 == len(lines)
    hf = {c.value: i for i, c in enumerate(wf[1])}
    total = sum(r[hf["Flux"]] for r in wf.iter_rows(min_row=2, values_only=True))
    assert _close(total, lines["value"].sum())
    sources = {r[0]: r[1] for r in wb["Sources"].iter_rows(values_only=True)}
    assert "Géographie de référence" in sources and "maillage" in sources["Logiciel"]


def test_gpkg_read_back_with_pyogrio(ro, bundle):
    import pyogrio
    from pyogrio.raw import read

    folder, _ = bundle
    path = folder / "epci_242900314.gpkg"
    layers = {name: gtype for name, gtype in pyogrio.list_layers(path)}
    assert layers == {"territoires": "MultiPolygon", "flux": "LineString",
                      "perimetres": "MultiPolygon", "provenance": None}  # fmt: skip
    meta, _, geoms, fields = read(path, layer="territoires")
    assert meta["crs"] == "EPSG:4326"
    cols = {name: arr for name, arr in zip(meta["fields"], fields)}
    assert cols["ref"][0] == BREST and cols["role"][0] == "territoire"
    prof = profile(ro, BREST)
    for ind in prof["kinds"]["commute"]["indicators"]:
        assert _close(cols[f"commute_{ind['name']}"][0], ind["value"]), ind["name"]
    table = indicator_table(ro, "epci", "commute")
    for i in range(1, len(cols["code"])):
        code = cols["code"][i]
        assert _close(cols["commute_self_containment"][i], table.at[code, "self_containment"])
    lib = partners(ro, BREST, "commute", top=None)
    lib = lib[~lib["partner_code"].str.startswith("!")].set_index("partner_code")
    for i in range(1, len(cols["code"])):
        code = cols["code"][i]
        assert _close(cols["commute_flux_partenaire_vers_territoire"][i], lib.at[code, "in_value"])
    assert all(g is not None and len(g) > 0 for g in geoms)
    fmeta, _, fgeoms, ffields = read(path, layer="flux")
    fcols = dict(zip(fmeta["fields"], ffields))
    lines = flow_lines(ro, "epci", "commute", ref=BREST, top=100_000)
    assert len(fgeoms) == len(lines)
    assert _close(np.sum(fcols["value"]), lines["value"].sum())
    assert set(fcols["modelise"]) == {"oui"}
    pmeta, _, _, pfields = read(path, layer="perimetres")
    prefs = set(dict(zip(pmeta["fields"], pfields))["ref"])
    assert "per:pole-metropolitain-pays-de-brest" in prefs
    vmeta, _, _vgeoms, vfields = read(path, layer="provenance", read_geometry=False)
    keys = set(dict(zip(vmeta["fields"], vfields))["key"])
    assert {"software", "reference_geography", "crs", "source_commute"} <= keys


def test_perimeter_gpkg_holds_the_perimeter(ro, tmp_path):
    from pyogrio.raw import read

    path = export_gpkg(ro, "per:pole-metropolitain-pays-de-brest", tmp_path / "p.gpkg")
    meta, _, _geoms, fields = read(path, layer="perimetres")
    cols = dict(zip(meta["fields"], fields))
    assert list(cols["ref"]) == ["per:pole-metropolitain-pays-de-brest"]
    assert cols["n_communes"][0] > 1


def test_unwritable_folder_is_a_clear_error_and_leaves_nothing(ro, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        export_xlsx(ro, BREST, blocker / "sub" / "x.xlsx")
    with pytest.raises(OutputError):
        export_bundle(ro, BREST, tmp_path / "b", ("pdf",))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_atomic_write_removes_the_partial_file(tmp_path):
    def half(tmp):
        tmp.write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "out.csv", half)
    assert list(tmp_path.iterdir()) == []


def test_export_any_dispatches_formats(ro, tmp_path):
    from maillage.cli_reports import export_any

    files = export_any(ro, BREST, "xlsx", tmp_path)
    assert [p.suffix for p in files] == [".xlsx", ".json"]
    with pytest.raises(OutputError, match="unknown export format"):
        export_any(ro, BREST, "docx", tmp_path)


def test_router_serves_xlsx_gpkg_and_sheet(ro, tmp_path):
    import io

    from fastapi import FastAPI
    from fastapi.testclient import TestClient
    from openpyxl import load_workbook

    from maillage.delivery.reports.routes import make_router

    app = FastAPI()
    app.include_router(make_router(lambda: ro), prefix="/api/v1")
    client = TestClient(app)
    r = client.get("/api/v1/exports/bundle.xlsx", params={"ref": BREST})
    assert r.status_code == 200
    assert load_workbook(io.BytesIO(r.content)).sheetnames[0] == "Indicateurs"
    g = client.get("/api/v1/exports/bundle.gpkg", params={"ref": BREST})
    assert g.status_code == 200 and g.content[:16] == b"SQLite format 3\x00"
    h = client.get("/api/v1/reports/sheet.html", params={"ref": BREST, "with": "epci:242900801"})
    assert h.status_code == 200 and "Fiche binôme" in h.text
