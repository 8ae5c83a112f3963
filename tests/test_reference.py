"""Tests of the embedded territorial reference: tables, memberships, geometry, search."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import shapely

from maillage import reference
from maillage._errors import AmbiguousTerritory, UnknownTerritory
from maillage.reference import search

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
SUPRACOM_2024 = SHARED / "cogugaison" / "table_supracom_2024.csv"
NPM_COMMUNES = Path("/tmp/refsrc/package/data/communes.json")


@pytest.fixture(scope="module")
def com() -> pd.DataFrame:
    return reference.communes()


@pytest.fixture(scope="module")
def com_arm() -> pd.DataFrame:
    return reference.communes(include_arm=True)


# --- communes --------------------------------------------------------------------------------


def test_counts(com, com_arm):
    assert len(com) == 34_875
    assert com["code"].is_unique
    assert (com["type"] == "COM").all()
    arm = com_arm[com_arm["type"] == "ARM"]
    assert len(arm) == 45
    assert len(reference.departements()) == 101
    assert len(reference.regions()) == 18
    assert len(reference.epci()) == 1_255
    assert len(reference.ept()) == 11


def test_codes_are_five_character_strings_and_corsica_kept(com):
    assert com["code"].map(len).eq(5).all()
    assert com["code"].str.fullmatch(r"\d{5}|2[AB]\d{3}").all()
    corsica = com[com["dep"].isin(["2A", "2B"])]
    assert len(corsica) == 360
    assert corsica["code"].str[:2].eq(corsica["dep"]).all()
    assert {"2A", "2B"} <= set(reference.departements()["code"])


def test_no_collectivite_outre_mer(com):
    assert not com["dep"].str.match(r"97[5789]|98").any()
    assert set(com.loc[com["dep"].str.startswith("97"), "dep"]) == {
        "971",
        "972",
        "973",
        "974",
        "976",
    }


def test_every_commune_has_a_point_inside_france(com_arm):
    assert com_arm[["lon", "lat"]].notna().all().all()
    metro = com_arm[~com_arm["dep"].str.startswith("97")]
    assert metro["lon"].between(-5.3, 9.7).all()
    assert metro["lat"].between(41.3, 51.2).all()


def test_points_lie_in_their_polygons(com_arm):
    shapes = pd.concat([reference.shapes("commune"), reference.shapes("arm")])
    pts = com_arm.set_index("code").loc[shapes.index]
    inside = shapely.dwithin(
        shapes.to_numpy(), shapely.points(pts["lon"].to_numpy(), pts["lat"].to_numpy()), 0.0101
    )
    assert inside.all(), list(shapes.index[~inside][:10])


def test_communes_without_polygon_are_the_four_re_established_in_2025(com):
    polys = set(reference.geometry("commune")["code"])
    missing = sorted(set(com["code"]) - polys)
    assert missing == ["15031", "15035", "15047", "15171"]
    assert (com.set_index("code").loc[missing, "point_source"] == "approximate").all()


def test_area_is_plausible(com):
    # Paris intra-muros is 105.4 km² (IGN); communes of France total about 640,000 km²
    paris = com.set_index("code").loc["75056", "area_km2"]
    assert 100 < paris < 110
    assert 600_000 < com["area_km2"].sum() < 660_000


def test_epci_membership_of_big_cities(com):
    epci = com.set_index("code")["epci"]
    assert epci["29019"] == "242900314"  # Brest
    assert epci["31555"] == "243100518"  # Toulouse
    assert epci["44109"] == "244400404"  # Nantes
    assert epci["76540"] == "200023414"  # Rouen


def test_only_island_communes_have_no_epci(com):
    # the four single-commune islands exempted from intercommunality (CGCT L5210-1-1)
    assert sorted(com.loc[com["epci"].isna(), "code"]) == ["22016", "29083", "29155", "85113"]


@pytest.mark.skipif(not SUPRACOM_2024.exists(), reason="COGugaison extract absent")
def test_epci_membership_agrees_with_insee_2024_for_stable_communes(com):
    insee = pd.read_csv(SUPRACOM_2024, sep=";", dtype=str)
    insee = insee[insee["EPCI"] != "ZZZZZZZZZ"].set_index("CODGEO")["EPCI"]
    ours = com.set_index("code")["epci"].dropna()
    common = ours.index.intersection(insee.index)
    agree = (ours[common] == insee[common]).mean()
    # EPCI perimeters change a little each 1 January (2024 → 2026)
    assert agree > 0.98


def test_arm_parents(com_arm):
    arm = com_arm[com_arm["type"] == "ARM"]
    assert arm.groupby("parent").size().to_dict() == {"13055": 16, "69123": 9, "75056": 20}
    assert (
        arm["code"]
        .str[:3]
        .map({"751": "75056", "693": "69123", "132": "13055"})
        .eq(arm["parent"])
        .all()
    )


def test_arm_population_sums_to_parent(com_arm):
    t = com_arm.set_index("code")
    arm = com_arm[com_arm["type"] == "ARM"]
    sums = arm.groupby("parent")["population"].sum()
    for parent, total in sums.items():
        assert abs(total - t.loc[parent, "population"]) <= 0.001 * total


# --- aggregates ------------------------------------------------------------------------------


def test_epci_population_is_sum_of_members(com):
    e = reference.epci().set_index("code")
    by_epci = com.groupby("epci")["population"].sum()
    assert (by_epci.reindex(e.index) == e["population"]).all()
    assert (com.groupby("epci").size().reindex(e.index) == e["n_communes"]).all()


@pytest.mark.skipif(not NPM_COMMUNES.exists(), reason="npm source absent")
def test_population_matches_npm_source(com):
    raw = json.loads(NPM_COMMUNES.read_text(encoding="utf-8"))
    npm = {c["code"]: c.get("population") for c in raw if c["type"] == "commune-actuelle"}
    ours = com.set_index("code")["population"]
    assert all(ours[c] == npm[c] for c in ours.index)


def test_epci_types():
    e = reference.epci()
    assert set(e["type"]) == {"MET", "MET69", "CU", "CA", "CC"}
    lyon = e.set_index("code").loc["200046977"]
    assert lyon["type"] == "MET69"
    assert lyon["dep"] == "69"


def test_departement_and_region_populations(com):
    d = reference.departements().set_index("code")
    r = reference.regions().set_index("code")
    assert (com.groupby("dep")["population"].sum().reindex(d.index) == d["population"]).all()
    assert d["population"].sum() == r["population"].sum() == com["population"].sum()
    assert (d["reg"].map(r["name"]).notna()).all()


def test_ept_cover_grand_paris_without_paris(com):
    members = com.dropna(subset=["ept"])
    assert "75056" not in set(members["code"])
    assert (members["epci"] == "200054781").all()
    assert len(members) == reference.epci().set_index("code").loc["200054781", "n_communes"] - 1


def test_territories_and_weighted_points(com):
    t = reference.territories()
    assert t.groupby("level").size().to_dict() == {
        "commune": 34_875,
        "departement": 101,
        "epci": 1_255,
        "ept": 11,
        "region": 18,
    }
    assert t[["level", "code"]].duplicated().sum() == 0
    assert t[["lon", "lat", "name", "type"]].notna().all().all()
    # independent recomputation of one weighted point
    brest = com[com["epci"] == "242900314"]
    w = brest["population"].astype(float)
    row = t[(t["level"] == "epci") & (t["code"] == "242900314")].iloc[0]
    assert row["lon"] == pytest.approx(np.average(brest["lon"], weights=w), abs=1e-4)
    assert row["lat"] == pytest.approx(np.average(brest["lat"], weights=w), abs=1e-4)


def test_memberships_are_transitive(com):
    m = reference.memberships()
    wide = m.pivot(index="commune", columns="level", values="code")
    assert len(wide) == len(com)
    assert (wide["commune"] == wide.index).all()
    dep_reg = reference.departements().set_index("code")["reg"]
    assert (wide["departement"].map(dep_reg) == wide["region"]).all()


def test_copies_are_independent():
    a = reference.communes()
    a.loc[0, "name"] = "changed"
    assert reference.communes().loc[0, "name"] != "changed"


# --- geometry --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "count"),
    [
        ("commune", 34_871),
        ("arm", 45),
        ("epci", 1_255),
        ("ept", 11),
        ("departement", 101),
        ("region", 18),
    ],
)
def test_geometry_layers(level, count):
    g = reference.shapes(level)
    assert len(g) == count
    assert g.index.is_unique
    assert shapely.is_valid(g.to_numpy()).all()
    assert not shapely.is_empty(g.to_numpy()).any()


def test_dissolved_region_area_close_to_communes(com):
    from pyproj import Geod

    geod = Geod(ellps="WGS84")
    region = reference.shapes("region")["53"]  # Bretagne
    area = abs(geod.geometry_area_perimeter(region)[0]) / 1e6
    communes_area = com.loc[com["reg"] == "53", "area_km2"].sum()
    assert area == pytest.approx(communes_area, rel=0.01)


def test_geometry_rejects_unknown_level():
    with pytest.raises(ValueError, match="unknown geometry level"):
        reference.geometry("canton")


# --- search ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("Brest Métropole", ("epci", "242900314")),
        ("brest metropole", ("epci", "242900314")),
        ("Brest", ("commune", "29019")),
        ("29019", ("commune", "29019")),
        ("com:29019", ("commune", "29019")),
        ("epci:242900314", ("epci", "242900314")),
        ("dep:29", ("departement", "29")),
        ("reg:53", ("region", "53")),
        ("2a004", ("commune", "2A004")),
        ("dep:2A", ("departement", "2A")),
        ("Toulouse Métropole", ("epci", "243100518")),
        ("L'ILE D'YEU", ("commune", "85113")),
        ("epci:Faucigny Glières", ("epci", "200000172")),
    ],
)
def test_resolve(ref, expected):
    assert search.resolve(ref) == expected


def test_resolve_ambiguous_lists_candidates():
    with pytest.raises(AmbiguousTerritory) as err:
        search.resolve("Saint-Denis")
    assert "com:93066 (Saint-Denis)" in err.value.candidates
    assert "com:97411 (Saint-Denis)" in err.value.candidates
    with pytest.raises(AmbiguousTerritory) as err:
        search.resolve("53")  # Mayenne and Bretagne
    assert sorted(err.value.candidates) == ["dep:53 (Mayenne)", "reg:53 (Bretagne)"]
    assert search.resolve("com:Paris") == ("commune", "75056")


def test_resolve_unknown():
    with pytest.raises(UnknownTerritory, match="Xyzzyville"):
        search.resolve("Xyzzyville")


def test_find_ranking():
    hits = search.find("nantes", limit=5)
    assert hits.loc[0, ["level", "code", "match"]].tolist() == ["commune", "44109", "exact"]
    order = hits["match"].map({"exact": 0, "prefix": 1, "contains": 2})
    assert order.is_monotonic_increasing
    for _, block in hits.groupby("match"):
        assert block["population"].is_monotonic_decreasing
    only = search.find("nantes", levels=["epci"])
    assert set(only["level"]) == {"epci"}


def test_normalise():
    assert search.normalise("Saint-Étienne") == search.normalise("st etienne")
    assert search.normalise("Communauté d'agglomération du Pays Basque") == "ca du pays basque"
