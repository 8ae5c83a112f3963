/* maillage — interface web (carte, flux, coopérations, panneau du territoire, couple, périmètre).
 *
 * No build step: plain ES2020 using the vendored globals `maplibregl` and `deck`.
 * The whole view state lives in the URL query string, so a view can be shared by its link.
 *
 * First view: boot.js has already asked for its data; the map (light polygons) and the panel
 * are drawn first and `body[data-ready]` is set once the map has painted them. deck.gl (2 MB,
 * used for the flow arcs only) is loaded after that, then the flows and the slower sections.
 */
"use strict";

const API = "/api/v1";
const NF0 = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 0 });
const NF1 = new Intl.NumberFormat("fr-FR", { maximumFractionDigits: 1 });
const PCT = new Intl.NumberFormat("fr-FR", { style: "percent", maximumFractionDigits: 1 });
const PREFIX = { commune: "com", epci: "epci", ept: "ept", departement: "dep", region: "reg", perimeter: "per" };
const LEVEL_OF_PREFIX = Object.fromEntries(Object.entries(PREFIX).map(([k, v]) => [v, k]));
const LEVEL_FR = { commune: "Commune", epci: "EPCI", ept: "EPT", departement: "Département", region: "Région", perimeter: "Périmètre" };
const PALETTE = ["#f1eef6", "#d0d1e6", "#a6bddb", "#74a9cf", "#2b8cbe", "#045a8d", "#023858"];
const NO_DATA = "#d9d9d9";
const ZOOM_OF_LEVEL = { commune: 10, epci: 8.5, ept: 10, departement: 7, region: 5.8, perimeter: 7.5 };
const BOOT = window.maillageBoot;
const URLS = BOOT.urls;

/* ---------------------------------------------------------------- state and URL */

const state = {
  level: "epci", kind: "", indicator: "self_containment", direction: "both",
  threshold: 0, sel: null, pair: null, flows: true, coops: false,
  per: [], perName: "",   // perimeter builder members (refs) and name
};
let building = false;   // perimeter builder open
let pairing = false;    // next pick sets the pair's second territory

function readUrl() {
  const q = new URLSearchParams(location.search);
  if (q.get("level") && LEVEL_FR[q.get("level")]) state.level = q.get("level");
  if (q.get("kind")) state.kind = q.get("kind");
  if (q.get("ind")) state.indicator = q.get("ind");
  if (["in", "out", "both"].includes(q.get("dir"))) state.direction = q.get("dir");
  if (q.get("thr")) state.threshold = Math.max(0, Number(q.get("thr")) || 0);
  state.sel = q.get("sel") || null;
  state.pair = q.get("pair") || null;
  state.flows = q.get("flows") !== "0";
  state.coops = q.get("coops") === "1";
}

function writeUrl() {
  const q = new URLSearchParams();
  q.set("level", state.level);
  if (state.kind) q.set("kind", state.kind);
  q.set("ind", state.indicator);
  q.set("dir", state.direction);
  if (state.threshold) q.set("thr", String(state.threshold));
  if (state.sel) q.set("sel", state.sel);
  if (state.pair) q.set("pair", state.pair);
  if (!state.flows) q.set("flows", "0");
  if (state.coops) q.set("coops", "1");
  history.replaceState(null, "", location.pathname + "?" + q.toString());
}

/* ---------------------------------------------------------------- helpers */

const $ = (sel) => document.querySelector(sel);
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

async function api(path, options = {}) {
  let answer = null;
  const early = options.method ? null : BOOT.take(path);
  if (early) answer = await early.catch(() => null);  // a failed early request is made again
  if (!answer) {
    const res = await fetch(API + path, options);
    let body;
    try { body = await res.json(); } catch (e) { throw new Error(`Réponse illisible (${res.status})`); }
    answer = { status: res.status, body };
  }
  const { status: code, body } = answer;
  if (!body.ok) throw new Error(body.error ? body.error.message : `Erreur ${code}`);
  return body;
}

/* A promise with its resolve function, for the moments the page waits on (ready, deck.gl). */
function deferred() {
  const d = { done: false };
  d.promise = new Promise((r) => { d.resolve = (v) => { d.done = true; r(v); }; });
  return d;
}
const pageReady = deferred();  // map painted and first panel shown
const viewSet = deferred();    // first view: the map has jumped to the selection (if any)
function mark(name) { if (performance.mark) performance.mark(`maillage:${name}`); }

function fmtValue(value, unit) {
  if (value === null || value === undefined) return "–";
  if (unit === "share") return PCT.format(value);
  if (unit === "index") return NF1.format(value);
  return NF0.format(value);
}

function badge(status) {
  return status === "modelled"
    ? el("span", { class: "badge-modelled", title: "Valeur estimée par un modèle, pas observée" }, "modélisé")
    : null;
}

function metaLine(meta) {
  if (!meta) return null;
  const parts = [];
  if (meta.source) parts.push(`Source : ${meta.source}`);
  if (meta.vintage) parts.push(`millésime ${meta.vintage}`);
  return el("p", { class: "meta" }, badge(meta.status), meta.status === "modelled" ? " " : "", parts.join(" — "));
}

function refOf(level, code) { return `${PREFIX[level]}:${code}`; }
function levelOfRef(ref) { return LEVEL_OF_PREFIX[(ref || "").split(":")[0]] || null; }
function status(text) { $("#map-status").textContent = text || ""; }

function csvLink(path, params, label = "Exporter CSV") {
  const q = new URLSearchParams(params);
  return el("a", { class: "button", href: `${API}/exports/${path}.csv?${q}`, download: "" }, label);
}

/* ---------------------------------------------------------------- catalogue */

let catalogue = { indicators: [], kinds: [] };
let available = [];

async function loadCatalogue() {
  const [ind, st] = await Promise.all([api(URLS.indicators()), api(URLS.status())]);
  catalogue = ind.data;
  available = st.data.available;
  const kindSel = $("#kind");
  kindSel.replaceChildren(...catalogue.kinds.map((k) => {
    const row = available.find((a) => a.kind === k.kind);
    const mark = row && row.status === "modelled" ? " (modélisé)" : "";
    return el("option", { value: k.kind }, k.label + mark);
  }));
  if (!state.kind || !catalogue.kinds.some((k) => k.kind === state.kind)) {
    state.kind = catalogue.kinds.some((k) => k.kind === "commute") ? "commute" : (catalogue.kinds[0] || {}).kind || "";
  }
  kindSel.value = state.kind;
  fillIndicators();
  const foot = available.map((a) => `${a.label} ${a.vintage} : ${a.status === "modelled" ? "modélisé" : "observé"} (${a.source})`);
  $("#sources").textContent = "Sources — " + (foot.join(" · ") || "aucun flux chargé") + " · Référence : " + (st.meta.source || "") + (st.meta.vintage ? " " + st.meta.vintage : "");
  return st.data;
}

function fillIndicators() {
  const sel = $("#indicator");
  sel.replaceChildren(...catalogue.indicators.map((i) => el("option", { value: i.name }, i.labels[state.kind] || i.name)));
  if (!catalogue.indicators.some((i) => i.name === state.indicator)) state.indicator = "self_containment";
  sel.value = state.indicator;
}

/* ---------------------------------------------------------------- map */

let map;
let overlay = null;          // deck.gl overlay, created once deck.gl is loaded
let currentGeo = null;       // GeoJSON shown in the 'terr' source
let currentLayer = null;     // {level, detail}: the polygons in the 'terr' source
let choro = null;            // last choropleth answer
const geoCache = new Map();  // url -> GeoJSON
let depBoxes = null;         // [{code, bbox}] for loading communes per département
let styleReady = null;       // resolves once the sources and layers exist

/* The colour of a territory is that of its class (feature state `c`: the choropleth step its
   value falls in, -1 or none without a value). The expression never changes: switching the
   indicator only sets feature states, which repaints without laying the tiles out again. */
const CLASS_COLOR = ["step", ["number", ["feature-state", "c"], -1], NO_DATA, ...PALETTE.flatMap((colour, i) => [i, colour])];

let basemap = false;  // a raster base map under the territories (MAILLAGE_BASEMAP_URL)

/* Opacity of the territories: translucent over a base map, dimmed under the cooperations. */
function fillOpacity() { return coopView ? 0.45 : basemap ? 0.85 : 1; }

