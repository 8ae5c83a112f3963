"""Sirene stock files → head-office links and establishment transfers (issue 7).

The fixtures of tests/data/sirene/ are the three stock files as published (zip holding one CSV,
full 3.11 header), with a handful of establishments and deliberately bad rows. Expected values
below are worked out by hand from those rows (band midpoints: 01 → 1.5, 02 → 4, 03 → 7.5,
11 → 14.5, 12 → 34.5, 21 → 74.5, 22 → 149.5).
"""

from __future__ import annotations

import csv
import io
import shutil
import zipfile
from pathlib import Path

import pytest

from maillage._errors import SourceError
from maillage.sources import sirene as S

DATA = Path(__file__).parent / "data" / "sirene"
ETAB = DATA / "StockEtablissement_utf8.zip"
UL = DATA / "StockUniteLegale_utf8.zip"
SUCC = DATA / "StockEtablissementLiensSuccession_utf8.zip"


def _csv_text(zip_path: Path) -> str:
    with zipfile.ZipFile(zip_path) as zf:
        return zf.read(zf.namelist()[0]).decode("utf-8")


def _pairs(table) -> dict[tuple[str, str], float]:
    d = table.to_pydict()
    return {(o, t): v for o, t, v in zip(d["origin"], d["destination"], d["value"])}


@pytest.fixture(scope="module")
def flows() -> S.SireneFlows:
    return S.read_sirene(DATA)


# -- layout ---------------------------------------------------------------------------------


def test_fixture_headers_are_the_published_ones():
    for path, cols in ((ETAB, S.ETABLISSEMENT_COLUMNS), (UL, S.UNITE_LEGALE_COLUMNS)):
        header = _csv_text(path).splitlines()[0].split(",")
        assert header == list(cols)
    assert _csv_text(SUCC).splitlines()[0].split(",") == list(S.SUCCESSION_COLUMNS)
    assert len(S.ETABLISSEMENT_COLUMNS) == 53


@pytest.mark.parametrize(
    ("code", "section"),
    [
        ("01.11Z", "A"),
        ("03.22Z", "A"),
        ("05.10Z", "B"),
        ("33.20C", "C"),
        ("35.11Z", "D"),
        ("43.99E", "F"),
        ("47.11F", "G"),
        ("62.01Z", "J"),
        ("68.20A", "L"),
        ("84.11Z", "O"),
        ("86.10Z", "Q"),
        ("99.00Z", "U"),
        ("04.00Z", "?"),
        ("", "?"),
        (None, "?"),
    ],
)
def test_naf_sections(code, section):
    assert S.naf_section(code) == section


def test_classify_tells_files_apart_and_ignores_others(tmp_path):
    for p in (ETAB, UL, SUCC):
        shutil.copy(p, tmp_path / p.name)
    (tmp_path / "notes.csv").write_text("a;b\n1;2\n")
    files = S.classify([tmp_path])
    assert files.etablissements.name == ETAB.name
    assert files.unites_legales.name == UL.name
    assert files.successions.name == SUCC.name
    assert files.ignored == ["notes.csv"]


# -- head-office links ------------------------------------------------------------------------


def test_hq_links_by_legal_unit(flows):
    pairs = _pairs(flows.hq)
    assert pairs[("75108", "69123")] == pytest.approx(74.5)  # Paris HQ → Lyon, band 21
    assert pairs[("75108", "35238")] == pytest.approx(7.5)  # Paris HQ → Rennes, band 03
    assert pairs[("75108", "75108")] == pytest.approx(34.5)  # the HQ controls itself
    # firm C: the legal unit names 00025 (Marseille 1er) although a closed Toulon site is flagged
    assert pairs[("13201", "83137")] == pytest.approx(149.5)
    assert ("83137", "83137") not in pairs
    assert pairs[("69123", "99109")] == pytest.approx(4.0)  # establishment in Germany
    assert pairs[("35020", "35020")] == pytest.approx(4.0)  # former commune code, kept as is
    # closed establishment (Lyon, band 11) is not linked
    assert pairs[("69123", "69123")] == pytest.approx(1.5)
    assert flows.hq_vintage == 2025


