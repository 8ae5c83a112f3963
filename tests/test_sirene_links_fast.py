"""The fast head-office links of a scanned Sirene stock give the SQL path's results (issue 7).

For a scanned stock whose SIRETs increase, :func:`maillage.sources.sirene.read_sirene` checks
the stock on its numpy columns, makes the DuckDB table only when a step needs SQL (succession
links, a head-office fallback), links head offices in parallel parts cut where a siren run
starts, and builds the string columns from numpy buffers. Every test compares with the
DuckDB reader (``scanner=False``) or with the one-part result, on files written in the
published layout (3.11 header, RFC-4180 as Python's csv module writes it).
"""

from __future__ import annotations

import csv
import io
import itertools
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from maillage.sources import _sirene_scan as scan
from maillage.sources import sirene as S

COL = {name: i for i, name in enumerate(S.ETABLISSEMENT_COLUMNS)}
PLACES = ["75108", "69123", "13201", "2A004", "97411", "", ""]


def _write(path: Path, rows: list[list[str]]) -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    path.write_bytes(buf.getvalue().encode("utf-8"))
    return path


def _stock_rows(seed: int, rows: int = 4000, dated: bool = True) -> list[list[str]]:
    """Sorted establishments: runs of one to six per siren, several or no flagged head
    offices, closed ones, bad SIRETs between runs and inside them, no place, foreign places,
    empty and unknown bands, bad states."""
    rng = random.Random(seed)
    out, siren = [list(S.ETABLISSEMENT_COLUMNS)], 300000000
    while len(out) <= rows:
        siren += rng.randint(1, 3)
        for k in range(rng.randint(1, 6)):
            r = [""] * len(S.ETABLISSEMENT_COLUMNS)
            siret = f"{siren}{k + 1:05d}"
            r[COL["siren"]], r[COL["nic"]] = siret[:9], siret[9:]
            r[COL["siret"]] = siret if rng.random() > 0.02 else rng.choice(["12345", "", "x"])
            r[COL["etablissementSiege"]] = rng.choice(["true", "false", "false", ""])
            r[COL["etatAdministratifEtablissement"]] = rng.choice(["A", "A", "F", "X"])
            r[COL["codeCommuneEtablissement"]] = rng.choice(PLACES)
            r[COL["codePaysEtrangerEtablissement"]] = rng.choice(["", "", "99109"])
            r[COL["trancheEffectifsEtablissement"]] = rng.choice(["", "NN", "01", "12", "53", "9"])
            r[COL["activitePrincipaleEtablissement"]] = f"{rng.randint(0, 99):02d}.11Z"
            r[COL["nomenclatureActivitePrincipaleEtablissement"]] = rng.choice(
                ["NAFRev2", "NAFRev2", "NAFRev1"]
            )
            if dated:
                day = f"20{rng.randint(10, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
                r[COL["dateDernierTraitementEtablissement"]] = f"{day}T10:00:00"
            out.append(r)
    return out


def _successions(path: Path, stock: list[list[str]], seed: int) -> Path:
    """Succession links between SIRETs of the stock (some absent), over several years."""
    rng = random.Random(seed)
    sirets = [r[COL["siret"]] for r in stock[1:]]
    rows = [list(S.SUCCESSION_COLUMNS)]
    for _ in range(600):
        pred = rng.choice(sirets)
        succ = rng.choice([*sirets[:50], "99999999999999"])
        year = rng.randint(2015, 2024)
        rows.append(
            [
                pred,
                succ,
                f"{year}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
                rng.choice(["true", "false"]),
                rng.choice(["true", "false"]),
                "2024-01-01T00:00:00",
            ]
        )
    return _write(path, rows)


def _legal_units(path: Path, stock: list[list[str]], seed: int, repeated: bool) -> Path:
    """Legal units naming one establishment of about half the sirens; ``repeated``: one
    siren listed twice with two establishments of the stock (the SQL path must decide)."""
    rng = random.Random(seed)
    sirens = sorted({r[COL["siren"]] for r in stock[1:]})
    nic = S.UNITE_LEGALE_COLUMNS.index("nicSiegeUniteLegale")
    rows = [list(S.UNITE_LEGALE_COLUMNS)]
    for siren in sirens:
        if rng.random() < 0.5:
            r = [""] * len(S.UNITE_LEGALE_COLUMNS)
            r[0], r[nic] = siren, str(rng.randint(1, 6))
            rows.append(r)
    if repeated:
        two = [r[COL["siret"]] for r in stock[1:] if r[COL["nic"]] in ("00001", "00002")]
        by_siren: dict[str, list[str]] = {}
        for siret in two:
            if siret.isdigit() and len(siret) == 14:
                by_siren.setdefault(siret[:9], []).append(siret[9:])
        siren, nics = next((s, n) for s, n in by_siren.items() if len(n) == 2)
        for n in nics:
            r = [""] * len(S.UNITE_LEGALE_COLUMNS)
            r[0], r[nic] = siren, str(int(n))
            rows.append(r)
    return _write(path, rows)


def _same(ours: S.SireneFlows, reference: S.SireneFlows) -> None:
    assert ours.hq.to_pylist() == reference.hq.to_pylist()
    assert ours.hq_breakdown.to_pylist() == reference.hq_breakdown.to_pylist()
    assert ours.hq.schema == reference.hq.schema
    assert ours.hq_breakdown.schema == reference.hq_breakdown.schema
    assert ours.counts == reference.counts
    assert ours.warnings == reference.warnings
    assert ours.hq_vintage == reference.hq_vintage
    assert ours.rows == reference.rows
    assert sorted(ours.transfers) == sorted(reference.transfers)
    for year, (flows, breakdown) in reference.transfers.items():
        assert ours.transfers[year][0].to_pylist() == flows.to_pylist()
        assert ours.transfers[year][1].to_pylist() == breakdown.to_pylist()


