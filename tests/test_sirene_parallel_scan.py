"""The Sirene establishments scanner in parallel parts gives the sequential scan's result (issue 7).

:func:`maillage.sources._sirene_scan.scan_establishments` splits the data rows into parts at
guessed record starts (just after a line end) and scans them in threads; a guess inside a
quoted field is detected and that part scanned again. Every test compares a forced number of
parts with the one-part scan of the same file, field by field (place ids included), on files
written in the published layout (3.11 header, RFC-4180 as Python's csv module writes it).
"""

from __future__ import annotations

import csv
import io
import os
import random
from pathlib import Path

import numpy as np
import pytest

from maillage.sources import _sirene_scan as scan
from maillage.sources import sirene as S

COL = {name: i for i, name in enumerate(S.ETABLISSEMENT_COLUMNS)}
COMMUNES = ["75108", "69123", "13201", "35238", "2A004", "97411", "01001", "59350"]
BANDS = ["", "NN", "00", "01", "02", "03", "11", "12", "21", "53", "9"]
FIELDS = (
    "siret",
    "place",
    "flags",
    "band",
    "section",
    "treated",
    "places",
    "odd_rows",
    "odd_start",
    "odd_end",
    "increasing",
    "rows",
)


def _row(siret: int, rng: random.Random) -> list[str]:
    r = [""] * len(S.ETABLISSEMENT_COLUMNS)
    text = f"{siret:014d}"
    r[COL["siren"]], r[COL["nic"]], r[COL["siret"]] = text[:9], text[9:], text
    r[COL["statutDiffusionEtablissement"]] = "O"
    r[COL["etablissementSiege"]] = rng.choice(["true", "false"])
    r[COL["etatAdministratifEtablissement"]] = rng.choice(["A", "A", "F"])
    r[COL["codeCommuneEtablissement"]] = rng.choice([*COMMUNES, f"{rng.randint(1000, 1200):05d}"])
    r[COL["trancheEffectifsEtablissement"]] = rng.choice(BANDS)
    r[COL["activitePrincipaleEtablissement"]] = f"{rng.randint(0, 99):02d}.11Z"
    r[COL["nomenclatureActivitePrincipaleEtablissement"]] = "NAFRev2"
    r[COL["dateDernierTraitementEtablissement"]] = f"2024-{rng.randint(1, 12):02d}-11T10:00:00"
    r[COL["libelleVoieEtablissement"]] = rng.choice(["DE LA GARE", "DU PONT, BAT A", ""])
    return r


def _stock(rows: int, seed: int, odd: float = 0.01) -> list[list[str]]:
    """Header and ``rows`` establishments in SIRET order; with ``odd`` > 0, about 2 * ``odd``
    of them are odd for the kernel and ``odd`` have a quoted line break."""
    rng = random.Random(seed)
    out, siret = [list(S.ETABLISSEMENT_COLUMNS)], 100000000_00010
    for _ in range(rows):
        siret += rng.randint(1, 40)
        r = _row(siret, rng)
        draw = rng.random()
        if draw < odd:
            r[COL["codeCommuneEtablissement"]] = f" {r[COL['codeCommuneEtablissement']]} "
        elif draw < 2 * odd:
            r[COL["dateDernierTraitementEtablissement"]] = "2024/11/02"
        elif draw < 3 * odd:
            r[COL["complementAdresseEtablissement"]] = 'BAT A\nETAGE 2, COULOIR "B"'
        out.append(r)
    return out


def _write(path: Path, rows: list[list[str]], *, end: str = "\n", **kw) -> Path:
    buf = io.StringIO()
    csv.writer(buf, lineterminator=end, **kw).writerows(rows)
    path.write_bytes(buf.getvalue().encode("utf-8"))
    return path


def _data_start(path: Path) -> int:
    return path.read_bytes().index(b"\n") + 1


def _scan(path: Path, parts: int, block: int = scan.BLOCK) -> scan.ScannedStock:
    return scan.scan_establishments(
        path,
        list(S.ETABLISSEMENT_COLUMNS),
        list(S.HEADCOUNT_MIDPOINTS),
        S._section_lookup(),
        _data_start(path),
        block=block,
        parts=parts,
    )


def _fields(stock: scan.ScannedStock) -> dict:
    return {
        name: value.tolist() if isinstance(value, np.ndarray) else value
        for name in FIELDS
        for value in [getattr(stock, name)]
    }


def _record_starts(path: Path) -> set[int]:
    """File offsets where the data records start (an ASCII file written with LF and minimal
    quoting): each record read by Python's csv module, written again to measure it."""
    data = path.read_bytes()
    starts, pos = set(), _data_start(path)
    for record in csv.reader(io.StringIO(data[pos:].decode("ascii"), newline="")):
        starts.add(pos)
        out = io.StringIO()
        csv.writer(out, lineterminator="\n").writerow(record)
        pos += len(out.getvalue())
    assert pos == len(data)
    return starts


