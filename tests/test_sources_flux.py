"""Tests of maillage.sources.flux (INSEE bases flux) and sniff.

Expected values come from an independent reading of the fixtures with the ``csv`` module and
``Decimal`` sums, never from the code under test.
"""

from __future__ import annotations

import csv
import hashlib
import io
import zipfile
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pytest

from maillage._errors import SourceError
from maillage.sources import read_flux, sniff
from maillage.sources.flux import FLUX_SCHEMA

DATA = Path(__file__).parent / "data" / "sources"
COMMUTE = DATA / "base-flux-mobilite-domicile-lieu-travail-2021.csv"
RESIDENTIAL = DATA / "base-texte-flux-mobilite-residentielle-2016.csv"
SCHOOL = DATA / "base-flux-mobilite-domicile-lieu-etude-2020.csv"
RESIDENTIAL_5Y = DATA / "base-flux-mobilite-residentielle-2008.csv"
SIRENE = DATA / "StockEtablissement_extrait.csv"
DETAIL = DATA / "FD_MOBPRO_2021.csv"
SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if not SHARED.exists():
    SHARED = Path("/work/shared/data")


def oracle(path: Path, origin: str, destination: str, encoding: str = "utf-8") -> dict:
    """Pairs → Decimal sums, read with the csv module (independent of DuckDB)."""
    text = path.read_bytes().decode(encoding)
    sums: dict[tuple[str, str], Decimal] = {}
    for row in csv.DictReader(io.StringIO(text), delimiter=";"):
        value_col = next(c for c in row if c.startswith("NBFLUX_"))
        key = (row[origin], row[destination])
        sums[key] = sums.get(key, Decimal(0)) + Decimal(row[value_col].replace(",", "."))
    return sums


def as_dict(table: pa.Table) -> dict:
    return {
        (o, d): v
        for o, d, v in zip(
            table["origin"].to_pylist(),
            table["destination"].to_pylist(),
            table["value"].to_pylist(),
            strict=True,
        )
    }


def assert_matches(table: pa.Table, expected: dict) -> None:
    got = as_dict(table)
    assert set(got) == set(expected)
    for key, value in expected.items():
        assert got[key] == pytest.approx(float(value), abs=1e-9), key


def data_lines(path: Path) -> int:
    return len(path.read_bytes().splitlines()) - 1


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def commute_text() -> str:
    return COMMUTE.read_text(encoding="utf-8")


def replace_line(text: str, line: int, new: str) -> str:
    """Replace 1-based ``line`` of ``text``."""
    lines = text.splitlines()
    lines[line - 1] = new
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Reading the published layouts
# ---------------------------------------------------------------------------------------------


def test_commute_csv_matches_independent_reading():
    flux = read_flux(COMMUTE)
    assert (flux.kind, flux.vintage, flux.cog_vintage, flux.source) == (
        "commute",
        2021,
        2023,
        "flux_commute",
    )
    assert flux.encoding == "utf-8" and flux.separator == ";"
    assert flux.threshold is None and flux.member is None
    assert flux.value_column == "NBFLUX_C21_ACTOCC15P"
    assert flux.rows_read == data_lines(COMMUTE)
    assert flux.table.schema == FLUX_SCHEMA
    assert_matches(flux.table, oracle(COMMUTE, "CODGEO", "DCLT"))
    assert flux.sha256 == hashlib.sha256(COMMUTE.read_bytes()).hexdigest()


def test_codes_stay_five_character_strings():
    table = read_flux(COMMUTE).table
    origins = set(table["origin"].to_pylist())
    destinations = set(table["destination"].to_pylist())
    assert {"01001", "01173", "06088", "2A004", "2B033"} <= origins
    paris = {f"751{i:02d}" for i in range(1, 21)}
    assert paris <= origins and paris <= destinations
    assert all(len(code) == 5 for code in origins | destinations)


def test_intra_commune_rows_are_kept():
    pairs = as_dict(read_flux(COMMUTE).table)
    expected = {k for k in oracle(COMMUTE, "CODGEO", "DCLT") if k[0] == k[1]}
    assert expected and expected <= set(pairs)


