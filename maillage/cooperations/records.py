"""The cooperation record: plain dataclasses, their canonical dict form and their validation.

A record is what the register stores, what the history keeps (as JSON), what import/export
read and write, and what the seed file holds. Its canonical dict form (:meth:`Cooperation.
to_dict`) is the one exchange format; ``version`` is register metadata, not part of it.

Dates are partial ISO dates, as documents give them: ``"2012"``, ``"2016-11"`` or
``"2017-07-10"``. "End ≥ start" compares the latest day an end may mean with the earliest day
a start may mean: ``end="2012"`` is coherent with ``start="2012-06"``.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from maillage._schema import LEVEL_PREFIX
from maillage.cooperations.errors import RecordInvalid
from maillage.cooperations.vocab import INSTRUMENTS, ROLES, STATUSES, THEMES, normalise_choice

SLUG_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,119}$")
DATE_RE = re.compile(r"^(\d{4})(?:-(\d{2})(?:-(\d{2}))?)?$")
REF_RE = re.compile(r"^([a-z]+):(\S+)$")


@dataclass
class Party:
    """A party of a cooperation.

    ``ref`` names a territory of the reference as ``level:code`` (``epci:242900314``,
    ``com:29019``, ``dep:29``, ``reg:53``, ``per:<slug>``). When the document names a party
    that cannot be resolved to the reference (the State, a company, "the neighbouring EPCI"),
    ``ref`` is None and ``name`` keeps the name as written.
    """

    ref: str | None
    role: str = "member"
    joined: str | None = None
    left: str | None = None
    name: str | None = None
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ref": self.ref,
            "role": self.role,
            "joined": self.joined,
            "left": self.left,
            "name": self.name,
            "note": self.note,
        }


@dataclass
class Source:
    """Where the record comes from: a document, a page, a quotation, a link."""

    document: str
    page: str | None = None
    quote: str | None = None
    url: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"document": self.document, "page": self.page, "quote": self.quote, "url": self.url}


@dataclass
class Cooperation:
    """One cooperation between territories; see the module docstring for the conventions."""

    slug: str
    name: str
    instrument: str
    status: str = "active"
    themes: list[str] = field(default_factory=list)
    parties: list[Party] = field(default_factory=list)
    start: str | None = None
    end: str | None = None
    governance: str | None = None
    funding: str | None = None
    description: str | None = None
    actions: list[str] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    version: int | None = None

    @property
    def resolved_refs(self) -> list[str]:
        """Refs of the parties resolved to the reference."""
        return [p.ref for p in self.parties if p.ref]

    @property
    def unresolved_parties(self) -> list[str]:
        """Names, as written, of the parties not resolved to the reference."""
        return [p.name or "" for p in self.parties if not p.ref]

    def to_dict(self, *, include_version: bool = False) -> dict[str, Any]:
        """Canonical dict form (JSON-ready)."""
        out: dict[str, Any] = {
            "slug": self.slug,
            "name": self.name,
            "instrument": self.instrument,
            "status": self.status,
            "start": self.start,
            "end": self.end,
            "themes": list(self.themes),
            "parties": [p.to_dict() for p in self.parties],
            "governance": self.governance,
            "funding": self.funding,
            "description": self.description,
            "actions": list(self.actions),
            "sources": [s.to_dict() for s in self.sources],
        }
        if include_version:
            out["version"] = self.version
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Cooperation:
        """Build a record from its dict form, normalising vocabularies and blank strings.

        Raises
        ------
        RecordInvalid
            when the dict has unknown keys or a wrong shape (lists every problem).
        """
        problems: list[str] = []
        known = {f for f in cls.__dataclass_fields__}
        extra = sorted(set(data) - known)
        if extra:
            problems.append(f"unknown field(s): {', '.join(extra)}")
        for key in ("slug", "name", "instrument"):
            if not _text(data.get(key)):
                problems.append(f"field '{key}' is required")
        parties = _list_of(data.get("parties"), "parties", problems)
        sources = _list_of(data.get("sources"), "sources", problems)
        themes = _list_of(data.get("themes"), "themes", problems)
        actions = _list_of(data.get("actions"), "actions", problems)
        if problems:
            raise RecordInvalid(f"cooperation {data.get('slug')!r} is malformed", problems)
        return cls(
            slug=str(data["slug"]).strip(),
            name=str(data["name"]).strip(),
            instrument=_norm(data["instrument"], INSTRUMENTS),
            status=_norm(_text(data.get("status")) or "active", STATUSES),
            themes=[_norm(t, THEMES) for t in themes],
            parties=[_party_from(p, problems) for p in parties],
            start=_date_text(data.get("start")),
            end=_date_text(data.get("end")),
            governance=_text(data.get("governance")),
            funding=_text(data.get("funding")),
            description=_text(data.get("description")),
            actions=[str(a).strip() for a in actions if _text(a)],
            sources=[_source_from(s, problems) for s in sources],
            version=data.get("version"),
        )


def _text(value: Any) -> str | None:
    """Strip a value to a string; blank → None."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def _date_text(value: Any) -> str | None:
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    return _text(value)


