"""The command line, run as a user would (Typer's runner over the real built store)."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from maillage.cli import app

runner = CliRunner()
FLUX = (
    Path(__file__).parent / "data" / "build" / "base-flux-mobilite-domicile-lieu-travail-2021.csv"
)
DOCS = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


@pytest.fixture()
def home(built_db, tmp_path, monkeypatch) -> Path:
    shutil.copy(built_db, tmp_path / "maillage.duckdb")
    monkeypatch.setenv("MAILLAGE_HOME", str(tmp_path))
    return tmp_path


def run(*args: str):
    return runner.invoke(app, list(args), catch_exceptions=False)


def test_territory_by_name_json(home):
    res = run("territory", "Brest Métropole", "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert data["territory"]["code"] == "242900314"
    block = data["kinds"]["commute"]
    assert block["meta"]["status"] == "modelled"
    names = {i["name"] for i in block["indicators"]}
    assert {"self_containment", "net_balance", "concentration"} <= names
    assert data["partners"]["commute"], "top partners listed"


def test_territory_table_says_modelled(home):
    res = run("territory", "epci:242900314")
    assert res.exit_code == 0
    assert "MODÉLISÉ" in res.output
    assert "Brest Métropole" in res.output


def test_accent_and_case_insensitive_search(home):
    res = run("search", "SAINT ETIENNE", "--format", "csv")
    assert res.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert any(r["name"] == "Saint-Étienne" and r["level"] == "commune" for r in rows)


def test_flows_pair_and_csv(home):
    res = run("flows", "--from", "com:29019", "--to", "com:29075", "--format", "json")
    assert res.exit_code == 0
    d = json.loads(res.stdout)
    assert d["a_to_b"] > 0 and d["b_to_a"] > 0 and d["status"] == "modelled"
    res = run("flows", "--from", "dep:29", "--level", "departement", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert rows and rows[0]["partner_level"] == "departement"
    assert {"out_value", "in_value", "out_share_p", "in_share_q"} <= set(rows[0])


def test_unknown_territory_is_a_clear_error(home):
    res = run("territory", "com:00000")
    assert res.exit_code == 1
    assert "00000" in res.output and "maillage search" in res.output
    res = run("territory", "xyz:12")
    assert res.exit_code == 1 and "unknown level prefix" in res.output


def test_import_then_status_and_log(home):
    res = run("import", "flux-commute", str(FLUX), "--format", "json")
    assert res.exit_code == 0, res.output
    rep = json.loads(res.stdout)
    assert rep["rows_read"] == 13 and rep["rows_unknown"] == 1
    res = run("status", "--format", "json")
    held = json.loads(res.stdout)
    assert {"kind": "commute", "status": "observed"}.items() <= held[0].items()
    res = run("imports", "--format", "json")
    assert json.loads(res.stdout)[0]["file_name"] == FLUX.name


def test_import_wrong_kind_is_refused(home):
    res = run("import", "flux-residential", str(FLUX))
    assert res.exit_code == 1
    assert FLUX.name in res.output


def test_export_csv_files(home, tmp_path):
    outdir = tmp_path / "exports"
    res = run("export", "epci:242900314", "--to", "csv", "-o", str(outdir))
    assert res.exit_code == 0, res.output
    files = sorted(p.name for p in outdir.iterdir())
    assert "epci_242900314_indicators.csv" in files
    assert "epci_242900314_provenance.json" in files
    with open(outdir / "epci_242900314_indicators.csv", encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["status"] for r in rows} == {"modelled"}
    assert not [f for f in files if f.startswith(".part")]


def test_every_command_is_documented():
    text = DOCS.read_text("utf-8")
    names = [c.name or c.callback.__name__ for c in app.registered_commands]
    names += [g.name for g in app.registered_groups]
    missing = [n for n in names if not re.search(rf"`maillage {re.escape(n)}\b", text)]
    assert not missing, f"commands missing from docs/cli.md: {missing}"


def test_perimeter_add_then_indicators(home, tmp_path):
    f = tmp_path / "mes_perimetres.yaml"
    f.write_text(
        "perimeters:\n"
        "  - slug: brest-iroise\n"
        "    name: Brest et Iroise\n"
        "    members:\n"
        "      - epci:242900314\n"
        "      - epci:242900074\n",
        "utf-8",
    )
    res = run("perimeter", "add", str(f))
    assert res.exit_code == 0, res.output
    res = run("territory", "per:brest-iroise", "--format", "json")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    n = data["territory"]["n_communes"]
    res = run("territory", "epci:242900314", "--format", "json")
    m = json.loads(res.stdout)["territory"]["n_communes"]
    assert n > m  # Brest Métropole plus the Pays d'Iroise communes
    # rebuilding the reference keeps the user's perimeter
    assert run("build", "--force").exit_code == 0
    assert run("territory", "per:brest-iroise").exit_code == 0


def test_perimeter_with_unknown_epci_is_refused(home, tmp_path):
    f = tmp_path / "faux.yaml"
    f.write_text(
        "perimeters:\n  - slug: faux\n    name: Faux\n    members:\n"
        "      - epci:242900314\n      - epci:999999999\n",
        "utf-8",
    )
    res = run("perimeter", "add", str(f))
    assert res.exit_code == 1
    assert "999999999" in res.output and "faux.yaml" in res.output
    assert run("territory", "per:faux").exit_code == 1


def test_names_use_the_reference_normaliser(home):
    """Legal forms and "St" are understood, as in maillage.reference.search."""
    res = run("territory", "Communauté de communes du Pays d'Iroise", "--format", "json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["territory"]["code"] == "242900074"
    res = run("search", "st etienne", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(res.stdout)))
    assert rows[0]["name"] == "Saint-Étienne"
