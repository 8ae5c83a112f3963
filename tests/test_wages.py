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


# -- by socio-professional group (CS) ----------------------------------------------------------
#
# Hand-worked values from salaires_cs_base_communale_2014.csv (net hourly wages, × 1 820 h):
#
#   commune          SNHM14  C (cadres)  P (prof. int.)  E (employés)  O (ouvriers)
#   69123 Lyon        16.0     28.0         16.0            11.0          12.0
#   69266 Villeurb.   13.0     24.0         15.0            10.5          11.5
#   69259 Vénissieux  12.5     s → 26.0     14.5            10.0          11.0
#   35238 Rennes      15.0     26.0         15.5            10.8          11.6
#
# Vénissieux's cadres wage is secret ('s'): it gets the mean of its département's communes
# that have one, (28 + 24) / 2 = 26. CS 1, 2 and unknown get the commune's mean wage.

CS_BASE = DATA / "salaires_cs_base_communale_2014.csv"
TOTALS = DATA / "masses_salariales.csv"
URSSAF = DATA / "effectifs-salaries-et-masse-salariale-du-secteur-prive-par-region-x-na38.csv"
H = 1820.0
VENISSIEUX = "69259"

# residence → work, with the commuters by CS1 (None: no breakdown for that pair)
CS_COMMUTE = [
    ("69266", "69123", 100.0, {"3": 20.0, "4": 30.0, "5": 25.0, "6": 15.0, "2": 10.0}),
    (VENISSIEUX, "69123", 50.0, {"3": 10.0, "6": 40.0}),
    ("69123", VENISSIEUX, 40.0, {"3": 40.0}),
    ("35238", "69266", 10.0, {"4": 6.0}),  # 4 commuters without a CS
    ("69123", "69123", 500.0, None),
    ("69123", "99999", 7.0, {"3": 7.0}),  # abroad: no wage level
]
# the same flows in € (work → residence), worked by hand
EXPECTED_CS = {
    ("69123", "69266"): H * (20 * 28.0 + 30 * 16.0 + 25 * 11.0 + 15 * 12.0 + 10 * 16.0),
    ("69123", VENISSIEUX): H * (10 * 28.0 + 40 * 12.0),
    (VENISSIEUX, "69123"): H * (40 * 26.0),
    ("69266", "35238"): H * (6 * 15.0 + 4 * 13.0),
    ("69123", "69123"): H * (500 * 16.0),
}


def _cs_store(store, *, with_breakdown: bool = True):
    from maillage.build import store_flows

    rows = [(o, d, v) for o, d, v, _ in CS_COMMUTE]
    bd = [
        (o, d, "csp", cs, n)
        for o, d, _, split in CS_COMMUTE
        if split and with_breakdown
        for cs, n in split.items()
    ]
    # the other dimensions of a detail file are there too and must be ignored
    bd += [(o, d, "sex", "1", v) for o, d, v, _ in CS_COMMUTE if with_breakdown]
    store_flows(
        store,
        pa.table(
            {k: [r[i] for r in rows] for i, k in enumerate(["origin", "destination", "value"])}
        ),
        kind="commute",
        vintage=2021,
        source="detail_commute",
        file_name="FD_MOBPRO_2021.csv",
        sha256="cs" if with_breakdown else "nocs",
        rows_read=len(rows),
        status="observed",
        breakdown=pa.table(
            {
                k: pa.array([r[i] for r in bd], pa.float64() if k == "value" else pa.string())
                for i, k in enumerate(["origin", "destination", "dimension", "category", "value"])
            }
        ),
    )
    return store


def _wage_breakdown(store) -> dict[tuple[str, str, str], float]:
    df = store.df(
        "SELECT origin, destination, category, value FROM flow_breakdown "
        "WHERE kind = 'wage' AND dimension = 'csp'"
    )
    return {(o, d, c): v for o, d, c, v in df.itertuples(index=False)}


