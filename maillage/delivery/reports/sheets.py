"""Sheets to debate: the territory sheet (« fiche territoire ») and the pair sheet (« fiche
binôme », the factual base of a contrat de réciprocité between two territories).

A sheet is built in two steps: :func:`territory_sheet` / :func:`pair_sheet` gather the figures
by calling the analysis functions the CLI and the API call (``profile``, ``partners``,
``between``, the cooperation ``coverage``) and draw the maps and charts; :func:`render_html`
turns that context into one self-contained French HTML page (images embedded), and
:func:`write_sheet` writes it as ``.html`` or ``.pdf`` (WeasyPrint), atomically.

Every modelled figure carries the mark « modélisé », and small observed counts their
reliability class (fragile below 200, caution below 500, as INSEE advises).
"""

from __future__ import annotations

import base64
import datetime as dt
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from maillage import __version__
from maillage._errors import ValidationError
from maillage._schema import KIND_LABELS_FR
from maillage.analysis.flows import between, default_partner_level
from maillage.analysis.indicators import FRAGILE_BELOW, RELIABLE_FROM, profile
from maillage.analysis.territories import LEVEL_LABELS_FR, Territory, resolve
from maillage.delivery.exports import (
    FRAGILE_NOTE,
    MODELLED_NOTE,
    REFERENCE_GEOGRAPHY,
    BundleData,
    OutputError,
    atomic_write,
    collect,
)
from maillage.delivery.reports import charts, maps
from maillage.delivery.reports.typography import (
    fix_typography,
    number,
    percent,
    reliability_fr,
    stratum_fr,
    value_of,
)

if TYPE_CHECKING:
    from maillage.cooperations.records import Cooperation
    from maillage.store import Store

log = logging.getLogger("maillage")

#: Partners shown in the tables, charts and maps of a territory sheet.
TOP_PARTNERS = 10
#: Commune pairs listed in a pair sheet.
TOP_PAIRS = 15
_UNITS = {"commute": "actifs", "school": "élèves", "residential": "pers."}
_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


@dataclass
class Sheet:
    """A sheet ready to render: its template and its context (numbers, images, texts)."""

    template: str
    title: str
    context: dict[str, Any] = field(default_factory=dict)


def date_fr(day: dt.date) -> str:
    """``2026-11-25`` → ``25 novembre 2026`` (``1er`` for the first of the month)."""
    d = "1er" if day.day == 1 else str(day.day)
    return f"{d} {_MONTHS[day.month - 1]} {day.year}"


