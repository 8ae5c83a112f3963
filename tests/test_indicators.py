"""Indicators and partners on a tiny hand-made territory, checked against hand computations."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from maillage.analysis import flows as fl
from maillage.analysis import indicators as ind
from maillage.analysis.territories import resolve
from maillage.store import Store

# four communes: A1, A2 in EPCI "E1", B1, B2 in EPCI "E2"; all in département "D"; a perimeter
# "p" made of A2 and B1 (overlapping both EPCI).
COMMUNES = ["11001", "11002", "11003", "11004"]
EPCI = {"11001": "E1", "11002": "E1", "11003": "E2", "11004": "E2"}
FLOWS = [  # origin, destination, value (residence → work)
    ("11001", "11001", 100.0),
    ("11001", "11002", 20.0),
    ("11001", "11003", 30.0),
    ("11002", "11002", 10.0),
    ("11002", "11001", 40.0),
    ("11003", "11003", 50.0),
    ("11003", "11001", 5.0),
    ("11004", "11003", 25.0),
    ("11004", "99999", 7.0),  # abroad
]


def _make_store(path, flows=FLOWS, status="observed") -> Store:
    store = Store(path)
    terr = [
        ("commune", c, f"Commune {c}", 1000.0 * (i + 1), "COM", 0.1 * i, 45.0)
        for i, c in enumerate(COMMUNES)
    ]
    terr += [
        ("epci", "E1", "CC Un", 3000.0, "CC", 0.0, 45.0),
        ("epci", "E2", "CC Deux", 7000.0, "CC", 0.3, 45.0),
        ("departement", "D", "Dép", 10000.0, "DEP", 0.1, 45.0),
        ("perimeter", "p", "Périmètre test", 5000.0, "pole", 0.15, 45.0),
    ]
    store.con.executemany("INSERT INTO territory VALUES (?, ?, ?, ?, ?, ?, ?)", terr)
    mem = [(c, "commune", c) for c in COMMUNES]
    mem += [(c, "epci", e) for c, e in EPCI.items()]
    mem += [(c, "departement", "D") for c in COMMUNES]
    mem += [("11002", "perimeter", "p"), ("11003", "perimeter", "p")]
    store.con.executemany("INSERT INTO membership VALUES (?, ?, ?)", mem)
    rows = [
        ("commute", 2021, status, o, d, v, "abroad" if d == "99999" else None, None)
        for o, d, v in flows
    ]
    store.con.executemany("INSERT INTO flow VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    store.refresh_aggregates()
    return store


@pytest.fixture()
def tiny(tmp_path):
    store = _make_store(tmp_path / "tiny.duckdb")
    yield store
    store.close()


def _hand_margins(members: set[str]) -> dict[str, float]:
    internal = sum(v for o, d, v in FLOWS if o in members and d in members)
    origin_total = sum(v for o, d, v in FLOWS if o in members)
    destination_total = sum(v for o, d, v in FLOWS if d in members)
    return {
        "internal": internal,
        "origin_total": origin_total,
        "destination_total": destination_total,
    }


@pytest.mark.parametrize(
    ("level", "code", "members"),
    [
        ("commune", "11001", {"11001"}),
        ("epci", "E1", {"11001", "11002"}),
        ("epci", "E2", {"11003", "11004"}),
        ("departement", "D", set(COMMUNES)),
        ("perimeter", "p", {"11002", "11003"}),
    ],
)
def test_margins_match_hand_computation(tiny, level, code, members):
    m = ind.margins(tiny, level, "commute", code=code).loc[code]
    hand = _hand_margins(members)
    for key, value in hand.items():
        assert m[key] == pytest.approx(value), key


def test_derived_indicators_of_e1(tiny):
    t = resolve(tiny, "epci:E1")
    got = {i["name"]: i["value"] for i in ind.indicators_for(tiny, t, "commute")["indicators"]}
    # E1 = {11001, 11002}: internal 100+20+10+40 = 170, residents 170+30 = 200,
    # jobs 170 + 5 (from 11003) = 175
    assert got["internal"] == pytest.approx(170)
    assert got["origin_total"] == pytest.approx(200)
    assert got["destination_total"] == pytest.approx(175)
    assert got["outflow"] == pytest.approx(30)
    assert got["inflow"] == pytest.approx(5)
    assert got["net_balance"] == pytest.approx(-25)
    assert got["self_containment"] == pytest.approx(170 / 200)
    assert got["destination_containment"] == pytest.approx(170 / 175)
    assert got["concentration"] == pytest.approx(100 * 175 / 200)


def test_stratum_statistics_and_rank(tiny):
    t = resolve(tiny, "epci:E1")
    res = ind.indicators_for(tiny, t, "commute")
    sc = next(i for i in res["indicators"] if i["name"] == "self_containment")
    # both EPCI are CC in the < 20k class: the stratum holds E1 (0.85) and E2
    e2 = _hand_margins({"11003", "11004"})
    e2_sc = e2["internal"] / e2["origin_total"]
    assert sc["stratum"]["n"] == 2
    assert sc["stratum"]["median"] == pytest.approx((0.85 + e2_sc) / 2)
    assert sc["stratum"]["rank"] == (1 if e2_sc < 0.85 else 2)


def test_partners_shares_both_sides(tiny):
    p = fl.partners(tiny, "epci:E1", "commute", top=None).set_index("partner_code")
    assert set(p.index) == {"E2"}
    e2 = p.loc["E2"]
    assert e2["out_value"] == pytest.approx(30)  # 11001 → 11003
    assert e2["in_value"] == pytest.approx(5)  # 11003 → 11001
    assert e2["out_share_p"] == pytest.approx(30 / 200)  # dependency of E1 on E2
    e2m = _hand_margins({"11003", "11004"})
    assert e2["in_share_q"] == pytest.approx(5 / e2m["origin_total"])  # dependency of E2 on E1
    assert e2["out_share_q"] == pytest.approx(30 / e2m["destination_total"])
    assert e2["reliability"] == "fragile"  # 35 < 200: INSEE's warning


def test_partners_of_commune_include_abroad(tiny):
    p = fl.partners(tiny, "com:11004", "commute", top=None, direction="out")
    assert set(p["partner_code"]) == {"11003", "!abroad"}
    assert p.loc[p.partner_code == "!abroad", "partner_name"].item() == "Étranger"


def test_perimeter_partners_are_epci(tiny):
    p = fl.partners(tiny, "per:p", "commute", top=None).set_index("partner_code")
    # outside p: 11001 (E1) and 11004 (E2). p → 11001: 11002→11001 40 + 11003→11001 5;
    # 11001 → p: 20 + 30; 11004 → p: 25; p → abroad: none
    assert p.loc["E1", "out_value"] == pytest.approx(45)
    assert p.loc["E1", "in_value"] == pytest.approx(50)
    assert p.loc["E2", "in_value"] == pytest.approx(25)


def test_between_pair_view(tiny):
    res = fl.between(tiny, "epci:E1", "epci:E2", "commute")
    assert res["a_to_b"] == pytest.approx(30)
    assert res["b_to_a"] == pytest.approx(5)
    assert res["balance_for_a"] == pytest.approx(-25)
    assert len(res["detail"]) == 2


def test_modelled_flows_are_labelled(tmp_path):
    store = _make_store(tmp_path / "m.duckdb", status="modelled")
    res = ind.indicators_for(store, resolve(store, "epci:E1"), "commute")
    assert res["meta"]["status"] == "modelled"
    assert all(i["status"] == "modelled" for i in res["indicators"])
    p = fl.partners(store, "epci:E1", "commute")
    assert set(p["reliability"]) == {"modelled"}
    store.close()


def test_aggregation_conserves_totals(tiny):
    total = sum(v for _, _, v in FLOWS)
    for level in ("epci", "departement", "region"):
        s = tiny.scalar("SELECT sum(value) FROM flow_agg WHERE level = ?", [level])
        assert s == pytest.approx(total)


# -- properties on random flows ------------------------------------------------------------

codes = st.sampled_from(COMMUNES)


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.tuples(codes, codes, st.floats(0, 1e5, allow_nan=False)), min_size=1, max_size=40)
)
def test_properties_random_flows(tmp_path_factory, random_flows):
    path = tmp_path_factory.mktemp("prop") / "s.duckdb"
    store = _make_store(path, flows=random_flows)
    try:
        # commune → EPCI → département equals commune → département
        via_epci = ind.margins(store, "epci", "commute")
        dep = ind.margins(store, "departement", "commute")
        assert dep.loc["D", "origin_total"] == pytest.approx(via_epci["origin_total"].sum())
        assert dep.loc["D", "destination_total"] == pytest.approx(
            via_epci["destination_total"].sum()
        )
        table = ind.indicator_table(store, "commune", "commute")
        sc = table["self_containment"].dropna()
        assert ((sc >= -1e-12) & (sc <= 1 + 1e-12)).all()
        total = sum(v for _, _, v in random_flows)
        assert table["origin_total"].sum() == pytest.approx(total, rel=1e-9, abs=1e-6)
    finally:
        store.close()


def test_pure_formulas_handle_zero_denominators():
    s = ind.self_containment(pd.Series([0.0, 5.0]), pd.Series([0.0, 10.0]))
    assert math.isnan(s.iloc[0]) and s.iloc[1] == 0.5
    assert s.name == "self_containment"
    assert ind.reliability(150.0, "observed") == "fragile"
    assert ind.reliability(300.0, "observed") == "caution"
    assert ind.reliability(900.0, "observed") == "reliable"
    assert ind.reliability(10.0, "modelled") == "modelled"


def test_thin_epci_stratum_is_widened_to_the_type(built_store):
    """Brest Métropole's class (100–250 k) holds too few métropoles: compare with all of them."""
    res = ind.indicators_for(built_store, resolve(built_store, "epci:242900314"), "commute")
    assert res["stratum"] == "epci/MET/*"
    n_met = built_store.scalar(
        "SELECT count(*) FROM territory WHERE level = 'epci' AND type IN ('MET', 'MET69')"
    )
    assert res["stratum_size"] == n_met