def test_cs_columns_read_as_published():
    w = SW.read_wages(CS_BASE)
    assert w.layout == "base_communale" and w.vintage == 2014 and w.has_cs
    by_cs = {(c, cs): v for c, cs, v in w.by_cs.itertuples(index=False)}
    assert by_cs[("69123", "3")] == pytest.approx(28.0 * H)
    assert by_cs[("35238", "5")] == pytest.approx(10.8 * H)
    assert (VENISSIEUX, "3") not in by_cs  # secret
    assert _wages(w)[VENISSIEUX] == pytest.approx(12.5 * H)
    # the unknown code is counted and reported, its wages unused
    assert w.unknown_codes == ["98765"]
    assert any("98765" in x and "unknown" in x for x in w.warnings)
    assert "98765" not in set(w.by_cs["code"])
    # the mean-only base (sex and age) has no CS: the old fixture
    assert not SW.read_wages(BASE).by_cs.empty  # all columns equal there, but present
    assert not SW.read_wages(SIMPLE).has_cs


def test_cs_wages_completed_by_departement_then_commune_mean():
    w = SW.read_wages(CS_BASE)
    communes = pd.DataFrame({"code": ["69123", VENISSIEUX, "01001"], "dep": ["69", "69", "01"]})
    levels = SW.complete_wages(w, communes)
    out = SW.complete_wages_by_cs(w, communes, levels).set_index(["code", "cs"])
    assert out.loc[(VENISSIEUX, "3"), "annual_wage"] == pytest.approx(28.0 * H)  # Lyon only
    assert out.loc[(VENISSIEUX, "3"), "wage_origin"] == "departement_mean"
    # 01001 has nothing in its département: its own (completed) mean wage
    assert out.loc[("01001", "4"), "wage_origin"] == "commune_mean"
    assert out.loc[("01001", "4"), "annual_wage"] == SW.NATIONAL_DEFAULT_ANNUAL_NET_WAGE
    assert SW.complete_wages_by_cs(SW.read_wages(SIMPLE), communes, levels) is None
    default = SW.complete_wages_by_cs(SW.national_default(), communes, levels)
    assert set(default["annual_wage"]) == {12 * m for m in (4573.0, 2656.0, 1959.0, 2031.0)}


def test_cs_column_missing_is_named(tmp_path):
    lines = CS_BASE.read_text("utf-8").splitlines()
    cols = lines[0].split(";")
    drop = cols.index("SNHMO14")
    path = tmp_path / "base-cc-salaires-2014.csv"
    path.write_text(
        "\n".join(";".join(c for i, c in enumerate(x.split(";")) if i != drop) for x in lines)
        + "\n",
        "utf-8",
    )
    with pytest.raises(SourceError) as exc:
        SW.read_wages(path)
    assert exc.value.line == 1 and exc.value.column == "SNHMO14"
    assert path.name in str(exc.value)


def test_cs_value_not_a_number_names_line_and_column(tmp_path):
    lines = CS_BASE.read_text("utf-8").splitlines()
    cells = lines[2].split(";")  # Villeurbanne, file line 3
    cells[4] = "abc"  # SNHMP14
    lines[2] = ";".join(cells)
    cells = lines[3].split(";")  # Vénissieux, line 4
    cells[6] = "-3"  # SNHMO14
    lines[3] = ";".join(cells)
    path = tmp_path / "salaires.csv"
    path.write_text("\n".join(lines) + "\n", "utf-8")
    with pytest.raises(SourceError) as exc:
        SW.read_wages(path)
    assert (exc.value.line, exc.value.column) == (3, "SNHMP14")
    assert "'abc' is not a number" in str(exc.value)
    assert "line 4, column SNHMO14: negative wage" in str(exc.value)