/* The base style holds every source and layer from the start, so that data can be set as
   soon as it arrives, without waiting for the map's first 'load'. No transitions: a repaint
   is a single frame (frames are slow without a GPU). */
function baseStyle() {
  const style = {
    version: 8,
    transition: { duration: 0, delay: 0 },
    sources: {
      terr: { type: "geojson", data: emptyFc(), promoteId: "code" },
      focus: { type: "geojson", data: emptyFc() },
      "coop-areas": { type: "geojson", data: emptyFc() },
      "coop-links": { type: "geojson", data: emptyFc() },
    },
    layers: [{ id: "bg", type: "background", paint: { "background-color": "#dfe7ee" } }],
  };
  style.layers.push(
    // opaque (in the legend's very colours), borders drawn as the fill's own 1-pixel outline:
    // a line layer would cost the map's worker and the renderer a good deal more without a GPU
    { id: "terr-fill", type: "fill", source: "terr", paint: { "fill-color": CLASS_COLOR, "fill-opacity": fillOpacity(), "fill-outline-color": "#ffffff" } },
    { id: "terr-picked", type: "fill", source: "terr", filter: pickedFilter(),
      paint: { "fill-color": "#f2a900", "fill-opacity": 0.55 } },
    ...coopLayers(),
    { id: "focus-line", type: "line", source: "focus", paint: { "line-color": "#111", "line-width": 2.5 } },
  );
  return style;
}