def _uri(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def _unit(kind: str) -> str:
    return _UNITS.get(kind, "")


# -- the register of cooperations -----------------------------------------------------------


def load_register(registry_url: str | None) -> list[Cooperation] | None:
    """Every cooperation of the register at ``registry_url``; None when there is none.

    A SQLite register that does not exist yet is not created (None is returned).
    """
    if not registry_url:
        return None
    is_file = registry_url.startswith("sqlite:///") and ":memory:" not in registry_url
    if is_file and not Path(registry_url.removeprefix("sqlite:///")).expanduser().exists():
        return None
    from maillage.cooperations import crud
    from maillage.cooperations.db import open_registry, session_factory

    engine = open_registry(registry_url)
    try:
        with session_factory(engine)() as session:
            return crud.list_cooperations(session)
    finally:
        engine.dispose()


def _index(store: Store) -> Any:
    from maillage.cooperations._reference import TerritoryIndex

    return store.memo(
        ("reports_territory_index",),
        lambda: TerritoryIndex(
            store.df("SELECT code, level, name FROM territory"),
            store.df("SELECT commune, level, code FROM membership"),
        ),
    )


def _links(t: Territory, partners_by_kind: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Links territory ↔ partner for the coverage rules of ``cooperations.coverage``.

    value = F_PQ + F_QP; share_a = F_PQ / R_P (dependency of the territory on the partner);
    share_b = F_QP / R_Q (dependency of the partner on the territory).
    """
    from maillage._schema import PREFIX_OF_LEVEL

    rows = []
    for kind, df in partners_by_kind.items():
        for r in df.itertuples(index=False):
            if str(r.partner_code).startswith("!") or r.partner_level is None:
                continue
            rows.append(
                (t.ref, f"{PREFIX_OF_LEVEL[r.partner_level]}:{r.partner_code}", kind,
                 float(r.total), r.out_share_p or 0.0, r.in_share_q or 0.0)
            )  # fmt: skip
    return pd.DataFrame(rows, columns=["a", "b", "kind", "value", "share_a", "share_b"])


def cooperation_section(
    store: Store,
    t: Territory,
    partners_by_kind: dict[str, pd.DataFrame],
    register: list[Cooperation] | None,
    *,
    other: Territory | None = None,
) -> dict[str, Any]:
    """Cooperations the territory takes part in, and strong links without a cooperation.

    Uses ``cooperations.network.bodies_of`` and ``cooperations.coverage.coverage`` (default
    thresholds). With ``other`` (pair sheet), only the cooperations both take part in.
    """
    from maillage.cooperations.coverage import Thresholds, coverage
    from maillage.cooperations.network import bodies_of

    thresholds = Thresholds()
    reg = list(register or [])
    index = _index(store)
    bodies = bodies_of(t.ref, reg, index) if reg else pd.DataFrame()
    if other is not None and not bodies.empty:
        theirs = set(bodies_of(other.ref, reg, index)["slug"])
        bodies = bodies[bodies["slug"].isin(theirs)]
    links = _links(t, partners_by_kind)
    if other is not None:
        links = links[links["b"] == other.ref] if len(links) else links
    cov = coverage(links, index, reg, index, thresholds)
    uncovered = cov.uncovered.sort_values("value", ascending=False)
    covered = cov.links[cov.links["n_cooperations"] > 0]
    return {
        "register_empty": not reg,
        "bodies": bodies.drop_duplicates("slug").to_dict(orient="records"),
        "uncovered": uncovered.to_dict(orient="records"),
        "covered": covered.to_dict(orient="records"),
        "min_share": thresholds.min_share,
        "min_value": thresholds.min_value,
    }


# -- territory sheet ----------------------------------------------------------------------------


def _identity(store: Store, prof: dict) -> list[tuple[str, str]]:
    t = prof["territory"]
    rows = [
        ("Niveau", t["level_label"]),
        ("Code", t["ref"]),
        ("Population (populations légales 2023)", number(t["population"])),
        ("Nombre de communes", number(t["n_communes"])),
        ("Classe de population", t["population_class"]),
    ]
    if t.get("type"):
        rows.insert(2, ("Type", str(t["type"])))
    return rows


def _members(store: Store, t: Territory) -> list[str]:
    if t.level != "perimeter":
        return []
    df = store.df(
        """SELECT DISTINCT c.name FROM membership m
           JOIN territory c ON c.level = 'commune' AND c.code = m.commune
           WHERE m.level = 'perimeter' AND m.code = ? ORDER BY c.name""",
        [t.code],
    )
    return df["name"].tolist()


def _indicator_rows(block: dict) -> list[dict[str, Any]]:
    rows = []
    for ind in block["indicators"]:
        st = ind["stratum"]
        unit = ind["unit"]
        mark = reliability_fr(ind["reliability"]) if ind["reliability"] else ""
        if not mark and ind["status"] == "modelled":
            mark = "modélisé"
        rows.append(
            {
                "label": ind["label"],
                "value": value_of(ind["value"], unit),
                "mean": value_of(st["mean"], unit),
                "median": value_of(st["median"], unit),
                "quartiles": f"{value_of(st['q1'], unit)} – {value_of(st['q3'], unit)}"
                if st["n"]
                else "—",
                "rank": f"{st['rank']} / {st['n']}" if st["rank"] else "—",
                "mark": mark,
            }
        )
    return rows


def _partner_rows(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [
        {
            "name": r.partner_name,
            "code": r.partner_code if not str(r.partner_code).startswith("!") else "",
            "out": number(r.out_value),
            "in": number(r.in_value),
            "total": number(r.total),
            "balance": number(r.balance, signed=True),
            "dep_p": percent(r.out_share_p),
            "dep_q": percent(r.in_share_q),
            "mark": reliability_fr(r.reliability),
        }
        for r in df.itertuples(index=False)
    ]


def territory_sheet(
    store: Store,
    ref: str | Territory,
    *,
    kinds: list[str] | None = None,
    register: list[Cooperation] | None = None,
    top: int = TOP_PARTNERS,
    data: BundleData | None = None,
    today: dt.date | None = None,
) -> Sheet:
    """Gather the figures, maps and charts of a territory sheet.

    Parameters
    ----------
    ref : a territory reference (``epci:242900314``, a name, ``per:<slug>``…).
    kinds : flow kinds to show (default: every kind held).
    register : the cooperations of the register (None or empty: the sheet says so).
    top : partners shown per kind.
    data : figures already computed by :func:`maillage.delivery.exports.collect` (batches).
    """
    d = data if data is not None else collect(store, ref, kinds=kinds, top=top)
    prof, t = d.prof, d.territory
    if not prof["kinds"]:
        raise ValidationError(
            "the observatory holds no flows yet: run `maillage build` (default model) "
            "or `maillage import` before making a sheet"
        )
    level = default_partner_level(t)
    sections = []
    shown: dict[str, pd.DataFrame] = {}
    for kind, block in prof["kinds"].items():
        part = d.partners[kind].head(top)
        shown[kind] = part
        modelled = block["meta"]["status"] == "modelled"
        unit = _unit(kind)
        visible = part[~part["partner_code"].astype(str).str.startswith("!")]
        sections.append(
            {
                "kind": kind,
                "label": KIND_LABELS_FR.get(kind, kind),
                "meta": block["meta"],
                "modelled": modelled,
                "stratum": stratum_fr(block["stratum"]),
                "stratum_size": block["stratum_size"],
                "indicators": _indicator_rows(block),
                "partners": _partner_rows(part),
                "has_partners": len(part) > 0,
                "map": _uri(maps.territory_map(store, t, visible, partner_level=level,
                                               unit=unit, modelled=modelled)),
                "chart": _uri(charts.partners_chart(part, unit=unit, modelled=modelled))
                if len(part)
                else None,
                "stratum_chart": _uri(charts.stratum_chart(block)),
                "unit": unit,
            }
        )  # fmt: skip
    context = {
        "kind_of_sheet": "territoire",
        "territory": prof["territory"],
        "identity": _identity(store, prof),
        "members": _members(store, t),
        "sections": sections,
        "cooperations": cooperation_section(store, t, d.partners, register),
        "provenance": _provenance(prof["kinds"], today),
        "top": top,
    }
    return Sheet("territory.html.j2", f"Fiche territoire — {t.name}", context)


# -- pair sheet ---------------------------------------------------------------------------------


def _pair_rows(detail: pd.DataFrame, top: int) -> list[dict[str, str]]:
    return [
        {
            "direction": "A → B" if r.direction == "a_to_b" else "B → A",
            "origin": f"{r.origin_name or r.origin}",
            "destination": f"{r.destination_name or r.destination}",
            "value": number(r.value),
        }
        for r in detail.head(top).itertuples(index=False)
    ]


def pair_sheet(
    store: Store,
    a: str | Territory,
    b: str | Territory,
    *,
    kinds: list[str] | None = None,
    register: list[Cooperation] | None = None,
    top: int = TOP_PAIRS,
    today: dt.date | None = None,
) -> Sheet:
    """Gather the figures, maps and charts of a pair sheet (« fiche binôme »).

    For every flow kind: flows both ways (:func:`maillage.analysis.flows.between`), the
    commune pairs behind them, the balance and the dependency of each side on the other;
    the profile of each side against its stratum; the cooperations both take part in.
    """
    ta = a if isinstance(a, Territory) else resolve(store, a)
    tb = b if isinstance(b, Territory) else resolve(store, b)
    if ta.level == tb.level and ta.code == tb.code:
        raise ValidationError("a pair sheet needs two different territories")
    pa = profile(store, ta, kinds=kinds)
    pb = profile(store, tb, kinds=kinds)
    if not pa["kinds"]:
        raise ValidationError(
            "the observatory holds no flows yet: run `maillage build` or `maillage import`"
        )
    sections = []
    links: dict[str, pd.DataFrame] = {}
    for kind in pa["kinds"]:
        res = between(store, ta, tb, kind)
        modelled = res["status"] == "modelled"
        unit = _unit(kind)
        links[kind] = _pair_link(tb, res)
        sections.append(
            {
                "kind": kind,
                "label": KIND_LABELS_FR.get(kind, kind),
                "meta": res["meta"],
                "modelled": modelled,
                "unit": unit,
                "empty": res["total"] == 0,
                "a_to_b": number(res["a_to_b"]),
                "b_to_a": number(res["b_to_a"]),
                "total": number(res["total"]),
                "balance_for_a": number(res["balance_for_a"], signed=True),
                "dep_a": percent(res["share_of_a_origin_to_b"]),
                "dep_b": percent(res["share_of_b_origin_to_a"]),
                "share_b_dest": percent(res["share_of_b_destination_from_a"]),
                "share_a_dest": percent(res["share_of_a_destination_from_b"]),
                "reliability": reliability_fr(res["reliability"]),
                "pairs": _pair_rows(res["detail"], top),
                "n_pairs": len(res["detail"]),
                "chart": _uri(charts.pair_chart(ta.name, tb.name, res["a_to_b"], res["b_to_a"],
                                                unit=unit, modelled=modelled)),
                "map": _uri(maps.pair_map(store, ta, tb, res["detail"], unit=unit,
                                          modelled=modelled)),
                "indicators_a": _indicator_rows(pa["kinds"][kind]),
                "indicators_b": _indicator_rows(pb["kinds"][kind]),
                "stratum_a": stratum_fr(pa["kinds"][kind]["stratum"]),
                "stratum_b": stratum_fr(pb["kinds"][kind]["stratum"]),
                "size_a": pa["kinds"][kind]["stratum_size"],
                "size_b": pb["kinds"][kind]["stratum_size"],
            }
        )  # fmt: skip
    context = {
        "kind_of_sheet": "binôme",
        "a": pa["territory"],
        "b": pb["territory"],
        "identity_a": _identity(store, pa),
        "identity_b": _identity(store, pb),
        "sections": sections,
        "no_flow": all(s["empty"] for s in sections),
        "cooperations": cooperation_section(store, ta, links, register, other=tb),
        "provenance": _provenance(pa["kinds"], today),
    }
    return Sheet("pair.html.j2", f"Fiche binôme — {ta.name} et {tb.name}", context)


def _pair_link(tb: Territory, res: dict[str, Any]) -> pd.DataFrame:
    """The pair as one partner row, in the shape of ``partners`` (for the coverage rules)."""
    return pd.DataFrame(
        [
            {
                "partner_level": tb.level,
                "partner_code": tb.code,
                "total": res["total"],
                "out_share_p": res["share_of_a_origin_to_b"],
                "in_share_q": res["share_of_b_origin_to_a"],
            }
        ]
    )


# -- provenance, rendering, writing -------------------------------------------------------------


def _provenance(blocks: dict[str, dict], today: dt.date | None) -> dict[str, Any]:
    day = today or dt.date.today()
    return {
        "sources": [b["meta"] for b in blocks.values()],
        "reference": REFERENCE_GEOGRAPHY,
        "software": f"maillage {__version__}",
        "date": date_fr(day),
        "modelled_note": MODELLED_NOTE,
        "fragile_note": FRAGILE_NOTE,
        "fragile_below": number(FRAGILE_BELOW),
        "reliable_from": number(RELIABLE_FROM),
        "any_modelled": any(b["meta"]["status"] == "modelled" for b in blocks.values()),
    }


def _environment() -> Any:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

    env = Environment(
        loader=FileSystemLoader(str(Path(__file__).with_name("templates"))),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        number=number,
        percent=percent,
        level_fr=lambda v: LEVEL_LABELS_FR.get(v, v),
        kind_fr=lambda k: KIND_LABELS_FR.get(k, k),
        css_string=css_string,
    )
    return env


def css_string(text: str) -> Any:
    r"""``text`` as a quoted CSS string (for ``content:`` in page margins).

    HTML escaping does not apply inside ``<style>``: an apostrophe would show as ``&#39;``.

    >>> print(css_string("Presqu'île"))
    "Presqu\27 île"
    """
    from markupsafe import Markup

    safe = "".join(c if c.isalnum() or c in " -—–.,()" else f"\\{ord(c):x} " for c in text)
    return Markup(f'"{safe}"')


def render_html(sheet: Sheet) -> str:
    """The sheet as one self-contained HTML page (French typography applied)."""
    html = _environment().get_template(sheet.template).render(title=sheet.title, **sheet.context)
    return fix_typography(html)


def write_sheet(sheet: Sheet, path: str | Path) -> Path:
    """Write the sheet as HTML (``.html``/``.htm``) or PDF (``.pdf``), atomically."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".html", ".htm", ".pdf"):
        raise OutputError(f"cannot write a sheet as '{suffix or path.name}': use .pdf or .html")
    html = render_html(sheet)
    if suffix == ".pdf":
        from maillage.delivery.reports.pdf import html_to_pdf

        return atomic_write(path, lambda tmp: html_to_pdf(html, tmp))
    return atomic_write(path, lambda tmp: tmp.write_text(html, encoding="utf-8"))
