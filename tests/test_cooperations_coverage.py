"""Coverage of strong links by cooperations, and the network: a small case computed by hand.

Territories (fictional codes): EPCI E1 = {00001, 00002}, E2 = {00003, 00004}, E3 = {00005},
E4 = {00006}; perimeter P = E2 ∪ E3.
"""

from __future__ import annotations

import igraph as ig
import pandas as pd

from maillage.cooperations.coverage import Thresholds, coverage
from maillage.cooperations.network import (
    bodies_of,
    cooperation_graph,
    export_network,
    network_edges,
)
from maillage.cooperations.records import Cooperation

E1, E2, E3, E4 = "epci:100000001", "epci:100000002", "epci:100000003", "epci:100000004"

MEMBERSHIPS = pd.DataFrame(
    [
        ("00001", "epci", "100000001"), ("00002", "epci", "100000001"),
        ("00003", "epci", "100000002"), ("00004", "epci", "100000002"),
        ("00005", "epci", "100000003"), ("00006", "epci", "100000004"),
        ("00003", "perimeter", "p"), ("00004", "perimeter", "p"), ("00005", "perimeter", "p"),
    ],
    columns=["commune", "level", "code"],
)  # fmt: skip
TERRITORIES = pd.DataFrame(
    {"code": ["100000001", "100000002"], "level": ["epci", "epci"], "name": ["Un", "Deux"]}
)


def coop(slug, refs, status="active", themes=(), **extra):
    parties = [{"ref": r} for r in refs]
    return Cooperation.from_dict(
        {"slug": slug, "name": slug.upper(), "instrument": "convention", "status": status,
         "end": "2020" if status == "ended" else None, "themes": list(themes),
         "parties": parties, **extra}
    )  # fmt: skip


REGISTER = [
    coop("k1", [E1, "per:p"], themes=["mobilite"]),
    coop("k2", [E1, E2], themes=["habitat"]),
    coop("k3", [E3, E4], status="ended"),
    Cooperation.from_dict({"slug": "k4", "name": "K4", "instrument": "other", "status": "planned",
                           "parties": [{"ref": E4}, {"ref": None, "name": "l'État"}]}),
    coop("k5", [E2, E3]),
    coop("k6", [E3, E4]),
]  # fmt: skip

LINKS = pd.DataFrame(
    [
        (E1, E2, "commute", 500, 0.10, 0.02),  # strong; k1 (E1 | P) and k2 (E1 | E2)
        (E2, E3, "residential", 80, 0.06, 0.01),  # strong; k5 only (k1: both inside P)
        (E1, E4, "commute", 60, 0.20, 0.01),  # strong; only k3, which has ended
        (E1, E3, "commute", 40, 0.50, 0.50),  # too small (40 < 50)
        (E2, E4, "wage", 2e6, 0.01, 0.03),  # share too low (3 % < 5 %)
        ("00001", "00005", "school", 70, 0.30, 0.01),  # strong; k1 (E1 | P)
        ("00003", "00004", "commute", 100, 0.50, 0.50),  # strong; inside E2: none
    ],
    columns=["a", "b", "kind", "value", "share_a", "share_b"],
)


def test_coverage_small_case():
    result = coverage(LINKS, TERRITORIES, REGISTER, MEMBERSHIPS, Thresholds())
    got = {
        (a, b): c
        for a, b, c in zip(result.links["a"], result.links["b"], result.links["cooperations"])
    }
    assert got == {
        (E1, E2): ["k1", "k2"],
        (E2, E3): ["k5"],
        (E1, E4): [],
        ("com:00001", "com:00005"): ["k1"],
        ("com:00003", "com:00004"): [],
    }
    first = result.links.iloc[0]
    assert (first["name_a"], first["name_b"]) == ("Un", "Deux")
    assert first["suggested_themes"] == ["mobilite", "emploi"]
    assert first["missing_themes"] == ["emploi"]  # k1 has mobilité, nobody has emploi
    school = result.links[result.links["kind"] == "school"].iloc[0]
    assert school["missing_themes"] == ["education"]
    assert set(zip(result.uncovered["a"], result.uncovered["b"])) == {
        (E1, E4),
        ("com:00003", "com:00004"),
    }
    unsupported = dict(zip(result.unsupported["slug"], result.unsupported["reason"]))
    assert unsupported == {
        "k4": "fewer than two resolved parties",
        "k6": "no strong link measured between its parties",
    }


def test_thresholds_are_parameters():
    loose = Thresholds(min_value=10, min_share=0.0, min_value_by_kind={})
    result = coverage(LINKS, None, REGISTER, MEMBERSHIPS, loose)
    assert len(result.links) == len(LINKS)
    with_ended = Thresholds(statuses=("active", "planned", "ended"))
    result = coverage(LINKS, None, REGISTER, MEMBERSHIPS, with_ended)
    assert result.uncovered["a"].tolist() == [E1, "com:00003"]  # k3 is E3–E4, not E1–E4
    assert "k3" in set(result.unsupported["slug"])


def test_bodies_of_a_commune_and_an_epci():
    df = bodies_of("com:00005", REGISTER, MEMBERSHIPS)
    assert set(zip(df["slug"], df["via"], df["relation"])) == {
        ("k1", "per:p", "through"), ("k3", E3, "through"), ("k5", E3, "through"),
        ("k6", E3, "through"),
    }  # fmt: skip
    df = bodies_of(E3, REGISTER, MEMBERSHIPS)
    assert set(zip(df["slug"], df["relation"])) == {
        ("k1", "through"),
        ("k3", "direct"),
        ("k5", "direct"),
        ("k6", "direct"),
    }
    inside = bodies_of("per:p", REGISTER, MEMBERSHIPS, include_inside=True)
    assert ("k2", E2, "inside") in set(zip(inside["slug"], inside["via"], inside["relation"]))


def test_network_edges_and_graphml(tmp_path):
    edges = network_edges(REGISTER)
    assert set(zip(edges["a"], edges["b"], edges["n_cooperations"])) == {
        (E1, "per:p", 1),
        (E1, E2, 1),
        (E2, E3, 1),
        (E3, E4, 1),
    }  # k3 ended, k4 has one resolved party
    graph = cooperation_graph(REGISTER, {E1: "Un"})
    assert graph.vcount() == 5 and graph.ecount() == 4
    export_network(REGISTER, tmp_path / "net.graphml", names={E1: "Un"})
    back = ig.Graph.Read_GraphML(str(tmp_path / "net.graphml"))
    assert sorted(back.vs["label"]) == sorted(["Un", E2, E3, E4, "per:p"])
    export_network(REGISTER, tmp_path / "net.csv")
    assert pd.read_csv(tmp_path / "net.csv").shape == (4, 4)