def test_hq_breakdown_by_section(flows):
    bd = flows.hq_breakdown.to_pylist()
    cats = {(r["origin"], r["destination"]): r["category"] for r in bd}
    assert cats[("75108", "69123")] == "G"
    assert cats[("13201", "83137")] == "Q"
    assert cats[("35020", "35020")] == "?"  # NAFRev1 activity
    assert {r["dimension"] for r in bd} == {"section"}
    assert sum(r["value"] for r in bd) == pytest.approx(sum(flows.hq.column("value").to_pylist()))


def test_without_legal_units_the_siege_flag_decides():
    f = S.read_sirene([ETAB])
    pairs = _pairs(f.hq)
    assert pairs[("83137", "83137")] == pytest.approx(149.5)
    assert pairs[("83137", "13201")] == pytest.approx(4.0)
    assert not f.transfers
    assert any("no succession links file" in w for w in f.warnings)


def test_establishments_measure_counts(tmp_path):
    f = S.read_sirene([ETAB, UL], measure="establishments")
    pairs = _pairs(f.hq)
    assert pairs[("75108", "69123")] == 1.0
    assert pairs[("44109", "44109")] == 2.0  # unknown band and NN: counted here
    assert sum(pairs.values()) == 15.0


def test_bad_values_counted_with_lines(flows):
    c = flows.counts
    assert c["etab_bad_siret"] == 1
    assert c["etab_bad_band"] == 1
    assert c["etab_no_place"] == 1
    assert c["hq_not_found"] == 1
    assert c["hq_establishments_zero_weight"] == 2
    text = "\n".join(flows.warnings)
    assert "not 14 digits; left out (e.g. line(s) 20)" in text
    assert "unknown headcount band" in text and "line(s) 21" in text
    assert "neither commune" in text and "line(s) 22" in text
    assert "head office is not in the stock" in text and "line(s) 13" in text


def test_unsorted_stock_gives_the_same_links(tmp_path):
    # the published stock is sorted by SIRET; a reordered one takes the general path
    path = _rewrite(tmp_path, "StockEtablissement_utf8.csv", lambda rs: [rs[0], *reversed(rs[1:])])
    f = S.read_sirene([path])
    assert f.counts["etab_duplicate_siret"] == 0
    assert _pairs(f.hq) == _pairs(S.read_sirene([ETAB]).hq)


def test_repeated_siret_counted_and_first_kept(tmp_path):
    def repeat(rows):
        copy = list(rows[1])  # 10000000100011, Paris head office, band 12
        i = S.ETABLISSEMENT_COLUMNS.index("trancheEffectifsEtablissement")
        copy[i] = "53"  # a copy that would weigh 10 000 if it were kept
        return [*rows, copy]

    path = _rewrite(tmp_path, "StockEtablissement_utf8.csv", repeat)
    f = S.read_sirene([path])
    assert f.counts["etab_duplicate_siret"] == 1
    text = "\n".join(f.warnings)
    assert "SIRET(s) listed more than once (first kept)" in text
    assert "line(s) 24)" in text  # the copy, appended after the 22 data rows
    assert _pairs(f.hq) == _pairs(S.read_sirene([ETAB]).hq)


# -- transfers --------------------------------------------------------------------------------


def test_transfers_by_year_and_split(flows):
    # last complete year is 2024 (stock treated up to 2025-01-31): 2025 left out
    assert sorted(flows.transfers) == [2019, 2022, 2023]
    t2022, _ = flows.transfers[2022]
    pairs = _pairs(t2022)
    # a Toulouse predecessor (band 03 = 7.5) with two successors the same year: 1/2 each
    assert pairs == {("31555", "31555"): pytest.approx(3.75), ("31555", "33063"): 3.75}
    t2023, b2023 = flows.transfers[2023]
    assert _pairs(t2023) == {("69123", "69123"): 14.5, ("92012", "35238"): 34.5}
    siege = {
        (r["origin"], r["destination"]): r["category"]
        for r in b2023.to_pylist()
        if r["dimension"] == "transfert_siege"
    }
    assert siege == {("69123", "69123"): "non", ("92012", "35238"): "oui"}


def test_transfer_problems_counted(flows):
    c = flows.counts
    assert (c["succ_bad_siret"], c["succ_bad_date"], c["succ_not_in_stock"]) == (1, 1, 1)
    assert c["succ_links_other_years"] == 1
    text = "\n".join(flows.warnings)
    assert "absent from the stock; left out (e.g. line(s) 8)" in text
    assert "not 14 digits; left out (e.g. line(s) 9)" in text
    assert "AAAA-MM-JJ; left out (e.g. line(s) 10)" in text


