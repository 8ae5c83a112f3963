"""The web interface in a real headless Chromium (Debian's), against the app served by uvicorn.

What a person would do: search "Brest" and pick the EPCI, read its panel and see its flows,
switch the indicator, build a perimeter, open a pair view, follow a shared link. Screenshots
are saved under the test's temporary folder and checked: the map is not blank, the flows add
pixels, the indicator switch repaints the map; panel numbers equal the API's.
"""

from __future__ import annotations

import base64
import csv
import io
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import httpx
import pytest

CHROMIUM = Path("/usr/bin/chromium")
BREST = "epci:242900314"
LANDERNEAU = "epci:242900801"
IROISE = "epci:242900074"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]

pytestmark = pytest.mark.browser


def _need_browser() -> None:
    missing = []
    if not CHROMIUM.exists():
        missing.append("Debian's chromium (/usr/bin/chromium; apt-get install chromium)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing.append("the Python package playwright (pip install playwright)")
    if missing:
        reason = "browser tests need " + " and ".join(missing)
        if os.environ.get("MAILLAGE_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " (MAILLAGE_REQUIRE_BROWSER=1)")
        pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _seed_register(home: Path) -> None:
    """The register of ``home`` holding the seed cooperations, as ``maillage build`` leaves it."""
    from maillage.cooperations.db import open_registry, session_factory
    from maillage.cooperations.seed import load_seed
    from maillage.settings import Settings

    engine = open_registry(Settings(home=home).registry_url)
    with session_factory(engine)() as session, session.begin():
        load_seed(session)
    engine.dispose()


@pytest.fixture(scope="module")
def server(built_db, tmp_path_factory):
    """uvicorn serving the app on a copy of the built store and the seed register, on a free
    loopback port."""
    _need_browser()
    home = tmp_path_factory.mktemp("web-home")
    shutil.copy(built_db, home / "maillage.duckdb")
    _seed_register(home)
    port = _free_port()
    env = {**os.environ, "MAILLAGE_HOME": str(home), "MAILLAGE_BASEMAP_URL": ""}
    log = open(home / "uvicorn.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--factory",
            "maillage.delivery.api:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(base + "/api/v1/status", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            log.close()
            pytest.fail("uvicorn did not start: " + (home / "uvicorn.log").read_text())
        time.sleep(0.3)
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("screenshots")
    print(f"screenshots in {folder}")
    return folder


class Page:
    """A page of the app with the helpers the tests share; records foreign requests."""

    def __init__(self, browser, base: str) -> None:
        self.base = base
        self.context = browser.new_context(viewport={"width": 1366, "height": 768})
        self.page = self.context.new_page()
        self.foreign: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", self._on_request)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _on_request(self, request) -> None:
        url = request.url
        if not (url.startswith(self.base) or url.startswith(("data:", "blob:"))):
            self.foreign.append(url)

    def open(self, path: str = "/") -> None:
        self.page.goto(self.base + path)
        self.page.wait_for_selector("body[data-ready='1']", timeout=90_000)

    def api(self, path: str, **params) -> dict:
        r = httpx.get(self.base + "/api/v1" + path, params=params, timeout=60)
        assert r.status_code == 200, r.text
        return r.json()

    def pick(self, text: str, ref: str) -> None:
        """Type in the search box and choose ``ref`` with the keyboard only."""
        box = self.page.locator("#search-input")
        box.fill("")
        box.type(text, delay=20)
        option = self.page.locator(f"#search-results li[data-ref='{ref}']")
        option.wait_for(timeout=20_000)
        refs = self.page.locator("#search-results li").evaluate_all(
            "els => els.map(e => e.dataset.ref)"
        )
        for _ in range(refs.index(ref)):
            box.press("ArrowDown")
        active = box.get_attribute("aria-activedescendant")
        assert self.page.locator(f"#{active}").get_attribute("data-ref") == ref
        box.press("Enter")

    def shot(self, folder: Path, name: str, selector: str = "#map") -> bytes:
        self.page.wait_for_timeout(800)  # let the last frame be painted
        data = self.page.locator(selector).screenshot(path=str(folder / f"{name}.png"))
        return data

    def pixels(self, png: bytes, other: bytes | None = None) -> dict:
        """Decode screenshots in the browser: pixels unlike the map background, and pixels
        that differ between two screenshots."""
        return self.page.evaluate(
            """async ([a, b]) => {
              const load = async (b64) => { const img = new Image();
                img.src = 'data:image/png;base64,' + b64; await img.decode();
                const c = document.createElement('canvas'); c.width = img.width;
                c.height = img.height; const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
                return ctx.getImageData(0, 0, c.width, c.height).data; };
              const da = await load(a);
              const bg = [0xdf, 0xe7, 0xee];
              let painted = 0, diff = 0;
              const db = b ? await load(b) : null;
              for (let i = 0; i < da.length; i += 4) {
                const d = Math.abs(da[i] - bg[0]) + Math.abs(da[i+1] - bg[1])
                  + Math.abs(da[i+2] - bg[2]);
                if (d > 30) painted++;
                if (db && db.length === da.length) {
                  const e = Math.abs(da[i] - db[i]) + Math.abs(da[i+1] - db[i+1])
                    + Math.abs(da[i+2] - db[i+2]);
                  if (e > 40) diff++;
                }
              }
              return {total: da.length / 4, painted, diff};
            }""",
            [base64.b64encode(png).decode(), base64.b64encode(other).decode() if other else None],
        )

    def close(self) -> None:
        self.context.close()


@pytest.fixture()
def page(browser, server):
    p = Page(browser, server)
    yield p
    assert not p.foreign, f"the page reached outside the app: {p.foreign}"
    assert not p.errors, f"JavaScript errors: {p.errors}"
    p.close()


def digits(text: str) -> str:
    """Digits and sign of a number as displayed (thin spaces and commas removed)."""
    return re.sub(r"[^\d−-]", "", text).replace("−", "-")


def fr_int(value: float) -> str:
    return str(round(value))


def url_state(url: str) -> dict:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlparse(url).query))


# -- the tests ------------------------------------------------------------------------------------


def test_search_brest_panel_and_flows(page, shots):
    page.open("/")
    first = page.shot(shots, "01_home")
    stats = page.pixels(first)
    assert stats["painted"] > 0.15 * stats["total"], stats  # the territories are drawn

    page.pick("Brest", BREST)
    page.page.wait_for_selector("#panel-title:has-text('Brest Métropole')", timeout=60_000)
    page.page.wait_for_selector("#flow-legend h3:has-text('Brest Métropole')", timeout=60_000)
    assert url_state(page.page.url)["sel"] == BREST

    profile = page.api(f"/territories/{BREST}/profile")["data"]["kinds"]["commute"]
    shown = page.page.locator("#panel .ind[data-name='origin_total']")
    api_value = next(i["value"] for i in profile["indicators"] if i["name"] == "origin_total")
    assert float(shown.get_attribute("data-value")) == pytest.approx(api_value)
    assert digits(shown.locator(".value").inner_text()) == fr_int(api_value)
    assert "modélisé" in shown.inner_text()

    partners = page.api(f"/territories/{BREST}/partners", kind="commute", top=15)["data"]
    table = page.page.locator("table.partners[data-kind='commute']")
    first_row = table.locator("tbody tr").first
    assert first_row.get_attribute("data-code") == partners["partners"][0]["partner_code"]
    total_cell = first_row.locator("td").nth(3)
    assert digits(total_cell.inner_text()) == fr_int(partners["partners"][0]["total"])

    href = page.page.locator("details[data-kind='commute'] a.button").get_attribute("href")
    exported = httpx.get(page.base + href, timeout=60)
    assert exported.status_code == 200
    rows = list(csv.DictReader(io.StringIO(exported.content.decode("utf-8-sig"))))
    assert rows[0]["partner_code"] == partners["partners"][0]["partner_code"]
    assert {r["status"] for r in rows} == {"modelled"}

    legend = page.page.locator("#flow-legend").inner_text()
    n_lines = int(re.search(r"(\d+) flux", legend).group(1))
    lines = page.api("/flows", kind="commute", ref=BREST, level="epci", top=60)["data"]["lines"]
    assert n_lines == len(lines)

    with_flows = page.shot(shots, "02_brest_flows")
    page.page.uncheck("#show-flows")
    page.page.wait_for_function("document.querySelector('#flow-legend').children.length === 0")
    without = page.shot(shots, "03_brest_no_flows")
    diff = page.pixels(with_flows, without)["diff"]
    assert diff > 300, f"the flows drew only {diff} pixels"
    page.shot(shots, "04_brest_page", "body")


def test_partner_table_sorts_by_column(page):
    page.open(f"/?sel={BREST}")
    page.page.wait_for_selector("table.partners[data-kind='commute'] tbody tr")
    table = page.page.locator("table.partners[data-kind='commute']")
    header = table.locator("th", has_text="Entrants")
    header.locator("button").click()
    values = [
        float(v)
        for v in table.locator("tbody tr td:nth-child(3)").evaluate_all(
            "els => els.map(e => e.dataset.value)"
        )
    ]
    assert values == sorted(values, reverse=True)
    assert header.get_attribute("aria-sort") == "descending"
    header.locator("button").click()
    values = [
        float(v)
        for v in table.locator("tbody tr td:nth-child(3)").evaluate_all(
            "els => els.map(e => e.dataset.value)"
        )
    ]
    assert values == sorted(values)


def test_switch_indicator_changes_legend_and_map(page, shots):
    page.open("/?level=epci&ind=self_containment&flows=0")
    catalogue = {i["name"]: i for i in page.api("/indicators")["data"]["indicators"]}
    title = page.page.locator("#legend-title")
    assert catalogue["self_containment"]["labels"]["commute"] in title.inner_text()
    before = page.shot(shots, "05_self_containment")
    legend_before = page.page.locator("#legend").inner_text()

    page.page.select_option("#indicator", "concentration")
    label = catalogue["concentration"]["labels"]["commute"]
    page.page.wait_for_selector(f'#legend-title:has-text("{label}")')
    after = page.shot(shots, "06_concentration")
    legend_after = page.page.locator("#legend").inner_text()
    assert legend_after != legend_before
    breaks = page.api("/choropleth", kind="commute", level="epci", indicator="concentration")[
        "data"
    ]["breaks"]
    first_break = re.sub(r"\s", "", page.page.locator("#legend .row").first.inner_text())
    assert first_break.startswith("<")
    assert float(first_break[1:].replace(",", ".")) == pytest.approx(breaks[0], abs=0.051)
    assert url_state(page.page.url)["ind"] == "concentration"
    assert page.pixels(before, after)["diff"] > 1000


def test_build_a_perimeter(page, shots):
    page.open("/")
    page.page.click("#btn-perimeter")
    page.page.wait_for_selector("#panel h2:has-text('Construire un périmètre')")
    page.pick("Brest Métropole", BREST)
    page.page.wait_for_selector(f"#per-members li[data-ref='{BREST}']")
    page.pick("Pays d'Iroise", IROISE)
    page.page.wait_for_selector(f"#per-members li[data-ref='{IROISE}']")
    page.page.fill("#per-name", "Pays de Brest ouest")
    page.shot(shots, "07_builder", "body")
    page.page.click("#per-save")
    page.page.wait_for_selector("#panel-title:has-text('Pays de Brest ouest')", timeout=60_000)
    ref = url_state(page.page.url)["sel"]
    assert ref.startswith("per:pays-de-brest-ouest")
    detail = page.api(f"/perimeters/{ref.split(':')[1]}")["data"]
    assert detail["members"] == sorted([BREST, IROISE])
    profile = page.api(f"/territories/{ref}/profile")["data"]["kinds"]["commute"]
    api_value = next(i["value"] for i in profile["indicators"] if i["name"] == "origin_total")
    shown = page.page.locator("#panel .ind[data-name='origin_total'] .value").inner_text()
    assert digits(shown) == fr_int(api_value)
    page.page.wait_for_selector("#flow-legend h3:has-text('Pays de Brest ouest')")
    page.shot(shots, "08_perimeter", "body")


def test_pair_view_and_shared_link(page, browser, server, shots):
    page.open(f"/?sel={BREST}")
    page.page.wait_for_selector("#panel-title:has-text('Brest Métropole')")
    page.page.click("#btn-pair")
    page.pick("Landerneau", LANDERNEAU)
    page.page.wait_for_selector("table.pair-flows tbody tr[data-kind='commute']", timeout=60_000)
    state = url_state(page.page.url)
    assert state["sel"] == BREST and state["pair"] == LANDERNEAU
    pair = page.api("/pair", a=BREST, b=LANDERNEAU)["data"]["kinds"]["commute"]
    row = page.page.locator("table.pair-flows tbody tr[data-kind='commute'] td")
    assert digits(row.nth(1).inner_text()) == fr_int(pair["a_to_b"])
    assert digits(row.nth(2).inner_text()) == fr_int(pair["b_to_a"])
    assert digits(row.nth(3).inner_text()) == fr_int(pair["balance_for_a"])
    assert "modélisé" in row.nth(0).inner_text()
    # the tie against the gravity model, labelled modelled, with the API's ratio (asked for
    # when the bottom of the panel is scrolled into view)
    page.page.locator("#pair-ties-section").scroll_into_view_if_needed()
    page.page.wait_for_selector("#pair-ties", timeout=90_000)
    assert "modélisé" in page.page.locator("#pair-ties").inner_text()
    ties = page.api(f"/territories/{BREST}/ties", kind="commute", top=500)["data"]["ties"]
    b_code = LANDERNEAU.split(":")[1]
    ratio = next(t["ratio"] for t in ties if t["destination"] == b_code)
    assert f"{ratio:.2f}".replace(".", ",") in page.page.locator("ul.pair-ties").inner_text()
    page.shot(shots, "09_pair", "body")
    shared_url = page.page.url
    title = page.page.locator("#panel-title").inner_text()
    cells = row.all_inner_texts()

    other = Page(browser, server)
    try:
        other.page.goto(shared_url)
        other.page.wait_for_selector("body[data-ready='1']", timeout=90_000)
        other.page.wait_for_selector("table.pair-flows tbody tr[data-kind='commute']")
        assert other.page.locator("#panel-title").inner_text() == title
        assert (
            other.page.locator(
                "table.pair-flows tbody tr[data-kind='commute'] td"
            ).all_inner_texts()
            == cells
        )
        for control in ("#level", "#kind", "#indicator"):
            assert other.page.input_value(control) == page.page.input_value(control)
        assert url_state(other.page.url) == url_state(shared_url)
        other.shot(shots, "10_shared_link", "body")
        assert not other.foreign and not other.errors
    finally:
        other.close()


def test_commune_level_loads_per_departement(page, shots):
    page.open("/?level=commune&sel=com:29019&flows=0")
    page.page.wait_for_selector("#panel-title:has-text('Brest')")
    page.page.wait_for_function(
        "window.maillage.choro && window.maillage.choro.data.level === 'commune'", timeout=60_000
    )
    png = page.shot(shots, "11_communes")
    stats = page.pixels(png)
    assert stats["painted"] > 0.2 * stats["total"], stats


# -- the cooperation layer ------------------------------------------------------------------------

RENDERED = """([layer, key]) => [...new Set(window.maillage.map
    .queryRenderedFeatures({ layers: [layer] }).map((f) => f.properties[key]))].sort()"""


def colour_counts(page: Page, png: bytes, colours: dict[str, str], tolerance: int = 45) -> dict:
    """Pixels of a screenshot within ``tolerance`` (sum of channel differences) of each colour."""
    return page.page.evaluate(
        """async ([b64, colours, tol]) => {
          const img = new Image(); img.src = 'data:image/png;base64,' + b64; await img.decode();
          const c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
          const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
          const d = ctx.getImageData(0, 0, c.width, c.height).data;
          const rgb = Object.fromEntries(Object.entries(colours).map(([k, h]) =>
            [k, [1, 3, 5].map((i) => parseInt(h.slice(i, i + 2), 16))]));
          const out = Object.fromEntries(Object.keys(colours).map((k) => [k, 0]));
          for (let i = 0; i < d.length; i += 4)
            for (const [k, [r, g, b]] of Object.entries(rgb))
              if (Math.abs(d[i] - r) + Math.abs(d[i + 1] - g) + Math.abs(d[i + 2] - b) <= tol)
                out[k]++;
          return out;
        }""",
        [base64.b64encode(png).decode(), colours, tolerance],
    )


def rgb_hex(css: str) -> str:
    """``rgb(217, 95, 2)`` → ``#d95f02``."""
    r, g, b = (int(x) for x in re.findall(r"\d+", css)[:3])
    return f"#{r:02x}{g:02x}{b:02x}"


def test_cooperation_layer_draws_bodies_and_uncovered_links(page, browser, server, shots):
    from maillage.cooperations.vocab import INSTRUMENTS

    page.open(f"/?sel={LANDERNEAU}&flows=0")
    page.page.wait_for_selector("#panel-title:has-text('Landerneau')")
    before = page.shot(shots, "12_landerneau")

    # the toggle is a labelled checkbox, reached and switched with the keyboard
    toggle = page.page.get_by_role("checkbox", name="coopérations")
    toggle.focus()
    page.page.keyboard.press("Space")
    page.page.wait_for_selector("#coop-legend-title:has-text('Landerneau')", timeout=60_000)
    assert url_state(page.page.url).get("coops") == "1"

    bodies = page.api(f"/territories/{LANDERNEAU}/bodies")["data"]["bodies"]
    expected = {b["slug"]: b for b in bodies if b["relation"] in ("direct", "through")}
    assert "pole-metropolitain-pays-de-brest" in expected
    legend = page.page.locator("#coop-legend")
    shown = legend.locator("li[data-slug]").evaluate_all("els => els.map(e => e.dataset.slug)")
    assert set(shown) == set(expected)
    for slug, body in expected.items():
        item = legend.locator(f"li[data-slug='{slug}']")
        assert body["name"] in item.inner_text()
        assert INSTRUMENTS[body["instrument"]] in item.inner_text()  # the body's type, in French

    coverage = page.api(f"/territories/{LANDERNEAU}/coverage", kind="commute")["data"]
    uncovered = sorted(lk["b"] for lk in coverage["uncovered"])
    covered = sorted(lk["b"] for lk in coverage["links"] if lk["n_cooperations"] > 0)
    assert uncovered, "the seed register leaves a strong link of Landerneau uncovered"
    page.page.wait_for_function(
        "window.maillage.map.queryRenderedFeatures({layers: ['coop-outline']}).length > 0"
    )
    drawn = page.page.evaluate(RENDERED, ["coop-outline", "slug"])
    assert "pole-metropolitain-pays-de-brest" in drawn and set(drawn) <= set(expected)
    assert page.page.evaluate(RENDERED, ["coop-links-uncovered", "b"]) == uncovered
    assert page.page.evaluate(RENDERED, ["coop-links-covered", "b"]) == covered
    assert f"liens forts sans coopération ({len(uncovered)})" in legend.inner_text()
    for lk in coverage["uncovered"]:
        assert lk["name_b"] in legend.inner_text()
    assert "modélisé" in legend.inner_text()  # the links rest on modelled flows

    # on screen: the pôle's outline in its legend colour, the uncovered link in red
    pole = legend.locator("li[data-slug='pole-metropolitain-pays-de-brest'] .sw")
    pole_colour = rgb_hex(pole.evaluate("e => getComputedStyle(e).borderTopColor"))
    colours = {"pole": pole_colour, "uncovered": "#c4001a"}
    after = page.shot(shots, "13_landerneau_cooperations")
    page.page.screenshot(path=str(shots / "13_landerneau_cooperations_page.png"))
    was, now = colour_counts(page, before, colours), colour_counts(page, after, colours)
    assert now["pole"] > was["pole"] + 500, (was, now)
    assert now["uncovered"] > was["uncovered"] + 40, (was, now)

    # unticking a body in the legend (keyboard again) takes its perimeter off the map
    box = legend.locator("input[data-slug='pole-metropolitain-pays-de-brest']")
    box.focus()
    page.page.keyboard.press("Space")
    page.page.wait_for_function(
        """() => !window.maillage.map.queryRenderedFeatures({layers: ['coop-outline']})
             .some((f) => f.properties.slug === 'pole-metropolitain-pays-de-brest')"""
    )
    box.focus()
    page.page.keyboard.press("Space")

    # a shared link reopens the layer
    shared_url = page.page.url
    other = Page(browser, server)
    try:
        other.page.goto(shared_url)
        other.page.wait_for_selector("body[data-ready='1']", timeout=90_000)
        other.page.wait_for_selector("#coop-legend-title:has-text('Landerneau')", timeout=60_000)
        assert other.page.is_checked("#show-coops")
        other.page.wait_for_function(
            "window.maillage.map.queryRenderedFeatures({layers: ['coop-links-uncovered']}).length"
        )
        assert other.page.evaluate(RENDERED, ["coop-links-uncovered", "b"]) == uncovered
        again = other.page.locator("#coop-legend li[data-slug]").evaluate_all(
            "els => els.map(e => e.dataset.slug)"
        )
        assert again == shown
        other.page.wait_for_selector("#coop-section li[data-slug]")
        other.shot(shots, "14_shared_cooperations", "body")
        assert not other.foreign and not other.errors
    finally:
        other.close()


def test_ready_means_map_painted_and_panel_shown(browser, server):
    """At the moment ``body[data-ready]`` is set, the panel shows the territory and the map
    has drawn the territories (rendered features of the choropleth layer)."""
    p = Page(browser, server)
    try:
        p.page.add_init_script(
            """new MutationObserver((_, obs) => {
                 if (!document.body || !document.body.dataset.ready) return;
                 obs.disconnect();
                 const map = window.maillage.map;
                 window.__atReady = {
                   title: (document.querySelector('#panel-title') || {}).textContent || null,
                   painted: map.queryRenderedFeatures({ layers: ['terr-fill'] }).length,
                   coloured: map.queryRenderedFeatures({ layers: ['terr-fill'] })
                     .filter((f) => typeof (f.state || {}).v === 'number').length,
                 };
               }).observe(document,
                          { attributes: true, subtree: true, attributeFilter: ['data-ready'] });"""
        )
        p.open(f"/?sel={BREST}")
        seen = p.page.evaluate("window.__atReady")
        assert seen["title"] == "Brest Métropole"
        assert seen["painted"] > 20 and seen["coloured"] > 20, seen
        assert not p.errors
    finally:
        p.close()


def test_zooming_in_swaps_in_the_full_polygons(page):
    """France is drawn with the national polygons; from zoom 6 on, the light ones replace
    them, and from zoom 8 on, the full ones."""
    page.open("/?flows=0")
    assert page.page.evaluate("window.maillage.layer") == {"level": "epci", "detail": "national"}
    with page.page.expect_response(lambda r: r.url.endswith("/geometry/epci?detail=low")) as low:
        page.page.evaluate("window.maillage.map.jumpTo({center: [-4.48, 48.39], zoom: 7})")
    assert low.value.ok
    page.page.wait_for_function("window.maillage.layer.detail === 'low'", timeout=60_000)
    light = page.page.evaluate("window.maillage.map.querySourceFeatures('terr').length")
    with page.page.expect_response(lambda r: r.url.endswith("/api/v1/geometry/epci")) as answer:
        page.page.evaluate("window.maillage.map.jumpTo({center: [-4.48, 48.39], zoom: 9})")
    assert answer.value.ok
    page.page.wait_for_function("window.maillage.layer.detail === 'full'", timeout=60_000)
    # zooming back out keeps the finer polygons already drawn
    page.page.evaluate(
        """new Promise((r) => {
             const m = window.maillage.map; m.once('idle', r); m.jumpTo({zoom: 5}); })"""
    )
    assert page.page.evaluate("window.maillage.layer.detail") == "full"
    page.page.wait_for_function(
        "window.maillage.map.queryRenderedFeatures({layers: ['terr-fill']}).length > 0"
    )
    assert light > 0
    # the values follow the polygons: Brest keeps its choropleth value
    value = page.page.evaluate(
        """window.maillage.map.getFeatureState({source: 'terr', id: '242900314'}).v"""
    )
    brest = next(
        v["value"]
        for v in page.api(
            "/choropleth", level="epci", kind="commute", indicator="self_containment"
        )["data"]["values"]
        if v["code"] == "242900314"
    )
    assert value == pytest.approx(brest)


def test_remarkable_ties_are_asked_for_when_scrolled_to(page):
    asked: list[str] = []
    page.page.on("request", lambda r: asked.append(r.url) if "/ties" in r.url else None)
    page.open(f"/?sel={BREST}")
    page.page.wait_for_selector("body[data-flows='1']", timeout=90_000)
    assert not asked, "the slow section at the bottom of the panel waits to be looked at"
    page.page.locator("#ties-section").scroll_into_view_if_needed()
    page.page.wait_for_selector("#ties-title", timeout=90_000)
    assert asked and "modélisé" in page.page.locator("#ties-title").inner_text()
    ties = page.api(f"/territories/{BREST}/ties", kind="commute", top=8)["data"]["ties"]
    rows = page.page.locator("table.ties tbody tr")
    assert rows.count() == len(ties)
    assert rows.first.locator("td").first.inner_text() == ties[0]["origin_name"]


def test_first_view_draws_its_surroundings_then_the_whole_country(browser, server):
    """A link to a territory draws the territories around it first (the map is usable
    sooner), and the whole country right after: nothing is missing once the page is ready."""
    p = Page(browser, server)
    try:
        p.page.add_init_script(
            """new MutationObserver((_, obs) => {
                 if (!document.body || !document.body.dataset.ready) return;
                 obs.disconnect();
                 window.maillage.map.getSource('terr').getData()
                   .then((d) => { window.__atReady = d.features.length; });
               }).observe(document,
                          { attributes: true, subtree: true, attributeFilter: ['data-ready'] });"""
        )
        p.open(f"/?sel={BREST}")
        every = len(p.api("/geometry/epci", detail="low")["data"]["features"])
        p.page.wait_for_function("window.__atReady !== undefined", timeout=30_000)
        first = p.page.evaluate("window.__atReady")
        assert 0 < first < every / 2, (first, every)
        # then the rest of the country, Strasbourg's EPCI included
        p.page.wait_for_function(
            f"window.maillage.map.getSource('terr').getData()"
            f".then((d) => d.features.length === {every})",
            timeout=60_000,
        )
        codes = p.page.evaluate(
            "window.maillage.map.getSource('terr').getData()"
            ".then((d) => d.features.map((f) => f.properties.code))"
        )
        assert "246700488" in codes and "242900314" in codes
        # a national link draws everything at once
        p.open("/?flows=0")
        count = p.page.evaluate(
            "window.maillage.map.getSource('terr').getData().then((d) => d.features.length)"
        )
        assert count == every
        assert not p.errors
    finally:
        p.close()
