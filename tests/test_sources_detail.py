"""Tests of maillage.sources.detail (INSEE detail files FD_MOBPRO, FD_MIGCOM, FD_MOBSCO).

Expected values: the COGugaison SOURCE.md figures for the real Orne sample, and an
independent reading of the hand-written fixtures with the ``csv`` module.
"""

from __future__ import annotations

import csv
import zipfile
from collections import defaultdict
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from maillage._errors import SourceError
from maillage.sources import read_detail

DATA = Path(__file__).parent / "data" / "sources"
MOBPRO = DATA / "FD_MOBPRO_2021.csv"
MIGCOM = DATA / "FD_MIGCOM_2016.csv"
MOBSCO = DATA / "FD_MOBSCO_2019.csv"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if not SHARED.exists():
    SHARED = Path("/work/shared/data")
ORNE = SHARED / "cogugaison" / "exemple_flux_mobpro_detail_orne_cog2014.csv"


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh, delimiter=";"))


def residence(row: dict[str, str]) -> str:
    arm = row.get("ARM")
    return arm if arm and arm != "ZZZZZ" else row["COMMUNE"]


def totals_of(table: pa.Table) -> dict[tuple[str, str], float]:
    return {
        (o, d): v
        for o, d, v in zip(
            table["origin"].to_pylist(),
            table["destination"].to_pylist(),
            table["value"].to_pylist(),
            strict=True,
        )
    }


def breakdown_of(table: pa.Table, dimension: str) -> dict[tuple[str, str, str], float]:
    part = table.filter(pc.equal(table["dimension"], dimension))
    return {
        (o, d, c): v
        for o, d, c, v in zip(
            part["origin"].to_pylist(),
            part["destination"].to_pylist(),
            part["category"].to_pylist(),
            part["value"].to_pylist(),
            strict=True,
        )
    }


def assert_close(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, abs=1e-9), key


# ---------------------------------------------------------------------------------------------
# The real COGugaison sample (Orne, COG 2014)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def orne():
    if not ORNE.exists():
        pytest.skip("shared COGugaison extract not available")
    return read_detail(ORNE)


def test_orne_total_weight_matches_source_md(orne):
    # SOURCE.md: 29,445 rows, IPONDI sum 111,236.36
    assert orne.rows_read == 29_445
    assert orne.weight_total == pytest.approx(111_236.36, abs=0.01)
    assert pc.sum(orne.totals["value"]).as_py() == pytest.approx(111_236.36, abs=0.01)


def test_orne_alencon_residents_match_source_md(orne):
    # SOURCE.md: Alençon 61001 weighted residents = 9,082.2
    from_alencon = orne.totals.filter(pc.equal(orne.totals["origin"], "61001"))
    assert pc.sum(from_alencon["value"]).as_py() == pytest.approx(9_082.2, abs=0.1)


def test_orne_layout_without_arm(orne):
    assert orne.kind == "commute" and orne.source == "detail_commute"
    assert orne.dimensions == ("age", "csp")
    assert orne.vintage is None and any("vintage" in w for w in orne.warnings)
    assert any("ARM" in w for w in orne.warnings)
    origins = set(orne.totals["origin"].to_pylist())
    assert all(len(c) == 5 for c in origins) and "61001" in origins


def test_orne_each_breakdown_sums_to_the_totals(orne):
    totals = totals_of(orne.totals)
    for dimension in orne.dimensions:
        sums: dict[tuple[str, str], float] = defaultdict(float)
        for (o, d, _), v in breakdown_of(orne.breakdown, dimension).items():
            sums[(o, d)] += v
        assert_close(dict(sums), totals)


def test_orne_age_groups_follow_the_documented_bands(orne):
    # independent reading: AGEREVQ lower bound → group
    def group(age: int) -> str:
        bands = [(65, "65+"), (55, "55-64"), (40, "40-54"), (25, "25-39"), (15, "15-24")]
        return next((label for low, label in bands if age >= low), "0-14")

    expected: dict[str, float] = defaultdict(float)
    for row in rows(ORNE):
        expected[group(int(row["AGEREVQ"]))] += float(row["IPONDI"])
    got: dict[str, float] = defaultdict(float)
    for (_, _, category), v in breakdown_of(orne.breakdown, "age").items():
        got[category] += v
    assert set(got) == set(expected)
    for key in expected:
        assert got[key] == pytest.approx(expected[key], abs=1e-6)


