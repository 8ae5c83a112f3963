"""Import/export of cooperations: exact round-trips (hypothesis) and clear errors."""

from __future__ import annotations

import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from maillage.cooperations import crud
from maillage.cooperations.errors import ImportFormatError
from maillage.cooperations.io import import_records, read_records, to_csv, to_json
from maillage.cooperations.records import Cooperation
from maillage.cooperations.vocab import INSTRUMENTS, ROLES, STATUSES, THEMES

pytest_plugins = ["conftest_pg"]

DATA = Path(__file__).parent / "data" / "cooperations"

text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=40
)
maybe_text = st.none() | text
dates = st.none() | st.sampled_from(["2012", "2016-11", "2017-07-10"])
slugs = st.text(
    alphabet=string.ascii_lowercase + string.digits + "-", min_size=1, max_size=30
).filter(lambda s: s[0] != "-")
parties = st.builds(
    dict,
    ref=st.none() | st.sampled_from(["epci:242900314", "com:29019", "dep:29", "per:x"]),
    role=st.sampled_from(list(ROLES)),
    joined=dates,
    left=st.none(),
    name=maybe_text,
    note=maybe_text,
)
sources = st.builds(
    dict, document=text.filter(str.strip), page=maybe_text, quote=maybe_text, url=maybe_text
)
records = st.builds(
    dict,
    slug=slugs,
    name=text.filter(str.strip),
    instrument=st.sampled_from(list(INSTRUMENTS)),
    status=st.sampled_from(list(STATUSES)),
    start=dates,
    end=dates,
    themes=st.lists(st.sampled_from(list(THEMES)), unique=True, max_size=4),
    parties=st.lists(parties, max_size=4),
    governance=maybe_text,
    funding=maybe_text,
    description=maybe_text,
    actions=st.lists(text, max_size=3),
    sources=st.lists(sources, max_size=2),
).map(Cooperation.from_dict)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(records, max_size=4, unique_by=lambda r: r.slug), st.sampled_from(["csv", "json"]))
def test_round_trip_is_exact(tmp_path, recs, fmt):
    path = tmp_path / f"out.{fmt}"
    path.write_text(to_csv(recs) if fmt == "csv" else to_json(recs), encoding="utf-8", newline="")
    back = [rec for _line, rec in read_records(path)]
    assert [r.to_dict() for r in back] == [r.to_dict() for r in recs]


def test_round_trip_through_the_register(sessions, editor, tmp_path):
    from maillage.cooperations.seed import seed_records

    recs = seed_records()[:12]
    for fmt in ("csv", "json"):
        path = tmp_path / f"seed.{fmt}"
        path.write_text(to_csv(recs) if fmt == "csv" else to_json(recs), encoding="utf-8")
        with sessions() as s, s.begin():
            for slug in crud.slugs(s):
                crud.delete(s, slug, user=editor)
            report = import_records(s, path, user=editor, exists=None)
        assert len(report.created) == 12
        with sessions() as s:
            exported = crud.list_cooperations(s)
        assert sorted(r.to_dict()["slug"] for r in exported) == sorted(r.slug for r in recs)
        by_slug = {r.slug: r.to_dict() for r in exported}
        assert all(by_slug[r.slug] == r.to_dict() for r in recs)


def test_csv_lines_are_where_records_start(tmp_path):
    recs = [
        Cooperation.from_dict({"slug": "a", "name": "A", "instrument": "entente",
                               "description": "two\nlines", "parties": ["com:29019"]}),
        Cooperation.from_dict({"slug": "b", "name": "B", "instrument": "entente",
                               "parties": ["com:29019"]}),
    ]  # fmt: skip
    path = tmp_path / "x.csv"
    path.write_text(to_csv(recs), encoding="utf-8")
    assert [line for line, _ in read_records(path)] == [2, 4]


@pytest.mark.parametrize(
    ("name", "line", "column", "fragment"),
    [
        ("bad_theme.csv", 3, "themes", "theme 'astrologie' is unknown"),
        ("bad_json_cell.csv", 3, "sources", "malformed JSON in the cell"),
        ("duplicate.csv", 3, "slug", "already used on line 2"),
        ("bad_syntax.json", 5, None, "malformed JSON"),
        ("unknown_territory.json", 4, "end", "end before start"),
    ],
)
def test_bad_files_name_file_line_column(
    sessions, editor, reference_index, name, line, column, fragment
):
    path = DATA / name
    with pytest.raises(ImportFormatError) as info, sessions() as s, s.begin():
        import_records(s, path, user=editor, exists=reference_index.exists)
    error = info.value
    assert (error.path, error.line, error.column) == (str(path), line, column)
    assert fragment in str(error)
    assert str(path) in str(error)
    with sessions() as s:
        assert crud.slugs(s) == set()  # all or nothing


def test_unknown_territory_is_listed_too(sessions, editor, reference_index):
    with pytest.raises(ImportFormatError) as info, sessions() as s, s.begin():
        import_records(
            s, DATA / "unknown_territory.json", user=editor, exists=reference_index.exists
        )
    assert "epci:123456789" in str(info.value)
    assert len(info.value.problems) == 2


def test_import_refuses_existing_slug_unless_replace(sessions, editor, tmp_path):
    rec = Cooperation.from_dict({"slug": "a", "name": "A", "instrument": "entente",
                                 "parties": ["com:29019", "com:29075"]})  # fmt: skip
    path = tmp_path / "a.json"
    path.write_text(to_json([rec]), encoding="utf-8")
    with sessions() as s, s.begin():
        import_records(s, path, user=editor, exists=None)
    with (
        pytest.raises(ImportFormatError, match="already in the register"),
        sessions() as s,
        s.begin(),
    ):
        import_records(s, path, user=editor, exists=None)
    rec.name = "A renamed"
    path.write_text(to_json([rec]), encoding="utf-8")
    with sessions() as s, s.begin():
        report = import_records(s, path, user=editor, exists=None, replace=True)
    assert report.updated == ["a"]
    with sessions() as s:
        assert crud.get(s, "a").name == "A renamed"