def test_foreign_places_of_work_are_kept_and_flagged():
    flux = read_flux(COMMUTE)
    pairs = as_dict(flux.table)
    assert ("01173", "SUC1L") in pairs and ("06088", "MO001") in pairs
    assert any("outside France" in w for w in flux.warnings)


def test_residential_iso_8859_1_direction_is_dcran_to_codgeo():
    flux = read_flux(RESIDENTIAL)
    assert (flux.kind, flux.vintage, flux.encoding) == ("residential", 2016, "iso-8859-1")
    expected = oracle(RESIDENTIAL, "DCRAN", "CODGEO", encoding="iso-8859-1")
    assert_matches(flux.table, expected)
    # the row "27229;Évreux;75112;Paris 12e…" counts people who moved from Paris 12e to Évreux
    raw = RESIDENTIAL.read_bytes().decode("iso-8859-1").splitlines()
    row = next(r.split(";") for r in raw if r.startswith("27229;") and ";75112;" in r)
    assert as_dict(flux.table)[("75112", "27229")] == pytest.approx(float(row[4]))
    assert ("99999", "27229") in as_dict(flux.table)


def test_zip_with_nested_folder(tmp_path):
    archive = tmp_path / "base-texte-flux-mobilite-residentielle-2016.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(RESIDENTIAL, f"dossier/{RESIDENTIAL.name}")
    flux = read_flux(archive)
    assert flux.member == f"dossier/{RESIDENTIAL.name}"
    assert flux.encoding == "iso-8859-1"
    assert flux.sha256 == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert_matches(flux.table, oracle(RESIDENTIAL, "DCRAN", "CODGEO", encoding="iso-8859-1"))


def test_school_direction_is_codgeo_to_dcetu():
    flux = read_flux(SCHOOL)
    assert (flux.kind, flux.vintage, flux.source) == ("school", 2020, "flux_school")
    assert_matches(flux.table, oracle(SCHOOL, "CODGEO", "DCETU"))


def test_old_five_year_residential_base():
    flux = read_flux(RESIDENTIAL_5Y, kind="residential", vintage=2008)
    assert (flux.kind, flux.vintage) == ("residential", 2008)
    assert any("5-year" in w for w in flux.warnings)
    assert_matches(flux.table, oracle(RESIDENTIAL_5Y, "DCRAN", "CODGEO"))


def test_duplicate_pairs_are_summed(tmp_path):
    text = commute_text() + "75101;Paris 1er Arrondissement;75101;Paris 1er;0.500000\n"
    path = write(tmp_path, "dup.csv", text)
    flux = read_flux(path)
    assert_matches(flux.table, oracle(path, "CODGEO", "DCLT"))
    assert flux.rows_read == flux.table.num_rows + 1
    assert any("summed" in w for w in flux.warnings)


def test_unsorted_file_gives_the_same_pairs(tmp_path):
    lines = commute_text().splitlines()
    path = write(tmp_path, "melange.csv", "\n".join([lines[0], *reversed(lines[1:])]) + "\n")
    flux = read_flux(path)
    assert flux.rows_read == flux.table.num_rows
    assert_matches(flux.table, oracle(COMMUTE, "CODGEO", "DCLT"))


def test_decimal_comma_is_tolerated(tmp_path):
    path = write(tmp_path, "comma.csv", commute_text().replace(".", ","))
    flux = read_flux(path)
    assert_matches(flux.table, oracle(COMMUTE, "CODGEO", "DCLT"))
    assert any("decimal comma" in w for w in flux.warnings)


def test_utf8_bom_is_accepted(tmp_path):
    path = tmp_path / "bom.csv"
    path.write_bytes(b"\xef\xbb\xbf" + COMMUTE.read_bytes())
    assert_matches(read_flux(path).table, oracle(COMMUTE, "CODGEO", "DCLT"))


