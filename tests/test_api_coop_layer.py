"""What the web map's cooperation layer and first view read from the API: the perimeter of a
cooperation, the positions of the ends of strong links, the light polygons of a level.

Checked against the seed register, the store's own territory table and the reference polygons.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import shapely
from fastapi.testclient import TestClient

from maillage import reference
from maillage.cooperations.db import open_registry, session_factory
from maillage.cooperations.seed import load_seed, seed_records
from maillage.delivery.api import create_app
from maillage.delivery.api.routes.geometry import (
    LOW_DETAIL_TOLERANCE,
    NATIONAL_DETAIL_TOLERANCE,
)
from maillage.settings import Settings
from maillage.store import Store

LANDERNEAU = "epci:242900801"
POLE = "pole-metropolitain-pays-de-brest"
CONTRACT = "contrat-reciprocite-brest-cob"


@pytest.fixture(scope="module")
def client(built_db, tmp_path_factory):
    home = tmp_path_factory.mktemp("coop-layer-home")
    shutil.copy(built_db, home / "maillage.duckdb")
    settings = Settings(home=home)
    engine = open_registry(settings.registry_url)
    with session_factory(engine)() as s, s.begin():
        load_seed(s)
    store = Store(home / "maillage.duckdb")
    yield TestClient(create_app(settings, store=store))
    store.close()
    engine.dispose()


def ok(response) -> dict:
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is True
    return body


def seed(slug: str):
    return next(r for r in seed_records() if r.slug == slug)


def shapes_of(fc: dict, part: str) -> dict:
    return {
        f["properties"]["ref"]: shapely.geometry.shape(f["geometry"])
        for f in fc["features"]
        if f["properties"]["part"] == part
    }


def test_perimeter_of_a_pole_is_its_member_epci(client):
    body = ok(client.get(f"/api/v1/cooperations/{POLE}/geometry"))
    parties = shapes_of(body["data"], "party")
    assert set(parties) == {p.ref for p in seed(POLE).parties if p.ref}
    assert {f["properties"]["role"] for f in body["data"]["features"][:-1]} == {"member"}
    outline = body["data"]["features"][-1]
    assert outline["properties"]["part"] == "outline"
    assert outline["properties"]["name"] == seed(POLE).name
    union = shapely.geometry.shape(outline["geometry"])
    ref_shapes = reference.shapes("epci")
    for ref in parties:
        inner = ref_shapes[ref.split(":")[1]].representative_point()
        assert union.contains(inner), ref
    about = body["meta"]["cooperation"]
    assert about["instrument_label"] == "pôle métropolitain"
    assert about["parties_in_outline"] == len(parties)


def test_associates_are_drawn_but_left_out_of_the_outline(client):
    body = ok(client.get(f"/api/v1/cooperations/{CONTRACT}/geometry"))
    roles = {
        f["properties"]["ref"]: f["properties"]["role"]
        for f in body["data"]["features"]
        if f["properties"]["part"] == "party"
    }
    assert roles["reg:53"] == "associate" and roles["epci:242900314"] == "member"
    union = shapely.geometry.shape(body["data"]["features"][-1]["geometry"])
    rennes = reference.shapes("commune")["35238"].representative_point()
    assert not union.contains(rennes)  # in the région (an associate), not in the contract
    assert body["meta"]["cooperation"]["parties_without_territory"] == 2


def test_unknown_cooperation_is_a_404_in_the_error_shape(client):
    r = client.get("/api/v1/cooperations/no-such-thing/geometry")
    assert r.status_code == 404
    assert r.json()["ok"] is False and r.json()["error"]["status"] == 404


def test_coverage_links_carry_the_positions_of_their_ends(client):
    data = ok(client.get(f"/api/v1/territories/{LANDERNEAU}/coverage", params={"kind": "commute"}))
    links = data["data"]["links"]
    assert links and data["data"]["uncovered"]
    for link in links:
        for end in ("a", "b"):
            t = ok(client.get(f"/api/v1/territories/{link[end]}"))["data"]
            assert (link[f"lon_{end}"], link[f"lat_{end}"]) == (t["lon"], t["lat"])


@pytest.mark.parametrize("level", ["epci", "departement", "region"])
@pytest.mark.parametrize(
    ("detail", "tolerance", "min_area"),
    [("low", LOW_DETAIL_TOLERANCE, 0.9), ("national", NATIONAL_DETAIL_TOLERANCE, 0.7)],
)
def test_light_polygons_keep_every_territory_with_fewer_vertices(
    client, level, detail, tolerance, min_area
):
    def layer(detail: str) -> dict:
        fc = ok(client.get(f"/api/v1/geometry/{level}", params={"detail": detail}))["data"]
        return {
            f["properties"]["code"]: shapely.geometry.shape(f["geometry"]) for f in fc["features"]
        }

    full, light = layer("full"), layer(detail)
    assert set(light) == set(full)
    codes = sorted(full)
    a = np.array([full[c] for c in codes], dtype=object)
    b = np.array([light[c] for c in codes], dtype=object)
    assert not shapely.is_empty(b).any()
    n_full, n_light = shapely.get_num_coordinates(a).sum(), shapely.get_num_coordinates(b).sum()
    assert n_light < (0.6 if level == "epci" else 1.0) * n_full
    # every vertex kept lies on the full outline, within the tolerance (and the rounding)
    coords, owner = shapely.get_coordinates(b, return_index=True)
    gaps = shapely.distance(shapely.points(coords), shapely.boundary(a)[owner])
    assert gaps.max() <= tolerance + 1e-3
    # and no territory loses much of its area (a tenth with ``low``)
    assert (shapely.area(b) / shapely.area(a)).min() > min_area
    if detail == "national":  # a quarter of the vertices of ``low`` at most
        low = layer("low")
        n_low = shapely.get_num_coordinates(np.array([low[c] for c in codes], dtype=object)).sum()
        assert n_light < 0.5 * n_low


@pytest.mark.parametrize(
    "ref", [LANDERNEAU, "com:29019", "dep:29", "per:pays-centre-ouest-bretagne"]
)
def test_bodies_of_a_territory_match_the_library(client, built_db, ref):
    from maillage.cooperations.network import bodies_of

    rows = ok(client.get(f"/api/v1/territories/{ref}/bodies"))["data"]["bodies"]
    with Store(built_db, read_only=True) as store:
        memberships = store.df("SELECT commune, level, code FROM membership")
    expected = bodies_of(ref, seed_records(), memberships, include_inside=True)
    got = [(r["slug"], r["via"], r["relation"]) for r in rows]
    assert got == list(zip(expected["slug"], expected["via"], expected["relation"], strict=True))