def _bounds(path: Path, parts: int) -> list[tuple[int, int]]:
    return scan._part_bounds(path, _data_start(path), path.stat().st_size, parts)


def _layout(path: Path) -> scan._Layout:
    header = list(S.ETABLISSEMENT_COLUMNS)
    slots = np.full(len(header), -1, dtype=np.int64)
    for slot, name in enumerate(scan.FIELDS):
        slots[header.index(name)] = slot
    codes = [ord(c[0]) * 256 + ord(c[1]) for c in S.HEADCOUNT_MIDPOINTS]
    return scan._Layout(
        path=path,
        n_cols=len(header),
        slot_of_column=slots,
        codes=np.array(codes, dtype=np.int32),
        sections=np.frombuffer(S._section_lookup().encode("ascii"), dtype=np.uint8).copy(),
        per_row=300,
        block=scan.BLOCK,
    )


@pytest.mark.parametrize("parts", [2, 3, 4])
@pytest.mark.parametrize("block", [97, 4096, 1 << 20])
@pytest.mark.parametrize("end", ["\n", "\r\n"])
def test_parts_give_the_sequential_scan(tmp_path, parts, block, end):
    path = _write(tmp_path / "StockEtablissement_utf8.csv", _stock(3000, seed=parts), end=end)
    assert len(_bounds(path, parts)) == parts
    ours, sequential = _fields(_scan(path, parts, block)), _fields(_scan(path, 1))
    assert sequential["rows"] == 3000 and sequential["odd_rows"]
    assert sequential["increasing"]
    for name in FIELDS:
        assert ours[name] == sequential[name], name


def test_quoted_fields_and_no_final_line_end(tmp_path):
    path = _write(tmp_path / "s.csv", _stock(2000, seed=5), end="\r\n", quoting=csv.QUOTE_ALL)
    path.write_bytes(path.read_bytes().removesuffix(b"\r\n"))
    sequential = _fields(_scan(path, 1))
    assert sequential["rows"] == 2000
    for parts in (2, 3, 4):
        assert _fields(_scan(path, parts, block=500)) == sequential


def _long_quoted_stock(seed: int) -> list[list[str]]:
    """A stock where every fifth record has a long address with line breaks inside quotes,
    and lines inside it that read as a bad record when taken for a record start."""
    rng = random.Random(seed)
    rows = _stock(400, seed)
    for k in range(1, len(rows), 5):
        lines = [f'ETAGE {i}, COULOIR "B{i}"' for i in range(rng.randint(30, 80))]
        rows[k][COL["complementAdresseEtablissement"]] = "\n".join(lines)
    return rows


@pytest.mark.parametrize("parts", [2, 3, 4, 7])
def test_split_inside_a_quoted_line_break(tmp_path, parts):
    path = _write(tmp_path / "s.csv", _long_quoted_stock(parts))
    bounds = _bounds(path, parts)
    wrong = [start for start, _ in bounds if start not in _record_starts(path)]
    assert wrong  # some guessed starts are inside a quoted field
    sequential = _fields(_scan(path, 1))
    assert sequential["rows"] == 400
    assert _fields(_scan(path, parts, block=1000)) == sequential


def _rows_per_part(path: Path, parts: int) -> list[int]:
    """Rows of each part (every part starts a record in these files)."""
    starts = sorted(_record_starts(path))
    bounds = _bounds(path, parts)
    assert all(start in starts for start, _ in bounds)
    return [sum(1 for s in starts if a <= s < b) for a, b in bounds]


def test_odd_rows_of_a_later_part(tmp_path):
    rows = _stock(3000, seed=11, odd=0)  # odd rows only at the end of the file
    rng = random.Random(3)
    odd = sorted(rng.sample(range(2700, 3001), 12))
    for k in odd:
        rows[k][COL["codeCommuneEtablissement"]] = " 69123 "
    path = _write(tmp_path / "s.csv", rows)
    first, *_ = _rows_per_part(path, 3)
    assert first < 2600  # the odd rows are in the last parts
    ours, sequential = _scan(path, 3), _scan(path, 1)
    assert _fields(ours) == _fields(sequential)
    assert ours.odd_rows.tolist() == [k - 1 for k in odd]
    data = path.read_bytes()
    for row, a, b in zip(ours.odd_rows, ours.odd_start, ours.odd_end, strict=True):
        record = next(csv.reader(io.StringIO(data[a:b].decode("utf-8"))))
        assert record == rows[row + 1]


