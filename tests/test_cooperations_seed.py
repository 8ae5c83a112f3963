"""Seed records of the mission document: faithful, resolved, idempotent."""

from __future__ import annotations

import pytest
from test_perimeters import mission_text, normalise

from maillage.cooperations import crud
from maillage.cooperations.records import validate_record
from maillage.cooperations.seed import load_seed, seed_records

pytest_plugins = ["conftest_pg"]


def test_every_quote_is_in_the_document():
    text = mission_text()
    for rec in seed_records():
        assert rec.sources, rec.slug
        for source in rec.sources:
            assert normalise(source.quote) in text, (rec.slug, source.quote[:60])


def test_seed_records_are_valid_against_the_reference(reference_index):
    problems = {r.slug: validate_record(r, reference_index.exists) for r in seed_records()}
    assert {k: v for k, v in problems.items() if v} == {}


def test_named_cooperations_are_there():
    by_slug = {r.slug: r for r in seed_records()}
    expected = {
        "pole-metropolitain-pays-de-brest": 7, "pole-metropolitain-loire-bretagne": 5,
        "contrat-reciprocite-brest-cob": 4, "pole-metropolitain-nantes-saint-nazaire": 5,
        "contrat-reciprocite-nantes-pays-de-retz": 2, "pole-metropolitain-rouen-seine-eure": 2,
        "territoire-industrie-axe-seine": 8, "dialogue-metropolitain-toulouse": 12,
        "contrat-reciprocite-toulouse-portes-de-gascogne": 2, "ouestgo": 6,
        "accord-cadre-toulouse-montpellier": 2, "rer-metropolitain-bordeaux-libournais": 3,
        "contrat-reciprocite-montpellier-monts-de-lacaune": 2, "rennes-saint-malo": 2,
        "contrats-reciprocite-tours-epci-indre-et-loire": 1,
        "contributions-communes-epci-ouest-breton": 1,
    }  # slug -> resolved parties  # fmt: skip
    assert {s: len(by_slug[s].resolved_refs) for s in expected} == expected
    # what the document does not name is listed, not guessed
    assert by_slug["contrats-reciprocite-tours-epci-indre-et-loire"].unresolved_parties
    assert by_slug["ouestgo"].unresolved_parties[0] == "l’État"
    # dates as the document gives them
    assert by_slug["contrat-reciprocite-toulouse-portes-de-gascogne"].start == "2017-07-10"
    assert by_slug["contrat-reciprocite-brest-cob"].start == "2016-11"


def test_load_seed_is_idempotent(sessions, reference_index):
    with sessions() as s, s.begin():
        first = load_seed(s, exists=reference_index.exists)
    n = len(seed_records())
    assert len(first.created) == n
    assert "ouestgo" in first.unresolved_parties
    with sessions() as s, s.begin():
        second = load_seed(s, exists=reference_index.exists)
    assert second.created == [] and second.updated == [] and len(second.kept) == n
    with sessions() as s:
        assert len(crud.list_cooperations(s)) == n
        assert len(crud.history(s)) == n  # the second run wrote nothing
        assert {c.user for c in crud.history(s)} == {"seed"}


@pytest.mark.parametrize("registry_url", ["sqlite"], indirect=True)
def test_seed_refuses_unknown_territory(sessions, tmp_path, reference_index):
    bad = tmp_path / "seed.yaml"
    bad.write_text(
        "cooperations:\n  - {slug: x, name: X, instrument: entente, "
        "parties: [{ref: 'epci:000000000'}]}\n",
        encoding="utf-8",
    )
    from maillage.cooperations.errors import RecordInvalid

    with pytest.raises(RecordInvalid, match="epci:000000000"), sessions() as s, s.begin():
        load_seed(s, path=bad, exists=reference_index.exists)
    with sessions() as s:
        assert crud.slugs(s) == set()
