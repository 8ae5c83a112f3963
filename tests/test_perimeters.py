"""Shipped and user perimeters: reading, validation against the reference, expansion."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from maillage._errors import SourceError, UnknownTerritory, ValidationError
from maillage.reference import perimeters as per

DATA = Path(__file__).parent / "data" / "cooperations"
MISSION = Path("/work/shared/seed/000_f49ed8088ff2209d.txt")


def mission_text() -> str:
    """The mission document with page footers, soft hyphens and spacing normalised."""
    if not MISSION.exists():
        pytest.skip(f"{MISSION} absent")
    raw = MISSION.read_text(encoding="utf-8")
    return normalise(raw)


def normalise(text: str) -> str:
    footer = (
        r"(?m)^\s*\d*\s*COMPRENDRE – Coopérations entre métropoles et territoires "
        r"environnants\s*\d*\s*$"
    )
    text = re.sub(footer, "", text)
    text = re.sub(r" -\s*\n\s*", "", text)  # soft hyphenation "ag -\nglomérations"
    text = re.sub(r"-\n", "-", text)
    text = re.sub(r"[«»“”\"\ufffd]", '"', text)  # the extract turned guillemets into U+FFFD
    text = re.sub(r'"\s*', '"', text)
    text = re.sub(r'\s*"', '"', text)
    text = re.sub(r"\s+([,.])", r"\1", text)
    return re.sub(r"\s+", " ", text).strip()


def test_shipped_perimeters_exist_in_reference():
    perimeters = per.load_perimeters()
    named = {
        "pole-metropolitain-pays-de-brest", "pole-metropolitain-nantes-saint-nazaire",
        "pays-centre-ouest-bretagne", "petr-pays-de-retz", "petr-pays-portes-de-gascogne",
        "dialogue-metropolitain-toulouse", "territoire-industrie-axe-seine",
        "pole-metropolitain-loire-bretagne", "pole-metropolitain-rouen-seine-eure",
    }  # fmt: skip
    assert named <= set(perimeters)
    per.validate(perimeters)  # raises on any unknown member


def test_shipped_quotes_come_from_the_document():
    text = mission_text()
    for p in per.load_perimeters().values():
        assert normalise(p.source["quote"]) in text, p.slug
        assert p.members or p.unresolved, p.slug


def test_commune_counts_match_the_document():
    # « Le territoire du pôle rassemble 61 communes » ; « le pôle métropolitain rassemble
    # désormais près de 600 000 habitants et 131 communes » ; Brest métropole « réunit 8 communes »
    assert len(per.perimeter_communes("pole-metropolitain-nantes-saint-nazaire")) == 61
    assert len(per.perimeter_communes("pole-metropolitain-rouen-seine-eure")) == 131
    assert len(per.perimeter_communes("epci-ouest-breton")) == 8


def test_user_csv_perimeters_and_memberships():
    perimeters = per.load_perimeters(extra_paths=[DATA / "user_perimeters.csv"])
    per.validate(perimeters)
    brest = set(per.perimeter_communes("brest-quimper", perimeters))
    assert "29019" in brest and "29232" in brest  # Brest, Quimper
    assert per.perimeter_communes("iroise-plus", perimeters) == ["29019"]
    m = per.memberships_for_perimeters(perimeters)
    assert list(m.columns) == ["commune", "level", "code"]
    assert set(m["level"]) == {"perimeter"}
    # overlapping perimeters: Brest in several
    assert {"brest-quimper", "iroise-plus", "pole-metropolitain-pays-de-brest"} <= set(
        m.loc[m["commune"] == "29019", "code"]
    )


@pytest.mark.parametrize(("name", "line"), [("bad_member.csv", 3), ("bad_member.yaml", 7)])
def test_unknown_member_names_file_line_member(name, line):
    perimeters = per.load_perimeters(DATA / name)
    with pytest.raises(UnknownTerritory) as info:
        per.validate(perimeters)
    message = str(info.value)
    assert f"{DATA / name}, line {line}" in message
    assert "299999999" in message or "99999" in message


def test_duplicate_slug_and_malformed_member(tmp_path):
    with pytest.raises(ValidationError, match="defined twice"):
        per.load_perimeters(extra_paths=[per.SHIPPED_PATH])
    bad = tmp_path / "bad.csv"
    bad.write_text("slug,name,member\nx,X,12\n", encoding="utf-8")
    with pytest.raises(SourceError) as info:
        per.load_perimeters(bad)
    assert (info.value.line, info.value.column) == (2, "member")