def test_estimate_by_cs_pure():
    commute = pd.DataFrame(
        [(o, d, v, "abroad" if d == "99999" else None) for o, d, v, _ in CS_COMMUTE],
        columns=["origin", "destination", "value", "flag"],
    )
    breakdown = pd.DataFrame(
        [(o, d, cs, n) for o, d, _, s in CS_COMMUTE if s for cs, n in s.items()],
        columns=["origin", "destination", "category", "value"],
    )
    w = SW.read_wages(CS_BASE)
    communes = pd.DataFrame({"code": ["69123", "69266", VENISSIEUX, "35238"]}).assign(
        dep=lambda d: d["code"].str[:2]
    )
    levels = SW.complete_wages(w, communes)
    cs_levels = SW.complete_wages_by_cs(w, communes, levels)
    flows, bd, info = AW.estimate_wage_flows_by_cs(commute, breakdown, levels, cs_levels)
    got = {(o, d): v for o, d, v in flows.itertuples(index=False)}
    assert got == pytest.approx(EXPECTED_CS)
    # the breakdown sums to each flow; the uncovered 4 commuters are 'unknown'
    sums = bd.groupby(["origin", "destination"])["value"].sum().to_dict()
    assert sums == pytest.approx(EXPECTED_CS)
    unknown = bd[(bd["origin"] == "69266") & (bd["category"] == "unknown")]["value"]
    assert unknown.tolist() == pytest.approx([4 * 13.0 * H])
    assert info["workers_left_out"] == 7.0
    assert info["workers_by_cs"]["3"] == 70.0
    assert info["workers_at_mean_wage"] == 10 + 4 + 500  # CS 2, uncovered, no breakdown
    assert info["pairs_without_breakdown"] == 1
    # at the place of residence: Villeurbanne's wages for its residents working in Lyon
    flows_r, _, _ = AW.estimate_wage_flows_by_cs(
        commute, breakdown, levels, cs_levels, wage_at="residence"
    )
    got_r = {(o, d): v for o, d, v in flows_r.itertuples(index=False)}
    assert got_r[("69123", "69266")] == pytest.approx(
        H * (20 * 24.0 + 30 * 15.0 + 25 * 10.5 + 15 * 11.5 + 10 * 13.0)
    )


def test_import_wages_by_cs_in_store(store):
    from maillage.import_firms import import_wages

    _cs_store(store)
    rep = import_wages(store, CS_BASE)
    assert rep.method == "cs" and "catégorie socioprofessionnelle" in rep.method_label
    assert any("method cs" in w for w in rep.warnings)
    assert any("98765" in w for w in rep.warnings)  # unknown code of the wage file
    assert _flows(store) == pytest.approx(EXPECTED_CS)
    bd = _wage_breakdown(store)
    assert bd[("69123", "69266", "3")] == pytest.approx(20 * 28.0 * H)
    assert bd[("69123", "69266", "2")] == pytest.approx(10 * 16.0 * H)
    per_pair: dict[tuple[str, str], float] = {}
    for (o, d, _), v in bd.items():
        per_pair[(o, d)] = per_pair.get((o, d), 0.0) + v
    assert per_pair == pytest.approx(EXPECTED_CS)
    assert (
        store.scalar("SELECT source FROM import_log WHERE kind = 'wage'")
        == "wage_estimate:base_communale:cs"
    )
    method = AW.wage_method(store)
    assert (
        method["method"] == "cs" and method["calibrated"] == [] and method["status"] == "modelled"
    )
    assert AW.wage_profile(store, "commune:69266")["method"]["method"] == "cs"
    table = AW.metropole_redistribution(store)
    assert "catégorie socioprofessionnelle" in table.loc["moyenne", "method"]
    assert "catégorie socioprofessionnelle" in AW.benchmark_sentence(table)


def test_import_wages_falls_back_to_mean_and_says_why(store):
    from maillage.import_firms import import_wages

    _cs_store(store, with_breakdown=False)
    rep = import_wages(store, CS_BASE)
    assert rep.method == "mean"
    assert any("no breakdown by socio-professional group" in w for w in rep.warnings)
    assert _flows(store)[("69123", "69266")] == pytest.approx(100 * 16.0 * H)
    assert not _wage_breakdown(store)
    assert AW.wage_method(store)["method"] == "mean"


def test_cs_breakdown_but_wage_file_without_cs(store):
    from maillage.import_firms import import_wages

    _cs_store(store)
    rep = import_wages(store, SIMPLE)
    assert rep.method == "mean"
    assert any("has no wage by socio-professional group" in w for w in rep.warnings)
    assert _flows(store)[("69123", "69266")] == pytest.approx(100 * 36000.0)


def test_national_defaults_by_cs_without_file(store):
    from maillage.import_firms import import_wages

    _cs_store(store)
    rep = import_wages(store, None)
    assert rep.method == "cs"
    expected = 12 * (20 * 4573.0 + 30 * 2656.0 + 25 * 1959.0 + 15 * 2031.0) + 10 * 32820.0
    assert _flows(store)[("69123", "69266")] == pytest.approx(expected)


# -- calibration (RAS) -------------------------------------------------------------------------


def _matrix() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "origin": ["a", "a", "b", "b"],
            "destination": ["x", "y", "x", "y"],
            "value": [1.0, 2.0, 3.0, 4.0],
        }
    )