function initMap() {
  map = new maplibregl.Map({
    container: "map", style: baseStyle(), center: [2.4, 46.6], zoom: 4.9,
    minZoom: 3, maxZoom: 13, attributionControl: false,
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-left");
  map.addControl(new maplibregl.AttributionControl({ compact: true, customAttribution: "Contours : référence maillage (INSEE COG)" }));
  map.on("click", "terr-fill", onMapClick);
  map.on("mouseenter", "terr-fill", () => { map.getCanvas().style.cursor = "pointer"; });
  map.on("mouseleave", "terr-fill", () => { map.getCanvas().style.cursor = ""; });
  map.on("moveend", onMoveEnd);
  styleReady = new Promise((resolve) => map.once("style.load", resolve));
  return styleReady;
}

/* The optional raster base map (MAILLAGE_BASEMAP_URL), under the territories. */
async function addBasemap(url) {
  if (!url) return;
  await styleReady;
  basemap = true;
  map.setPaintProperty("terr-fill", "fill-opacity", fillOpacity());
  map.addSource("base", { type: "raster", tiles: [url], tileSize: 256 });
  map.addLayer({ id: "base", type: "raster", source: "base", paint: { "raster-opacity": 0.6 } }, "terr-fill");
}

/* Resolves once the map has painted everything it was asked to (sources parsed, tiles drawn,
   no camera move under way): the honest meaning of "the map layer is drawn". */
function mapPainted() {
  return new Promise((resolve) => {
    map.once("idle", resolve);
    map.triggerRepaint();
  });
}

function emptyFc() { return { type: "FeatureCollection", features: [] }; }

async function getGeo(url) {
  if (!geoCache.has(url)) geoCache.set(url, api(url).then((b) => b.data));
  return geoCache.get(url);
}

function mapLevel() { return state.level === "perimeter" ? "epci" : state.level; }

/* National polygons below NATIONAL_ZOOM, light ones below DETAIL_ZOOM, full ones from there
   on; a finer layer already drawn is kept when zooming out. */
const DETAIL_RANK = { national: 0, low: 1, full: 2 };
function wantedDetail(level) {
  const zoom = map.getZoom();
  const want = zoom < BOOT.NATIONAL_ZOOM ? "national" : zoom < BOOT.DETAIL_ZOOM ? "low" : "full";
  if (currentLayer && currentLayer.level === level && DETAIL_RANK[currentLayer.detail] > DETAIL_RANK[want]) return currentLayer.detail;
  return want;
}

async function visibleDepartements() {
  if (!depBoxes) {
    const geo = await getGeo(URLS.geometry("departement", "low"));
    depBoxes = geo.features.map((f) => ({ code: f.properties.code, bbox: bboxOf(f.geometry) }));
  }
  const b = map.getBounds();
  const view = [b.getWest(), b.getSouth(), b.getEast(), b.getNorth()];
  const hit = depBoxes.filter((d) => d.bbox[0] <= view[2] && d.bbox[2] >= view[0] && d.bbox[1] <= view[3] && d.bbox[3] >= view[1]);
  const c = map.getCenter();
  hit.sort((a, b2) => dist2(a.bbox, c) - dist2(b2.bbox, c));
  return hit.slice(0, 6).map((d) => d.code);
}
function dist2(bb, c) { const x = (bb[0] + bb[2]) / 2 - c.lng, y = (bb[1] + bb[3]) / 2 - c.lat; return x * x + y * y; }
function bboxOf(geom) {
  const bb = [Infinity, Infinity, -Infinity, -Infinity];
  const walk = (a) => { if (typeof a[0] === "number") { bb[0] = Math.min(bb[0], a[0]); bb[1] = Math.min(bb[1], a[1]); bb[2] = Math.max(bb[2], a[0]); bb[3] = Math.max(bb[3], a[1]); } else a.forEach(walk); };
  walk(geom.coordinates);
  return bb;
}

async function loadTerritories() {
  const level = mapLevel();
  let fc;
  let pre = null;
  if (level === "commune") {
    currentLayer = null;
    if (map.getZoom() < 6.5) {
      status("Zoomez pour afficher les communes (chargées par département).");
      fc = emptyFc();
    } else {
      const deps = await visibleDepartements();
      const parts = await Promise.all(deps.map((d) => getGeo(URLS.geometry("commune", null) + `?dep=${d}`)));
      fc = { type: "FeatureCollection", features: parts.flatMap((p) => p.features) };
      status("");
    }
  } else {
    // polygons and values travel side by side
    const detail = wantedDetail(level);
    [fc, pre] = await Promise.all([getGeo(URLS.geometry(level, detail === "full" ? null : detail)), fetchChoropleth(level, null)]);
    if (mapLevel() !== level) return;  // the level changed meanwhile
    currentLayer = { level, detail };
  }
  // the answer is shared through geoCache: the map gets it as is, values go to feature states
  currentGeo = fc;
  await styleReady;
  const first = pageReady.done ? null : inView(fc);
  map.getSource("terr").setData(first || currentGeo);
  mark(first ? "polygons-in-view" : "polygons");
  if (first) {
    // the rest of the country once the page is usable (the map's worker lays out all it is
    // given before the first tile: the territories around the view are drawn sooner alone)
    pageReady.promise.then(() => { if (currentGeo === fc) map.getSource("terr").setData(fc); });
  }
  await applyChoropleth(pre);
}

/* The first view's territories: those whose box meets the view widened by half its size on
   every side, or null when that is nearly everything (a national view). */
function inView(fc) {
  const b = map.getBounds();
  const dx = (b.getEast() - b.getWest()) / 2, dy = (b.getNorth() - b.getSouth()) / 2;
  const view = [b.getWest() - dx, b.getSouth() - dy, b.getEast() + dx, b.getNorth() + dy];
  const near = fc.features.filter((f) => {
    if (!f.geometry) return false;
    const bb = bboxOf(f.geometry);
    return bb[0] <= view[2] && bb[2] >= view[0] && bb[1] <= view[3] && bb[3] >= view[1];
  });
  return near.length < 0.7 * fc.features.length ? { type: "FeatureCollection", features: near } : null;
}

function choroplethParams(level) {
  return `level=${level}&kind=${state.kind}&indicator=${state.indicator}`;
}

async function fetchChoropleth(level, deps) {
  if (!state.kind) return null;
  if (level !== "commune") return api(URLS.choropleth(level, state.kind, state.indicator));
  // national breaks come with every answer: fetch per département, merge the values
  const answers = await Promise.all(deps.map((d) => api(`/choropleth?${choroplethParams(level)}&dep=${d}`)));
  return answers.length ? { ...answers[0], data: { ...answers[0].data, values: answers.flatMap((a) => a.data.values) } } : null;
}

/* Values and their classes are feature states of the 'terr' source (keyed by code): a new
   indicator repaints the map without sending the polygons to the map's worker again. */
async function applyChoropleth(prefetched = null) {
  const level = mapLevel();
  if (!state.kind || !currentGeo) return;
  const deps = [...new Set(currentGeo.features.map((f) => f.properties.dep).filter(Boolean))];
  choro = prefetched || await fetchChoropleth(level, deps);
  await styleReady;
  map.removeFeatureState({ source: "terr" });
  const breaks = choro ? choro.data.breaks : [];
  for (const v of choro ? choro.data.values : []) {
    if (v.value === null || v.value === undefined) continue;
    map.setFeatureState({ source: "terr", id: v.code }, { v: v.value, c: classOf(v.value, breaks) });
  }
  renderLegend();
  highlight();
}

/* The class of a value: how many breaks it reaches (the legend's rows, lowest first). */
function classOf(value, breaks) {
  let c = 0;
  while (c < breaks.length && value >= breaks[c]) c++;
  return Math.min(c, PALETTE.length - 1);
}

function renderLegend() {
  const box = $("#legend");
  if (!choro) { box.replaceChildren(); return; }
  const d = choro.data;
  const b = d.breaks;
  const rows = [];
  for (let i = 0; i <= b.length; i++) {
    const lo = i === 0 ? null : b[i - 1], hi = i === b.length ? null : b[i];
    const text = lo === null ? `< ${fmtValue(hi, d.unit)}` : hi === null ? `≥ ${fmtValue(lo, d.unit)}` : `${fmtValue(lo, d.unit)} – ${fmtValue(hi, d.unit)}`;
    rows.push(el("div", { class: "row" }, el("span", { class: "sw", style: `background:${PALETTE[Math.min(i, PALETTE.length - 1)]}` }), text));
  }
  rows.push(el("div", { class: "row" }, el("span", { class: "sw", style: `background:${NO_DATA}` }), "sans donnée"));
  box.replaceChildren(
    el("h3", { id: "legend-title" }, d.label, " ", badge(choro.meta.status)),
    ...rows,
    el("div", { class: "meta" }, `${LEVEL_FR[d.level]} · ${choro.meta.source} · ${choro.meta.vintage}`),
    el("div", { class: "tools" }, csvLink("choropleth", { kind: d.kind, level: d.level }, "Exporter les indicateurs (CSV)")),
  );
}

/* The territories picked (selection, pair, perimeter members) at the map's level. */
function pickedFilter() {
  const codes = [];
  const lvl = mapLevel();
  for (const ref of [state.sel, state.pair]) if (ref && levelOfRef(ref) === lvl) codes.push(ref.split(":")[1]);
  if (building) for (const ref of state.per) if (levelOfRef(ref) === lvl) codes.push(ref.split(":")[1]);
  return ["in", ["get", "code"], ["literal", codes]];
}

function highlight() {
  if (!map || !map.getLayer("terr-picked")) return;
  const filter = pickedFilter();
  // a new filter lays the tiles out again: only when the picked territories change
  if (JSON.stringify(filter) !== JSON.stringify(map.getFilter("terr-picked"))) map.setFilter("terr-picked", filter);
}

async function showFocus() {
  const refs = [state.sel, state.pair].filter(Boolean);
  const feats = [];
  for (const ref of refs) {
    try {
      const g = await getGeo(`/geometry/territory/${encodeURIComponent(ref)}`);
      feats.push(...g.features);
    } catch (e) { /* focus outline is decoration only */ }
  }
  await styleReady;
  map.getSource("focus").setData({ type: "FeatureCollection", features: feats });
}

function onMapClick(ev) {
  const f = ev.features && ev.features[0];
  if (!f) return;
  const ref = refOf(mapLevel(), f.properties.code);
  if (building) { togglePerimeterMember(ref, f.properties.name); return; }
  if (pairing && state.sel) { setPair(ref); return; }
  select(ref, { fly: false });
}

let lastZoomBand = null;
function onMoveEnd() {
  const band = flowLevelFor(map.getZoom());
  if (mapLevel() === "commune") loadTerritories().catch(showError);
  else if (currentLayer && wantedDetail(currentLayer.level) !== currentLayer.detail) loadTerritories().catch(showError);
  if (band !== lastZoomBand) { lastZoomBand = band; if (!state.sel) drawFlows().catch(showError); }
}

/* ---------------------------------------------------------------- flows (deck.gl) */

let flowData = null;
let flowLayer = null;
let deckLoading = null;

/* The arcs step back while the cooperation layer is shown (they are drawn above the map). */
function flowOpacity() { return coopView ? 0.3 : 1; }

/* deck.gl is needed for the arcs only: its script (named in index.html, <template id=deck-lib>)
   is inserted on first use, after the page is usable, as its 2 MB would hold the first view. */
function loadDeck() {
  if (!deckLoading) {
    deckLoading = new Promise((resolve, reject) => {
      if (window.deck) { resolve(); return; }
      const script = el("script", { src: $("#deck-lib").content.querySelector("script").getAttribute("src") });
      script.onload = () => resolve();
      script.onerror = () => reject(new Error("bibliothèque des flux (deck.gl) introuvable"));
      document.head.append(script);
    }).then(() => {
      overlay = new deck.MapboxOverlay({ interleaved: false, layers: [], getTooltip: flowTooltip });
      map.addControl(overlay);
      return overlay;
    });
  }
  return deckLoading;
}

function flowLevelFor(zoom) {
  if (zoom < 5.5) return "region";
  if (zoom < 7) return "departement";
  return "epci";
}

function partnerLevel() {
  // partners of the selection are drawn at the map level; communes are aggregated to EPCI
  // when the map is zoomed out (too many lines otherwise)
  const lvl = mapLevel();
  if (lvl === "commune" && map.getZoom() < 8) return "epci";
  return lvl;
}

async function drawFlows() {
  if (!state.flows || !state.kind) { flowLayer = null; if (overlay) overlay.setProps({ layers: [] }); $("#flow-legend").replaceChildren(); return; }
  const p = new URLSearchParams({ kind: state.kind, direction: state.direction, threshold: String(state.threshold) });
  let title;
  if (state.sel && state.pair) {
    p.set("ref", state.sel); p.set("level", levelOfRef(state.pair) === "perimeter" ? "epci" : levelOfRef(state.pair)); p.set("top", "1000");
  } else if (state.sel) {
    p.set("ref", state.sel); p.set("level", partnerLevel()); p.set("top", "60");
  } else {
    p.set("level", flowLevelFor(map.getZoom())); p.set("top", "300");
  }
  const [body] = await Promise.all([api(`/flows?${p}`), loadDeck()]);
  let lines = body.data.lines.filter((l) => l.origin_lon !== null && l.destination_lon !== null);
  if (state.sel && state.pair) {
    const [pl, pc] = [levelOfRef(state.pair), state.pair.split(":")[1]];
    lines = lines.filter((l) => (l.origin_level === pl && l.origin === pc) || (l.destination_level === pl && l.destination === pc));
  }
  flowData = body;
  const max = Math.max(1, ...lines.map((l) => l.value));
  // arcs lie flat (tilt 90°) and bend to the right of their direction, so that A → B and
  // B → A are two distinct curves; the colour runs from origin (orange) to destination (blue)
  const layer = new deck.ArcLayer({
    id: "flows", data: lines, pickable: true, greatCircle: false,
    getSourcePosition: (d) => [d.origin_lon, d.origin_lat],
    getTargetPosition: (d) => [d.destination_lon, d.destination_lat],
    getSourceColor: [230, 97, 0, 210], getTargetColor: [31, 95, 191, 210],
    getWidth: (d) => 1 + 9 * Math.sqrt(d.value / max), widthUnits: "pixels",
    getHeight: 0.25, getTilt: 90, opacity: flowOpacity(),
  });
  flowLayer = layer;
  overlay.setProps({ layers: [layer] });
  title = state.sel ? `Flux de ${body.data.territory ? body.data.territory.name : state.sel}` : `Principaux flux (${LEVEL_FR[body.data.level]})`;
  $("#flow-legend").replaceChildren(
    el("h3", {}, title, " ", badge(body.meta.status)),
    el("div", { class: "row" }, el("span", { class: "arc" }), "origine → destination"),
    el("div", { class: "row" }, `${lines.length} flux, le plus fort : ${NF0.format(lines.length ? max : 0)}`),
    el("div", { class: "meta" }, `${body.meta.kind_label} · agrégés au niveau ${LEVEL_FR[body.data.level]}`),
    el("div", { class: "tools" }, csvLink("flows", Object.fromEntries(p), "Exporter les flux (CSV)")),
  );
}

function flowTooltip(info) {
  if (!info.object) return null;
  const d = info.object;
  return { text: `${d.origin_name} → ${d.destination_name}\n${NF0.format(d.value)}${d.status === "modelled" ? " (modélisé)" : ""}` };
}

/* ---------------------------------------------------------------- search (combobox) */

let searchTimer = null;
let searchItems = [];
let activeIndex = -1;

function setupSearch() {
  const input = $("#search-input");
  const list = $("#search-results");
  input.addEventListener("input", () => {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(() => runSearch(input.value), 150);
  });
  input.addEventListener("keydown", (ev) => {
    if (list.hidden && ev.key === "ArrowDown") { runSearch(input.value); return; }
    if (ev.key === "ArrowDown") { moveActive(1); ev.preventDefault(); }
    else if (ev.key === "ArrowUp") { moveActive(-1); ev.preventDefault(); }
    else if (ev.key === "Enter") {
      ev.preventDefault();
      const item = searchItems[activeIndex >= 0 ? activeIndex : 0];
      if (item) pickSearch(item);
    } else if (ev.key === "Escape") closeSearch();
  });
  input.addEventListener("blur", () => setTimeout(closeSearch, 200));
}

async function runSearch(text) {
  const q = text.trim();
  if (!q) { closeSearch(); return; }
  let body;
  try { body = await api(`/territories/search?q=${encodeURIComponent(q)}&limit=10`); } catch (e) { return; }
  if ($("#search-input").value.trim() !== q) return;  // a newer query is on its way
  searchItems = body.data;
  activeIndex = searchItems.length ? 0 : -1;
  const list = $("#search-results");
  list.replaceChildren(...searchItems.map((t, i) => el("li", {
    id: `opt-${i}`, role: "option", "aria-selected": i === activeIndex ? "true" : "false",
    "data-ref": t.ref, onmousedown: (ev) => { ev.preventDefault(); pickSearch(t); },
  }, el("span", {}, t.name), el("span", { class: "lvl" }, `${LEVEL_FR[t.level] || t.level} · ${t.code}`))));
  if (!searchItems.length) list.replaceChildren(el("li", { role: "option", "aria-disabled": "true" }, "Aucun territoire trouvé"));
  list.hidden = false;
  $("#search-input").setAttribute("aria-expanded", "true");
  $("#search-input").setAttribute("aria-activedescendant", activeIndex >= 0 ? `opt-${activeIndex}` : "");
}

function moveActive(delta) {
  if (!searchItems.length) return;
  activeIndex = (activeIndex + delta + searchItems.length) % searchItems.length;
  document.querySelectorAll("#search-results li").forEach((li, i) => li.setAttribute("aria-selected", i === activeIndex ? "true" : "false"));
  $("#search-input").setAttribute("aria-activedescendant", `opt-${activeIndex}`);
  const li = document.getElementById(`opt-${activeIndex}`);
  if (li) li.scrollIntoView({ block: "nearest" });
}

function closeSearch() {
  $("#search-results").hidden = true;
  $("#search-input").setAttribute("aria-expanded", "false");
  $("#search-input").removeAttribute("aria-activedescendant");
}

function pickSearch(t) {
  closeSearch();
  $("#search-input").value = t.name;
  if (building) { togglePerimeterMember(t.ref, t.name); return; }
  if (pairing && state.sel) { setPair(t.ref); return; }
  select(t.ref, { fly: true, switchLevel: true });
}

/* ---------------------------------------------------------------- selection and panel */

async function select(ref, { fly = true, switchLevel = false } = {}) {
  state.sel = ref;
  state.pair = null;
  pairing = false;
  const lvl = levelOfRef(ref);
  if (switchLevel && lvl && lvl !== state.level && lvl !== "ept") {
    state.level = lvl;
    $("#level").value = lvl;
    await loadTerritories();
  }
  writeUrl();
  highlight();
  await renderPanel(fly);
}

async function setPair(ref) {
  if (ref === state.sel) return;
  state.pair = ref;
  pairing = false;
  writeUrl();
  highlight();
  await renderPanel(false);
}

/* Draw the panel of the selection (or of the pair). `fly`: true to move the map to it, "jump"
   to do so without animation (first view); `withLayers`: also redraw the flows and the
   cooperation layer (the first view draws them once the page is usable). Resolves when the
   panel is shown; its slower sections are filled in afterwards. */
async function renderPanel(fly, withLayers = true) {
  const body = $("#panel-body");
  const token = {};
  renderPanel.token = token;
  const focus = () => (withLayers ? showFocus() : pageReady.promise.then(showFocus));
  if (!state.sel) {
    if (withLayers) { drawFlows().catch(showError); drawCoopLayer().catch(showError); }
    focus();
    return;
  }
  body.replaceChildren(el("p", { class: "meta" }, "Chargement…"));
  try {
    if (state.pair) await renderPair(body, token, fly);
    else await renderTerritory(body, token, fly);
  } catch (e) {
    if (renderPanel.token === token) body.replaceChildren(el("p", { class: "error", role: "alert" }, e.message));
  }
  viewSet.resolve();  // whatever happened, the first view does not wait any longer
  if (withLayers) { drawFlows().catch(showError); drawCoopLayer().catch(showError); }
  focus();  // the selection's outline: after the first view, which it does not need
}

function flyTo(t, fly) {
  if (t.lon === null || t.lon === undefined) return;
  const view = { center: [t.lon, t.lat], zoom: Math.max(map.getZoom(), Math.min(ZOOM_OF_LEVEL[t.level] || 8, 8.5)) - 1.5 };
  if (fly === "jump") map.jumpTo(view);
  else map.easeTo({ ...view, duration: 500 });
}

/* A section of the panel filled in later, once the page is usable: `fill` gives its nodes.
   `lazy`: only when scrolled near (the slow sections at the bottom of the panel are asked of
   the server only if someone looks at them). */
function laterSection(id, fill, token, lazy = false) {
  const box = el("div", { id, class: "later" });
  const run = () => pageReady.promise.then(fill).then((nodes) => {
    if (renderPanel.token === token && nodes && nodes.length) box.replaceChildren(...nodes);
  }).catch(() => {});
  if (!lazy || !("IntersectionObserver" in window)) { run(); return box; }
  const near = new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) { near.disconnect(); run(); }
  }, { root: $("#panel"), rootMargin: "400px 0px" });
  near.observe(box);
  return box;
}

