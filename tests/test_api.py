"""The HTTP API on the real store (real reference + embedded default model), checked against
independent SQL on the store's own tables and against the reference files."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from maillage import reference
from maillage.delivery.api import create_app
from maillage.settings import Settings
from maillage.store import Store

BREST = "epci:242900314"
IROISE = "epci:242900074"
LANDERNEAU = "epci:242900801"
WEB = Path(__file__).resolve().parents[1] / "maillage" / "delivery" / "web"


@pytest.fixture(scope="module")
def env(built_db, tmp_path_factory):
    """A writable copy of the built store served by the app, with its own MAILLAGE_HOME."""
    home = tmp_path_factory.mktemp("api-home")
    path = home / "maillage.duckdb"
    shutil.copy(built_db, path)
    store = Store(path)
    settings = Settings(home=home)
    client = TestClient(create_app(settings, store=store))
    yield client, store, settings
    store.close()


@pytest.fixture(scope="module")
def client(env):
    return env[0]


@pytest.fixture(scope="module")
def store(env):
    return env[1]


def ok(response, status=200):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["ok"] is True
    meta = body["meta"]
    assert meta["status"] in ("observed", "modelled", "mixed")
    assert meta["source"]
    assert "vintage" in meta
    return body


# -- independent computations on the store's raw tables ----------------------------------------


def sql_flow_between(store, level_a, code_a, level_b, code_b, kind="commute"):
    """Σ F_ab over communes of A (origin) and B (destination), straight from ``flow``."""
    return store.scalar(
        """SELECT coalesce(sum(f.value), 0) FROM flow f
           JOIN membership a ON a.commune = f.origin AND a.level = ? AND a.code = ?
           JOIN membership b ON b.commune = f.destination AND b.level = ? AND b.code = ?
           WHERE f.kind = ?""",
        [level_a, code_a, level_b, code_b, kind],
    )


def sql_origin_total(store, level, code, kind="commute"):
    return store.scalar(
        """SELECT coalesce(sum(f.value), 0) FROM flow f
           JOIN membership a ON a.commune = f.origin AND a.level = ? AND a.code = ?
           WHERE f.kind = ?""",
        [level, code, kind],
    )


# -- territories --------------------------------------------------------------------------------


def test_search_is_accent_and_case_insensitive(client):
    plain = ok(client.get("/api/v1/territories/search", params={"q": "brest metropole"}))
    fancy = ok(client.get("/api/v1/territories/search", params={"q": "BREST  MÉTROPOLE"}))
    assert plain["data"][0]["ref"] == BREST
    assert fancy["data"][0]["ref"] == BREST
    by_code = ok(client.get("/api/v1/territories/search", params={"q": "29019"}))
    assert by_code["data"][0]["ref"] == "com:29019"
    assert by_code["data"][0]["name"] == "Brest"


def test_search_by_level_and_perimeters(client):
    body = ok(
        client.get(
            "/api/v1/territories/search", params={"q": "brest", "levels": ["epci", "perimeter"]}
        )
    )
    levels = {r["level"] for r in body["data"]}
    assert levels <= {"epci", "perimeter"}
    assert "per:pole-metropolitain-pays-de-brest" in {r["ref"] for r in body["data"]}


def test_territory_identity_matches_reference(client):
    body = ok(client.get(f"/api/v1/territories/{BREST}"))
    ref = reference.epci().set_index("code").loc["242900314"]
    assert body["data"]["name"] == ref["name"]
    assert body["data"]["population"] == pytest.approx(float(ref["population"]))
    members = reference.communes()
    assert body["data"]["n_communes"] == int((members["epci"] == "242900314").sum())


def test_profile_values_equal_raw_sums(client, store):
    body = ok(client.get(f"/api/v1/territories/{BREST}/profile"))
    assert body["meta"]["status"] == "modelled"
    inds = {i["name"]: i for i in body["data"]["kinds"]["commute"]["indicators"]}
    internal = sql_flow_between(store, "epci", "242900314", "epci", "242900314")
    origin = sql_origin_total(store, "epci", "242900314")
    assert inds["internal"]["value"] == pytest.approx(internal, rel=1e-9)
    assert inds["origin_total"]["value"] == pytest.approx(origin, rel=1e-9)
    assert inds["self_containment"]["value"] == pytest.approx(internal / origin, rel=1e-9)
    assert all(i["status"] == "modelled" for i in inds.values())
    stratum = inds["origin_total"]["stratum"]
    assert stratum["n"] >= 1 and 1 <= stratum["rank"] <= stratum["n"]
    assert stratum["q1"] <= stratum["median"] <= stratum["q3"]


# -- flows --------------------------------------------------------------------------------------


def test_partners_equal_raw_sums_and_are_sorted(client, store):
    body = ok(
        client.get(f"/api/v1/territories/{BREST}/partners", params={"kind": "commute", "top": 5})
    )
    rows = body["data"]["partners"]
    assert len(rows) == 5
    totals = [r["total"] for r in rows]
    assert totals == sorted(totals, reverse=True)
    first = rows[0]
    out_raw = sql_flow_between(store, "epci", "242900314", "epci", first["partner_code"])
    in_raw = sql_flow_between(store, "epci", first["partner_code"], "epci", "242900314")
    assert first["out_value"] == pytest.approx(out_raw, rel=1e-9)
    assert first["in_value"] == pytest.approx(in_raw, rel=1e-9)
    assert first["balance"] == pytest.approx(in_raw - out_raw, rel=1e-9)


def test_partners_direction_and_threshold(client):
    out = ok(
        client.get(
            f"/api/v1/territories/{BREST}/partners",
            params={"kind": "commute", "direction": "out", "top": 50},
        )
    )
    values = [r["out_value"] for r in out["data"]["partners"]]
    assert values == sorted(values, reverse=True)
    cut = values[3]
    thr = ok(
        client.get(
            f"/api/v1/territories/{BREST}/partners",
            params={"kind": "commute", "direction": "out", "top": 50, "threshold": cut},
        )
    )
    assert all(r["out_value"] >= cut for r in thr["data"]["partners"])
    assert len(thr["data"]["partners"]) == sum(v >= cut for v in values)


def test_flow_lines_of_a_territory_have_points_and_match_partners(client):
    lines = ok(
        client.get(
            "/api/v1/flows",
            params={
                "kind": "commute",
                "ref": BREST,
                "level": "epci",
                "direction": "out",
                "top": 10,
            },
        )
    )["data"]["lines"]
    partners = ok(
        client.get(
            f"/api/v1/territories/{BREST}/partners",
            params={"kind": "commute", "direction": "out", "top": 10},
        )
    )["data"]["partners"]
    by_dest = {ln["destination"]: ln["value"] for ln in lines}
    for p in partners:
        if not p["partner_code"].startswith("!"):
            assert by_dest[p["partner_code"]] == pytest.approx(p["out_value"])
    epci = reference.epci().set_index("code")
    for ln in lines:
        assert ln["origin"] == "242900314"
        assert ln["destination_lon"] == pytest.approx(
            float(epci.loc[ln["destination"], "lon"]), abs=1e-6
        )


def raw_partner_sums(store, code, kind="commute"):
    """partner EPCI → (F_PQ, F_QP) of EPCI ``code``, straight from ``flow`` and ``membership``
    (``!none``: communes in no EPCI; the default model has no flow abroad)."""
    df = store.df(
        """WITH p AS (SELECT commune FROM membership WHERE level = 'epci' AND code = ?),
           q AS (SELECT commune, code FROM membership WHERE level = 'epci'),
           f AS (SELECT origin, destination, value FROM flow WHERE kind = ?)
           SELECT partner, sum(o) AS o, sum(i) AS i FROM (
             SELECT coalesce(q.code, '!none') AS partner, f.value AS o, 0.0 AS i FROM f
             JOIN p ON p.commune = f.origin LEFT JOIN q ON q.commune = f.destination
             WHERE f.destination NOT IN (SELECT commune FROM p)
             UNION ALL
             SELECT coalesce(q.code, '!none'), 0.0, f.value FROM f
             JOIN p ON p.commune = f.destination LEFT JOIN q ON q.commune = f.origin
             WHERE f.origin NOT IN (SELECT commune FROM p))
           GROUP BY partner""",
        [code, kind],
    )
    return {r.partner: (r.o, r.i) for r in df.itertuples()}


@pytest.mark.parametrize("ref", [BREST, IROISE, LANDERNEAU, "epci:200046977"])
def test_every_partner_of_an_epci_equals_raw_sums(client, store, ref):
    """Partners come from tables held in memory: all of them, both ways, against raw SQL."""
    rows = ok(
        client.get(
            f"/api/v1/territories/{ref}/partners",
            params={"kind": "commute", "top": 1000, "level": "epci"},
        )
    )["data"]["partners"]
    raw = {k: v for k, v in raw_partner_sums(store, ref.split(":")[1]).items() if sum(v) > 0}
    assert {r["partner_code"] for r in rows} == set(raw)
    for r in rows:
        assert (r["out_value"], r["in_value"]) == pytest.approx(raw[r["partner_code"]], rel=1e-9)
    keys = [(-r["total"], r["partner_code"]) for r in rows]
    assert keys == sorted(keys)  # largest first, ties by code


def test_flow_answers_are_the_same_gzipped_or_not(client):
    params = {"kind": "commute", "ref": BREST, "level": "epci", "top": 500}
    packed = client.get("/api/v1/flows", params=params, headers={"accept-encoding": "gzip"})
    plain = client.get("/api/v1/flows", params=params, headers={"accept-encoding": "identity"})
    assert packed.headers["content-encoding"] == "gzip"
    assert "content-encoding" not in plain.headers
    assert len(plain.content) > int(packed.headers["content-length"])
    assert ok(packed) == ok(plain)
    # every threshold is its own answer: it keeps the partners whose total reaches it
    totals = partner_totals(ok(plain)["data"]["lines"])
    cut = sorted(totals.values())[-3]
    fewer = ok(client.get("/api/v1/flows", params=params | {"threshold": cut}))["data"]["lines"]
    assert partner_totals(fewer) == {k: v for k, v in totals.items() if v >= cut}


def partner_totals(lines):
    """Partner code → F_PQ + F_QP of the lines around Brest Métropole."""
    out = {}
    for ln in lines:
        other = ln["destination"] if ln["origin"] == BREST.split(":")[1] else ln["origin"]
        out[other] = out.get(other, 0.0) + ln["value"]
    return out


def test_national_flow_lines_aggregate_communes(client, store):
    body = ok(
        client.get("/api/v1/flows", params={"kind": "commute", "level": "departement", "top": 3})
    )
    lines = body["data"]["lines"]
    assert len(lines) == 3
    for ln in lines:
        raw = sql_flow_between(store, "departement", ln["origin"], "departement", ln["destination"])
        assert ln["value"] == pytest.approx(raw, rel=1e-9)
        assert ln["origin"] != ln["destination"]
    assert [ln["value"] for ln in lines] == sorted((ln["value"] for ln in lines), reverse=True)


def test_pair_view_both_ways(client, store):
    body = ok(client.get("/api/v1/pair", params={"a": BREST, "b": LANDERNEAU}))
    k = body["data"]["kinds"]["commute"]
    a_to_b = sql_flow_between(store, "epci", "242900314", "epci", "242900801")
    b_to_a = sql_flow_between(store, "epci", "242900801", "epci", "242900314")
    assert k["a_to_b"] == pytest.approx(a_to_b, rel=1e-9)
    assert k["b_to_a"] == pytest.approx(b_to_a, rel=1e-9)
    assert k["balance_for_a"] == pytest.approx(b_to_a - a_to_b, rel=1e-9)
    assert len(k["detail"]) <= 20 and k["detail_total"] >= len(k["detail"])
    assert body["meta"]["status"] == "modelled"


# -- choropleth and geometry ----------------------------------------------------------------------


def test_choropleth_covers_every_epci(client):
    body = ok(
        client.get(
            "/api/v1/choropleth",
            params={"kind": "commute", "level": "epci", "indicator": "concentration"},
        )
    )
    values = body["data"]["values"]
    assert {v["code"] for v in values} == set(reference.epci()["code"])
    breaks = body["data"]["breaks"]
    assert breaks == sorted(breaks) and len(breaks) >= 3
    profile = ok(client.get(f"/api/v1/territories/{BREST}/profile"))["data"]
    own = {i["name"]: i["value"] for i in profile["kinds"]["commute"]["indicators"]}
    brest = next(v for v in values if v["code"] == "242900314")
    assert brest["value"] == pytest.approx(own["concentration"])


def test_choropleth_of_communes_per_departement(client):
    body = ok(
        client.get(
            "/api/v1/choropleth", params={"kind": "commute", "level": "commune", "dep": "29"}
        )
    )
    com = reference.communes()
    assert {v["code"] for v in body["data"]["values"]} == set(com.loc[com["dep"] == "29", "code"])


def test_geometry_epci_layer_is_complete_and_under_5_mb(client):
    r = client.get("/api/v1/geometry/epci", headers={"accept-encoding": "identity"})
    assert r.status_code == 200
    assert len(r.content) < 5_000_000
    fc = r.json()["data"]
    assert fc["type"] == "FeatureCollection"
    assert {f["properties"]["code"] for f in fc["features"]} == set(reference.epci()["code"])
    assert r.json()["meta"]["status"] == "observed"
    # coordinates are lon/lat of metropolitan France and the DROM
    lon, lat = (
        fc["features"][0]["geometry"]["coordinates"][0][0][:2]
        if fc["features"][0]["geometry"]["type"] == "Polygon"
        else fc["features"][0]["geometry"]["coordinates"][0][0][0]
    )
    assert -180 <= lon <= 180 and -90 <= lat <= 90


def test_geometry_is_gzipped_when_asked(client):
    r = client.get("/api/v1/geometry/region", headers={"accept-encoding": "gzip"})
    assert r.headers["content-encoding"] == "gzip"
    assert len(r.json()["data"]["features"]) == len(reference.regions())


def test_geometry_communes_per_departement(client):
    fc = ok(client.get("/api/v1/geometry/commune", params={"dep": "29"}))["data"]
    com = reference.communes()
    expected = set(com.loc[com["dep"] == "29", "code"]) & set(reference.geometry("commune")["code"])
    assert {f["properties"]["code"] for f in fc["features"]} == expected
    assert all(f["properties"]["dep"] == "29" for f in fc["features"])


def test_outline_of_a_perimeter_covers_its_members(client):
    fc = ok(client.get("/api/v1/geometry/territory/per:pole-metropolitain-pays-de-brest"))["data"]
    assert len(fc["features"]) == 1
    text = json.dumps(fc)
    assert '"MultiPolygon"' in text or '"Polygon"' in text


# -- perimeters ---------------------------------------------------------------------------------


def test_perimeter_list_holds_shipped_ones(client):
    body = ok(client.get("/api/v1/perimeters"))
    slugs = {p["slug"] for p in body["data"]}
    assert "pole-metropolitain-pays-de-brest" in slugs


def test_create_perimeter_then_share_it(client, store):
    payload = {"name": "Brest et Iroise", "members": [BREST, "242900074"]}
    r = client.post("/api/v1/perimeters", json=payload)
    body = ok(r, 201)
    ref = body["data"]["ref"]
    slug = body["data"]["slug"]
    assert ref == f"per:{slug}" and slug.startswith("brest-et-iroise")
    assert body["data"]["members"] == sorted([BREST, IROISE])
    assert f"sel=per:{slug}" in body["data"]["share_url"]
    # same request again: same slug, no duplicate
    again = ok(client.post("/api/v1/perimeters", json=payload), 201)
    assert again["data"]["slug"] == slug
    listed = [p for p in ok(client.get("/api/v1/perimeters"))["data"] if p["slug"] == slug]
    assert len(listed) == 1
    # the residents of a union of two disjoint EPCI are the sum of theirs
    prof = ok(client.get(f"/api/v1/territories/{ref}/profile"))["data"]
    inds = {i["name"]: i["value"] for i in prof["kinds"]["commute"]["indicators"]}
    expected = sql_origin_total(store, "epci", "242900314") + sql_origin_total(
        store, "epci", "242900074"
    )
    assert inds["origin_total"] == pytest.approx(expected, rel=1e-9)
    detail = ok(client.get(f"/api/v1/perimeters/{slug}"))["data"]
    assert detail["members"] == sorted([BREST, IROISE])
    assert detail["n_communes"] == store.scalar(
        "SELECT count(*) FROM membership WHERE level = 'epci' AND code IN (?, ?)",
        ["242900314", "242900074"],
    )
    # the saved file is the same layout as `maillage perimeter add`
    from maillage.reference.perimeters import load_perimeters

    settings = client.app.state.settings
    saved = load_perimeters(extra_paths=sorted((settings.home / "perimeters").glob("*.yaml")))
    assert saved[slug].members == sorted([BREST, IROISE])


def test_perimeter_flows_partners(client, store):
    body = ok(
        client.post(
            "/api/v1/perimeters", json={"name": "Deux EPCI", "members": [BREST, LANDERNEAU]}
        ),
        201,
    )
    ref = body["data"]["ref"]
    partners = ok(
        client.get(f"/api/v1/territories/{ref}/partners", params={"kind": "commute", "top": 3})
    )["data"]["partners"]
    first = partners[0]
    assert first["partner_code"] not in ("242900314", "242900801")
    raw_out = sql_flow_between(store, "perimeter", ref.split(":")[1], "epci", first["partner_code"])
    assert first["out_value"] == pytest.approx(raw_out, rel=1e-9)


# -- exports ------------------------------------------------------------------------------------


def read_csv(response):
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    assert response.content.startswith("\ufeff".encode())
    return list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_partner_export_equals_json(client):
    params = {"ref": BREST, "kind": "commute", "top": 7}
    rows = read_csv(client.get("/api/v1/exports/partners.csv", params=params))
    api = ok(
        client.get(f"/api/v1/territories/{BREST}/partners", params={"kind": "commute", "top": 7})
    )["data"]["partners"]
    assert [r["partner_code"] for r in rows] == [p["partner_code"] for p in api]
    assert [float(r["total"]) for r in rows] == pytest.approx([p["total"] for p in api])
    assert {r["status"] for r in rows} == {"modelled"}
    assert all(r["source"] and r["vintage"] for r in rows)


def test_other_exports(client):
    rows = read_csv(
        client.get(
            "/api/v1/exports/choropleth.csv", params={"kind": "commute", "level": "departement"}
        )
    )
    assert len(rows) == len(reference.departements())
    assert {r["status"] for r in rows} == {"modelled"}
    rows = read_csv(client.get("/api/v1/exports/pair.csv", params={"a": BREST, "b": IROISE}))
    assert rows[0]["kind"] == "commute" and rows[0]["status"] == "modelled"
    rows = read_csv(
        client.get(
            "/api/v1/exports/flows.csv", params={"kind": "commute", "level": "region", "top": 4}
        )
    )
    assert len(rows) == 4
    rows = read_csv(client.get("/api/v1/exports/profile.csv", params={"ref": BREST}))
    assert {r["indicator"] for r in rows} >= {"internal", "self_containment"}


# -- cooperations -------------------------------------------------------------------------------


def test_cooperations_read_and_authenticated_write(client):
    from maillage.cooperations import auth
    from maillage.cooperations.db import session_factory
    from maillage.delivery.api.routes.cooperations import _engine

    class _Req:  # the route helper only needs request.app
        app = client.app

    empty = ok(client.get("/api/v1/cooperations"))
    assert empty["data"]["count"] == len(empty["data"]["cooperations"])
    record = {
        "slug": "test-entente-brest-iroise",
        "name": "Entente test",
        "instrument": "entente",
        "parties": [{"ref": BREST}, {"ref": IROISE}],
        "themes": [],
    }
    refused = client.post("/api/v1/cooperations", json=record)
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    session = session_factory(_engine(_Req()))()
    with session.begin():
        editor = (
            auth.add_user(session, "editrice", "un-mot-de-passe-long", role="editor")
            if auth.count_users(session) == 0
            else None
        )
        token = auth.create_token(session, editor)
    session.close()
    bad = client.post(
        "/api/v1/cooperations", json=record, headers={"authorization": "Bearer not-a-token"}
    )
    assert bad.status_code == 401
    created = ok(
        client.post(
            "/api/v1/cooperations", json=record, headers={"authorization": f"Bearer {token}"}
        ),
        201,
    )
    assert created["data"]["slug"] == record["slug"]
    mine = ok(client.get("/api/v1/cooperations", params={"territory": IROISE}))
    assert record["slug"] in {c["slug"] for c in mine["data"]["cooperations"]}
    one = ok(client.get(f"/api/v1/cooperations/{record['slug']}"))
    assert [p["ref"] for p in one["data"]["parties"]] == [BREST, IROISE]


# -- the web interface is served, offline -------------------------------------------------------


def test_index_and_vendored_bundles_are_served(client):
    r = client.get("/")
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    html = r.text
    assets = re.findall(r'(?:src|href)="(/static/[^"]+)"', html)
    assert any("maplibre-gl" in a for a in assets) and any("deck.gl" in a for a in assets)
    for asset in assets:
        assert client.get(asset).status_code == 200, asset


def test_api_docs_page_is_served_offline(client):
    html = client.get("/api/v1/docs").text
    assets = re.findall(r"(?:src|href)=['\"]([^'\"]+)['\"]", html)
    assert assets and all(a.startswith(("/static/vendor/", "data:")) for a in assets), assets
    for asset in assets:
        if asset.startswith("/static/"):
            assert client.get(asset).status_code == 200, asset


def test_front_end_needs_no_network():
    names = sorted(p.name for p in WEB.iterdir() if p.suffix in {".html", ".js", ".css"})
    assert {"index.html", "app.js", "app.css", "boot.js"} <= set(names)
    for name in names:
        text = (WEB / name).read_text(encoding="utf-8")
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), name


def test_openapi_documents_every_resource(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    for p in (
        "/api/v1/territories/search",
        "/api/v1/territories/{ref}/profile",
        "/api/v1/territories/{ref}/partners",
        "/api/v1/flows",
        "/api/v1/pair",
        "/api/v1/choropleth",
        "/api/v1/geometry/{level}",
        "/api/v1/cooperations/{slug}/geometry",
        "/api/v1/perimeters",
        "/api/v1/cooperations",
        "/api/v1/exports/partners.csv",
    ):
        assert p in paths, p


def test_status_lists_kinds_with_provenance(client, store):
    body = ok(client.get("/api/v1/status"))
    kinds = {a["kind"]: a for a in body["data"]["available"]}
    assert kinds["commute"]["status"] == "modelled"
    assert kinds["commute"]["rows"] == store.scalar(
        "SELECT count(*) FROM flow WHERE kind = 'commute'"
    )