def _margin_sums(flows: pd.DataFrame, col: str) -> dict[str, float]:
    return flows.groupby(col)["value"].sum().to_dict()


def test_ras_one_margin_is_exact_scaling():
    work = AW.Margin("work", pd.Series({"a": 6.0, "b": 14.0}))
    out, cal = AW.calibrate_ras(_matrix(), [work])
    assert out["value"].tolist() == pytest.approx([2.0, 4.0, 6.0, 8.0])
    assert cal.converged and cal.iterations == 1
    assert cal.margins[0].met == 2 and cal.margins[0].factors["min"] == pytest.approx(2.0)


def test_ras_both_margins_reproduced():
    work = AW.Margin("work", pd.Series({"a": 6.0, "b": 14.0}))
    home = AW.Margin("residence", pd.Series({"x": 10.0, "y": 10.0}))
    out, cal = AW.calibrate_ras(_matrix(), [work, home], tolerance=1e-9)
    assert cal.converged and cal.iterations > 1
    assert _margin_sums(out, "origin") == pytest.approx({"a": 6.0, "b": 14.0}, rel=1e-8)
    assert _margin_sums(out, "destination") == pytest.approx({"x": 10.0, "y": 10.0}, rel=1e-8)
    # RAS keeps the cross-product ratio of the seed matrix: (1 × 4) / (2 × 3)
    v = out.set_index(["origin", "destination"])["value"]
    ratio = v[("a", "x")] * v[("b", "y")] / (v[("a", "y")] * v[("b", "x")])
    assert ratio == pytest.approx(4.0 / 6.0)
    assert cal.mass_after == pytest.approx(20.0)


def test_ras_group_margin_and_unreachable_totals():
    group = AW.Margin(
        "work",
        pd.Series({"G": 20.0, "H": 5.0}),
        level="region",
        group_of=pd.Series({"a": "G", "b": "G", "c": "H"}),
    )
    out, cal = AW.calibrate_ras(_matrix(), [group])
    assert out["value"].tolist() == pytest.approx([2.0, 4.0, 6.0, 8.0])
    assert cal.margins[0].no_flow == ["H"]  # no flow leaves c
    assert cal.converged


def test_ras_conflicting_totals_reported():
    work = AW.Margin("work", pd.Series({"a": 6.0, "b": 14.0}))
    home = AW.Margin("residence", pd.Series({"x": 15.0, "y": 15.0}))
    _, cal = AW.calibrate_ras(_matrix(), [work, home], max_iterations=50)
    assert not cal.converged and cal.iterations == 50
    assert any("cannot be met" in w for w in cal.warnings)
    assert cal.margins[0].unmet  # the work margin is off after the last residence step
    with pytest.raises(ValidationError):
        AW.calibrate_ras(_matrix(), [])


def test_totals_simple_layout():
    t = SW.read_wage_totals(TOTALS)
    rows = {(s, lv, c): v for s, lv, c, v in t.table.itertuples(index=False)}
    assert rows == {
        ("work", "commune", "69123"): 40e6,
        ("residence", "commune", "69266"): 9e6,
        ("work", "commune", VENISSIEUX): 2e6,
    }
    assert t.layout == "simple" and t.rows_read == 3


def test_totals_bad_values_listed(tmp_path):
    path = tmp_path / "masses.csv"
    path.write_text(
        "code;level;wage_mass_work_eur\n"
        "69123;commune;100\n"
        "69266;commune;beaucoup\n"
        "35;canton;5\n"
        "69123;commune;7\n"
        "98765;commune;3\n",
        "utf-8",
    )
    with pytest.raises(SourceError) as exc:
        SW.read_wage_totals(path)
    err = exc.value
    assert (err.line, err.column) == (3, "wage_mass_work_eur")
    assert "'beaucoup' is not a number" in str(err)
    assert "line 4, column level: unknown level 'canton'" in str(err)
    assert "line 5" in str(err) and "already has a work total on line 2" in str(err)


def test_totals_unknown_codes_counted(tmp_path):
    path = tmp_path / "masses.csv"
    path.write_text("code;wage_mass_residence_eur\n69123;100\n98765;3\n98766;4\n", "utf-8")
    t = SW.read_wage_totals(path)
    assert t.unknown_codes == ["98765", "98766"]
    assert any("2 commune code(s)" in w and "lines 3, 4" in w for w in t.warnings)
    assert set(t.table["code"]) == {"69123"}


