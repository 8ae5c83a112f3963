"""Wage-mass transfers: wage files, the estimate, the store, the metropoles' benchmark.

Hand-worked values: the base communale fixture gives hourly net wages (SNHM14); annual =
hourly × 1 820 h. Lyon appears as 69123 (16.5) and as its 1st arrondissement 69381 (17.0): the
reference commune gets their mean, 16.75 × 1 820 = 30 485 €. Villeurbanne 13.2 → 24 024 €,
Rennes 15.0 → 27 300 €, the former commune 35020 (now 35130) 12.0 → 21 840 €.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from maillage._errors import SourceError, StoreError, ValidationError
from maillage.analysis import wages as AW
from maillage.sources import wages as SW

DATA = Path(__file__).parent / "data" / "wages"
BASE = DATA / "salaires_base_communale_2014.csv"
SIMPLE = DATA / "salaires_annuels.csv"

LYON, VILLEURBANNE, RENNES = 30485.0, 24024.0, 27300.0
LYON_METROPOLE = "200046977"


def _wages(w: SW.WageFile) -> dict[str, float]:
    return dict(zip(w.table["code"], w.table["annual_wage"]))


# -- reading ----------------------------------------------------------------------------------


def test_base_communale_read_as_published():
    w = SW.read_wages(BASE)
    assert w.layout == "base_communale" and w.vintage == 2014
    got = _wages(w)
    assert got["69123"] == pytest.approx(LYON)
    assert got["69266"] == pytest.approx(VILLEURBANNE)
    assert got["35238"] == pytest.approx(RENNES)
    assert got["35130"] == pytest.approx(12.0 * 1820)
    assert "01001" not in got  # secret value 's'
    assert w.rows_read == 7 and w.rows_missing == 1
    assert any("98765" in x for x in w.warnings)


def test_simple_csv():
    w = SW.read_wages(SIMPLE)
    assert w.layout == "simple" and w.vintage is None
    assert _wages(w) == {"35238": 30000.0, "69123": 36000.0, "69266": 28000.0}


def test_bad_values_listed_with_lines():
    with pytest.raises(SourceError) as exc:
        SW.read_wages(DATA / "salaires_annuels_erreurs.csv")
    err = exc.value
    assert err.line == 3 and err.column == "annual_wage_eur"
    assert "'beaucoup' is not a number" in str(err)
    assert "line 4" in str(err) and "negative" in str(err)


def test_unknown_layout(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("commune;salaire\n69123;3\n")
    with pytest.raises(SourceError) as exc:
        SW.read_wages(path)
    assert exc.value.line == 1
    assert "SNHMyy" in str(exc.value) and "annual_wage_eur" in str(exc.value)


def test_complete_wages_fills_gaps():
    w = SW.read_wages(SIMPLE)
    communes = pd.DataFrame(
        {"code": ["69123", "69266", "69001", "01001"], "dep": ["69", "69", "69", "01"]}
    )
    out = SW.complete_wages(w, communes).set_index("code")
    assert out.loc["69001", "annual_wage"] == pytest.approx((36000 + 28000) / 2)
    assert out.loc["69001", "wage_origin"] == "departement_mean"
    assert out.loc["01001", "annual_wage"] == SW.NATIONAL_DEFAULT_ANNUAL_NET_WAGE == 32820.0
    assert out.loc["01001", "wage_origin"] == "national_default"


# -- estimate (pure) -------------------------------------------------------------------------


def test_estimate_direction_and_values():
    commute = pd.DataFrame(
        {
            "origin": ["A", "B", "A"],
            "destination": ["B", "B", "X"],
            "value": [10.0, 5.0, 2.0],
            "flag": [None, None, "abroad"],
        }
    )
    wages = pd.DataFrame({"code": ["A", "B"], "annual_wage": [100.0, 300.0]})
    flows, info = AW.estimate_wage_flows(commute, wages, wage_at="work")
    got = {(o, d): v for o, d, v in flows.itertuples(index=False)}
    assert got == {("B", "A"): 3000.0, ("B", "B"): 1500.0}  # money goes work → home
    assert info["workers_left_out"] == 2.0
    flows_r, _ = AW.estimate_wage_flows(commute, wages, wage_at="residence")
    got_r = {(o, d): v for o, d, v in flows_r.itertuples(index=False)}
    assert got_r[("B", "A")] == 1000.0
    with pytest.raises(ValidationError):
        AW.estimate_wage_flows(commute, wages, wage_at="moon")


# -- in the store ----------------------------------------------------------------------------


@pytest.fixture()
def commuting_store(store):
    from maillage.build import store_flows

    table = pa.table(
        {
            "origin": ["69266", "69123", "69123", "35238", "69123"],
            "destination": ["69123", "69266", "69123", "69123", "99999"],
            "value": [1000.0, 400.0, 5000.0, 10.0, 7.0],
        }
    )
    store_flows(
        store,
        table,
        kind="commute",
        vintage=2021,
        source="test",
        file_name="t.csv",
        sha256="c0",
        rows_read=5,
    )
    return store


def _flows(store) -> dict[tuple[str, str], float]:
    df = store.df("SELECT origin, destination, value FROM flow WHERE kind = 'wage'")
    return {(o, d): v for o, d, v in df.itertuples(index=False)}


def test_import_wages_from_base_communale(commuting_store):
    from maillage.import_firms import import_wages

    rep = import_wages(commuting_store, BASE)
    assert rep.kind == "wage" and rep.vintage == 2021
    status = commuting_store.scalar("SELECT DISTINCT status FROM flow WHERE kind = 'wage'")
    assert status == "modelled"
    got = _flows(commuting_store)
    assert got[("69123", "69266")] == pytest.approx(1000 * LYON)  # Lyon jobs → Villeurbanne
    assert got[("69266", "69123")] == pytest.approx(400 * VILLEURBANNE)
    assert got[("69123", "35238")] == pytest.approx(10 * LYON)
    assert ("99999", "69123") not in got
    assert any("7 commuters" in w for w in rep.warnings)
    # indicators of the wage kind
    bal = AW.wage_balance(commuting_store, "commune")
    v = bal.loc["69266"]
    assert v["brought_home"] == pytest.approx(1000 * LYON)
    assert v["paid_to_non_residents"] == pytest.approx(400 * VILLEURBANNE)
    assert v["net_balance"] == pytest.approx(1000 * LYON - 400 * VILLEURBANNE)
    prof = AW.wage_profile(commuting_store, "commune:69266")
    assert {i["name"] for i in prof["indicators"]} >= {"brought_home", "net_balance"}
    # same inputs again: nothing changes; another method: replaced
    assert import_wages(commuting_store, BASE).skipped
    import_wages(commuting_store, BASE, wage_at="residence")
    assert _flows(commuting_store)[("69123", "69266")] == pytest.approx(1000 * VILLEURBANNE)


def test_national_default_without_file(commuting_store):
    from maillage.import_firms import import_wages

    rep = import_wages(commuting_store, None)
    assert rep.file == "national default"
    got = _flows(commuting_store)
    assert got[("69123", "69266")] == pytest.approx(1000 * 32820.0)


def test_metropoles_benchmark(commuting_store):
    from maillage.import_firms import import_wages

    import_wages(commuting_store, BASE)
    table = AW.metropole_redistribution(commuting_store)
    n_met = commuting_store.scalar(
        "SELECT count(*) FROM territory WHERE level = 'epci' AND type IN ('MET', 'MET69')"
    )
    assert len(table) == n_met + 1 and table.index[-1] == "moyenne"
    lyon = table.loc[LYON_METROPOLE]
    generated = 1000 * LYON + 5000 * LYON + 10 * LYON + 400 * VILLEURBANNE
    assert lyon["generated"] == pytest.approx(generated)
    assert lyon["to_rest_of_france"] == pytest.approx(10 * LYON)  # only Rennes is outside
    assert lyon["to_departement"] == 0.0
    assert lyon["share_rest_of_france"] == pytest.approx(10 * LYON / generated)
    mean = table.loc["moyenne"]
    assert mean["to_rest_of_france"] == pytest.approx(10 * LYON / n_met)
    assert mean["share_rest_of_france"] == pytest.approx(10 * LYON / generated)
    sentence = AW.benchmark_sentence(table)
    assert sentence.startswith(f"En moyenne, les {n_met} métropoles")
    assert "M€" in sentence and "%" in sentence


def test_metropoles_with_aav(commuting_store):
    from maillage.import_firms import import_wages

    import_wages(commuting_store, BASE)
    aav = pd.DataFrame({"commune": ["69123", "69266", "35238"], "aav": ["002", "002", "002"]})
    table = AW.metropole_redistribution(commuting_store, aav=aav)
    # with Rennes put (artificially) in Lyon's AAV, all the hinterland flow is in the AAV
    assert table.loc[LYON_METROPOLE, "to_aav"] == pytest.approx(10 * LYON)


def test_no_commute_no_wages(store):
    from maillage.import_firms import import_wages

    with pytest.raises(StoreError, match="no commuting flows"):
        import_wages(store, None)
    with pytest.raises(StoreError, match="no wage flows"):
        AW.metropole_redistribution(store)


def test_cli_wages_and_metropoles(tmp_path, reference_db, monkeypatch):
    import shutil

    from typer.testing import CliRunner

    from maillage.build import store_flows
    from maillage.cli_firms import app
    from maillage.store import Store

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(reference_db, home / "maillage.duckdb")
    with Store(home / "maillage.duckdb") as s:
        store_flows(
            s,
            pa.table({"origin": ["69266"], "destination": ["69123"], "value": [100.0]}),
            kind="commute",
            vintage=2021,
            source="test",
            file_name="t",
            sha256="x",
            rows_read=1,
        )
    monkeypatch.setenv("MAILLAGE_HOME", str(home))
    r = CliRunner().invoke(app, ["wages", str(SIMPLE)])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, ["metropoles", "-o", str(tmp_path / "m.csv")])
    assert r.exit_code == 0, r.output
    assert "En moyenne" in r.output
    assert (tmp_path / "m.csv").read_text().startswith("code,")


def test_metropoles_with_real_aav_table(commuting_store):
    """The AAV 2020 of COGugaison's 2024 table, read in place: Rennes is not in Lyon's AAV."""
    from conftest import shared_data

    from maillage.import_firms import import_wages

    path = shared_data("cogugaison", "table_supracom_2024.csv")
    aav = pd.read_csv(path, sep=";", dtype=str, usecols=["CODGEO", "AAV2020"]).rename(
        columns={"CODGEO": "commune", "AAV2020": "aav"}
    )
    import_wages(commuting_store, BASE)
    table = AW.metropole_redistribution(commuting_store, aav=aav)
    lyon = table.loc[LYON_METROPOLE]
    assert lyon["to_aav"] == 0.0
    assert lyon["to_rest_of_france"] == pytest.approx(10 * LYON)
