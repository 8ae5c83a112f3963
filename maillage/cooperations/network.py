"""The whole picture of one territory, and the network of territories linked by cooperations.

:func:`bodies_of` lists every cooperation a territory takes part in, directly (it is a party)
or through a party it belongs to (its EPCI, a perimeter, its département…: a territory
belongs to a party when all its communes are communes of the party). :func:`network_edges`
and :func:`cooperation_graph` turn the register into a graph whose vertices are the parties
and whose edges join two parties of a same cooperation; :func:`export_network` writes it as
GraphML or as a CSV edge list.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from itertools import combinations
from pathlib import Path

import igraph as ig
import pandas as pd

from maillage.cooperations._reference import TerritoryIndex, communes_by_ref, normalise_ref
from maillage.cooperations.records import Cooperation

BODY_COLUMNS = ["slug", "name", "instrument", "status", "themes", "via", "role", "relation"]


def _communes(memberships: pd.DataFrame | TerritoryIndex) -> Mapping[str, frozenset[str]]:
    if isinstance(memberships, TerritoryIndex):
        return memberships.communes_map()
    return communes_by_ref(memberships)


def bodies_of(
    territory: str,
    register: Iterable[Cooperation],
    memberships: pd.DataFrame | TerritoryIndex,
    *,
    include_inside: bool = False,
) -> pd.DataFrame:
    """Every cooperation ``territory`` takes part in.

    Parameters
    ----------
    territory : a ref (``com:29019``, ``epci:242900314``, ``per:<slug>``…).
    register : the cooperations.
    memberships : ``commune, level, code`` (perimeters included) or a TerritoryIndex.
    include_inside : also list cooperations where a party lies inside ``territory``
        (relation ``inside``), e.g. for a département, the cooperations of its EPCI.

    Returns
    -------
    DataFrame with columns ``slug, name, instrument, status, themes, via, role, relation``:
    ``via`` is the party through which the territory takes part, ``relation`` is ``direct``
    (the territory is the party), ``through`` (it belongs to the party) or ``inside``.
    One row per (cooperation, party).
    """
    ref = normalise_ref(territory)
    communes = _communes(memberships)
    mine = communes.get(ref, frozenset())
    rows = []
    for coop in register:
        for party in coop.parties:
            if not party.ref:
                continue
            pref = normalise_ref(party.ref)
            theirs = communes.get(pref, frozenset())
            if pref == ref:
                relation = "direct"
            elif mine and mine <= theirs:
                relation = "through"
            elif include_inside and theirs and theirs <= mine:
                relation = "inside"
            else:
                continue
            rows.append(
                (coop.slug, coop.name, coop.instrument, coop.status, list(coop.themes), pref,
                 party.role, relation)
            )  # fmt: skip
    df = pd.DataFrame(rows, columns=BODY_COLUMNS)
    return df.sort_values(["relation", "slug", "via"], kind="stable").reset_index(drop=True)


def network_edges(
    register: Iterable[Cooperation], *, statuses: tuple[str, ...] = ("active", "planned")
) -> pd.DataFrame:
    """Edges ``a, b, n_cooperations, cooperations`` between parties of the same cooperation.

    ``a < b``; ``cooperations`` is the ``;``-joined sorted list of slugs. Parties that left
    and unresolved parties are left out.
    """
    pairs: dict[tuple[str, str], set[str]] = defaultdict(set)
    for coop in register:
        if coop.status not in statuses:
            continue
        refs = sorted({normalise_ref(p.ref) for p in coop.parties if p.ref and not p.left})
        for a, b in combinations(refs, 2):
            pairs[(a, b)].add(coop.slug)
    rows = [(a, b, len(s), ";".join(sorted(s))) for (a, b), s in sorted(pairs.items())]
    return pd.DataFrame(rows, columns=["a", "b", "n_cooperations", "cooperations"])


def cooperation_graph(
    register: Iterable[Cooperation],
    names: Mapping[str, str] | None = None,
    *,
    statuses: tuple[str, ...] = ("active", "planned"),
) -> ig.Graph:
    """Undirected igraph graph: vertex attribute ``name`` (ref) and ``label``; edge attributes
    ``weight`` (number of shared cooperations) and ``cooperations`` (``;``-joined slugs)."""
    register = list(register)
    edges = network_edges(register, statuses=statuses)
    vertices = sorted(
        {normalise_ref(p.ref) for c in register if c.status in statuses for p in c.parties
         if p.ref and not p.left}
    )  # fmt: skip
    graph = ig.Graph()
    graph.add_vertices(vertices)
    graph.vs["label"] = [(names or {}).get(v, v) for v in vertices]
    graph.add_edges(list(zip(edges["a"], edges["b"], strict=True)))
    graph.es["weight"] = [int(w) for w in edges["n_cooperations"]]
    graph.es["cooperations"] = list(edges["cooperations"])
    return graph


def export_network(
    register: Iterable[Cooperation],
    path: str | Path,
    fmt: str | None = None,
    names: Mapping[str, str] | None = None,
) -> None:
    """Write the network as GraphML (``.graphml``) or a CSV edge list (``.csv``)."""
    path = Path(path)
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt == "csv":
        network_edges(register).to_csv(path, index=False)
    elif fmt == "graphml":
        cooperation_graph(register, names).write_graphml(str(path))
    else:
        raise ValueError(f"unknown network format {fmt!r}: use graphml or csv")
