"""The server's warm-up: the first view's answers are ready before the first visitor asks."""

from __future__ import annotations

import logging
import shutil

import pytest
from fastapi.testclient import TestClient

from maillage.delivery.api import create_app
from maillage.delivery.api.warmup import first_view_paths, selection_paths
from maillage.settings import Settings
from maillage.store import Store

PREFIX = "/api/v1"


@pytest.fixture(scope="module")
def served(built_db, tmp_path_factory):
    """The app started (its lifespan run) on a copy of the built store."""
    home = tmp_path_factory.mktemp("warm-home")
    shutil.copy(built_db, home / "maillage.duckdb")
    store = Store(home / "maillage.duckdb")
    app = create_app(Settings(home=home), store=store)
    with TestClient(app) as client:
        yield app, client
    store.close()


def json_keys(app) -> set[tuple]:
    return {key for key in app.state.cache if key and key[0] == "json"}


def test_start_up_asks_the_first_view_and_one_selection(served):
    app, _ = served
    report = app.state.warm_up
    assert report is not None and not report.failed, report.answers
    asked = list(report.answers)
    assert asked[: len(first_view_paths(PREFIX))] == first_view_paths(PREFIX)
    # then the panel of a territory of the default level that has a value on the map
    profile, partners = asked[-2:]
    assert profile.startswith(f"{PREFIX}/territories/epci%3A") and profile.endswith("/profile")
    assert "/partners?kind=commute" in partners
    assert report.static_files >= 5  # app.js, boot.js, app.css, the map library and its css


def test_first_view_is_answered_from_what_the_warm_up_left(served):
    """Every request of the first view is already in the answer cache: asking them again
    adds no entry (a new answer would be computed and stored)."""
    app, client = served
    before = json_keys(app)
    assert before, "the warm-up stored no answer"
    for path in first_view_paths(PREFIX):
        assert client.get(path, headers={"accept-encoding": "gzip"}).status_code == 200
    assert json_keys(app) == before


def test_the_selection_paths_are_the_ones_the_page_sends(served):
    """Same URLs as web/boot.js writes them: the page's first panel hits the warmed answers."""
    _, client = served
    paths = selection_paths(PREFIX, "epci:242900314")
    assert paths[0] == f"{PREFIX}/territories/epci%3A242900314/profile"
    assert paths[1].endswith("/partners?kind=commute&direction=both&top=15&threshold=0")
    for path in paths:
        assert client.get(path).status_code == 200


def test_an_empty_home_still_starts_and_says_what_failed(tmp_path, caplog):
    app = create_app(Settings(home=tmp_path))
    with caplog.at_level(logging.WARNING, logger="maillage.warmup"), TestClient(app) as client:
        assert client.get("/").status_code == 200
        report = app.state.warm_up
    assert report.failed, "no store: the data answers cannot be 200"
    assert any("warm-up" in r.getMessage() for r in caplog.records)


def test_warm_up_can_be_turned_off(tmp_path, monkeypatch):
    monkeypatch.setenv("MAILLAGE_WARM_UP", "0")
    app = create_app(Settings(home=tmp_path))
    with TestClient(app) as client:
        assert client.get("/").status_code == 200
    assert app.state.warm_up is None
    assert not json_keys(app)
