"""Plumbing between the register and the territorial reference.

The register names territories as refs ``level:code`` (``epci:242900314``). This module turns
the reference's tables (territories and memberships commune → (level, code)) into a
:class:`TerritoryIndex` answering "does this ref exist?" and "which communes make it up?".
:func:`default_index` reads ``maillage.reference`` and the shipped perimeters, lazily, at run
time; tests and other callers may build an index from any frames with
:meth:`TerritoryIndex.from_frames`.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import pandas as pd

from maillage._errors import UnknownTerritory
from maillage._schema import LEVEL_PREFIX, PREFIX_OF_LEVEL


def make_ref(level: str, code: str) -> str:
    """``("epci", "242900314")`` → ``"epci:242900314"`` (levels or prefixes accepted)."""
    prefix = PREFIX_OF_LEVEL.get(level, level)
    if prefix not in LEVEL_PREFIX:
        raise UnknownTerritory(f"level {level!r} is not one of {', '.join(PREFIX_OF_LEVEL)}")
    return f"{prefix}:{code}"


def split_ref(ref: str) -> tuple[str, str]:
    """``"epci:242900314"`` → ``("epci", "242900314")``; a bare 5-character code is a commune."""
    if ":" not in ref:
        if len(ref) == 5:
            return "commune", ref
        if len(ref) == 9 and ref.isdigit():
            return "epci", ref
        raise UnknownTerritory(f"{ref!r}: write territories as level:code (e.g. epci:242900314)")
    prefix, code = ref.split(":", 1)
    if prefix not in LEVEL_PREFIX:
        raise UnknownTerritory(f"{ref!r}: unknown level prefix {prefix!r}")
    return LEVEL_PREFIX[prefix], code


def normalise_ref(ref: str) -> str:
    """Canonical ``prefix:code`` form of a ref (bare commune and EPCI codes accepted)."""
    level, code = split_ref(str(ref).strip())
    return make_ref(level, code)


def normalise_memberships(memberships: pd.DataFrame) -> pd.DataFrame:
    """Return memberships as columns ``commune, level, code`` (strings), whatever the names."""
    df = memberships
    rename = {}
    for candidate in ("commune_code", "com", "codgeo", "CODGEO"):
        if candidate in df.columns and "commune" not in df.columns:
            rename[candidate] = "commune"
    df = df.rename(columns=rename)
    missing = {"commune", "level", "code"} - set(df.columns)
    if missing:
        raise ValueError(f"memberships need columns commune, level, code; missing {missing}")
    return df[["commune", "level", "code"]].astype(str)


def communes_by_ref(memberships: pd.DataFrame) -> dict[str, frozenset[str]]:
    """ref → set of communes, from memberships; every commune is also its own ``com:`` ref."""
    df = normalise_memberships(memberships)
    df = df[df["level"] != "commune"]
    prefixes = df["level"].map(lambda lv: PREFIX_OF_LEVEL.get(lv, lv))
    refs = prefixes + ":" + df["code"]
    out: dict[str, frozenset[str]] = {
        ref: frozenset(group) for ref, group in df["commune"].groupby(refs.to_numpy())
    }
    for commune in pd.unique(df["commune"]):
        out[f"com:{commune}"] = frozenset((commune,))
    return out


class TerritoryIndex:
    """Which refs exist, their names, and the communes of each.

    Parameters
    ----------
    territories : frame with columns ``code``, ``level`` and optionally ``name``.
    memberships : frame with columns ``commune``, ``level``, ``code``.
    """

    def __init__(self, territories: pd.DataFrame, memberships: pd.DataFrame) -> None:
        self._communes = communes_by_ref(memberships)
        levels = territories["level"].astype(str).map(lambda lv: PREFIX_OF_LEVEL.get(lv, lv))
        refs = levels + ":" + territories["code"].astype(str)
        names = territories["name"] if "name" in territories.columns else refs
        self.names: dict[str, str] = dict(zip(refs, names.astype(str), strict=True))
        for ref in refs[levels == "com"]:
            self._communes.setdefault(ref, frozenset((ref[4:],)))
        self.known: set[str] = set(refs) | set(self._communes)

    @classmethod
    def from_frames(cls, territories: pd.DataFrame, memberships: pd.DataFrame) -> TerritoryIndex:
        """Build an index from any two frames (see the class docstring)."""
        return cls(territories, memberships)

    def exists(self, ref: str) -> bool:
        """True when ``ref`` names a territory of the reference or a perimeter."""
        try:
            return normalise_ref(ref) in self.known
        except UnknownTerritory:
            return False

    def communes(self, ref: str) -> frozenset[str]:
        """The communes of ``ref`` (empty when unknown)."""
        return self._communes.get(normalise_ref(ref), frozenset())

    def name(self, ref: str) -> str | None:
        """Name of ``ref`` in the reference, if known."""
        return self.names.get(normalise_ref(ref))

    def communes_map(self, refs: Iterable[str] | None = None) -> dict[str, frozenset[str]]:
        """ref → communes, for ``refs`` (all refs when None)."""
        if refs is None:
            return dict(self._communes)
        return {r: self.communes(r) for r in refs}


def reference_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Territories and memberships of ``maillage.reference`` plus the shipped perimeters.

    Imported lazily so that the register works (with checks off) without the reference.
    """
    from maillage import reference
    from maillage.reference import perimeters as per

    territories = reference.territories()
    memberships = normalise_memberships(reference.memberships())
    shipped = per.load_perimeters()
    per_terr = pd.DataFrame(
        {
            "code": [p.slug for p in shipped.values()],
            "level": "perimeter",
            "name": [p.name for p in shipped.values()],
        }
    )
    per_mem = per.memberships_for_perimeters(shipped)
    territories = pd.concat([territories[["code", "level", "name"]], per_terr], ignore_index=True)
    territories = territories.drop_duplicates(["level", "code"])
    memberships = pd.concat([memberships, per_mem], ignore_index=True).drop_duplicates()
    return territories, memberships


@lru_cache(maxsize=1)
def default_index() -> TerritoryIndex:
    """The index of ``maillage.reference`` + shipped perimeters (built once per process)."""
    territories, memberships = reference_frames()
    return TerritoryIndex(territories, memberships)