# ---------------------------------------------------------------------------------------------
# Fixtures in the published layouts
# ---------------------------------------------------------------------------------------------


def mobpro_oracle() -> tuple[dict, dict]:
    totals: dict[tuple[str, str], float] = defaultdict(float)
    modes: dict[tuple[str, str, str], float] = defaultdict(float)
    for row in rows(MOBPRO):
        destination = row["DCLT"]
        if destination == "99999" and row["DCFLT"] not in ("99999", "ZZZZZ"):
            destination = row["DCFLT"]
        key = (residence(row), destination)
        totals[key] += float(row["IPONDI"])
        modes[(*key, row["TRANS"])] += float(row["IPONDI"])
    return dict(totals), dict(modes)


def test_mobpro_totals_and_modes():
    detail = read_detail(MOBPRO)
    assert (detail.kind, detail.vintage, detail.cog_vintage) == ("commute", 2021, 2023)
    assert detail.dimensions == ("mode", "sex", "age", "csp")
    assert detail.rows_read == len(rows(MOBPRO))
    totals, modes = mobpro_oracle()
    assert_close(totals_of(detail.totals), totals)
    assert detail.table is detail.totals
    assert_close(breakdown_of(detail.breakdown, "mode"), modes)


def test_mobpro_residence_uses_arm_and_foreign_place_of_work():
    pairs = totals_of(read_detail(MOBPRO).totals)
    assert ("75112", "75108") in pairs and ("75120", "92012") in pairs
    assert not any(o in ("75056", "69123") for o, _ in pairs)
    assert ("01173", "SUC1L") in pairs  # DCLT 99999, DCFLT SUC1L (Genève)
    assert ("57463", "99999") in pairs  # DCLT 99999, DCFLT ZZZZZ: unspecified abroad
    assert ("69383", "69381") in pairs


def test_weights_are_not_rounded():
    detail = read_detail(MOBPRO)
    expected = sum(float(r["IPONDI"]) for r in rows(MOBPRO) if r["ARM"] == "75112")
    got = sum(v for (o, _), v in totals_of(detail.totals).items() if o == "75112")
    assert got == pytest.approx(expected, abs=1e-12)
    assert got != round(got, 6)


def test_migcom_direction_is_previous_to_current_residence():
    detail = read_detail(MIGCOM)
    assert (detail.kind, detail.vintage, detail.source) == (
        "residential",
        2016,
        "detail_residential",
    )
    expected: dict[tuple[str, str], float] = defaultdict(float)
    for row in rows(MIGCOM):
        expected[(row["DCRAN"], residence(row))] += float(row["IPONDI"])
    assert_close(totals_of(detail.totals), dict(expected))
    assert ("99999", "75112") in totals_of(detail.totals)


def test_mobsco_foreign_place_of_study_and_agerev10():
    detail = read_detail(MOBSCO)
    assert detail.kind == "school"
    expected: dict[tuple[str, str], float] = defaultdict(float)
    for row in rows(MOBSCO):
        destination = row["DCETUF"]
        if destination == "99999" and row["DCETUE"] not in ("99999", "ZZZZZ"):
            destination = row["DCETUE"]
        expected[(residence(row), destination)] += float(row["IPONDI"])
    assert_close(totals_of(detail.totals), dict(expected))
    ages = {c for (_, _, c) in breakdown_of(detail.breakdown, "age")}
    # AGEREV10 05 and 11 are under 15; 15 and 18 fall in 15-24
    assert ages == {"0-14", "15-24"}


