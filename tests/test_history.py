"""Tests of commune-code history: embedded passage table, harmonisation, INSEE movements."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from maillage import reference
from maillage._errors import SourceError
from maillage.reference import history

DATA = Path(__file__).parent / "data" / "reference"
COGUGAISON = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "cogugaison"
FOREIGN = (
    Path(__file__).resolve().parents[1].parent
    / "shared"
    / "data"
    / "mobility_mobpro_foreign_places"
    / "insee_RP2021_mobpro_border_cities.csv"
)
needs_cogugaison = pytest.mark.skipif(not COGUGAISON.exists(), reason="COGugaison extract absent")


def test_embedded_history_shape():
    h = history.history()
    assert h["old_code"].is_unique
    assert (h["ratio"] == 1.0).all()
    assert set(h["kind"]) == {"merged", "delegated", "associated", "arrondissement"}
    current = set(reference.communes()["code"])
    assert not h["old_code"].isin(current).any()
    assert h["code"].isin(current).all()
    assert (h["kind"] == "arrondissement").sum() == 45


def test_harmonise_statuses():
    m = history.harmonise_codes(
        [
            "29019",
            "29096",
            "75101",
            "69381",
            "13216",
            "99999",
            "BE110",
            "SU001",
            "1001",
            "2a004",
            "00000",
            "foo",
        ]
    )
    got = m.set_index("input_code")[["code", "status"]].apply(tuple, axis=1).to_dict()
    assert got["29019"] == ("29019", "ok")
    assert got["29096"] == ("29019", "mapped")  # Saint-Marc, merged into Brest
    assert got["75101"] == ("75056", "mapped")
    assert got["69381"] == ("69123", "mapped")
    assert got["13216"] == ("13055", "mapped")
    assert got["99999"] == ("99999", "abroad")
    assert got["BE110"] == ("99999", "abroad")
    assert got["1001"] == ("01001", "ok")
    assert got["2a004"] == ("2A004", "ok")
    assert got["00000"][1] == "unknown"
    assert got["foo"][1] == "unknown"
    assert pd.isna(got["foo"][0])


@pytest.mark.skipif(not FOREIGN.exists(), reason="foreign places list absent")
def test_foreign_work_places_are_abroad():
    codes = pd.read_csv(FOREIGN, header=None, names=["code", "name"], dtype=str)["code"]
    m = history.harmonise_codes(codes)
    assert (m["status"] == "abroad").all(), m.loc[m["status"] != "abroad", "input_code"].tolist()[
        :5
    ]


@needs_cogugaison
def test_orne_mobpro_sample_maps_entirely():
    flows = pd.read_csv(
        COGUGAISON / "exemple_flux_mobpro_detail_orne_cog2014.csv", sep=";", dtype=str
    )
    codes = pd.concat([flows["COMMUNE"], flows["DCLT"]])
    m = history.harmonise_codes(codes)
    assert m["status"].isin(["ok", "mapped", "abroad"]).all(), m[m["status"] == "unknown"]
    # totals are conserved when weights are re-coded and summed
    weights = flows.assign(IPONDI=flows["IPONDI"].astype(float))
    coded = weights.merge(m, left_on="COMMUNE", right_on="input_code")
    assert (coded["IPONDI"] * coded["ratio"]).sum() == pytest.approx(weights["IPONDI"].sum())


def _cogugaison_2014_to_2024() -> dict[str, set[str]]:
    """Chain COGugaison's forward passage tables (variant insee) from COG 2014 to COG 2024."""
    p = pd.read_csv(COGUGAISON / "tables_passage_forward_1968_2024.csv", sep=";", dtype=str)
    p = p[p["variant"] == "insee"]
    cog = pd.read_csv(COGUGAISON / "cog_communes_1968_2024_with_pop.csv", sep=";", dtype=str)
    state = {c: {c} for c in cog.loc[cog["cog"] == "2014", "CODGEO"]}
    for year in range(2014, 2024):
        step: dict[str, set[str]] = {}
        for a, b in p.loc[p["cog_from"] == str(year), ["cod_from", "cod_to"]].itertuples(
            index=False
        ):
            step.setdefault(a, set()).add(b)
        state = {o: set().union(*(step.get(c, {c}) for c in cur)) for o, cur in state.items()}
    return state


