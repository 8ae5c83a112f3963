"""Coverage of measured links by cooperations: where do strong interdependencies lack a
cooperation, and which cooperations rest on no measured link?

Pure functions; the caller brings the links (from the flow store), the register's records
and the memberships (commune → territory at each level, perimeters included).

Rules
-----
Strong link
    A link ``(a, b, kind, value, share_a, share_b)`` is strong when
    ``value >= min_value[kind]`` and ``max(share_a, share_b) >= min_share``, where ``share_a``
    is the share of ``a``'s total (e.g. its resident workers) that the link carries, and
    ``share_b`` the same for ``b``.
Belonging
    A territory T belongs to a party P when every commune of T is a commune of P
    (``communes(T) ⊆ communes(P)``, T non-empty): a commune belongs to its EPCI, an EPCI to a
    perimeter listing it, a département to its région.
Covering
    Cooperation K covers link (a, b) when both ends belong to parties of K and their
    *innermost* parties differ: let ``in_K(T)`` be the parties of K that T belongs to, minus
    those strictly containing another of them; K covers (a, b) iff ``in_K(a)`` and ``in_K(b)``
    are non-empty and disjoint. So the contract Brest métropole – Pays du Centre Ouest
    Bretagne covers Brest ↔ Carhaix but not Carhaix ↔ Rostrenen (both inside the Pays: that
    link is the Pays's own affair), and a pôle listed by its member EPCIs covers the links
    between those EPCIs.
Which cooperations count
    Those whose status is in ``Thresholds.statuses`` (default active and planned); parties
    with a ``left`` date and unresolved parties are ignored.

Themes suggested by a link come from its kind (``vocab.THEMES_OF_FLOW_KIND``): commute →
mobilité, emploi; residential → habitat; school → éducation; establishment_transfer and
hq_link → développement économique; wage → solidarité financière.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import pandas as pd

from maillage.cooperations._reference import (
    TerritoryIndex,
    communes_by_ref,
    make_ref,
    normalise_ref,
)
from maillage.cooperations.records import Cooperation
from maillage.cooperations.vocab import THEMES_OF_FLOW_KIND

LINK_COLUMNS = ("a", "b", "kind", "value", "share_a", "share_b")


@dataclass(frozen=True)
class Thresholds:
    """When a link is strong, and which cooperations count.

    Parameters
    ----------
    min_share : a link is strong only if it carries at least this share of one end's total
        (default 0.05, i.e. 5 %).
    min_value : minimum value of a strong link, for every kind (default 50: persons for
        commute, residential and school; establishments; euros would need more, see below).
    min_value_by_kind : per-kind overrides of ``min_value`` (default: wage 1,000,000 €).
    statuses : statuses of the cooperations taken into account.
    """

    min_share: float = 0.05
    min_value: float = 50.0
    min_value_by_kind: Mapping[str, float] = field(default_factory=lambda: {"wage": 1_000_000.0})
    statuses: tuple[str, ...] = ("active", "planned")

    def min_value_of(self, kind: str) -> float:
        return float(self.min_value_by_kind.get(kind, self.min_value))


@dataclass
class CoverageResult:
    """Outcome of :func:`coverage`.

    links : strong links with ``cooperations`` (slugs covering them), ``n_cooperations``,
        ``suggested_themes`` and ``missing_themes`` (suggested themes none of the covering
        cooperations has).
    uncovered : the strong links no cooperation covers.
    unsupported : cooperations covering no strong link (``slug, name, status, n_parties,
        reason``).
    """

    links: pd.DataFrame
    uncovered: pd.DataFrame
    unsupported: pd.DataFrame
    thresholds: Thresholds


def strong_links(links: pd.DataFrame, thresholds: Thresholds) -> pd.DataFrame:
    """The strong links of ``links`` (see the module docstring), ends normalised to refs."""
    missing = set(LINK_COLUMNS) - set(links.columns)
    if missing:
        raise ValueError(f"links need columns {', '.join(LINK_COLUMNS)}; missing {sorted(missing)}")
    df = links.loc[:, list(LINK_COLUMNS)].copy()
    floor = df["kind"].map(thresholds.min_value_of)
    share = df[["share_a", "share_b"]].max(axis=1)
    df = df[(df["value"] >= floor) & (share >= thresholds.min_share)].copy()
    df["a"] = [normalise_ref(r) for r in df["a"].astype(str)]
    df["b"] = [normalise_ref(r) for r in df["b"].astype(str)]
    return df.reset_index(drop=True)


def _communes_map(memberships: pd.DataFrame | TerritoryIndex) -> dict[str, frozenset[str]]:
    if isinstance(memberships, TerritoryIndex):
        return memberships._communes  # read only here: no copy of ~40,000 entries
    return communes_by_ref(memberships)


class _Coverer:
    """Index of the parties of many cooperations, answering "which cover (a, b)?" fast."""

    def __init__(
        self, register: Iterable[Cooperation], communes: Mapping[str, frozenset[str]], statuses
    ) -> None:
        self.communes = communes
        self.coops: dict[str, Cooperation] = {}
        self.coops_of_party: dict[str, list[str]] = defaultdict(list)
        for coop in register:
            if coop.status not in statuses:
                continue
            self.coops[coop.slug] = coop
            for ref in {normalise_ref(p.ref) for p in coop.parties if p.ref and not p.left}:
                self.coops_of_party[ref].append(coop.slug)
        self.parties_of_commune: dict[str, list[str]] = defaultdict(list)
        for ref in self.coops_of_party:
            for commune in communes.get(ref, ()):
                self.parties_of_commune[commune].append(ref)
        self._cache: dict[str, dict[str, frozenset[str]]] = {}

    def innermost(self, territory: str) -> dict[str, frozenset[str]]:
        """cooperation slug → innermost parties of it that ``territory`` belongs to."""
        if territory in self._cache:
            return self._cache[territory]
        mine = self.communes.get(territory, frozenset())
        out: dict[str, frozenset[str]] = {}
        if mine:
            probe = next(iter(mine))
            holding = [
                p for p in self.parties_of_commune.get(probe, ()) if mine <= self.communes[p]
            ]
            by_coop: dict[str, list[str]] = defaultdict(list)
            for party in holding:
                for slug in self.coops_of_party[party]:
                    by_coop[slug].append(party)
            for slug, parties in by_coop.items():
                out[slug] = self._innermost(parties)
        self._cache[territory] = out
        return out

    def _innermost(self, parties: list[str]) -> frozenset[str]:
        if len(parties) == 1:
            return frozenset(parties)
        sets = {p: self.communes[p] for p in parties}
        return frozenset(p for p in parties if not any(sets[q] < sets[p] for q in parties))

    def covering(self, a: str, b: str) -> list[str]:
        """Slugs of the cooperations covering link (a, b), sorted."""
        in_a, in_b = self.innermost(a), self.innermost(b)
        if len(in_b) < len(in_a):
            in_a, in_b = in_b, in_a
        return sorted(s for s in in_a if s in in_b and in_a[s].isdisjoint(in_b[s]))


def coverage(
    links: pd.DataFrame,
    territory_ref: pd.DataFrame | TerritoryIndex | None,
    register: Iterable[Cooperation],
    memberships: pd.DataFrame | TerritoryIndex,
    thresholds: Thresholds | None = None,
) -> CoverageResult:
    """Cross strong links with the cooperations of the register.

    Parameters
    ----------
    links : frame ``a, b, kind, value, share_a, share_b``; ends are refs (``epci:…``) or bare
        commune (5 characters) / EPCI (9 digits) codes.
    territory_ref : territories with ``code, level, name`` (or a TerritoryIndex), used only to
        name the ends (``name_a``, ``name_b``); None leaves names empty.
    register : the cooperations (e.g. ``crud.list_cooperations(session)``).
    memberships : ``commune, level, code`` (perimeters included), or a TerritoryIndex.
    thresholds : see :class:`Thresholds` (defaults documented there).

    Returns
    -------
    CoverageResult
    """
    thresholds = thresholds or Thresholds()
    register = list(register)
    strong = strong_links(links, thresholds)
    coverer = _Coverer(register, _communes_map(memberships), thresholds.statuses)
    covering = [coverer.covering(a, b) for a, b in zip(strong["a"], strong["b"], strict=True)]
    strong["cooperations"] = covering
    strong["n_cooperations"] = [len(c) for c in covering]
    strong["suggested_themes"] = [list(THEMES_OF_FLOW_KIND.get(k, ())) for k in strong["kind"]]
    strong["missing_themes"] = [
        [t for t in themes if not any(t in coverer.coops[s].themes for s in slugs)]
        for themes, slugs in zip(strong["suggested_themes"], covering, strict=True)
    ]
    names = _names(territory_ref)
    # plain lookups: Series.map(dict) would convert the ~40,000 names to a Series each call
    strong.insert(2, "name_a", [names.get(r) for r in strong["a"]])
    strong.insert(3, "name_b", [names.get(r) for r in strong["b"]])
    uncovered = strong[strong["n_cooperations"] == 0].reset_index(drop=True)
    used = {slug for slugs in covering for slug in slugs}
    unsupported = _unsupported(coverer.coops.values(), used)
    return CoverageResult(strong, uncovered, unsupported, thresholds)


def _names(territory_ref: pd.DataFrame | TerritoryIndex | None) -> dict[str, str]:
    if territory_ref is None:
        return {}
    if isinstance(territory_ref, TerritoryIndex):
        return territory_ref.names  # read only here
    refs = [
        make_ref(level, code)
        for level, code in zip(
            territory_ref["level"].astype(str), territory_ref["code"].astype(str), strict=True
        )
    ]
    return dict(zip(refs, territory_ref["name"].astype(str), strict=True))


def _unsupported(coops: Iterable[Cooperation], used: set[str]) -> pd.DataFrame:
    rows = []
    for coop in coops:
        if coop.slug in used:
            continue
        active = [p for p in coop.parties if p.ref and not p.left]
        reason = (
            "fewer than two resolved parties"
            if len(active) < 2
            else "no strong link measured between its parties"
        )
        rows.append((coop.slug, coop.name, coop.status, len(active), reason))
    return pd.DataFrame(rows, columns=["slug", "name", "status", "n_parties", "reason"])