async function renderTerritory(body, token, fly) {
  const kinds = catalogue.kinds.map((k) => k.kind);
  const profile = api(URLS.profile(state.sel));
  // the map moves as soon as the territory's position is known, before the partners come
  profile.then((prof) => { if (fly && renderPanel.token === token) flyTo(prof.data.territory, fly); })
    .catch(() => {}).finally(() => viewSet.resolve());
  const [prof, ...partnerAnswers] = await Promise.all([
    profile,
    ...kinds.map((k) => api(URLS.partners(state.sel, k, state.direction, state.threshold)).catch((e) => ({ error: e }))),
  ]);
  if (renderPanel.token !== token) return;
  const t = prof.data.territory;
  const nodes = [
    el("h2", { id: "panel-title" }, t.name),
    el("p", { class: "ident" }, `${LEVEL_FR[t.level] || t.level} · ${t.code}`,
      t.population ? ` · ${NF0.format(t.population)} habitants` : "",
      t.n_communes ? ` · ${NF0.format(t.n_communes)} commune${t.n_communes > 1 ? "s" : ""}` : ""),
    el("div", { class: "tools" },
      el("button", { type: "button", id: "btn-pair", "aria-pressed": pairing ? "true" : "false", onclick: startPairing }, "Comparer avec…"),
      el("button", { type: "button", onclick: () => { togglePerimeterMember(state.sel, t.name); openBuilder(true); } }, "Ajouter au périmètre"),
      el("button", { type: "button", onclick: () => { state.sel = null; state.pair = null; writeUrl(); highlight(); renderWelcome(); } }, "Fermer")),
    metaLine(prof.meta),
  ];
  const kp = prof.data.kinds[state.kind];
  if (kp) {
    nodes.push(el("h3", {}, `Indicateurs — ${kp.meta.kind_label} `, badge(kp.meta.status)),
      el("p", { class: "meta" }, `Comparés à la strate « ${kp.stratum_label || kp.stratum} » (${kp.stratum_size} territoires) : ▲ le territoire, boîte = quartiles, trait = médiane, ○ = moyenne ; rang 1 = valeur la plus haute.`),
      indicatorList(kp));
  }
  nodes.push(el("h3", {}, "Principaux partenaires"));
  kinds.forEach((k, i) => {
    const ans = partnerAnswers[i];
    const label = (catalogue.kinds.find((c) => c.kind === k) || {}).label || k;
    const det = el("details", { open: k === state.kind ? true : null, "data-kind": k },
      el("summary", {}, label, " ", ans.meta ? badge(ans.meta.status) : null));
    if (ans.error) det.append(el("p", { class: "meta" }, ans.error.message));
    else {
      det.append(partnerTable(ans.data.partners, k),
        el("div", { class: "tools" }, csvLink("partners", { ref: state.sel, kind: k, direction: state.direction, threshold: state.threshold, top: 1000 })),
        metaLine(ans.meta));
    }
    nodes.push(det);
  });
  const ref = state.sel;
  if (state.coops) nodes.push(laterSection("coop-section", () => cooperationSection(ref), token));
  nodes.push(laterSection("ties-section", () => tiesSection(ref), token, true));
  body.replaceChildren(...nodes);
}