@needs_cogugaison
def test_fusions_2014_to_2024_land_on_same_reference_commune():
    chain = _cogugaison_2014_to_2024()
    single = {o: next(iter(t)) for o, t in chain.items() if len(t) == 1}
    ours = history.harmonise_codes(list(single)).set_index("input_code")["code"]
    theirs = history.harmonise_codes(sorted(set(single.values()))).set_index("input_code")["code"]
    mismatch = sorted(o for o, t in single.items() if ours[o] != theirs[t])
    rate = 1 - len(mismatch) / len(single)
    assert rate > 0.999
    # Checked by hand against the COG lists: 15031/15035/15047/15171 were re-established out of
    # 15141 in 2025 (after COG 2024); 60455/60694 and 85165/85212 were re-established on
    # 1 January 2024 (COG 2024 lists 60694, 85165, 85212) but the COGugaison 2023→2024 insee
    # table records those rows in the merger direction.
    cog = pd.read_csv(COGUGAISON / "cog_communes_1968_2024_with_pop.csv", sep=";", dtype=str)
    cog2024 = set(cog.loc[cog["cog"] == "2024", "CODGEO"])
    for code in mismatch:
        target = ours[code]
        assert target not in cog2024 or (target in cog2024 and single[code] in cog2024), code
    assert set(mismatch) <= {"15031", "15035", "15047", "15171", "60455", "60694", "85165", "85212"}


@needs_cogugaison
def test_every_2014_code_is_known():
    chain = _cogugaison_2014_to_2024()
    m = history.harmonise_codes(list(chain))
    assert (m["status"] != "unknown").all()
    sums = m.groupby("input_code")["ratio"].sum()
    assert sums.sub(1).abs().max() < 1e-12


# --- INSEE movements file ----------------------------------------------------------------------


def test_movements_split_ratios_follow_reference_population():
    passage = history.load_insee_movements(DATA / "v_mvt_commune_extract.csv", since=2020)
    split = passage[passage["old_code"] == "15141"].set_index("code")
    codes = ["15031", "15035", "15047", "15141", "15171"]
    assert sorted(split.index) == codes
    assert (split["kind"] == "split").all()
    pop = reference.communes().set_index("code").loc[codes, "population"].astype(float)
    assert split.loc[codes, "ratio"].to_numpy() == pytest.approx((pop / pop.sum()).to_numpy())
    # the chef-lieu transfer of 2024 is a code change
    assert passage.set_index("old_code").loc["12076", ["code", "kind"]].tolist() == [
        "12218",
        "code_change",
    ]


def test_movements_respect_the_input_vintage():
    later = history.load_insee_movements(DATA / "v_mvt_commune_extract.csv", since=2025)
    assert later.empty  # nothing happens after 1 January 2025 in the file
    early = history.load_insee_movements(DATA / "v_mvt_commune_extract.csv", since=2016)
    # communes merged in 2016 and re-established in 2025 get their own counts back, whole
    assert not early["old_code"].isin(["15031", "15141"]).any()
    m = history.harmonise_codes(["15031", "15141"], passage=early)
    assert m[["code", "ratio"]].values.tolist() == [["15031", 1.0], ["15141", 1.0]]
    # the 2014 merger target of 61003 is followed
    assert early.set_index("old_code").loc["61003", "code"] == "61167"


def test_harmonise_with_passage_conserves_totals():
    passage = history.load_insee_movements(DATA / "v_mvt_commune_extract.csv", since=2020)
    m = history.harmonise_codes(["15141", "12076", "29019", "75112"], passage=passage)
    assert m.groupby("input_code")["ratio"].sum().sub(1).abs().max() < 1e-12
    assert (m.loc[m["input_code"] == "15141", "status"] == "mapped").all()
    assert len(m[m["input_code"] == "15141"]) == 5
    # without the passage, 15141 is a current code and stays whole
    alone = history.harmonise_codes(["15141"])
    assert alone[["code", "ratio", "status"]].values.tolist() == [["15141", 1.0, "ok"]]


def test_movements_bad_date_names_line_and_column():
    with pytest.raises(SourceError) as err:
        history.read_insee_movements(DATA / "v_mvt_commune_bad_date.csv")
    assert err.value.line == 3
    assert err.value.column == "DATE_EFF"
    assert "v_mvt_commune_bad_date.csv" in str(err.value)


def test_movements_wrong_separator():
    with pytest.raises(SourceError, match="missing column") as err:
        history.read_insee_movements(DATA / "v_mvt_commune_semicolon.csv")
    assert err.value.line == 1