def _norm(value: Any, vocabulary: dict[str, str]) -> str:
    """Slug of a controlled value; an unknown value is kept as typed (validation reports it)."""
    slug = normalise_choice(str(value).strip(), vocabulary) if value is not None else None
    return slug or str(value).strip()


def _list_of(value: Any, name: str, problems: list[str]) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        problems.append(f"field '{name}' must be a list")
        return []
    return value


def _party_from(value: Any, problems: list[str]) -> Party:
    if isinstance(value, str):
        value = {"ref": value}
    if not isinstance(value, dict):
        problems.append(f"a party must be a mapping, got {value!r}")
        return Party(ref=None, name=str(value))
    unknown = sorted(set(value) - {"ref", "role", "joined", "left", "name", "note"})
    if unknown:
        raise RecordInvalid("a party is malformed", [f"unknown party field(s): {unknown}"])
    return Party(
        ref=_text(value.get("ref")),
        role=_norm(_text(value.get("role")) or "member", ROLES),
        joined=_date_text(value.get("joined")),
        left=_date_text(value.get("left")),
        name=_text(value.get("name")),
        note=_text(value.get("note")),
    )


def _source_from(value: Any, problems: list[str]) -> Source:
    if not isinstance(value, dict):
        raise RecordInvalid("a source is malformed", [f"a source must be a mapping: {value!r}"])
    unknown = sorted(set(value) - {"document", "page", "quote", "url"})
    if unknown:
        raise RecordInvalid("a source is malformed", [f"unknown source field(s): {unknown}"])
    return Source(
        document=_text(value.get("document")) or "",
        page=_text(value.get("page")),
        quote=_text(value.get("quote")),
        url=_text(value.get("url")),
    )


# ---------------------------------------------------------------------------------------------
# dates


def date_bounds(text: str) -> tuple[date, date]:
    """Earliest and latest day a partial ISO date may mean.

    >>> date_bounds("2016-02")
    (datetime.date(2016, 2, 1), datetime.date(2016, 2, 29))
    """
    m = DATE_RE.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a date (YYYY, YYYY-MM or YYYY-MM-DD)")
    try:
        return _bounds(m)
    except ValueError:
        raise ValueError(f"{text!r} is not a date (no such month or day)") from None


def _bounds(m: re.Match) -> tuple[date, date]:
    year = int(m.group(1))
    if m.group(3):
        day = date(year, int(m.group(2)), int(m.group(3)))
        return day, day
    if m.group(2):
        month = int(m.group(2))
        last = calendar.monthrange(year, month)[1]
        return date(year, month, 1), date(year, month, last)
    return date(year, 1, 1), date(year, 12, 31)


def _check_date(value: str | None, what: str, problems: list[str]) -> bool:
    if value is None:
        return True
    try:
        date_bounds(value)
    except ValueError as exc:
        problems.append(f"{what}: {exc}")
        return False
    return True