def make_xlsx(path: Path, rows: list[list], *, codes_as_numbers: bool = False) -> Path:
    """An Excel workbook in the layout of the INSEE ≥ 100 product (title rows, then header)."""
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.Workbook()
    total = wb.active
    total.title = "TOTAL"
    total.append(["Actifs stables, mobiles et total"])
    sheet = wb.create_sheet("FLUX >= 100")
    sheet.append(["Base flux de mobilité domicile - lieu de travail 2021"])
    sheet.append(["Flux supérieurs ou égaux à 100"])
    sheet.append([])
    sheet.append(["Source : Insee, RP2021 exploitation complémentaire"])
    sheet.append([])
    sheet.append(["CODGEO", "LIBGEO", "DCLT", "L_DCLT", "NBFLUX_C21_ACTOCC15P"])
    for row in rows:
        if codes_as_numbers:
            row = [int(c) if isinstance(c, str) and c.isdigit() else c for c in row]
        sheet.append(row)
    wb.save(path)
    return path


XLSX_ROWS = [
    ["01053", "Bourg-en-Bresse", "01053", "Bourg-en-Bresse", 12034.5],
    ["2A004", "Ajaccio", "2A004", "Ajaccio", 15234.0],
    ["75101", "Paris 1er Arrondissement", "75108", "Paris 8e Arrondissement", 143.25],
]


def test_xlsx_product_keeps_threshold(tmp_path):
    path = make_xlsx(tmp_path / "base-flux-mobilite-domicile-lieu-travail-2021.xlsx", XLSX_ROWS)
    flux = read_flux(path)
    assert flux.threshold == 100
    assert flux.member == "FLUX >= 100"
    assert flux.encoding is None and flux.separator is None
    assert flux.rows_read == 3
    assert as_dict(flux.table) == {(r[0], r[2]): r[4] for r in XLSX_ROWS}
    assert any("100" in w and "Excel" in w for w in flux.warnings)


def test_xlsx_codes_stored_as_numbers_are_refused(tmp_path):
    path = make_xlsx(tmp_path / "flux.xlsx", XLSX_ROWS, codes_as_numbers=True)
    with pytest.raises(SourceError) as err:
        read_flux(path)
    # row 7 of the sheet (header on row 6) holds 1053 instead of 01053
    assert err.value.line == 7 and err.value.column == "CODGEO"
    assert "'1053'" in str(err.value) and "flux.xlsx" in str(err.value)


# ---------------------------------------------------------------------------------------------
# Kind and vintage checks, other sources
# ---------------------------------------------------------------------------------------------


def test_kind_disagreeing_with_header_raises():
    with pytest.raises(SourceError) as err:
        read_flux(RESIDENTIAL, kind="commute")
    assert "residential-migration file" in str(err.value)
    assert RESIDENTIAL.name in str(err.value)


def test_vintage_disagreeing_with_header_raises():
    with pytest.raises(SourceError) as err:
        read_flux(COMMUTE, vintage=2020)
    assert "2021" in str(err.value) and err.value.column == "NBFLUX_C21_ACTOCC15P"


def test_sirene_file_is_recognised_as_another_source():
    with pytest.raises(SourceError) as err:
        read_flux(SIRENE)
    message = str(err.value)
    assert "Sirene" in message and SIRENE.name in message


def test_detail_file_points_to_read_detail():
    with pytest.raises(SourceError) as err:
        read_flux(DETAIL)
    assert "read_detail" in str(err.value) and "FD_MOBPRO" in str(err.value)


# ---------------------------------------------------------------------------------------------
# Bad input: one test per kind, each message names file, line and column
# ---------------------------------------------------------------------------------------------


def test_wrong_separator_comma(tmp_path):
    path = write(tmp_path, "virgule.csv", commute_text().replace(";", ","))
    with pytest.raises(SourceError) as err:
        read_flux(path)
    message = str(err.value)
    assert "virgule.csv" in message and "line 1" in message
    assert "','" in message and "';'" in message


def test_wrong_separator_tab(tmp_path):
    path = write(tmp_path, "tab.csv", commute_text().replace(";", "\t"))
    with pytest.raises(SourceError) as err:
        read_flux(path)
    assert "tab" in str(err.value) and "';'" in str(err.value)


