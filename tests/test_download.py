"""Tests of maillage.sources._download (against a real HTTP server on 127.0.0.1) and catalog."""

from __future__ import annotations

import hashlib
import json
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from maillage._errors import SourceError
from maillage.sources import catalog, read_flux
from maillage.sources._download import INDEX_NAME, fetch, read_index

DATA = Path(__file__).parent / "data" / "sources"
FIXTURE = DATA / "base-flux-mobilite-domicile-lieu-travail-2021.csv"
FIXTURE_SHA = hashlib.sha256(FIXTURE.read_bytes()).hexdigest()


class _Handler(SimpleHTTPRequestHandler):
    """Serves DATA and counts GET requests per path."""

    counts: dict[str, int]

    def do_GET(self) -> None:
        self.counts[self.path] = self.counts.get(self.path, 0) + 1
        super().do_GET()

    def log_message(self, *args) -> None:  # keep test output quiet
        pass


@pytest.fixture(scope="module")
def server():
    counts: dict[str, int] = {}
    handler = partial(type("H", (_Handler,), {"counts": counts}), directory=str(DATA))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    yield base, counts
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


def cached_files(cache: Path) -> list[Path]:
    return [p for p in cache.rglob("*") if p.is_file() and p.name != INDEX_NAME]


def test_download_then_cache_hit_makes_no_request(server, tmp_path):
    base, counts = server
    url = f"{base}/{FIXTURE.name}"
    first = fetch(url, tmp_path)
    assert first.read_bytes() == FIXTURE.read_bytes()
    assert first.name == FIXTURE.name and FIXTURE_SHA in str(first)
    assert counts[f"/{FIXTURE.name}"] == 1
    index = read_index(tmp_path)
    assert index[url]["sha256"] == FIXTURE_SHA
    second = fetch(url, tmp_path, expected_sha256=FIXTURE_SHA)
    assert second == first
    assert counts[f"/{FIXTURE.name}"] == 1
    # the downloaded copy reads like the original
    assert read_flux(second).table.equals(read_flux(FIXTURE).table)


def test_checksum_mismatch_raises_and_caches_nothing(server, tmp_path):
    base, _ = server
    url = f"{base}/FD_MOBPRO_2021.csv"
    with pytest.raises(SourceError) as err:
        fetch(url, tmp_path, expected_sha256="0" * 64)
    assert "checksum mismatch" in str(err.value) and url in str(err.value)
    assert cached_files(tmp_path) == []
    assert url not in read_index(tmp_path)


def test_http_error_raises_and_caches_nothing(server, tmp_path):
    base, _ = server
    url = f"{base}/absent.zip"
    with pytest.raises(SourceError) as err:
        fetch(url, tmp_path)
    assert "404" in str(err.value)
    assert cached_files(tmp_path) == []


def test_unreachable_server_raises(tmp_path):
    # a port nobody listens on: bind, note the port, close
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with pytest.raises(SourceError) as err:
        fetch(f"http://127.0.0.1:{port}/x.csv", tmp_path)
    assert "download failed" in str(err.value)
    assert cached_files(tmp_path) == []


def test_cached_file_removed_is_downloaded_again(server, tmp_path):
    base, counts = server
    url = f"{base}/FD_MIGCOM_2016.csv"
    first = fetch(url, tmp_path)
    first.unlink()
    again = fetch(url, tmp_path)
    assert again.is_file() and counts["/FD_MIGCOM_2016.csv"] == 2


def test_progress_and_given_client(server, tmp_path):
    base, _ = server
    seen: list[tuple[int, int | None]] = []
    with httpx.Client() as client:
        path = fetch(
            f"{base}/FD_MOBSCO_2019.csv",
            tmp_path,
            client=client,
            progress=lambda done, total: seen.append((done, total)),
        )
    size = path.stat().st_size
    assert seen and seen[-1] == (size, size)


def test_local_path_and_file_url_are_returned_as_is(tmp_path):
    assert fetch(FIXTURE, tmp_path) == FIXTURE
    assert fetch(str(FIXTURE), tmp_path) == FIXTURE
    assert fetch(FIXTURE.as_uri(), tmp_path) == FIXTURE
    assert fetch(FIXTURE, tmp_path, expected_sha256=FIXTURE_SHA) == FIXTURE
    assert not (tmp_path / INDEX_NAME).exists()


def test_local_path_problems(tmp_path):
    with pytest.raises(SourceError, match="not found"):
        fetch(tmp_path / "absent.csv", tmp_path)
    with pytest.raises(SourceError, match="checksum mismatch"):
        fetch(FIXTURE, tmp_path, expected_sha256="f" * 64)


def test_index_is_valid_json_after_two_downloads(server, tmp_path):
    base, _ = server
    fetch(f"{base}/FD_MOBPRO_2021.csv", tmp_path)
    fetch(f"{base}/FD_MIGCOM_2016.csv", tmp_path)
    index = json.loads((tmp_path / INDEX_NAME).read_text())
    assert len(index) == 2
    for entry in index.values():
        path = tmp_path / entry["path"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == entry["sha256"]


# ---------------------------------------------------------------------------------------------
# catalog
# ---------------------------------------------------------------------------------------------


def test_find_known_entry():
    entry = catalog.find("flux_commute", 2021)
    assert (entry.kind, entry.vintage, entry.cog_vintage) == ("commute", 2021, 2023)
    assert entry.url is not None and entry.url.startswith("https://www.insee.fr/")
    assert entry.member == "base-flux-mobilite-domicile-lieu-travail-2021.csv"


def test_find_unknown_vintage_lists_known_ones():
    with pytest.raises(SourceError) as err:
        catalog.find("flux_commute", 1999)
    assert "2018, 2019, 2020, 2021, 2022" in str(err.value)


def test_find_unknown_source_lists_sources():
    with pytest.raises(SourceError) as err:
        catalog.find("mobpro", 2021)
    assert "flux_commute" in str(err.value)


def test_catalogue_requirements():
    assert catalog.vintages("flux_commute") == [2018, 2019, 2020, 2021, 2022]
    assert catalog.vintages("flux_residential") == list(range(2014, 2022))
    for year in (2014, 2015, 2016):
        assert catalog.find("flux_residential", year).encoding == "iso-8859-1"
    seen = set()
    for entry in catalog.entries():
        assert (entry.source, entry.vintage) not in seen
        seen.add((entry.source, entry.vintage))
        assert entry.cog_vintage == entry.vintage + 2
        assert entry.url is None or entry.url.startswith("https://")
        if entry.member:
            assert str(entry.vintage) in entry.member


def test_local_path_fetches_urls_and_keeps_local_files(server, tmp_path):
    from maillage.sources._download import local_path

    base, _ = server
    got = local_path(f"{base}/{FIXTURE.name}", tmp_path / "cache")
    assert got.read_bytes() == FIXTURE.read_bytes()
    assert (tmp_path / "cache") in got.parents
    assert local_path(str(FIXTURE), tmp_path / "cache") == FIXTURE
    assert local_path(f"file://{FIXTURE}", tmp_path / "cache") == FIXTURE
