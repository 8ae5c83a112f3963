/* maillage — démarrage : lance les requêtes de la première vue avant l'analyse des bibliothèques.
 *
 * Loaded synchronously in <head>, before the 1 MB map library is parsed: the answers the first
 * view needs (catalogue, polygons and values of the map level, profile and partners of the
 * selected territory) are requested at once, so the server works and the bytes travel while
 * the browser parses JavaScript. app.js takes these answers through `maillageBoot.take(path)`;
 * the paths are built by the same functions (`maillageBoot.urls`), so they match exactly.
 */
"use strict";

window.maillageBoot = (() => {
  const API = "/api/v1";
  const enc = encodeURIComponent;
  const urls = {
    indicators: () => "/indicators",
    status: () => "/status",
    geometry: (level, detail) => `/geometry/${level}${detail ? `?detail=${detail}` : ""}`,
    choropleth: (level, kind, indicator) => `/choropleth?level=${level}&kind=${kind}&indicator=${indicator}`,
    profile: (ref) => `/territories/${enc(ref)}/profile`,
    partners: (ref, kind, direction, threshold) =>
      `/territories/${enc(ref)}/partners?kind=${kind}&direction=${direction}&top=15&threshold=${threshold}`,
  };
  /* The map level is drawn with the national polygons below NATIONAL_ZOOM, the light ones
     below DETAIL_ZOOM, the full ones above (see wantedDetail in app.js). */
  const NATIONAL_ZOOM = 6;
  const DETAIL_ZOOM = 8;
  const pending = new Map();

  function request(path) {
    // the body is read here so that the parse happens as soon as the bytes arrive
    pending.set(path, fetch(API + path).then(async (res) => ({ status: res.status, body: await res.json() })));
  }

  const q = new URLSearchParams(location.search);
  const level = q.get("level") || "epci";
  const mapLevel = level === "perimeter" ? "epci" : level;
  const kind = q.get("kind") || "commute";  // the catalogue's default when the link names none
  const sel = q.get("sel");
  const dir = ["in", "out", "both"].includes(q.get("dir")) ? q.get("dir") : "both";
  const thr = Math.max(0, Number(q.get("thr")) || 0);
  request(urls.indicators());
  request(urls.status());
  // the first view: France, or the selection (a département or a région is seen whole, at a
  // national zoom; the other territories closer, with the light polygons)
  const selPrefix = (sel || "").split(":")[0];
  const firstDetail = !sel || selPrefix === "dep" || selPrefix === "reg" ? "national" : "low";
  if (mapLevel !== "commune") {
    request(urls.geometry(mapLevel, firstDetail));
    request(urls.choropleth(mapLevel, kind, q.get("ind") || "self_containment"));
  }
  if (sel && !q.get("pair")) {
    request(urls.profile(sel));
    request(urls.partners(sel, kind, dir, thr));
  }

  return {
    urls,
    NATIONAL_ZOOM,
    DETAIL_ZOOM,
    /** The answer already requested for `path` (once), or null. */
    take(path) {
      const hit = pending.get(path);
      if (!hit) return null;
      pending.delete(path);
      return hit;
    },
  };
})();
