"""Perimeters: named groupings of territories (pôles métropolitains, PETR, pays, networks…).

A perimeter has a ``slug`` (its code at level ``perimeter``, ref ``per:<slug>``), a ``name``,
a ``kind`` and ``members``: EPCI (``epci:<SIREN>`` or a bare 9-digit SIREN) or communes
(``com:<code>`` or a bare 5-character code) of the reference of today. Perimeters may overlap
and need not be contiguous. The ones named by the mission document ship in
``perimeters.yaml`` beside this module (with the sentence they come from and the members that
could not be resolved); users add their own as YAML (same layout) or CSV files with columns
``slug,name,member`` (one row per member; optional ``kind``).

Public functions: :func:`load_perimeters`, :func:`validate`, :func:`perimeter_communes`,
:func:`memberships_for_perimeters`. The reference itself (``maillage.reference``) is read
lazily, inside the functions that need it.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from maillage._errors import SourceError, UnknownTerritory, ValidationError

SHIPPED_PATH = Path(__file__).with_name("perimeters.yaml")
MEMBER_LEVELS = {"epci": "epci", "com": "commune"}


@dataclass
class Perimeter:
    """One perimeter; ``lines`` maps each member to the line of the file where it is written."""

    slug: str
    name: str
    kind: str = "custom"
    members: list[str] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    members_from: str = "document"
    source: dict[str, Any] = field(default_factory=dict)
    note: str | None = None
    path: str | None = None
    line: int | None = None
    lines: dict[str, int] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        return f"per:{self.slug}"


class _LineStr(str):
    """A YAML string that remembers its 1-based line."""

    line: int = 0


class _LineLoader(yaml.SafeLoader):
    """SafeLoader whose strings carry their line number."""


def _construct_str(loader: _LineLoader, node: yaml.ScalarNode) -> _LineStr:
    value = _LineStr(loader.construct_scalar(node))
    value.line = node.start_mark.line + 1
    return value


_LineLoader.add_constructor("tag:yaml.org,2002:str", _construct_str)


def normalise_member(member: str) -> str:
    """``"242900314"`` → ``"epci:242900314"``; ``"29019"`` → ``"com:29019"``; refs kept.

    Raises
    ------
    ValueError
        when the member is neither an EPCI SIREN, a commune code nor an epci:/com: ref.
    """
    text = str(member).strip()
    if ":" in text:
        prefix, code = text.split(":", 1)
        if prefix in MEMBER_LEVELS and code:
            return f"{prefix}:{code}"
        raise ValueError(f"member {text!r}: only epci:<SIREN> and com:<code> may be members")
    if len(text) == 9 and text.isdigit():
        return f"epci:{text}"
    if len(text) == 5:
        return f"com:{text}"
    raise ValueError(f"member {text!r} is neither an EPCI SIREN (9 digits) nor a commune code")


# ---------------------------------------------------------------------------------------------
# reading


def _read_yaml(path: Path) -> list[Perimeter]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise SourceError(
            f"malformed YAML: {getattr(exc, 'problem', exc)}",
            path=str(path),
            line=mark.line + 1 if mark else None,
        ) from exc
    items = data.get("perimeters") if isinstance(data, dict) else data
    if not isinstance(items, list):
        raise SourceError("expected a list of perimeters under 'perimeters:'", path=str(path))
    out = []
    for item in items:
        if not isinstance(item, dict) or not item.get("slug") or not item.get("name"):
            line = (
                getattr(next(iter(item.values()), None), "line", None)
                if isinstance(item, dict)
                else None
            )
            raise SourceError("each perimeter needs a slug and a name", path=str(path), line=line)
        slug = item["slug"]
        perimeter = Perimeter(
            slug=str(slug),
            name=str(item["name"]),
            kind=str(item.get("kind") or "custom"),
            unresolved=[str(u) for u in item.get("unresolved") or []],
            members_from=str(item.get("members_from") or "document"),
            source={
                k: (str(v) if v is not None else None)
                for k, v in (item.get("source") or {}).items()
            },
            note=str(item["note"]) if item.get("note") else None,
            path=str(path),
            line=getattr(slug, "line", None),
        )
        for raw in item.get("members") or []:
            _add_member(perimeter, raw, getattr(raw, "line", None), str(path))
        out.append(perimeter)
    return out


def _add_member(perimeter: Perimeter, raw: Any, line: int | None, path: str) -> None:
    try:
        member = normalise_member(str(raw))
    except ValueError as exc:
        raise SourceError(str(exc), path=path, line=line, column="member") from exc
    if member not in perimeter.lines:
        perimeter.members.append(member)
        perimeter.lines[member] = line or 0


def _read_csv(path: Path) -> list[Perimeter]:
    text = path.read_text(encoding="utf-8-sig")
    reader = csv.DictReader(io.StringIO(text, newline=""))
    missing = {"slug", "name", "member"} - set(reader.fieldnames or [])
    if missing:
        raise SourceError(
            f"missing column(s) {sorted(missing)}; expected slug,name,member",
            path=str(path),
            line=1,
            column=sorted(missing)[0],
        )
    found: dict[str, Perimeter] = {}
    for row in reader:
        line = reader.line_num
        slug = (row.get("slug") or "").strip()
        if not slug:
            raise SourceError("empty slug", path=str(path), line=line, column="slug")
        perimeter = found.get(slug)
        if perimeter is None:
            perimeter = Perimeter(
                slug=slug,
                name=(row.get("name") or slug).strip(),
                kind=(row.get("kind") or "custom").strip(),
                members_from="user",
                path=str(path),
                line=line,
            )
            found[slug] = perimeter
        _add_member(perimeter, row.get("member") or "", line, str(path))
    return list(found.values())


def read_perimeter_file(path: str | Path) -> list[Perimeter]:
    """Perimeters of one YAML or CSV file (no reference check)."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        return _read_csv(path)
    if path.suffix.lower() in (".yaml", ".yml"):
        return _read_yaml(path)
    raise SourceError("perimeter files are .yaml, .yml or .csv", path=str(path))