def test_years_parameter():
    f = S.read_sirene(DATA, years=[2023, 2025])
    assert sorted(f.transfers) == [2023, 2025]


# -- bad files --------------------------------------------------------------------------------


def _rewrite(tmp_path: Path, name: str, edit) -> Path:
    text = _csv_text(ETAB)
    rows = list(csv.reader(io.StringIO(text)))
    rows = edit(rows)
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path = tmp_path / name
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def test_missing_column_names_file_line_column(tmp_path):
    i = S.ETABLISSEMENT_COLUMNS.index("codeCommuneEtablissement")
    path = _rewrite(
        tmp_path, "StockEtablissement_utf8.csv", lambda rs: [r[:i] + r[i + 1 :] for r in rs]
    )
    with pytest.raises(SourceError) as exc:
        S.read_sirene([path])
    err = exc.value
    # the file no longer has codeCommuneEtablissement, so it is not recognised as the stock
    assert "no Sirene establishments stock" in str(err)
    # name it explicitly through the folder-less reader: the column check itself
    with S.workspace() as con, pytest.raises(SourceError) as exc2:
        S._stage(
            con,
            path,
            S._NEED_ETAB,
            "e",
            "a Sirene establishments stock",
            "sirene_etablissement",
            "StockEtablissement",
        )
    assert exc2.value.line == 1
    assert exc2.value.column == "codeCommuneEtablissement"
    assert str(path) in str(exc2.value)


def test_missing_other_column_when_recognised(tmp_path):
    i = S.ETABLISSEMENT_COLUMNS.index("trancheEffectifsEtablissement")
    path = _rewrite(
        tmp_path, "StockEtablissement_utf8.csv", lambda rs: [r[:i] + r[i + 1 :] for r in rs]
    )
    with pytest.raises(SourceError) as exc:
        S.read_sirene([path])
    assert exc.value.line == 1 and exc.value.column == "trancheEffectifsEtablissement"


def test_malformed_row_names_its_line(tmp_path):
    def cut(rows):
        rows[5] = rows[5][:10]
        return rows

    path = _rewrite(tmp_path, "StockEtablissement_utf8.csv", cut)
    with pytest.raises(SourceError) as exc:
        S.read_sirene([path])
    assert exc.value.line == 6
    assert "nothing was imported" in str(exc.value)


def test_wrong_file_is_refused():
    flux = (
        Path(__file__).parent
        / "data"
        / "sources"
        / "base-flux-mobilite-domicile-lieu-travail-2021.csv"
    )
    with pytest.raises(SourceError, match="no Sirene establishments stock"):
        S.read_sirene([flux])
    with pytest.raises(SourceError, match="not found"):
        S.read_sirene(["/nonexistent/StockEtablissement_utf8.zip"])


# -- into the store ---------------------------------------------------------------------------


def test_import_into_store_and_indicators(store):
    from maillage.analysis.firms import control_profile, control_table
    from maillage.import_firms import import_sirene

    rep = import_sirene(store, [DATA])
    kinds = [(r.kind, r.vintage) for r in rep.reports]
    assert kinds == [
        ("hq_link", 2025),
        ("establishment_transfer", 2019),
        ("establishment_transfer", 2022),
        ("establishment_transfer", 2023),
    ]
    hq = rep.reports[0]
    assert hq.rows_abroad == 1 and hq.rows_unknown == 1 and hq.rows_mapped >= 3
    got = dict(
        store.df(
            "SELECT origin || '>' || destination AS k, value FROM flow WHERE kind = 'hq_link'"
        ).itertuples(index=False)
    )
    assert got["75056>69123"] == pytest.approx(74.5)  # Paris 8e → Paris
    assert got["13055>83137"] == pytest.approx(149.5)  # Marseille 1er → Marseille
    assert got["35130>35130"] == pytest.approx(4.0)  # 35020 merged into 35130
    flags = dict(store.df("SELECT destination, flag FROM flow WHERE flag IS NOT NULL").values)
    assert flags["99109"] == "abroad" and flags["98765"] == "unknown"
    # commune indicators: Lyon's jobs are 74.5 controlled from Paris + 1.5 of its own HQ
    table = control_table(store, "commune")
    assert table.loc["69123", "controlled_from_outside"] == pytest.approx(74.5 / 76.0)
    assert table.loc["75056", "controls_elsewhere"] == pytest.approx(74.5 + 7.5)
    prof = control_profile(store, "commune:69123")
    first = {i["name"]: i for i in prof["indicators"]}["controlled_from_outside"]
    assert first["value"] == pytest.approx(74.5 / 76.0)
    assert first["stratum"]["n"] >= 1
    assert prof["controlled_by"][0]["partner_code"] == "75056"
    # the same files again change nothing
    again = import_sirene(store, [DATA])
    assert all(r.skipped for r in again.reports)


