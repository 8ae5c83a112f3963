"""Coverage and bodies of a territory through the API, against the library on the same data."""

from __future__ import annotations

import shutil

import pytest
from fastapi.testclient import TestClient

from maillage.cooperations.db import open_registry, session_factory
from maillage.cooperations.from_store import territory_coverage
from maillage.cooperations.seed import load_seed
from maillage.delivery.api import create_app
from maillage.settings import Settings
from maillage.store import Store


@pytest.fixture(scope="module")
def env(built_db, tmp_path_factory):
    home = tmp_path_factory.mktemp("cov-home")
    shutil.copy(built_db, home / "maillage.duckdb")
    settings = Settings(home=home)
    engine = open_registry(settings.registry_url)
    with session_factory(engine)() as s, s.begin():
        load_seed(s)
    store = Store(home / "maillage.duckdb")
    yield TestClient(create_app(settings, store=store)), store, engine
    store.close()


def test_coverage_of_brest_matches_library(env):
    client, store, engine = env
    r = client.get("/api/v1/territories/epci:242900314/coverage", params={"kind": "commute"})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["meta"]["status"] == "modelled"  # the flows behind the links are modelled
    with session_factory(engine)() as s:
        _, res = territory_coverage(store, s, "epci:242900314", kinds=["commute"])
    assert body["data"]["summary"]["strong_links"] == len(res.links)
    got = {(lk["b"], tuple(lk["cooperations"])) for lk in body["data"]["links"]}
    want = {(b, tuple(c)) for b, c in zip(res.links["b"], res.links["cooperations"])}
    assert got == want
    # the pôle métropolitain du Pays de Brest binds Brest Métropole and the Pays d'Iroise
    iroise = next(lk for lk in body["data"]["links"] if lk["b"] == "epci:242900074")
    assert any("pays-de-brest" in slug for slug in iroise["cooperations"])


def test_bodies_of_a_commune_go_through_its_epci(env):
    client, _, _ = env
    r = client.get("/api/v1/territories/com:29019/bodies")
    assert r.status_code == 200, r.text
    rows = r.json()["data"]["bodies"]
    assert rows and {row["relation"] for row in rows} <= {"direct", "through", "inside"}
    assert any(row["via"] == "epci:242900314" and row["relation"] == "through" for row in rows)


def test_unknown_territory_is_a_404_in_the_error_shape(env):
    client, _, _ = env
    r = client.get("/api/v1/territories/com:00000/coverage")
    assert r.status_code == 404
    body = r.json()
    assert body["ok"] is False and body["error"]["status"] == 404