const RELATION_FR = { direct: "partie directe", through: "via", inside: "partie intérieure :" };

async function cooperationSection(ref) {
  const head = el("h3", {}, "Coopérations et liens forts");
  try {
    const [bodies, cov] = await Promise.all([
      api(`/territories/${encodeURIComponent(ref)}/bodies`),
      api(`/territories/${encodeURIComponent(ref)}/coverage?kind=${state.kind}`).catch((e) => ({ error: e })),
    ]);
    const seen = new Map();
    bodies.data.bodies.forEach((r) => { if (!seen.has(r.slug)) seen.set(r.slug, r); });
    const nodes = [head];
    if (!seen.size) nodes.push(el("p", { class: "meta" }, "Aucune coopération du registre ne concerne ce territoire."));
    else {
      nodes.push(el("p", { class: "meta" }, `${seen.size} instance(s) ou contrat(s), directement ou par son EPCI, ses périmètres ou ses communes :`));
      nodes.push(el("ul", { class: "coops" }, [...seen.values()].map((c) => el("li", { "data-slug": c.slug },
        el("strong", {}, c.name), ` — ${c.instrument}, ${c.status}`, el("br"),
        el("span", { class: "meta" }, `${RELATION_FR[c.relation] || c.relation} ${c.relation === "direct" ? "" : c.via}`)))));
    }
    if (!cov.error) {
      const s = cov.data.summary, th = cov.data.thresholds;
      nodes.push(el("h4", {}, "Liens forts sans coopération ", badge(cov.meta.status)),
        el("p", { class: "meta" }, `${s.strong_links} liens forts (flux ≥ ${NF0.format(th.min_value)} et ≥ ${Math.round(th.min_share * 100)} % d'un des deux côtés) : ${s.covered} couverts par une coopération, ${s.uncovered} sans coopération ; ${s.cooperations_without_link} coopération(s) sans lien fort mesuré.`));
      if (cov.data.uncovered.length) {
        nodes.push(el("ul", { class: "uncovered" }, cov.data.uncovered.map((l) => el("li", { "data-ref": l.b },
          el("strong", {}, l.name_b || l.b), ` — ${NF0.format(l.value)} ; thèmes suggérés : ${(l.suggested_themes || []).join(", ")}`))));
      }
    }
    return nodes;
  } catch (e) {
    return [head, el("p", { class: "meta" }, "Registre des coopérations indisponible : " + e.message)];
  }
}

/* Ties stronger than size and distance explain: observed / expected by a calibrated
   doubly-constrained gravity model (the expected flow is modelled). */
async function tiesSection(ref) {
  if (!["commune", "epci"].includes(levelOfRef(ref))) return [];
  try {
    const ans = await api(`/territories/${encodeURIComponent(ref)}/ties?kind=${state.kind}&top=8`);
    const rows = ans.data.ties;
    if (!rows.length) return [];
    const beta = ans.meta.beta ? ans.meta.beta.toFixed(3).replace(".", ",") : "–";
    return [el("h3", { id: "ties-title" }, "Liens remarquables ", badge("modelled")),
      el("p", { class: "meta" }, `Flux observé rapporté au flux attendu d'un modèle gravitaire doublement contraint (β = ${beta} km⁻¹) : au-dessus de 1, le lien est plus fort que la taille et la distance ne l'expliquent. Le flux attendu est modélisé.`),
      el("table", { class: "ties" },
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "De"), el("th", { scope: "col" }, "Vers"),
          el("th", { scope: "col" }, "Observé"), el("th", { scope: "col" }, "Attendu"), el("th", { scope: "col" }, "Rapport"))),
        el("tbody", {}, rows.map((r) => el("tr", {},
          el("td", {}, r.origin_name), el("td", {}, r.destination_name),
          el("td", { class: "num" }, NF0.format(r.observed)), el("td", { class: "num" }, NF0.format(r.expected)),
          el("td", { class: "num" }, r.ratio === null ? "–" : r.ratio.toFixed(2).replace(".", ","))))))];
  } catch (e) {
    return [];
  }
}

function indicatorList(kp) {
  return el("div", { class: "indicators" }, kp.indicators.map((ind) => el("div", { class: "ind", "data-name": ind.name, "data-value": ind.value === null ? "" : String(ind.value) },
    el("span", { class: "label" }, ind.label),
    el("span", { class: "value" }, fmtValue(ind.value, ind.unit), ind.status === "modelled" ? " " : "", badge(ind.status)),
    stratumChart(ind),
    el("span", { class: "rank" }, ind.stratum.n ? `médiane de la strate ${fmtValue(ind.stratum.median, ind.unit)} · rang ${ind.stratum.rank ?? "–"} / ${ind.stratum.n}` : "strate vide"))));
}

/* A box plot drawn in SVG: quartiles of the stratum, its median and mean, and the territory. */
function stratumChart(ind) {
  const s = ind.stratum;
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("viewBox", "0 0 300 26");
  svg.setAttribute("role", "img");
  const vals = [s.q1, s.q3, s.median, s.mean, ind.value].filter((v) => v !== null && v !== undefined && isFinite(v));
  svg.setAttribute("aria-label", `${ind.label} : ${fmtValue(ind.value, ind.unit)} ; quartiles de la strate ${fmtValue(s.q1, ind.unit)} à ${fmtValue(s.q3, ind.unit)}`);
  if (vals.length < 2) return svg;
  let lo = Math.min(...vals), hi = Math.max(...vals);
  if (hi === lo) { hi += 1; lo -= 1; }
  const pad = (hi - lo) * 0.08;
  const x = (v) => 6 + 288 * (v - lo + pad) / (hi - lo + 2 * pad);
  const add = (tag, attrs) => { const n = document.createElementNS(ns, tag); for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v); svg.append(n); return n; };
  add("line", { x1: 4, x2: 296, y1: 13, y2: 13, stroke: "#c9d1dc" });
  if (s.q1 !== null && s.q3 !== null) add("rect", { x: x(s.q1), y: 7, width: Math.max(1, x(s.q3) - x(s.q1)), height: 12, fill: "#c6dbef", stroke: "#6b8fb8" });
  if (s.median !== null) add("line", { x1: x(s.median), x2: x(s.median), y1: 5, y2: 21, stroke: "#08306b", "stroke-width": 2 });
  if (s.mean !== null) add("circle", { cx: x(s.mean), cy: 13, r: 2.5, fill: "#fff", stroke: "#08306b" });
  if (ind.value !== null) add("path", { d: `M${x(ind.value)},2 l5,9 l-10,0 z`, fill: ind.status === "modelled" ? "#b35c00" : "#d7301f" });
  return svg;
}

