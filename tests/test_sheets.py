"""Territory and pair sheets: figures equal to the library's, French typography, PDF pages."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from maillage._errors import UnknownTerritory, ValidationError
from maillage.analysis.flows import between, partners
from maillage.analysis.indicators import profile
from maillage.delivery.exports import OutputError
from maillage.delivery.reports import typography as ty
from maillage.store import Store

BREST = "epci:242900314"
LANDERNEAU = "epci:242900801"
DATA = Path(__file__).parent / "data" / "reports"


def _plain(text: str) -> str:
    """Collapse every kind of space (pdftotext keeps U+202F / U+00A0) to one plain space."""
    return re.sub(r"[\s\u00a0\u202f]+", " ", text)


@pytest.fixture(scope="module")
def ro(built_db):
    with Store(built_db, read_only=True) as store:
        yield store


# -- typography ---------------------------------------------------------------------------


def test_number_groups_thousands_with_narrow_nbsp_and_uses_decimal_comma():
    assert ty.number(1234567.891, 1) == "1\u202f234\u202f567,9"
    assert ty.number(-1234.4) == "−1\u202f234"
    assert ty.number(12.0, signed=True) == "+12"
    assert ty.number(None) == "—"
    assert ty.percent(0.4321) == "43,2\u202f%"


def test_fix_typography_spaces_punctuation_but_not_entities_nor_css():
    html = "<style>a:b;c</style><p>Source : A &amp; B ; «x» ?</p>"
    out = ty.fix_typography(html)
    assert "<style>a:b;c</style>" in out
    assert "Source\u00a0: A &amp; B\u202f; «\u00a0x\u00a0»\u202f?" in out


def test_stratum_in_words():
    assert ty.stratum_fr("epci/CC/50 k–100 k") == "EPCI de type CC, 50 k–100 k habitants"


# -- territory sheet ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def brest_pdf(ro, tmp_path_factory):
    from maillage.delivery.reports import territory_sheet, write_sheet

    path = tmp_path_factory.mktemp("sheet") / "brest.pdf"
    write_sheet(territory_sheet(ro, BREST), path)
    return path


def _pdftotext(path: Path) -> str:
    if not shutil.which("pdftotext"):
        pytest.skip("pdftotext (Debian poppler-utils) is not installed")
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], capture_output=True, check=True, text=True
    ).stdout


def test_territory_pdf_text_has_french_labels_and_library_numbers(ro, brest_pdf):
    text = _plain(_pdftotext(brest_pdf))
    prof = profile(ro, BREST)
    block = prof["kinds"]["commute"]
    for label in (
        "Brest Métropole",
        "Fiche territoire",
        "Domicile – travail",
        "Identité",
        "Coopérations",
        "Sources et méthode",
        "modélisé",
        "Strate de comparaison",
    ):
        assert label in text, label
    values = {i["name"]: i for i in block["indicators"]}
    for name in ("origin_total", "destination_total", "internal"):
        assert _plain(ty.number(values[name]["value"])) in text, name
    assert _plain(ty.percent(values["self_containment"]["value"])) in text
    first = partners(ro, BREST, "commute", top=1).iloc[0]
    assert first["partner_name"] in text
    assert _plain(ty.number(first["total"])) in text
    # accents survive the PDF round trip
    assert "Métropole" in text and "Sortants" in text


def test_territory_pdf_pages_are_drawn(brest_pdf, tmp_path):
    if not shutil.which("pdftoppm"):
        pytest.skip("pdftoppm (Debian poppler-utils) is not installed")
    import numpy as np
    from PIL import Image

    subprocess.run(["pdftoppm", "-r", "40", "-png", str(brest_pdf), str(tmp_path / "p")],
                   check=True)  # fmt: skip
    pages = sorted(tmp_path.glob("p-*.png"))
    assert len(pages) >= 2
    orange_pages = 0
    for page in pages:
        px = np.asarray(Image.open(page).convert("RGB")).astype(int)
        ink = (px.sum(axis=2) < 700).mean()
        assert ink > 0.005, f"{page.name} looks blank"
        # the territory is filled orange (#f4a261) on the map
        orange = (np.abs(px - np.array([244, 162, 97])) < 12).all(axis=2)
        orange_pages += bool(orange.sum() > 50)
    assert orange_pages >= 1, "no page shows the territory's orange polygon"


def test_territory_html_is_self_contained_with_maps_and_french_spaces(ro):
    from maillage.delivery.reports import render_html, territory_sheet

    html = render_html(territory_sheet(ro, BREST))
    assert html.count("data:image/png;base64,") >= 3  # map, partners chart, stratum chart
    assert "http://" not in html and "https://" not in html
    text = re.sub(r"<style.*?</style>|<[^>]+>", "", html, flags=re.S)
    assert not re.search(r" [:;!?»]", text), "plain space before French punctuation"
    assert not re.search(r"« ", text)


def test_register_empty_is_said_and_register_records_are_listed(ro):
    from maillage.cooperations.network import bodies_of
    from maillage.cooperations.seed import seed_records
    from maillage.delivery.reports import render_html, territory_sheet
    from maillage.delivery.reports.sheets import _index

    empty = render_html(territory_sheet(ro, BREST, register=None))
    assert "registre des coopérations est vide" in empty
    records = seed_records()
    html = render_html(territory_sheet(ro, BREST, register=records))
    names = bodies_of(BREST, records, _index(ro))["name"].unique()
    assert len(names) > 0
    for name in names:
        assert ty.fix_text(name).replace("'", "&#39;") in html or ty.fix_text(name) in html


# -- pair sheet -------------------------------------------------------------------------------


def test_pair_sheet_numbers_are_those_of_between(ro):
    from maillage.delivery.reports import pair_sheet, render_html

    html = _plain(render_html(pair_sheet(ro, BREST, LANDERNEAU)))
    res = between(ro, BREST, LANDERNEAU, "commute")
    assert res["total"] > 0
    for v in (res["a_to_b"], res["b_to_a"], res["total"]):
        assert _plain(ty.number(v)) in html
    assert _plain(ty.number(res["balance_for_a"], signed=True)) in html
    assert _plain(ty.percent(res["share_of_a_origin_to_b"])) in html
    assert _plain(ty.percent(res["share_of_b_origin_to_a"])) in html
    assert "Fiche binôme" in html and "modélisé" in html


def test_pair_with_no_flow_says_so(ro):
    from maillage.delivery.reports import pair_sheet, render_html

    assert between(ro, "com:29019", "com:2A004", "commute")["total"] == 0
    sheet = pair_sheet(ro, "com:29019", "com:2A004")
    assert sheet.context["no_flow"]
    assert "Aucun flux mesuré entre ces deux territoires" in render_html(sheet)


def test_pair_of_the_same_territory_is_refused(ro):
    from maillage.delivery.reports import pair_sheet

    with pytest.raises(ValidationError, match="two different territories"):
        pair_sheet(ro, BREST, BREST)


# -- bad input --------------------------------------------------------------------------------


def test_unknown_territory_is_a_clear_error(ro):
    from maillage.delivery.reports import territory_sheet

    with pytest.raises(UnknownTerritory, match="999999999"):
        territory_sheet(ro, "epci:999999999")


def test_unwritable_output_leaves_nothing(ro, tmp_path):
    from maillage.delivery.reports import territory_sheet, write_sheet

    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        write_sheet(territory_sheet(ro, LANDERNEAU), blocker / "sheet.html")
    with pytest.raises(OutputError, match=r"\.pdf or \.html"):
        write_sheet(territory_sheet(ro, LANDERNEAU), tmp_path / "sheet.docx")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["not_a_folder"]


def test_failed_pdf_rendering_leaves_no_file(ro, tmp_path, monkeypatch):
    from maillage.delivery.reports import pdf, territory_sheet, write_sheet

    def broken(html, path):
        Path(path).write_bytes(b"%PDF-1.7 half")
        raise RuntimeError("renderer crashed")

    monkeypatch.setattr(pdf, "html_to_pdf", broken)
    with pytest.raises(RuntimeError):
        write_sheet(territory_sheet(ro, LANDERNEAU), tmp_path / "x.pdf")
    assert list(tmp_path.iterdir()) == []


def test_perimeter_of_a_single_commune(built_store, tmp_path):
    from maillage.build import reload_perimeters
    from maillage.delivery.reports import render_html, territory_sheet, write_sheet

    reload_perimeters(built_store, [DATA / "single_commune_perimeter.csv"])
    sheet = territory_sheet(built_store, "per:seule-commune")
    assert sheet.context["members"] == ["Brest"]
    html = render_html(sheet)
    prof = profile(built_store, "per:seule-commune")
    value = prof["kinds"]["commute"]["indicators"][0]["value"]
    assert _plain(ty.number(value)) in _plain(html)
    assert write_sheet(sheet, tmp_path / "seule.html").exists()


# -- command line ----------------------------------------------------------------------------


def test_cli_sheet_writes_html_and_fails_clearly(built_db, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from maillage.cli_reports import app

    monkeypatch.setenv("MAILLAGE_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("MAILLAGE_DATABASE", str(built_db))
    runner = CliRunner()
    out = tmp_path / "pair.html"
    res = runner.invoke(app, ["sheet", BREST, "--with", LANDERNEAU, "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "Fiche binôme" in out.read_text("utf-8")
    bad = runner.invoke(app, ["sheet", "epci:999999999", "-o", str(tmp_path / "x.pdf")])
    assert bad.exit_code == 1
    assert "999999999" in bad.output
    assert not (tmp_path / "x.pdf").exists()


def test_page_header_keeps_the_apostrophe(ro):
    """The running header is a CSS string: HTML entities would be printed as such."""
    from maillage.delivery.reports import render_html, territory_sheet

    html = render_html(territory_sheet(ro, "epci:200066868"))  # CC Presqu'île de Crozon…
    style = re.search(r"<style.*?</style>", html, flags=re.S).group(0)
    header = re.search(r"@top-left \{ content: (\"[^\"]*\")", style).group(1)
    assert "&#39;" not in header and "Presqu\\27 île" in header