def test_urssaf_region_totals():
    t = SW.read_wage_totals(URSSAF, prefer_year=2021)
    got = dict(zip(t.table["code"], t.table["wage_mass"]))
    # 2021: four quarters × (10 M€ + 15 M€) gross for 84, × (1 + 3) for 53
    assert got == pytest.approx(
        {"84": 100e6 * SW.NET_TO_GROSS_2023, "53": 16e6 * SW.NET_TO_GROSS_2023}
    )
    assert set(t.table["side"]) == {"work"} and set(t.table["level"]) == {"region"}
    assert pytest.approx(2735 / 3613) == SW.NET_TO_GROSS_2023
    # 2022 holds two quarters only: the latest complete year is used, and said
    t22 = SW.read_wage_totals(URSSAF, prefer_year=2022)
    assert t22.year == 2021 and any("2021" in w for w in t22.warnings)
    with pytest.raises(SourceError, match="no row for year 1999"):
        SW.read_wage_totals(URSSAF, year=1999)


def test_urssaf_missing_column_named(tmp_path):
    lines = URSSAF.read_text("utf-8").splitlines()
    cols = lines[0].split(";")
    drop = cols.index("masse_salariale_brut")
    path = tmp_path / "urssaf.csv"
    path.write_text(
        "\n".join(";".join(c for i, c in enumerate(x.split(";")) if i != drop) for x in lines),
        "utf-8",
    )
    with pytest.raises(SourceError) as exc:
        SW.read_wage_totals(path)
    assert (exc.value.line, exc.value.column) == (1, "masse_salariale_brut")


def test_import_wages_calibrated_to_commune_totals(store):
    from maillage.import_firms import import_wages

    _cs_store(store)
    rep = import_wages(store, CS_BASE, totals=TOTALS)
    assert rep.calibration["converged"]
    got = _flows(store)
    # every total met within the documented tolerance
    # work totals: Lyon's jobs pay 40 M€, Vénissieux's 2 M€; residence: Villeurbanne 9 M€
    assert got[("69123", "69266")] == pytest.approx(9e6, rel=AW.RAS_TOLERANCE)
    lyon_rest = 40e6 - 9e6
    b, e = EXPECTED_CS[("69123", VENISSIEUX)], EXPECTED_CS[("69123", "69123")]
    assert got[("69123", VENISSIEUX)] == pytest.approx(
        lyon_rest * b / (b + e), rel=AW.RAS_TOLERANCE
    )
    assert got[("69123", "69123")] == pytest.approx(lyon_rest * e / (b + e), rel=AW.RAS_TOLERANCE)
    assert got[(VENISSIEUX, "69123")] == pytest.approx(2e6, rel=AW.RAS_TOLERANCE)
    assert got[("69266", "35238")] == pytest.approx(EXPECTED_CS[("69266", "35238")])  # free
    # the CS breakdown follows its pair
    bd = _wage_breakdown(store)
    assert sum(v for (o, d, _), v in bd.items() if (o, d) == ("69123", "69266")) == (
        pytest.approx(got[("69123", "69266")])
    )
    assert store.scalar("SELECT DISTINCT status FROM flow WHERE kind = 'wage'") == "modelled"
    method = AW.wage_method(store)
    assert method["calibrated"] == ["work", "residence"] and "RAS" in method["label"]
    assert any("calibrated by RAS (converged" in w for w in rep.warnings)


def test_import_wages_calibrated_to_urssaf_regions(store):
    from maillage.import_firms import import_wages

    _cs_store(store)
    rep = import_wages(store, CS_BASE, totals=[URSSAF])
    got = _flows(store)
    target = 100e6 * SW.NET_TO_GROSS_2023  # every wage flow leaves a commune of région 84
    assert sum(got.values()) == pytest.approx(target)
    factor = target / sum(EXPECTED_CS.values())
    assert got[("69266", "35238")] == pytest.approx(EXPECTED_CS[("69266", "35238")] * factor)
    # Bretagne has a total but no flow leaves it: named in the report
    assert any("cannot be met" in w and "53 Bretagne" in w for w in rep.warnings)
    margin = rep.calibration["margins"][0]
    assert margin["no_flow"] == ["53"] and margin["level"] == "region"