def test_utf16_bytes_are_refused(tmp_path):
    path = write(tmp_path, "utf16.csv", commute_text(), encoding="utf-16")
    with pytest.raises(SourceError) as err:
        read_flux(path)
    assert "UTF-16" in str(err.value) and "utf16.csv" in str(err.value)


def test_binary_bytes_are_refused(tmp_path):
    path = tmp_path / "binary.csv"
    path.write_bytes(b"CODGEO;LIBGEO\x00\x00\x01\x02;DCLT\n")
    with pytest.raises(SourceError) as err:
        read_flux(path)
    assert "binary" in str(err.value)


def test_invalid_utf8_falls_back_to_latin1(tmp_path):
    # a UTF-8 file with one stray ISO-8859-1 byte is read as ISO-8859-1 (labels only differ)
    raw = COMMUTE.read_bytes().replace("Évreux".encode(), "\xc9vreux".encode("latin-1"), 1)
    path = tmp_path / "mixed.csv"
    path.write_bytes(raw)
    flux = read_flux(path)
    assert flux.encoding == "iso-8859-1"
    assert_matches(flux.table, oracle(COMMUTE, "CODGEO", "DCLT"))


def test_latin1_bytes_far_into_the_file(tmp_path):
    # the first 64 KiB are plain ASCII; DuckDB meets the ISO-8859-1 byte later on
    lines = commute_text().splitlines()
    filler = [f"{10000 + i:05d};Commune;{10000 + i:05d};Commune;1.000000" for i in range(3000)]
    text = "\n".join([lines[0], *filler, "27229;\xc9vreux;27229;\xc9vreux;5.500000"]) + "\n"
    path = tmp_path / "tard.csv"
    path.write_bytes(text.encode("iso-8859-1"))
    assert path.stat().st_size > 65536
    flux = read_flux(path)
    assert flux.encoding == "iso-8859-1"
    assert flux.rows_read == 3001
    assert as_dict(flux.table)[("27229", "27229")] == 5.5


def test_missing_column(tmp_path):
    lines = [";".join(r.split(";")[:2] + r.split(";")[3:]) for r in commute_text().splitlines()]
    path = write(tmp_path, "sans-dclt.csv", "\n".join(lines) + "\n")
    with pytest.raises(SourceError) as err:
        read_flux(path)
    message = str(err.value)
    assert "sans-dclt.csv" in message and "line 1" in message and "column DCLT" in message
    assert "Found columns: CODGEO, LIBGEO, L_DCLT" in message
    assert "Expected: CODGEO;LIBGEO;DCLT;L_DCLT;NBFLUX_C21_ACTOCC15P" in message


def test_renamed_count_column(tmp_path):
    path = write(tmp_path, "renamed.csv", commute_text().replace("NBFLUX_C21_ACTOCC15P", "NB"))
    with pytest.raises(SourceError) as err:
        read_flux(path)
    message = str(err.value)
    assert "renamed.csv" in message and "line 1" in message
    assert "NBFLUX_Cyy_ACTOCC15P" in message and "NB" in message


def test_renamed_code_column(tmp_path):
    path = write(tmp_path, "renamed.csv", commute_text().replace(";DCLT;", ";DCLT_2021;", 1))
    with pytest.raises(SourceError) as err:
        read_flux(path)
    assert err.value.column == "DCLT" and "DCLT_2021" in str(err.value)


def test_non_numeric_count(tmp_path):
    text = replace_line(commute_text(), 5, "01173;Gex;01173;Gex;n/a")
    path = write(tmp_path, "texte.csv", text)
    with pytest.raises(SourceError) as err:
        read_flux(path)
    message = str(err.value)
    assert (err.value.line, err.value.column) == (5, "NBFLUX_C21_ACTOCC15P")
    assert "texte.csv" in message and "line 5" in message and "'n/a'" in message


def test_negative_count(tmp_path):
    text = replace_line(commute_text(), 8, "06088;Nice;MO001;Monaco;-3.000000")
    path = write(tmp_path, "negatif.csv", text)
    with pytest.raises(SourceError) as err:
        read_flux(path)
    assert (err.value.line, err.value.column) == (8, "NBFLUX_C21_ACTOCC15P")
    assert "negative" in str(err.value) and "negatif.csv" in str(err.value)