def test_interrupted_import_leaves_store_as_it_was(store):
    from maillage.import_firms import import_sirene

    before = store.scalar("SELECT count(*) FROM flow")

    def stop(message: str, _f: float) -> None:
        if message.startswith("Agrégation"):
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_sirene(store, [DATA], stop)
    assert store.scalar("SELECT count(*) FROM flow") == before
    assert store.scalar("SELECT count(*) FROM import_log") == 0


def test_cli_sirene(tmp_path, reference_db, monkeypatch):
    from typer.testing import CliRunner

    from maillage.cli_firms import app

    home = tmp_path / "home"
    home.mkdir()
    shutil.copy(reference_db, home / "maillage.duckdb")
    monkeypatch.setenv("MAILLAGE_HOME", str(home))
    result = CliRunner().invoke(app, ["sirene", str(ETAB), str(UL), str(SUCC), "--json"])
    assert result.exit_code == 0, result.output
    assert '"kind": "hq_link"' in result.output
    bad = CliRunner().invoke(app, ["sirene", str(tmp_path / "missing.zip")])
    assert bad.exit_code == 1
    assert "not found" in bad.output


# -- the numba scanner against the DuckDB reader -----------------------------------------------


def _rows() -> list[list[str]]:
    return list(csv.reader(io.StringIO(_csv_text(ETAB))))


def _write(path: Path, rows: list[list[str]], *, end: str = "\n", **kw) -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=end, **kw).writerows(rows)
    path.write_bytes(buf.getvalue().encode("utf-8"))
    return path


def _awkward(rows: list[list[str]]) -> list[list[str]]:
    """Quoted commas and quotes, a quoted line break, codes and dates the kernel leaves to SQL."""
    col = {name: i for i, name in enumerate(S.ETABLISSEMENT_COLUMNS)}
    edits = {
        1: ("libelleVoieEtablissement", 'RUE "DU PONT", 3'),
        2: ("codeCommuneEtablissement", " 69123 "),
        3: ("dateDernierTraitementEtablissement", "2024/11/02"),
        4: ("complementAdresseEtablissement", 'BAT A\nETAGE 2, COULOIR "B"'),
        5: ("codeCommuneEtablissement", '69"123'),
        6: ("activitePrincipaleEtablissement", "4"),
        7: ("codeCommuneEtablissement", "ÉVRY1"),
        8: ("dateDernierTraitementEtablissement", "2024-02-30T00:00:00"),
        9: ("codeCommuneEtablissement", "ABCDEFGHIJ"),
        10: ("trancheEffectifsEtablissement", '1"'),
        11: ("etablissementSiege", '"true"'),
        12: ("siret", " 10000000100011"),
    }
    rows = [list(r) for r in rows]
    for line, (name, value) in edits.items():
        rows[line][col[name]] = value
    return rows


def _without_final_line_end(path: Path) -> Path:
    path.write_bytes(path.read_bytes().rstrip(b"\n"))
    return path


VARIANTS = {
    "lf": lambda p: _write(p, _rows()),
    "crlf": lambda p: _write(p, _rows(), end="\r\n"),
    "all_quoted_crlf": lambda p: _write(p, _rows(), end="\r\n", quoting=csv.QUOTE_ALL),
    "awkward": lambda p: _write(p, _awkward(_rows())),
    "awkward_crlf_quoted": lambda p: _write(
        p, _awkward(_rows()), end="\r\n", quoting=csv.QUOTE_ALL
    ),
    "no_final_line_end": lambda p: _without_final_line_end(_write(p, _awkward(_rows()))),
}