function partnerTable(rows, kind) {
  const cols = [
    { key: "partner_name", label: "Partenaire", text: (r) => r.partner_name },
    { key: "out_value", label: "Sortants", text: (r) => NF0.format(r.out_value) },
    { key: "in_value", label: "Entrants", text: (r) => NF0.format(r.in_value) },
    { key: "total", label: "Total", text: (r) => NF0.format(r.total) },
    { key: "balance", label: "Solde", text: (r) => NF0.format(r.balance) },
    { key: "out_share_p", label: "Part", text: (r) => (r.out_share_p === null ? "–" : PCT.format(r.out_share_p)) },
  ];
  const sort = { key: "total", dir: -1 };
  if (state.direction === "out") sort.key = "out_value";
  if (state.direction === "in") sort.key = "in_value";
  const table = el("table", { class: "partners", "data-kind": kind });
  table.append(el("caption", { class: "visually-hidden" }, "Principaux partenaires ; cliquez un en-tête pour trier"));
  const thead = el("thead");
  const tbody = el("tbody");
  const draw = () => {
    thead.replaceChildren(el("tr", {}, cols.map((c) => el("th", { scope: "col", "aria-sort": sort.key === c.key ? (sort.dir > 0 ? "ascending" : "descending") : "none" },
      el("button", { type: "button", onclick: () => { sort.dir = sort.key === c.key ? -sort.dir : (c.key === "partner_name" ? 1 : -1); sort.key = c.key; draw(); } }, c.label)))));
    const sorted = [...rows].sort((a, b) => {
      const va = a[sort.key], vb = b[sort.key];
      if (typeof va === "string") return sort.dir * va.localeCompare(vb, "fr");
      return sort.dir * ((va ?? -Infinity) - (vb ?? -Infinity));
    });
    tbody.replaceChildren(...sorted.map((r) => el("tr", { "data-code": r.partner_code },
      cols.map((c) => el("td", { "data-value": r[c.key] === null ? "" : String(r[c.key]) },
        c.key === "partner_name" && r.partner_level
          ? el("a", { href: "#", onclick: (ev) => { ev.preventDefault(); select(refOf(r.partner_level, r.partner_code)); } }, c.text(r))
          : c.text(r), c.key === "total" && r.status === "modelled" ? null : null)))));
  };
  draw();
  table.append(thead, tbody);
  if (!rows.length) return el("p", { class: "meta" }, "Aucun partenaire au-dessus du seuil.");
  return table;
}

function startPairing() {
  pairing = !pairing;
  const b = $("#btn-pair");
  if (b) b.setAttribute("aria-pressed", pairing ? "true" : "false");
  status(pairing ? "Choisissez le second territoire sur la carte ou dans la recherche." : "");
  if (pairing) $("#search-input").focus();
}

async function renderPair(body, token, fly) {
  const kinds = catalogue.kinds.map((k) => k.kind);
  const [pair, pa, pb] = await Promise.all([
    api(`/pair?a=${encodeURIComponent(state.sel)}&b=${encodeURIComponent(state.pair)}&detail=10`),
    api(`/territories/${encodeURIComponent(state.sel)}/profile?kinds=${state.kind}`),
    api(`/territories/${encodeURIComponent(state.pair)}/profile?kinds=${state.kind}`),
  ]);
  if (renderPanel.token !== token) return;
  status("");
  const a = pair.data.a, b = pair.data.b;
  if (fly && a.lon !== null && b.lon !== null) map.fitBounds([[Math.min(a.lon, b.lon), Math.min(a.lat, b.lat)], [Math.max(a.lon, b.lon), Math.max(a.lat, b.lat)]], { padding: 80, maxZoom: 9, duration: fly === "jump" ? 0 : 500 });
  viewSet.resolve();
  const rows = kinds.filter((k) => pair.data.kinds[k]).map((k) => {
    const d = pair.data.kinds[k];
    return el("tr", { "data-kind": k },
      el("td", {}, d.meta.kind_label, " ", badge(d.status)),
      el("td", { "data-value": String(d.a_to_b) }, NF0.format(d.a_to_b)),
      el("td", { "data-value": String(d.b_to_a) }, NF0.format(d.b_to_a)),
      el("td", { "data-value": String(d.balance_for_a) }, NF0.format(d.balance_for_a)));
  });
  const ia = pa.data.kinds[state.kind], ib = pb.data.kinds[state.kind];
  const side = ia && ib ? el("table", { class: "pair-profiles" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Indicateur"), el("th", { scope: "col" }, a.name), el("th", { scope: "col" }, b.name))),
    el("tbody", {}, ia.indicators.map((ind, i) => el("tr", { "data-name": ind.name },
      el("td", {}, ind.label), el("td", {}, fmtValue(ind.value, ind.unit)), el("td", {}, fmtValue(ib.indicators[i].value, ind.unit)))))) : null;
  const k = pair.data.kinds[state.kind];
  body.replaceChildren(
    el("h2", { id: "panel-title" }, `${a.name} ↔ ${b.name}`),
    el("p", { class: "ident" }, `${LEVEL_FR[a.level]} ${a.code} · ${LEVEL_FR[b.level]} ${b.code}`),
    el("div", { class: "tools" },
      el("button", { type: "button", onclick: () => { state.pair = null; writeUrl(); highlight(); renderPanel(false); } }, "Quitter la vue couple"),
      csvLink("pair", { a: state.sel, b: state.pair })),
    metaLine(pair.meta),
    el("h3", {}, "Flux dans les deux sens"),
    el("table", { class: "pair-flows" },
      el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Flux"), el("th", { scope: "col" }, `${a.name} → ${b.name}`), el("th", { scope: "col" }, `${b.name} → ${a.name}`), el("th", { scope: "col" }, `Solde pour ${a.name}`))),
      el("tbody", {}, rows)),
    k ? el("p", { class: "meta" }, `${k.meta.kind_label} : ${k.share_of_a_origin_to_b === null ? "–" : PCT.format(k.share_of_a_origin_to_b)} des partants de ${a.name} vont vers ${b.name} ; ${k.share_of_b_origin_to_a === null ? "–" : PCT.format(k.share_of_b_origin_to_a)} des partants de ${b.name} vont vers ${a.name}.`) : null,
    el("h3", {}, "Profils côte à côte"),
    side,
    laterSection("pair-ties-section", () => pairTieSection(a, b), token, true),
  );
}

/* The pair's ties against the gravity model (observed / expected; expected is modelled). */
async function pairTieSection(a, b) {
  if (a.level !== b.level || !["commune", "epci"].includes(a.level)) return [];
  try {
    const ans = await api(`/territories/${encodeURIComponent(refOf(a.level, a.code))}/ties?kind=${state.kind}&top=500`);
    const rows = ans.data.ties.filter((r) => (r.origin === a.code && r.destination === b.code) || (r.origin === b.code && r.destination === a.code));
    if (!rows.length) return [];
    return [el("h3", { id: "pair-ties" }, "Intensité du lien ", badge("modelled")),
      el("p", { class: "meta" }, "Flux observé rapporté au flux attendu d'un modèle gravitaire doublement contraint : au-dessus de 1, le lien est plus fort que la taille des deux territoires et leur distance ne l'expliquent. Le flux attendu est modélisé."),
      el("ul", { class: "pair-ties" }, rows.map((r) => el("li", {},
        `${r.origin_name} → ${r.destination_name} : observé ${NF0.format(r.observed)}, attendu ${NF0.format(r.expected)}, rapport ${r.ratio === null ? "–" : r.ratio.toFixed(2).replace(".", ",")}`)))];
  } catch (e) {
    return [];
  }
}

function renderWelcome() {
  $("#panel-body").replaceChildren(el("h2", {}, "Bienvenue"), el("p", {}, "Cherchez un territoire ou cliquez sur la carte pour voir ses flux, ses indicateurs comparés à sa strate et ses principaux partenaires."));
  drawFlows().catch(showError);
  drawCoopLayer().catch(showError);
  showFocus();
}

/* ---------------------------------------------------------------- perimeter builder */

const perNames = new Map();

function openBuilder(open) {
  building = open;
  $("#btn-perimeter").setAttribute("aria-pressed", open ? "true" : "false");
  highlight();
  if (open) renderBuilder();
  else if (state.sel) renderPanel(false); else renderWelcome();
}

function togglePerimeterMember(ref, name) {
  if (state.per.includes(ref)) state.per = state.per.filter((r) => r !== ref);
  else state.per.push(ref);
  perNames.set(ref, name || ref);
  highlight();
  if (building) renderBuilder();
}

function renderBuilder() {
  const body = $("#panel-body");
  const name = el("input", { id: "per-name", type: "text", value: state.perName || "Mon périmètre", maxlength: "200" });
  name.addEventListener("input", () => { state.perName = name.value; });
  body.replaceChildren(
    el("h2", {}, "Construire un périmètre"),
    el("p", {}, "Cliquez des EPCI (ou des communes) sur la carte, ou choisissez-les dans la recherche, puis calculez les indicateurs du périmètre."),
    el("label", { for: "per-name" }, "Nom du périmètre "), name,
    el("h3", {}, `Membres (${state.per.length})`),
    el("ul", { class: "chips", id: "per-members" }, state.per.map((ref) => el("li", { "data-ref": ref }, perNames.get(ref) || ref,
      el("button", { type: "button", "aria-label": `Retirer ${perNames.get(ref) || ref}`, onclick: () => togglePerimeterMember(ref) }, "×")))),
    el("div", { class: "tools" },
      el("button", { type: "button", class: "primary", id: "per-save", disabled: state.per.length ? null : true, onclick: savePerimeter }, "Calculer et enregistrer"),
      el("button", { type: "button", onclick: () => { state.per = []; renderBuilder(); highlight(); } }, "Vider"),
      el("button", { type: "button", onclick: () => openBuilder(false) }, "Fermer")),
    el("div", { id: "per-result", "aria-live": "polite" }),
    el("h3", {}, "Périmètres enregistrés"),
    el("ul", { class: "coops", id: "per-list" }, el("li", { class: "meta" }, "Chargement…")),
  );
  api("/perimeters").then((b) => {
    const list = $("#per-list");
    if (!list) return;
    list.replaceChildren(...b.data.map((p) => el("li", {},
      el("a", { href: `?level=perimeter&sel=${encodeURIComponent(p.ref)}`, onclick: (ev) => { ev.preventDefault(); building = false; $("#btn-perimeter").setAttribute("aria-pressed", "false"); select(p.ref, { fly: true }); } }, p.name),
      el("span", { class: "meta" }, ` · ${NF0.format(p.n_communes)} communes`))));
  }).catch(() => {});
}

async function savePerimeter() {
  const out = $("#per-result");
  try {
    const body = await api("/perimeters", { method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: state.perName || "Mon périmètre", members: state.per }) });
    const ref = body.data.ref;
    building = false;
    $("#btn-perimeter").setAttribute("aria-pressed", "false");
    state.per = [];
    await select(ref, { fly: true });
  } catch (e) {
    out.replaceChildren(el("p", { class: "error", role: "alert" }, e.message));
  }
}

