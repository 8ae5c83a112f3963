"""The web interface's static files: gzip compressed once, cache headers, revalidation."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from maillage.delivery.api import create_app
from maillage.settings import Settings

WEB = Path(__file__).resolve().parents[1] / "maillage" / "delivery" / "web"
MAPLIBRE = "vendor/maplibre-gl-5.24.1/maplibre-gl.js"


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    # static files need no store: the app opens it only when an API route asks for it
    home = tmp_path_factory.mktemp("static-home")
    return TestClient(create_app(Settings(home=home)))


def raw_get(client: TestClient, path: str, **headers: str):
    """A request whose body is left as sent (the test client would otherwise inflate it)."""
    with client.stream("GET", path, headers=headers) as r:
        return r, b"".join(r.iter_raw())


@pytest.mark.parametrize("name", [MAPLIBRE, "app.js", "boot.js", "app.css"])
def test_text_files_are_sent_gzipped_and_inflate_to_the_file(client, name):
    r, body = raw_get(client, f"/static/{name}", **{"accept-encoding": "gzip"})
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert int(r.headers["content-length"]) == len(body)
    assert gzip.decompress(body) == (WEB / name).read_bytes()
    # compressed once, then served from memory
    files = next(
        route.app for route in client.app.routes if getattr(route, "path", "") == "/static"
    )
    kept = [packed for (path, *_), packed in files._packed.items() if path.endswith(name)]
    assert kept == [body]
    again, body2 = raw_get(client, f"/static/{name}", **{"accept-encoding": "gzip"})
    assert body2 == body and again.headers["etag"] == r.headers["etag"]


def test_without_gzip_the_file_is_sent_as_is(client):
    r, body = raw_get(client, f"/static/{MAPLIBRE}", **{"accept-encoding": "identity"})
    assert "content-encoding" not in r.headers
    assert body == (WEB / MAPLIBRE).read_bytes()


def test_vendored_libraries_are_immutable_and_app_files_revalidated(client):
    vendor = client.get(f"/static/{MAPLIBRE}")
    assert "immutable" in vendor.headers["cache-control"]
    own = client.get("/static/app.js")
    assert own.headers["cache-control"] == "no-cache"
    unchanged = client.get("/static/app.js", headers={"if-none-match": own.headers["etag"]})
    assert unchanged.status_code == 304


def test_missing_file_is_404(client):
    assert client.get("/static/no-such-file.js").status_code == 404