def test_cli_import_wages_with_totals(tmp_path, reference_db, monkeypatch):
    import shutil

    from typer.testing import CliRunner

    from maillage.cli import app
    from maillage.store import Store

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(reference_db, home / "maillage.duckdb")
    with Store(home / "maillage.duckdb") as s:
        _cs_store(s)
    monkeypatch.setenv("MAILLAGE_HOME", str(home))
    r = CliRunner().invoke(app, ["import", "wages", str(CS_BASE), "--totals", str(TOTALS)])
    assert r.exit_code == 0, r.output
    assert "Calage RAS : convergé" in r.output and "catégorie socioprofessionnelle" in r.output
    r = CliRunner().invoke(app, ["import", "flux-commute", str(CS_BASE), "--totals", str(TOTALS)])
    assert r.exit_code == 1 and "--totals only applies" in r.output
    with Store(home / "maillage.duckdb", read_only=True) as s:
        got = _flows(s)
    assert got[(VENISSIEUX, "69123")] == pytest.approx(2e6, rel=AW.RAS_TOLERANCE)


def test_real_mobpro_detail_sample_by_cs(store):
    """COGugaison's real FD_MOBPRO extract (Orne, CS1 column): wages by CS without a file.

    The expected mass is computed apart, in SQL, from the commuting breakdown the detail
    import stored: Σ over pairs inside the reference of workers(CS) × national wage(CS).
    """
    from conftest import shared_data

    from maillage.build import import_flows
    from maillage.import_firms import import_wages

    path = shared_data("cogugaison", "exemple_flux_mobpro_detail_orne_cog2014.csv")
    import_flows(store, path, source="detail_commute", kind="commute", vintage=2014)
    rep = import_wages(store, None)
    assert rep.method == "cs"
    cases = " ".join(
        f"WHEN '{cs}' THEN {12 * m}" for cs, m in SW.NATIONAL_CS_MONTHLY_NET_2023.items()
    )
    expected = store.scalar(
        f"""SELECT sum(b.value * CASE b.category {cases} ELSE {SW.NATIONAL_DEFAULT_ANNUAL_NET_WAGE}
                   END)
            FROM flow_breakdown b JOIN flow f ON f.kind = b.kind AND f.vintage = b.vintage
                 AND f.origin = b.origin AND f.destination = b.destination
            WHERE b.kind = 'commute' AND b.dimension = 'csp' AND f.flag IS NULL"""
    )
    assert rep.total_value == pytest.approx(expected)
    assert set(rep.workers_by_cs) == {"1", "2", "3", "4", "5", "6"}
    wage_bd = store.scalar(
        "SELECT sum(value) FROM flow_breakdown WHERE kind = 'wage' AND dimension = 'csp'"
    )
    assert wage_bd == pytest.approx(expected)


def test_catalogue_entries_and_catalog_addresses(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from maillage.cli_firms import app
    from maillage.sources import catalog

    urssaf = catalog.find("urssaf_wage_mass_region", 2024)
    assert urssaf.kind == "wage" and urssaf.url.startswith("https://open.urssaf.fr/")
    assert "ODbL" in urssaf.licence
    base = catalog.find("wages_cs_commune", 2014)
    assert base.url is None and base.page.startswith("https://www.data.gouv.fr/")
    # a catalogued file without a checked address: the command says where to get it
    monkeypatch.setenv("MAILLAGE_HOME", str(tmp_path))
    r = CliRunner().invoke(app, ["wages", "catalog:wages_cs_commune:2014"])
    assert r.exit_code == 1 and "download it from https://www.data.gouv.fr/" in r.output


def test_import_reports_unknown_total_codes(store, tmp_path):
    from maillage.import_firms import import_wages

    _cs_store(store)
    path = tmp_path / "masses.csv"
    path.write_text(
        "code;level;wage_mass_residence_eur\n69266;commune;9000000\n98765;commune;5\n99;region;7\n",
        "utf-8",
    )
    rep = import_wages(store, CS_BASE, totals=path)
    assert any("98765" in w and "line" in w for w in rep.warnings)
    assert any("1 region code(s)" in w and "99" in w for w in rep.warnings)
    assert _flows(store)[("69123", "69266")] == pytest.approx(9e6)