/* ---------------------------------------------------------------- cooperations (map layer) */

/* One colour per body of the selected territory (none of them red: red marks the strong
   links without cooperation). */
const COOP_COLORS = ["#d95f02", "#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#1f78b4", "#666666"];
const UNCOVERED_COLOR = "#c4001a";
const COVERED_COLOR = "#5a5a5a";
const coopHidden = new Set();  // slugs unticked in the legend
let coopView = null;           // what the layer shows: {ref, kind, name, bodies, coverage}

function coopLayers() {
  const part = (p) => ["==", ["get", "part"], p];
  return [
    { id: "coop-fill", type: "fill", source: "coop-areas", filter: part("party"),
      paint: { "fill-color": ["get", "color"], "fill-opacity": 0.14 } },
    { id: "coop-outline-casing", type: "line", source: "coop-areas", filter: part("outline"),
      layout: { "line-join": "round", "line-sort-key": ["get", "order"] },
      paint: { "line-color": "#ffffff", "line-width": ["+", ["get", "width"], 2] } },
    { id: "coop-outline", type: "line", source: "coop-areas", filter: part("outline"),
      layout: { "line-join": "round", "line-sort-key": ["get", "order"] },
      paint: { "line-color": ["get", "color"], "line-width": ["get", "width"] } },
    { id: "coop-links-casing", type: "line", source: "coop-links", filter: ["==", ["geometry-type"], "LineString"],
      layout: { "line-cap": "round" },
      paint: { "line-color": "#ffffff", "line-width": ["case", ["get", "covered"], 4, 7] } },
    { id: "coop-links-covered", type: "line", source: "coop-links",
      filter: ["all", ["==", ["geometry-type"], "LineString"], ["==", ["get", "covered"], true]],
      paint: { "line-color": COVERED_COLOR, "line-width": 2 } },
    { id: "coop-links-uncovered", type: "line", source: "coop-links",
      filter: ["all", ["==", ["geometry-type"], "LineString"], ["==", ["get", "covered"], false]],
      paint: { "line-color": UNCOVERED_COLOR, "line-width": 4.5, "line-dasharray": [2, 1.2] } },
    { id: "coop-partners", type: "circle", source: "coop-links", filter: ["==", ["geometry-type"], "Point"],
      paint: { "circle-radius": 4.5, "circle-color": ["case", ["get", "covered"], COVERED_COLOR, UNCOVERED_COLOR],
        "circle-stroke-color": "#ffffff", "circle-stroke-width": 1.5 } },
  ];
}

/* Bodies the selected territory belongs to (directly or through its EPCI, a perimeter…), their
   perimeters and its strong links, covered by one of them or not. */
async function drawCoopLayer() {
  if (!map) return;
  await styleReady;
  const token = {};
  drawCoopLayer.token = token;
  if (!state.coops || !state.sel || state.pair) {
    coopView = null;
    paintCoopLayer();
    renderCoopLegend();
    return;
  }
  const ref = state.sel, kind = state.kind;
  if (!coopView || coopView.ref !== ref || coopView.kind !== kind) {
    $("#coop-legend").replaceChildren(el("h3", {}, "Coopérations"), el("p", { class: "meta" }, "Chargement…"));
    let view;
    try { view = await loadCoopView(ref, kind); } catch (e) {
      if (drawCoopLayer.token !== token) return;
      coopView = null;
      paintCoopLayer();
      $("#coop-legend").replaceChildren(el("h3", {}, "Coopérations"),
        el("p", { class: "error", role: "alert" }, "Registre des coopérations indisponible : " + e.message));
      return;
    }
    if (drawCoopLayer.token !== token) return;
    coopView = view;
  }
  paintCoopLayer();
  renderCoopLegend();
}

async function loadCoopView(ref, kind) {
  const enc = encodeURIComponent(ref);
  const [owned, coverage] = await Promise.all([
    api(`/territories/${enc}/bodies`),
    api(`/territories/${enc}/coverage?kind=${kind}`).catch((e) => ({ error: e })),
  ]);
  const slugs = [];
  for (const b of owned.data.bodies) {
    if ((b.relation === "direct" || b.relation === "through") && !slugs.includes(b.slug)) slugs.push(b.slug);
  }
  const shapes = await Promise.all(slugs.map((s) => api(`/cooperations/${encodeURIComponent(s)}/geometry`).catch((e) => ({ error: e }))));
  const bodies = slugs.map((slug, i) => {
    const row = owned.data.bodies.find((b) => b.slug === slug);
    const geo = shapes[i];
    const about = geo.meta ? geo.meta.cooperation : {};
    const features = geo.data ? geo.data.features : [];
    const viaFeature = features.find((f) => f.properties.ref === row.via);
    return {
      slug, name: row.name, color: COOP_COLORS[i % COOP_COLORS.length],
      type: about.instrument_label || row.instrument, status: row.status, statusLabel: about.status_label || row.status,
      via: row.relation === "direct" ? null : (viaFeature ? viaFeature.properties.name : row.via),
      features,
    };
  });
  return { ref, kind, name: owned.data.territory.name, bodies, coverage };
}

function paintCoopLayer() {
  const shown = coopView ? coopView.bodies.filter((b) => !coopHidden.has(b.slug)) : [];
  const n = shown.length;
  const areas = [];
  shown.forEach((b, i) => {
    // nested strokes: the first body widest, drawn first, so every outline stays visible
    const width = n > 1 ? 2 + 6 * (n - 1 - i) / (n - 1) : 3;
    for (const f of b.features) {
      areas.push({ type: "Feature", geometry: f.geometry, properties: { ...f.properties, color: b.color, width, order: i } });
    }
  });
  const links = [];
  const cov = coopView && coopView.coverage && !coopView.coverage.error ? coopView.coverage.data : null;
  for (const l of cov ? cov.links : []) {
    if ([l.lon_a, l.lat_a, l.lon_b, l.lat_b].some((v) => v === null || v === undefined)) continue;
    const props = { b: l.b, name: l.name_b || l.b, value: l.value, covered: l.n_cooperations > 0 };
    links.push({ type: "Feature", geometry: { type: "LineString", coordinates: [[l.lon_a, l.lat_a], [l.lon_b, l.lat_b]] }, properties: props });
    links.push({ type: "Feature", geometry: { type: "Point", coordinates: [l.lon_b, l.lat_b] }, properties: props });
  }
  map.getSource("coop-areas").setData({ type: "FeatureCollection", features: areas });
  map.getSource("coop-links").setData({ type: "FeatureCollection", features: links });
  // the choropleth and the flow arcs step back while the cooperations are shown
  map.setPaintProperty("terr-fill", "fill-opacity", fillOpacity());
  if (overlay && flowLayer) {
    flowLayer = flowLayer.clone({ opacity: flowOpacity() });
    overlay.setProps({ layers: [flowLayer] });
  }
}