def load_perimeters(
    path: str | Path | None = None, extra_paths: Iterable[str | Path] = ()
) -> dict[str, Perimeter]:
    """Perimeters of ``path`` (default: the shipped file) and of ``extra_paths``, by slug.

    Raises
    ------
    SourceError
        malformed file (names file and line).
    ValidationError
        a slug defined twice (names both places).
    """
    files = [Path(path) if path else SHIPPED_PATH, *(Path(p) for p in extra_paths)]
    out: dict[str, Perimeter] = {}
    for file in files:
        for perimeter in read_perimeter_file(file):
            if perimeter.slug in out:
                first = out[perimeter.slug]
                raise ValidationError(
                    f"perimeter {perimeter.slug!r} is defined twice: {first.path} line "
                    f"{first.line} and {perimeter.path} line {perimeter.line}"
                )
            out[perimeter.slug] = perimeter
    return out


# ---------------------------------------------------------------------------------------------
# checking and expanding


def _reference_sets() -> tuple[set[str], pd.DataFrame]:
    """Existing member refs and the commune → EPCI memberships of ``maillage.reference``."""
    from maillage import reference

    communes = reference.communes()
    epci = reference.epci()
    known = {f"com:{c}" for c in communes["code"].astype(str)}
    known |= {f"epci:{c}" for c in epci["code"].astype(str)}
    memberships = reference.memberships()
    memberships = memberships.rename(columns={"commune_code": "commune"})
    return known, memberships[memberships["level"].astype(str) == "epci"][["commune", "code"]]


def validate(
    perimeters: Mapping[str, Perimeter] | None = None, known: set[str] | None = None
) -> None:
    """Check that every member exists in the reference.

    Parameters
    ----------
    perimeters : by slug (default: :func:`load_perimeters`).
    known : set of existing refs (``epci:…``, ``com:…``); default from ``maillage.reference``.

    Raises
    ------
    UnknownTerritory
        naming, for every unknown member, the file, the line and the member.
    """
    perimeters = load_perimeters() if perimeters is None else perimeters
    if known is None:
        known, _ = _reference_sets()
    problems = [
        f"{p.path}, line {p.lines.get(m, p.line)}: member {m!r} of perimeter {p.slug!r} "
        "is no commune or EPCI of the reference"
        for p in perimeters.values()
        for m in p.members
        if m not in known
    ]
    if problems:
        raise UnknownTerritory("unknown perimeter member(s):\n" + "\n".join(problems))


def _expand(perimeter: Perimeter, epci_communes: Mapping[str, Iterable[str]]) -> list[str]:
    communes: set[str] = set()
    for member in perimeter.members:
        prefix, code = member.split(":", 1)
        if prefix == "com":
            communes.add(code)
        else:
            communes.update(epci_communes.get(code, ()))
    return sorted(communes)


def _epci_communes(epci_memberships: pd.DataFrame | None) -> dict[str, list[str]]:
    if epci_memberships is None:
        _, epci_memberships = _reference_sets()
    df = epci_memberships.astype(str)
    return {code: list(group) for code, group in df.groupby("code")["commune"]}


def perimeter_communes(
    slug: str,
    perimeters: Mapping[str, Perimeter] | None = None,
    epci_memberships: pd.DataFrame | None = None,
) -> list[str]:
    """Sorted commune codes of perimeter ``slug`` (EPCI members expanded to their communes).

    ``epci_memberships`` (columns ``commune, code``) defaults to the EPCI level of
    ``maillage.reference.memberships()``.
    """
    perimeters = load_perimeters() if perimeters is None else perimeters
    if slug not in perimeters:
        raise UnknownTerritory(f"no perimeter {slug!r}; known: {', '.join(sorted(perimeters))}")
    return _expand(perimeters[slug], _epci_communes(epci_memberships))


def memberships_for_perimeters(
    perimeters: Mapping[str, Perimeter] | None = None,
    epci_memberships: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Frame ``commune, level='perimeter', code=slug``: one row per commune of each perimeter."""
    perimeters = load_perimeters() if perimeters is None else perimeters
    by_epci = _epci_communes(epci_memberships)
    rows = [(c, "perimeter", slug) for slug, p in perimeters.items() for c in _expand(p, by_epci)]
    return pd.DataFrame(rows, columns=["commune", "level", "code"]).astype(str)