def test_place_ids_follow_the_file_order(tmp_path):
    rows = _stock(3000, seed=13)
    for k, r in enumerate(rows[1:]):  # each part brings new places, and reuses earlier ones
        r[COL["codeCommuneEtablissement"]] = f"{10000 + k // 7:05d}" if k % 3 else "75108"
    path = _write(tmp_path / "s.csv", rows)
    ours, sequential = _scan(path, 4), _scan(path, 1)
    assert ours.places == sequential.places
    assert ours.place.tolist() == sequential.place.tolist()
    assert ours.places[:2] == ["75108", "10000"]
    firsts = list(dict.fromkeys(r[COL["codeCommuneEtablissement"]] for r in rows[1:]))
    assert ours.places == firsts


@pytest.mark.parametrize("parts", [1, 3])
def test_places_table_grows(tmp_path, monkeypatch, parts):
    rows = _stock(3000, seed=23)
    for k, r in enumerate(rows[1:]):
        r[COL["codeCommuneEtablissement"]] = f"{10000 + (k * 7919) % 2500:05d}"
    path = _write(tmp_path / "s.csv", rows)
    roomy = _fields(_scan(path, parts))
    monkeypatch.setattr(scan, "_HASH_BITS", 2)  # 4 slots: the table doubles eleven times
    assert _fields(_scan(path, parts, block=4096)) == roomy
    assert len(roomy["places"]) == 2500


@pytest.mark.parametrize("parts", [2, 4])
@pytest.mark.parametrize("where", ["first", "last"])
def test_malformed_record_reported_as_sequentially(tmp_path, parts, where):
    rows = _stock(3000, seed=17)
    bad = 200 if where == "first" else 2900
    rows[bad] = [*rows[bad], "extra"]  # a record with one field too many
    path = _write(tmp_path / "s.csv", rows)
    with pytest.raises(scan.NotStrict) as sequential:
        _scan(path, 1)
    with pytest.raises(scan.NotStrict) as ours:
        _scan(path, parts, block=4096)
    assert str(ours.value) == str(sequential.value)
    offset = int(str(sequential.value).split("byte ")[1].split()[0])
    assert path.read_bytes()[offset:].startswith(rows[bad][COL["siren"]].encode())


def test_bad_record_inside_a_wrongly_guessed_part_is_not_reported(tmp_path):
    path = _write(tmp_path / "s.csv", _long_quoted_stock(2))
    bounds = _bounds(path, 2)
    assert bounds[1][0] not in _record_starts(path)
    guessed = scan._Part(_layout(path), bounds[1][0], bounds[1][1], True).run()
    assert guessed.error is not None  # read from the guess, the part looks malformed
    assert _fields(_scan(path, 2)) == _fields(_scan(path, 1))


@pytest.mark.parametrize("order", ["equal", "smaller"])
def test_increasing_breaks_across_a_part_boundary(tmp_path, order):
    rows = _stock(3000, seed=19)
    path = _write(tmp_path / "s.csv", rows)
    first, *_ = _rows_per_part(path, 2)
    assert _scan(path, 2).increasing and _scan(path, 1).increasing
    # the first record of part 2 gets a SIRET not above the last one of part 1 (same width,
    # so the parts do not move)
    previous = int(rows[first][COL["siret"]])
    siret = previous if order == "equal" else previous - 1
    rows[first + 1][COL["siret"]] = f"{siret:014d}"
    path = _write(tmp_path / "s.csv", rows)
    assert _rows_per_part(path, 2)[0] == first
    for start, end in _bounds(path, 2):  # each part is increasing on its own
        part = scan._Part(_layout(path), start, end, end == path.stat().st_size).run()
        assert part.error is None and part.state[1] == 0
    ours, sequential = _scan(path, 2), _scan(path, 1)
    assert not sequential.increasing
    assert not ours.increasing
    assert _fields(ours) == _fields(sequential)


def test_read_sirene_in_parts_gives_the_duckdb_flows(tmp_path, monkeypatch):
    stock = _write(tmp_path / "StockEtablissement_utf8.csv", _long_quoted_stock(3))
    reference = S.read_sirene([stock], scanner=False)
    monkeypatch.setattr(scan, "MIN_PART", 1 << 10)  # parts even for this small file
    assert scan.default_parts(stock.stat().st_size) == min(
        len(os.sched_getaffinity(0)), scan.MAX_PARTS
    )
    ours = S.read_sirene([stock])
    assert ours.hq.to_pylist() == reference.hq.to_pylist()
    assert ours.hq_breakdown.to_pylist() == reference.hq_breakdown.to_pylist()
    assert ours.counts == reference.counts
    assert ours.warnings == reference.warnings