function renderCoopLegend() {
  const box = $("#coop-legend");
  if (!state.coops) { box.replaceChildren(); return; }
  if (!coopView) {
    box.replaceChildren(el("h3", {}, "Coopérations"), el("p", { class: "meta" }, state.pair
      ? "Quittez la vue couple pour voir les coopérations d'un territoire."
      : "Choisissez un territoire pour voir les instances de coopération dont il fait partie et ses liens forts sans coopération."));
    return;
  }
  const v = coopView;
  const items = v.bodies.map((b) => {
    const id = `coop-${b.slug}`;
    const box2 = el("input", { type: "checkbox", id, checked: !coopHidden.has(b.slug), "data-slug": b.slug });
    box2.addEventListener("change", () => {
      if (box2.checked) coopHidden.delete(b.slug); else coopHidden.add(b.slug);
      paintCoopLayer();
    });
    const kindText = [b.type, b.status !== "active" ? b.statusLabel : null, b.via ? `par ${b.via}` : null, b.features.length ? null : "sans contour"].filter(Boolean).join(" · ");
    return el("li", { "data-slug": b.slug },
      box2,
      el("span", { class: "sw", style: `background:${b.color}33;border:3px solid ${b.color}`, "aria-hidden": "true" }),
      el("label", { for: id }, el("span", { class: "coop-name" }, b.name), el("span", { class: "coop-type" }, kindText)));
  });
  const nodes = [el("h3", { id: "coop-legend-title" }, `Coopérations de ${v.name}`)];
  if (items.length) nodes.push(el("ul", { class: "coop-bodies", "aria-label": "Instances de coopération (cocher pour afficher le périmètre)" }, items));
  else nodes.push(el("p", { class: "meta" }, "Aucune instance de coopération du registre ne comprend ce territoire."));
  const cov = v.coverage;
  if (cov.error) nodes.push(el("p", { class: "meta" }, "Liens forts indisponibles : " + cov.error.message));
  else {
    const d = cov.data;
    const uncovered = d.uncovered.map((l) => l.name_b || l.b);
    nodes.push(
      el("div", { class: "row", id: "coop-uncovered" }, el("span", { class: "ln ln-uncovered", "aria-hidden": "true" }),
        `liens forts sans coopération (${d.summary.uncovered})`, " ", badge(cov.meta.status)),
      uncovered.length ? el("p", { class: "meta coop-uncovered-names" }, uncovered.join(" · ")) : null,
      el("div", { class: "row" }, el("span", { class: "ln ln-covered", "aria-hidden": "true" }),
        `liens forts couverts par une coopération (${d.summary.covered})`),
      el("p", { class: "meta" }, `Lien fort : flux ${(catalogue.kinds.find((k) => k.kind === v.kind) || {}).label || v.kind} ≥ ${NF0.format(d.thresholds.min_value)} et ≥ ${Math.round(d.thresholds.min_share * 100)} % des flux d'un des deux territoires.`),
    );
  }
  box.replaceChildren(...nodes.filter(Boolean));
}

/* The panel's list of cooperations follows the toggle without redrawing the whole panel. */
function syncCoopSection() {
  const body = $("#panel-body");
  const current = $("#coop-section");
  if (!state.coops) { if (current) current.remove(); return; }
  if (current || !state.sel || state.pair || !$("#ties-section")) return;
  const ref = state.sel;
  const box = el("div", { id: "coop-section" });
  body.insertBefore(box, $("#ties-section"));
  const token = renderPanel.token;
  cooperationSection(ref).then((nodes) => { if (renderPanel.token === token) box.replaceChildren(...nodes); });
}

/* ---------------------------------------------------------------- wiring */

function showError(e) { console.error(e); status("Erreur : " + (e && e.message ? e.message : e)); }

function setupControls() {
  $("#level").value = state.level;
  $(`input[name=direction][value=${state.direction}]`).checked = true;
  $("#show-flows").checked = state.flows;
  $("#show-coops").checked = state.coops;
  setThresholdSlider(state.threshold);
  $("#level").addEventListener("change", async (ev) => {
    state.level = ev.target.value; writeUrl();
    await loadTerritories().catch(showError);
    if (state.level === "perimeter" && !state.sel) openBuilder(true);
    drawFlows().catch(showError);
  });
  $("#kind").addEventListener("change", async (ev) => {
    state.kind = ev.target.value; fillIndicators(); writeUrl();
    await applyChoropleth().catch(showError);
    renderPanel(false);
  });
  $("#indicator").addEventListener("change", async (ev) => {
    state.indicator = ev.target.value; writeUrl();
    await applyChoropleth().catch(showError);
  });
  document.querySelectorAll("input[name=direction]").forEach((r) => r.addEventListener("change", (ev) => {
    state.direction = ev.target.value; writeUrl(); renderPanel(false);
  }));
  $("#threshold").addEventListener("input", () => { $("#threshold-value").textContent = NF0.format(sliderToValue(+$("#threshold").value)); });
  $("#threshold").addEventListener("change", () => {
    state.threshold = sliderToValue(+$("#threshold").value); writeUrl(); renderPanel(false);
  });
  $("#show-flows").addEventListener("change", (ev) => { state.flows = ev.target.checked; writeUrl(); drawFlows().catch(showError); });
  $("#show-coops").addEventListener("change", (ev) => {
    state.coops = ev.target.checked; writeUrl();
    drawCoopLayer().catch(showError);
    syncCoopSection();
  });
  $("#btn-perimeter").addEventListener("click", () => openBuilder(!building));
  $("#btn-share").addEventListener("click", async () => {
    writeUrl();
    try { await navigator.clipboard.writeText(location.href); status("Lien copié."); } catch (e) { status(location.href); }
  });
}

/* The threshold slider is logarithmic: 0 … 100 maps to 0 … 100 000. */
function sliderToValue(s) { return s <= 0 ? 0 : Math.round(Math.pow(10, s / 20)); }
function setThresholdSlider(v) {
  $("#threshold").value = v <= 0 ? 0 : Math.round(20 * Math.log10(v));
  $("#threshold-value").textContent = NF0.format(v);
}

async function main() {
  mark("start");
  readUrl();
  setupSearch();
  initMap();  // first, so that the map's worker starts while the catalogue is read
  let st;
  try { st = await loadCatalogue(); } catch (e) {
    $("#panel-body").replaceChildren(el("h2", {}, "Observatoire indisponible"), el("p", { class: "error", role: "alert" }, e.message));
    return;
  }
  setupControls();
  addBasemap(st.basemap_url).catch(showError);
  lastZoomBand = flowLevelFor(map.getZoom());
  if (state.sel && levelOfRef(state.sel) && state.level === "commune") {
    try { const t = await api(`/territories/${encodeURIComponent(state.sel)}`); map.jumpTo({ center: [t.data.lon, t.data.lat], zoom: 8 }); } catch (e) { /* shown by the panel */ }
  }
  // the map layer and the panel load side by side; the polygons are handed to the map once it
  // has jumped to the selection, so that it lays out the tiles of that view only. The flows
  // and the cooperations come next (deck.gl compiles its shaders on first use, which takes
  // seconds on a machine without GPU)
  if (!state.sel) viewSet.resolve();
  await Promise.all([viewSet.promise.then(loadTerritories).catch(showError), renderPanel("jump", false)]);
  mark("data");
  await mapPainted();
  mark("ready");
  window.__readyAt = performance.now();
  document.body.dataset.ready = "1";
  pageReady.resolve();
  drawCoopLayer().catch(showError);
  await drawFlows().catch(showError);
  document.body.dataset.flows = "1";
}

window.maillage = {
  state, get map() { return map; }, get choro() { return choro; }, get flows() { return flowData; },
  get coops() { return coopView; }, get layer() { return currentLayer; },
};
main();
