"""Coverage of measured links (from the store) by cooperations (from the register), by hand."""

from __future__ import annotations

import pytest
from test_indicators import FLOWS, _make_store

from maillage.cooperations import auth, crud
from maillage.cooperations.coverage import Thresholds
from maillage.cooperations.db import open_registry, session_factory
from maillage.cooperations.from_store import links_all, links_of, territory_coverage
from maillage.cooperations.records import Cooperation, Party


@pytest.fixture()
def tiny(tmp_path):
    store = _make_store(tmp_path / "tiny.duckdb")
    yield store
    store.close()


@pytest.fixture()
def session(tmp_path):
    engine = open_registry(f"sqlite:///{tmp_path / 'reg.sqlite'}")
    with session_factory(engine)() as s, s.begin():
        yield s


def _coop(slug: str, refs: list[str]) -> Cooperation:
    return Cooperation(
        slug=slug,
        name=slug.title(),
        instrument="entente",
        status="active",
        themes=["mobilite"],
        parties=[Party(ref=r) for r in refs],
    )


def test_links_of_epci_shares_by_hand(tiny):
    links = links_of(tiny, "epci:E1", kinds=["commute"])
    assert list(links["b"]) == ["epci:E2"]
    row = links.iloc[0]
    # E1 ↔ E2: 30 (11001→11003) + 5 (11003→11001)
    assert row["value"] == pytest.approx(35)
    r_e1 = sum(v for o, _, v in FLOWS if o in {"11001", "11002"})
    e_e1 = sum(v for _, d, v in FLOWS if d in {"11001", "11002"})
    assert row["share_a"] == pytest.approx(max(30 / r_e1, 5 / e_e1))


def test_links_all_matches_links_of(tiny):
    every = links_all(tiny, level="epci", kinds=["commute"])
    one = links_of(tiny, "epci:E1", kinds=["commute"])
    assert len(every) == 1
    assert every.iloc[0]["value"] == pytest.approx(one.iloc[0]["value"])
    assert every.iloc[0]["share_a"] == pytest.approx(one.iloc[0]["share_a"])
    assert every.iloc[0]["share_b"] == pytest.approx(one.iloc[0]["share_b"])


def test_territory_coverage_covered_uncovered_and_unsupported(tiny, session):
    admin = auth.add_user(session, "admin", "correct horse battery", "admin")
    th = Thresholds(min_share=0.05, min_value=10)
    _, res = territory_coverage(tiny, session, "epci:E1", kinds=["commute"], thresholds=th)
    assert len(res.links) == 1 and len(res.uncovered) == 1  # no cooperation yet
    crud.create(session, _coop("e1-e2", ["epci:E1", "epci:E2"]), user=admin, exists=None)
    crud.create(session, _coop("e1-alone", ["epci:E1", "com:11002"]), user=admin, exists=None)
    _, res = territory_coverage(tiny, session, "epci:E1", kinds=["commute"], thresholds=th)
    assert res.links.iloc[0]["cooperations"] == ["e1-e2"]
    assert res.uncovered.empty
    # "e1-alone" binds E1 with one of its own communes: no measured link between its parties
    assert list(res.unsupported["slug"]) == ["e1-alone"]
    # a higher floor makes the 35-person link weak: nothing strong left
    _, res = territory_coverage(
        tiny, session, "epci:E1", kinds=["commute"], thresholds=Thresholds(min_value=100)
    )
    assert res.links.empty
