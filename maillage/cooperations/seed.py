"""Seed records: the cooperations described in the mission document.

``seed/cooperations.yaml`` holds one record per cooperation in the canonical dict form, each
with the sentence of the document it comes from; parties that cannot be resolved to the
reference are kept as written (``ref: null``). :func:`load_seed` puts them in the register
idempotently: absent records are created, records already there are left alone (an analyst
may have edited them) unless ``refresh=True``; running it twice changes nothing. Changes are
recorded in the history under the user name ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy.orm import Session

from maillage._errors import SourceError
from maillage.cooperations import crud
from maillage.cooperations.records import Cooperation, check_record

SEED_PATH = Path(__file__).with_name("seed") / "cooperations.yaml"
SEED_USER = "seed"


@dataclass
class SeedReport:
    """What :func:`load_seed` did, and the parties it could not resolve (by slug)."""

    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    unresolved_parties: dict[str, list[str]] = field(default_factory=dict)


def seed_records(path: str | Path | None = None) -> list[Cooperation]:
    """The records of the seed file (no territory check)."""
    path = Path(path) if path else SEED_PATH
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise SourceError(
            f"malformed YAML: {exc}", path=str(path), line=mark.line + 1 if mark else None
        ) from exc
    items: list[dict[str, Any]] = data["cooperations"] if isinstance(data, dict) else data
    return [Cooperation.from_dict(item) for item in items]


def load_seed(
    session: Session,
    *,
    path: str | Path | None = None,
    refresh: bool = False,
    exists: Any = crud._DEFAULT,
) -> SeedReport:
    """Load the seed records into the register (idempotent; the caller owns the transaction).

    Parameters
    ----------
    session : an open session on the register.
    path : seed file (default: the shipped one).
    refresh : also overwrite records that exist and differ from the seed.
    exists : territory check ``ref -> bool`` (default: ``maillage.reference`` + perimeters;
        None skips it).

    Raises
    ------
    RecordInvalid
        a seed record breaks the rules (unknown territory…); nothing is written.
    """
    records = seed_records(path)
    check = crud._exists(exists)
    for rec in records:
        check_record(rec, check)
    report = SeedReport()
    existing = crud.slugs(session)
    for rec in records:
        if rec.unresolved_parties:
            report.unresolved_parties[rec.slug] = rec.unresolved_parties
        if rec.slug not in existing:
            crud.create(session, rec, user=None, exists=None, _user_name=SEED_USER)
            report.created.append(rec.slug)
            continue
        current = crud.get(session, rec.slug)
        if refresh and current.to_dict() != rec.to_dict():
            crud._fill_row(crud._require_row(session, rec.slug), rec)
            crud._flush(session, rec.slug)
            crud._log(session, SEED_USER, "update", rec.slug, current, crud.get(session, rec.slug))
            report.updated.append(rec.slug)
        else:
            report.kept.append(rec.slug)
    session.flush()
    return report