def test_code_without_leading_zero(tmp_path):
    text = replace_line(commute_text(), 3, "1001;L'Abergement;01004;Ambérieu;12.000000")
    path = write(tmp_path, "zeros.csv", text)
    with pytest.raises(SourceError) as err:
        read_flux(path)
    assert (err.value.line, err.value.column) == (3, "CODGEO")
    assert "leading zeros" in str(err.value)


def test_problems_are_collected_in_file_order(tmp_path):
    text = commute_text()
    text = replace_line(text, 12, "2A004;Ajaccio;2A04;Ajaccio;1.000000")
    text = replace_line(text, 4, "01001;L'Abergement;01053;Bourg;abc")
    text = replace_line(text, 30, "75109;Paris 9e;75110;Paris 10e;-1")
    path = write(tmp_path, "plusieurs.csv", text)
    with pytest.raises(SourceError) as err:
        read_flux(path)
    message = str(err.value)
    assert err.value.line == 4
    assert "3 problems" in message
    positions = [message.index(f"line {n}, column") for n in (4, 12, 30)]
    assert positions == sorted(positions)


def test_row_with_missing_field(tmp_path):
    text = replace_line(commute_text(), 6, "01173;Gex;SUC1L;GENEVE")
    path = write(tmp_path, "court.csv", text)
    with pytest.raises(SourceError) as err:
        read_flux(path)
    assert err.value.line == 6 and "court.csv" in str(err.value)


def test_empty_file(tmp_path):
    path = write(tmp_path, "vide.csv", "")
    with pytest.raises(SourceError) as err:
        read_flux(path)
    assert "vide.csv" in str(err.value) and "empty" in str(err.value)


def test_header_only_file(tmp_path):
    path = write(tmp_path, "entete.csv", commute_text().splitlines()[0] + "\n")
    with pytest.raises(SourceError) as err:
        read_flux(path)
    assert "entete.csv" in str(err.value) and "no data row" in str(err.value)
    assert err.value.line == 2


def test_truncated_zip(tmp_path):
    archive = tmp_path / "base.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(COMMUTE, COMMUTE.name)
    cut = tmp_path / "coupe.zip"
    cut.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(SourceError) as err:
        read_flux(cut)
    assert "coupe.zip" in str(err.value) and "truncated" in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(SourceError) as err:
        read_flux(tmp_path / "absent.csv")
    assert "absent.csv" in str(err.value)


# ---------------------------------------------------------------------------------------------
# sniff
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (COMMUTE, "flux_commute"),
        (RESIDENTIAL, "flux_residential"),
        (RESIDENTIAL_5Y, "flux_residential"),
        (SCHOOL, "flux_school"),
        (DETAIL, "detail_commute"),
        (DATA / "FD_MIGCOM_2016.csv", "detail_residential"),
        (DATA / "FD_MOBSCO_2019.csv", "detail_school"),
        (SIRENE, "sirene_etablissement"),
        (DATA / "README.md", "unknown"),
    ],
)
def test_sniff_fixtures(path, expected):
    assert sniff(path) == expected


def test_sniff_zip_and_xlsx(tmp_path):
    archive = tmp_path / "a.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.write(SCHOOL, SCHOOL.name)
    assert sniff(archive) == "flux_school"
    assert sniff(make_xlsx(tmp_path / "x.xlsx", XLSX_ROWS)) == "flux_commute"


def test_sniff_real_cogugaison_detail_sample():
    path = SHARED / "cogugaison" / "exemple_flux_mobpro_detail_orne_cog2014.csv"
    if not path.exists():
        pytest.skip("shared COGugaison extract not available")
    assert sniff(path) == "detail_commute"


def test_sniff_real_martinique_extract_is_not_an_insee_layout():
    path = SHARED / "mapsf_martinique" / "mob.csv"
    if not path.exists():
        pytest.skip("shared mapsf extract not available")
    assert sniff(path) == "unknown"