def _typed_table(path: Path, scanner: bool) -> tuple[list[tuple], bool | None]:
    with S.workspace() as con:
        _n, _disp, _sha, increasing = S._stage_establishments(con, path, scanner=scanner)
        return con.execute("SELECT * FROM etab ORDER BY rowid").fetchall(), increasing


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_scanner_gives_the_duckdb_typed_table(tmp_path, variant):
    path = VARIANTS[variant](tmp_path / "StockEtablissement_utf8.csv")
    ours, increasing = _typed_table(path, scanner=True)
    reference, _ = _typed_table(path, scanner=False)
    assert increasing is not None  # the scanner read it (no fallback)
    assert len(ours) == 22
    assert ours == reference


def test_scanner_reads_the_published_zip():
    ours, increasing = _typed_table(ETAB, scanner=True)
    assert increasing is True
    assert ours == _typed_table(ETAB, scanner=False)[0]


@pytest.mark.parametrize("block", [5, 64, 333, 1 << 20])
def test_scanner_blocks_cut_anywhere(tmp_path, block):
    from maillage.sources import _sirene_scan as scan

    path = _write(tmp_path / "s.csv", _awkward(_rows()), end="\r\n", quoting=csv.QUOTE_ALL)
    header = _rows()[0]
    start = len(path.read_bytes().split(b"\n", 1)[0]) + 1

    def read(size: int) -> dict:
        stock = scan.scan_establishments(
            path, header, list(S.HEADCOUNT_MIDPOINTS), S._section_lookup(), start, block=size
        )
        places = [stock.places[i] if i >= 0 else None for i in stock.place.tolist()]
        return {
            "places": places,
            "odd": stock.odd_rows.tolist(),
            "odd_bytes": [path.read_bytes()[a:b] for a, b in zip(stock.odd_start, stock.odd_end)],
            **{k: getattr(stock, k).tolist() for k in ("siret", "flags", "band", "section")},
            "treated": stock.treated.tolist(),
        }

    got, whole = read(block), read(1 << 26)
    assert got == whole
    assert len(whole["siret"]) == 22
    assert whole["odd"]  # the awkward rows were left to SQL
    assert all(b.startswith(b'"') and b.endswith(b"\r\n") for b in whole["odd_bytes"])


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text.replace("RUE DE LA PAIX", 'RUE "DE" LA PAIX', 1),  # quote inside
        lambda text: text.replace("\n", "\n\n", 3).replace("\n\n", "\n", 2),  # empty line
        lambda text: text.replace(",O\n", ",O\r", 1),  # a lone CR
        lambda text: text.replace("\n", ",extra\n", 4).replace(",extra\n", "\n", 3),
    ],
)
def test_scanner_leaves_malformed_files_to_duckdb(tmp_path, damage):
    path = tmp_path / "StockEtablissement_utf8.csv"
    path.write_text(damage(_csv_text(ETAB)), encoding="utf-8", newline="")

    def outcome(scanner: bool):
        try:
            return _typed_table(path, scanner)
        except SourceError as exc:
            return str(exc), exc.line

    assert outcome(True) == outcome(False)


@pytest.mark.parametrize("files", [[ETAB], [DATA]])
def test_scanner_and_duckdb_give_the_same_flows(files):
    ours = S.read_sirene(files)
    reference = S.read_sirene(files, scanner=False)
    assert _pairs(ours.hq) == _pairs(reference.hq)
    assert ours.hq_breakdown.to_pylist() == reference.hq_breakdown.to_pylist()
    assert ours.counts == reference.counts
    assert ours.warnings == reference.warnings
    assert ours.sha256 == reference.sha256
    assert sorted(ours.transfers) == sorted(reference.transfers)


# -- the numpy head-office links against the SQL ones ------------------------------------------


def _random_stock(path: Path, seed: int, rows: int = 3000) -> Path:
    """A sorted stock with several flagged head offices per siren, closed ones, no place,
    empty and unknown bands, bad SIRETs: the cases where the head-office rule decides."""
    import random

    rng = random.Random(seed)
    col = {name: i for i, name in enumerate(S.ETABLISSEMENT_COLUMNS)}
    template = _rows()[1]
    out, siren = [_rows()[0]], 300000000
    while len(out) <= rows:
        siren += rng.randint(1, 3)
        for k in range(rng.randint(1, 5)):
            r = list(template)
            r[col["siren"]], r[col["nic"]] = str(siren), f"{k + 1:05d}"
            r[col["siret"]] = f"{siren}{k + 1:05d}" if rng.random() > 0.01 else "12345"
            r[col["etablissementSiege"]] = rng.choice(["true", "false", "false", ""])
            r[col["etatAdministratifEtablissement"]] = rng.choice(["A", "A", "F", "X"])
            r[col["codeCommuneEtablissement"]] = rng.choice(["75108", "69123", "13201", "", ""])
            r[col["codePaysEtrangerEtablissement"]] = rng.choice(["", "", "99109"])
            r[col["trancheEffectifsEtablissement"]] = rng.choice(["", "NN", "01", "12", "53", "9"])
            r[col["activitePrincipaleEtablissement"]] = f"{rng.randint(0, 99):02d}.11Z"
            out.append(r)
    return _write(path, out)