def _check_order(first: str | None, last: str | None, what: str, problems: list[str]) -> None:
    if first is None or last is None:
        return
    if date_bounds(last)[1] < date_bounds(first)[0]:
        problems.append(f"{what}: {last} is before {first}")


# ---------------------------------------------------------------------------------------------
# validation


def validate_record(record: Cooperation, exists: Any = None) -> list[str]:
    """Every problem of ``record``; empty when it may enter the register.

    Parameters
    ----------
    record : the record to check.
    exists : callable ``ref -> bool`` telling whether a territory ref exists (reference or
        perimeter); None skips the existence check (syntax is still checked).
    """
    problems: list[str] = []
    if not SLUG_RE.match(record.slug or ""):
        problems.append(
            f"slug {record.slug!r}: use 1-120 lower-case letters, digits and '-' (no accents)"
        )
    if not record.name:
        problems.append("name is required")
    if record.instrument not in INSTRUMENTS:
        problems.append(
            f"instrument {record.instrument!r} is unknown; choose one of: {', '.join(INSTRUMENTS)}"
        )
    if record.status not in STATUSES:
        problems.append(
            f"status {record.status!r} is unknown; choose one of: {', '.join(STATUSES)}"
        )
    for theme in record.themes:
        if theme not in THEMES:
            problems.append(f"theme {theme!r} is unknown; choose among: {', '.join(THEMES)}")
    if len(set(record.themes)) != len(record.themes):
        problems.append("a theme is listed twice")
    ok = _check_date(record.start, "start", problems) & _check_date(record.end, "end", problems)
    if ok:
        _check_order(record.start, record.end, "end before start", problems)
    if record.status == "ended" and record.end is None:
        problems.append("an ended cooperation needs an end date")
    if not record.parties:
        problems.append("a cooperation needs at least one party (resolved or as written)")
    seen: set[str] = set()
    for i, party in enumerate(record.parties, start=1):
        problems.extend(_party_problems(party, i, exists))
        if party.ref:
            if party.ref in seen:
                problems.append(f"party {i}: {party.ref} is listed twice")
            seen.add(party.ref)
    for i, source in enumerate(record.sources, start=1):
        if not source.document:
            problems.append(f"source {i}: 'document' is required")
    for text in _all_texts(record):
        if "\x00" in text:
            problems.append("text fields may not contain the NUL character")
            break
    return problems


def _party_problems(party: Party, i: int, exists: Any) -> list[str]:
    problems: list[str] = []
    where = f"party {i} ({party.ref or party.name})"
    if party.role not in ROLES:
        problems.append(
            f"{where}: role {party.role!r} is unknown; choose one of: {', '.join(ROLES)}"
        )
    if party.ref is None:
        if not party.name:
            problems.append(f"party {i}: give a territory ref or the name as written")
    else:
        m = REF_RE.match(party.ref)
        if not m or m.group(1) not in LEVEL_PREFIX:
            problems.append(
                f"{where}: write territories as level:code with level in "
                f"{', '.join(LEVEL_PREFIX)} (e.g. epci:242900314, com:29019, per:pays-de-brest)"
            )
        elif exists is not None and not exists(party.ref):
            problems.append(f"{where}: no such territory in the reference or the perimeters")
    ok = _check_date(party.joined, f"{where} joined", problems)
    ok &= _check_date(party.left, f"{where} left", problems)
    if ok:
        _check_order(party.joined, party.left, f"{where}: left before joined", problems)
    return problems


def _all_texts(record: Cooperation) -> list[str]:
    texts = [record.slug, record.name, record.governance, record.funding, record.description]
    texts += record.actions + record.themes
    for p in record.parties:
        texts += [p.ref, p.name, p.note, p.joined, p.left]
    for s in record.sources:
        texts += [s.document, s.page, s.quote, s.url]
    return [t for t in texts if t]


def check_record(record: Cooperation, exists: Any = None) -> None:
    """Raise :class:`RecordInvalid` listing every problem of ``record``, if any."""
    problems = validate_record(record, exists)
    if problems:
        raise RecordInvalid(f"cooperation {record.slug!r} is refused", problems)