def test_zip_with_varmod_dictionary_reads_the_fd_file(tmp_path):
    archive = tmp_path / "RP2021_mobpro_csv.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("varmod_MOBPRO_2021.csv", "COD_VAR;LIB_VAR;COD_MOD;LIB_MOD\nTRANS;x;1;y\n")
        zf.write(MOBPRO, MOBPRO.name)
    detail = read_detail(archive)
    assert detail.member == MOBPRO.name and detail.vintage == 2021
    assert_close(totals_of(detail.totals), mobpro_oracle()[0])


def test_vintage_given_when_the_name_has_none(tmp_path):
    path = tmp_path / "extrait.csv"
    path.write_bytes(MOBPRO.read_bytes())
    assert read_detail(path, vintage=2021).vintage == 2021


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def mobpro_with_line(line: int, new: str) -> str:
    lines = MOBPRO.read_text(encoding="utf-8").splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


def test_base_flux_points_to_read_flux():
    with pytest.raises(SourceError) as err:
        read_detail(DATA / "base-flux-mobilite-domicile-lieu-travail-2021.csv")
    assert "read_flux" in str(err.value)


def test_sirene_file_is_refused():
    with pytest.raises(SourceError) as err:
        read_detail(DATA / "StockEtablissement_extrait.csv")
    assert "Sirene" in str(err.value)


def test_kind_mismatch():
    with pytest.raises(SourceError) as err:
        read_detail(MIGCOM, kind="commute")
    assert "FD_MIGCOM" in str(err.value) and "kind='residential'" in str(err.value)


def test_vintage_mismatch_with_file_name():
    with pytest.raises(SourceError) as err:
        read_detail(MOBPRO, vintage=2019)
    assert "2021" in str(err.value)


def test_non_numeric_weight(tmp_path):
    text = mobpro_with_line(4, "75056;75112;99999;75112;25;5;1;quatre;1;2;2;2")
    path = write(tmp_path, "FD_MOBPRO_2021.csv", text)
    with pytest.raises(SourceError) as err:
        read_detail(path)
    assert (err.value.line, err.value.column) == (4, "IPONDI")
    assert "'quatre'" in str(err.value) and "FD_MOBPRO_2021.csv" in str(err.value)


def test_negative_weight_and_bad_code_are_both_listed(tmp_path):
    text = mobpro_with_line(6, "27229;ZZZZZ;99999;27229;20;6;1;-4.5;1;1;1;5")
    text = text.replace("2A004;ZZZZZ", "2A04;ZZZZZ")
    path = write(tmp_path, "FD_MOBPRO_2021.csv", text)
    with pytest.raises(SourceError) as err:
        read_detail(path)
    message = str(err.value)
    assert (err.value.line, err.value.column) == (6, "IPONDI")
    assert "2 problems" in message and "line 12, column COMMUNE" in message


def test_non_numeric_age(tmp_path):
    text = mobpro_with_line(3, "75056;75112;99999;75108;quarante;4;2;3.98;2;1;1;3")
    path = write(tmp_path, "FD_MOBPRO_2021.csv", text)
    with pytest.raises(SourceError) as err:
        read_detail(path)
    assert (err.value.line, err.value.column) == (3, "AGEREVQ")


def test_missing_weight_column(tmp_path):
    text = MOBPRO.read_text(encoding="utf-8").replace("IPONDI", "POIDS")
    path = write(tmp_path, "FD_MOBPRO_2021.csv", text)
    with pytest.raises(SourceError) as err:
        read_detail(path)
    assert "IPONDI" in str(err.value) and "POIDS" in str(err.value)


def test_header_only(tmp_path):
    path = write(tmp_path, "FD_MOBPRO_2021.csv", MOBPRO.read_text().splitlines()[0] + "\n")
    with pytest.raises(SourceError) as err:
        read_detail(path)
    assert "no data row" in str(err.value) and err.value.line == 2


def test_wrong_separator(tmp_path):
    path = write(tmp_path, "FD_MOBPRO_2021.csv", MOBPRO.read_text().replace(";", ","))
    with pytest.raises(SourceError) as err:
        read_detail(path)
    assert "','" in str(err.value) and err.value.line == 1