def _random_legal_units(path: Path, stock: Path, seed: int) -> Path:
    """Legal units naming one establishment of some sirens (sometimes one not in the stock)."""
    import random

    rng = random.Random(seed)
    sirens = sorted({r[0] for r in csv.reader(io.StringIO(stock.read_text())) if r[0] != "siren"})
    rows = [list(S.UNITE_LEGALE_COLUMNS)]
    nic = S.UNITE_LEGALE_COLUMNS.index("nicSiegeUniteLegale")
    for siren in sirens:
        if rng.random() < 0.5:
            r = [""] * len(S.UNITE_LEGALE_COLUMNS)
            r[0], r[nic] = siren, str(rng.randint(1, 6))
            rows.append(r)
    return _write(path, rows)


@pytest.mark.parametrize("measure", S.MEASURES)
@pytest.mark.parametrize("legal_units", [False, True])
@pytest.mark.parametrize("seed", [1, 2])
def test_numpy_links_give_the_sql_links(tmp_path, seed, legal_units, measure):
    stock = _random_stock(tmp_path / "StockEtablissement_utf8.csv", seed)
    files = [stock]
    if legal_units:
        files.append(_random_legal_units(tmp_path / "StockUniteLegale_utf8.csv", stock, seed))
    ours = S.read_sirene(files, measure=measure)
    reference = S.read_sirene(files, measure=measure, scanner=False)
    assert ours.counts["hq_not_found"] > 0 and ours.counts["hq_establishments_linked"] > 100
    assert ours.hq.to_pylist() == reference.hq.to_pylist()
    assert ours.hq_breakdown.to_pylist() == reference.hq_breakdown.to_pylist()
    assert ours.counts == reference.counts
    assert ours.warnings == reference.warnings


def test_numpy_links_taken_for_a_sorted_stock():
    with S.workspace() as con:
        keep: dict = {}
        S._stage_establishments(con, ETAB, keep=keep)
        flows = S.read_sirene([ETAB])
        flows.warnings.clear()
        assert keep["stock"].increasing
        assert S._hq_links_numpy(con, flows, False, "x", keep["stock"])
        assert flows.hq.num_rows > 0


@pytest.mark.parametrize("scanner", [True, False])
def test_zero_weight_counts_each_establishment(tmp_path, scanner):
    """An establishment without employees is counted even when its (origin, destination,
    section) group also holds a weighted one (the group then still weighs more than 0)."""
    col = {name: i for i, name in enumerate(S.ETABLISSEMENT_COLUMNS)}
    template = _rows()[1]
    rows = [_rows()[0]]
    for k, (head, band) in enumerate([("true", "12"), ("false", "11"), ("false", "NN")]):
        r = list(template)
        r[col["siren"]], r[col["nic"]] = "300000001", f"{k + 1:05d}"
        r[col["siret"]] = f"300000001{k + 1:05d}"
        r[col["etablissementSiege"]] = head
        r[col["etatAdministratifEtablissement"]] = "A"
        r[col["codeCommuneEtablissement"]] = "75108" if head == "true" else "69123"
        r[col["codePaysEtrangerEtablissement"]] = ""
        r[col["trancheEffectifsEtablissement"]] = band
        r[col["activitePrincipaleEtablissement"]] = "62.01Z"
        rows.append(r)
    flows = S.read_sirene([_write(tmp_path / "StockEtablissement_utf8.csv", rows)], scanner=scanner)
    assert flows.counts["hq_establishments_linked"] == 3
    assert flows.counts["hq_establishments_zero_weight"] == 1
    assert _pairs(flows.hq)[("75108", "69123")] > 0