@pytest.mark.parametrize("seed", [3, 4])
def test_checks_and_transfers_without_the_early_table(tmp_path, seed):
    """Checks on the numpy columns, the DuckDB table made later for the transfers."""
    rows = _stock_rows(seed)
    stock = _write(tmp_path / "StockEtablissement_utf8.csv", rows)
    files = [stock, _successions(tmp_path / "StockLiens_utf8.csv", rows, seed)]
    ours = S.read_sirene(files, years=range(2015, 2025))
    reference = S.read_sirene(files, years=range(2015, 2025), scanner=False)
    for key in ("etab_bad_siret", "etab_bad_band", "etab_no_place", "etab_bad_state"):
        assert ours.counts[key] > 0  # each check hits, with its sample lines
    assert ours.transfers and ours.counts["succ_not_in_stock"] > 0
    _same(ours, reference)


def test_stock_without_any_date(tmp_path):
    stock = _write(tmp_path / "StockEtablissement_utf8.csv", _stock_rows(5, 500, dated=False))
    ours, reference = S.read_sirene([stock]), S.read_sirene([stock], scanner=False)
    _same(ours, reference)


@pytest.mark.parametrize("repeated", [False, True])
def test_legal_units_numpy_or_sql_fallback(tmp_path, repeated):
    """A siren named twice by the legal units makes the numpy links give up: the SQL path
    then needs the establishments table, made at that point."""
    rows = _stock_rows(6)
    stock = _write(tmp_path / "StockEtablissement_utf8.csv", rows)
    files = [stock, _legal_units(tmp_path / "StockUniteLegale_utf8.csv", rows, 6, repeated)]
    with S.workspace() as con:
        keep: dict = {}
        S._stage_establishments(con, stock, keep=keep, table=False)
        tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert "etab" not in tables
    ours, reference = S.read_sirene(files), S.read_sirene(files, scanner=False)
    _same(ours, reference)


def _scanned(tmp_path: Path, rows: list[list[str]]):
    stock = _write(tmp_path / "StockEtablissement_utf8.csv", rows)
    with S.workspace() as con:
        keep: dict = {}
        S._stage_establishments(con, stock, keep=keep, table=False)
    assert keep["stock"].increasing
    return keep["stock"]


def _links(stock, parts: int, measure: str = "jobs") -> S.SireneFlows:
    flows = S.SireneFlows.empty(measure)
    assert S._hq_links_numpy(None, flows, False, "stock", stock, parts=parts)
    return flows


@pytest.mark.parametrize("measure", S.MEASURES)
@pytest.mark.parametrize("parts", [2, 3, 7])
def test_parts_give_the_one_part_links(tmp_path, parts, measure):
    stock = _scanned(tmp_path, _stock_rows(7))
    bounds = S._link_bounds(stock.siret, parts)
    assert len(bounds) == parts
    whole, ours = _links(stock, 1, measure), _links(stock, parts, measure)
    assert ours.counts["hq_not_found"] > 0
    _same(ours, whole)


def test_parts_split_where_a_siren_run_starts(tmp_path):
    stock = _scanned(tmp_path, _stock_rows(8))
    siret = stock.siret
    for parts in range(2, 12):
        bounds = S._link_bounds(siret, parts)
        assert bounds[0][0] == 0 and bounds[-1][1] == siret.size
        assert all(a[1] == b[0] for a, b in itertools.pairwise(bounds))
        for start, _end in bounds[1:]:
            before = siret[:start][siret[:start] >= 0]
            assert siret[start] >= 0
            assert before.size == 0 or before[-1] // 100000 != siret[start] // 100000


def test_next_run_start_skips_bad_sirets_inside_a_run():
    siret = np.array([10000000100001, -1, 10000000100002, -1, 10000000200001], np.int64)
    assert scan.next_run_start(siret, 1) == 4
    assert scan.next_run_start(siret, 3) == 4
    assert scan.next_run_start(siret, 0) == 0
    assert scan.next_run_start(siret, 5) == 5


def test_category_of_a_section_code_beyond_ascii():
    """The one-byte category column is only taken for ASCII codes."""
    keys = np.array([(0 << 32) | (1 << 8) | ord("J"), (1 << 32) | (0 << 8) | 0xE9], np.int64)
    flows, breakdown = S._hq_tables(["69123", "75108"], keys, np.array([2.0, 3.0]))
    assert breakdown.column("category").to_pylist() == ["J", "é"]
    assert breakdown.column("origin").to_pylist() == ["69123", "75108"]
    assert flows.to_pylist() == [
        {"origin": "69123", "destination": "75108", "value": 2.0},
        {"origin": "75108", "destination": "69123", "value": 3.0},
    ]


def test_read_sirene_does_not_import_pandas(tmp_path):
    """pandas costs a quarter of a second to import: the reader builds arrow arrays from
    buffers instead (``pa.array`` on numpy data imports it)."""
    stock = _write(tmp_path / "StockEtablissement_utf8.csv", _stock_rows(9, 300))
    code = (
        "import sys\n"
        "from maillage.sources.sirene import read_sirene\n"
        f"flows = read_sirene([{str(stock)!r}])\n"
        "assert flows.hq.num_rows > 0\n"
        "print('pandas' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=300
    )
    assert out.stdout.strip() == "False"
