"""Find territories by name or code, and resolve a user's reference to one territory.

Names are compared after :func:`normalise`: accents, case, hyphens and apostrophes are
ignored, "St"/"Ste" stand for "Saint"/"Sainte", and the legal-form words of EPCI names
("Communauté de communes" ↔ "CC", "Communauté d'agglomération" ↔ "CA", "Communauté urbaine" ↔
"CU") are reduced to their abbreviation. An EPCI also answers to its name without the leading
abbreviation ("CC Faucigny - Glières" → "faucigny glieres").

Codes: a bare code ("29019", "242900314", "29", "2A") or a level-prefixed one ("com:29019",
"epci:242900314", "ept:200057867", "dep:29", "reg:53"); a prefix also restricts a name
("epci:Toulouse").

Rule of :func:`resolve`: exact matches (name, alias or code) win; when several territories
match exactly — homonymous communes, a commune and an EPCI of the same name, département 53
and région 53 — the reference is ambiguous and the caller must add a level prefix or a code.
With no exact match, a single prefix match (then a single "contains" match) is accepted.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

import pandas as pd

from maillage._errors import AmbiguousTerritory, UnknownTerritory
from maillage._schema import LEVEL_PREFIX, PREFIX_OF_LEVEL
from maillage.reference.communes import REFERENCE_LEVELS, territories

_FORMS = (
    (r"\bcommunaute de communes\b", "cc"),
    (r"\bcommunaute d agglomeration\b", "ca"),
    (r"\bcommunaute urbaine\b", "cu"),
    (r"\bste\b", "sainte"),
    (r"\bst\b", "saint"),
)
_LEADING_FORM = re.compile(r"^(?:cc|ca|cu)\s+(?:de la |de l |du |des |de |d )?")
_SCORES = {"exact": 3, "prefix": 2, "contains": 1}


def normalise(text: str) -> str:
    """Lower-case, accent-free, punctuation-free form of a name.

    >>> normalise("L'Île-d'Yeu")
    'l ile d yeu'
    >>> normalise("Communauté de communes du Pays de Gex")
    'cc du pays de gex'
    """
    text = unicodedata.normalize("NFKD", str(text))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace("œ", "oe").replace("æ", "ae")
    text = re.sub(r"[^a-z0-9]+", " ", text).strip()
    for pattern, repl in _FORMS:
        text = re.sub(pattern, repl, text)
    return text


def search_keys(names: pd.Series, levels: pd.Series) -> pd.DataFrame:
    """The normalised ``key`` of each name and its ``alias`` (EPCI without their leading
    legal form, "" otherwise): what every name search of maillage compares."""
    key = names.astype(str).map(normalise)
    alias = key.str.replace(_LEADING_FORM, "", regex=True)
    alias = alias.where((levels.to_numpy() == "epci") & (alias != key), "")
    return pd.DataFrame({"key": key, "alias": alias}, index=names.index)


@cache
def _index() -> pd.DataFrame:
    """Territories with their normalised name and alias (cached)."""
    df = territories()
    df = df.join(search_keys(df["name"], df["level"]))
    df["pop_sort"] = df["population"].fillna(-1).astype("int64")
    return df


def _split_prefix(query: str) -> tuple[list[str] | None, str]:
    """``"epci:Brest"`` → (['epci'], 'Brest'); no known prefix → (None, query)."""
    head, sep, tail = query.partition(":")
    if sep and head.strip().lower() in LEVEL_PREFIX:
        return [LEVEL_PREFIX[head.strip().lower()]], tail.strip()
    return None, query.strip()


def find(query: str, levels: list[str] | None = None, limit: int = 10) -> pd.DataFrame:
    """Search territories by name or code.

    Parameters
    ----------
    query : a name (any accents/case), a code, or a level-prefixed code/name ("dep:29").
    levels : restrict to these levels (commune, epci, ept, departement, region).
    limit : maximum number of rows.

    Returns
    -------
    DataFrame ``level, code, name, population, type, lon, lat, match`` where ``match`` ∈
    {'exact', 'prefix', 'contains'}; sorted exact > prefix > contains, then by population
    (largest first), then level and code.
    """
    prefix_levels, text = _split_prefix(query)
    wanted = prefix_levels or levels or list(REFERENCE_LEVELS)
    unknown = [lv for lv in wanted if lv not in REFERENCE_LEVELS]
    if unknown:
        raise ValueError(f"unknown level(s) {unknown}; expected some of {REFERENCE_LEVELS}")
    if levels and prefix_levels:
        wanted = [lv for lv in prefix_levels if lv in levels]
    df = _index()
    df = df[df["level"].isin(wanted)]
    code = text.upper()
    key = normalise(text)
    match = pd.Series(pd.NA, index=df.index, dtype="object")
    if key:
        starts = df["key"].str.startswith(key) | df["alias"].str.startswith(key)
        contains = df["key"].str.contains(key, regex=False) | df["alias"].str.contains(
            key, regex=False
        )
        match[contains] = "contains"
        match[starts] = "prefix"
        match[(df["key"] == key) | (df["alias"] == key)] = "exact"
    match[df["code"] == code] = "exact"
    out = df.assign(match=match)[match.notna()]
    out = out.assign(score=out["match"].map(_SCORES))
    out = out.sort_values(
        ["score", "pop_sort", "level", "code"], ascending=[False, False, True, True]
    )
    cols = ["level", "code", "name", "population", "type", "lon", "lat", "match"]
    return out[cols].head(limit).reset_index(drop=True)


def resolve(ref: str, levels: list[str] | None = None) -> tuple[str, str]:
    """Resolve a user's reference to exactly one territory ``(level, code)``.

    Raises
    ------
    UnknownTerritory when nothing matches; AmbiguousTerritory (with ``candidates`` written
    as ``prefix:code``) when several territories match equally well.
    """
    hits = find(ref, levels=levels, limit=1000)
    if hits.empty:
        raise UnknownTerritory(
            f"no territory matches {ref!r}; try maillage.reference.search.find() with part of "
            "the name, or a code such as 'com:29019', 'epci:242900314', 'dep:29', 'reg:53'"
        )
    for kind in ("exact", "prefix", "contains"):
        best = hits[hits["match"] == kind]
        if len(best) == 1:
            return str(best["level"].iloc[0]), str(best["code"].iloc[0])
        if len(best) > 1:
            candidates = [
                f"{PREFIX_OF_LEVEL[lv]}:{c} ({n})"
                for lv, c, n in best[["level", "code", "name"]].head(20).itertuples(index=False)
            ]
            raise AmbiguousTerritory(
                f"{ref!r} matches {len(best)} territories ({kind} match): "
                f"{', '.join(candidates[:5])}{' …' if len(best) > 5 else ''}; "
                "add a level prefix or give the code",
                candidates,
            )
    raise UnknownTerritory(f"no territory matches {ref!r}")  # pragma: no cover
