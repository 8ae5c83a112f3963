"""Vocabularies, partial dates and record validation (no database)."""

from __future__ import annotations

from datetime import date

import pytest

from maillage.cooperations.records import Cooperation, date_bounds, validate_record
from maillage.cooperations.vocab import INSTRUMENTS, THEMES, normalise_choice


@pytest.mark.parametrize(
    ("typed", "vocab", "slug"),
    [
        ("Contrat de réciprocité", INSTRUMENTS, "contrat_reciprocite"),
        ("PETR / pays", INSTRUMENTS, "petr_pays"),
        ("groupement d'autorités concédantes", INSTRUMENTS, "groupement_autorites_concedantes"),
        ("ENSEIGNEMENT SUPERIEUR ET RECHERCHE", THEMES, "enseignement_superieur_recherche"),
        ("déchets", THEMES, "dechets"),
        ("astrologie", THEMES, None),
    ],
)
def test_normalise_choice(typed, vocab, slug):
    assert normalise_choice(typed, vocab) == slug


def test_date_bounds():
    assert date_bounds("2012") == (date(2012, 1, 1), date(2012, 12, 31))
    assert date_bounds("2016-02") == (date(2016, 2, 1), date(2016, 2, 29))
    assert date_bounds("2017-07-10") == (date(2017, 7, 10), date(2017, 7, 10))
    with pytest.raises(ValueError, match="no such month"):
        date_bounds("2017-02-30")


def test_partial_dates_compare_generously():
    base = {"slug": "a", "name": "A", "instrument": "entente", "parties": ["com:29019"]}
    assert validate_record(Cooperation.from_dict({**base, "start": "2012-06", "end": "2012"})) == []
    problems = validate_record(
        Cooperation.from_dict({**base, "start": "2012-06", "end": "2012-05"})
    )
    assert problems == ["end before start: 2012-05 is before 2012-06"]


def test_every_problem_is_listed():
    rec = Cooperation.from_dict(
        {"slug": "Bad Slug", "name": "A", "instrument": "traité", "themes": ["x", "x"],
         "parties": [{"ref": "epci:1", "role": "boss"}, {"ref": None}]}
    )  # fmt: skip
    problems = validate_record(rec, exists=lambda ref: False)
    assert len(problems) == 8, problems  # theme "x" is reported at each occurrence
