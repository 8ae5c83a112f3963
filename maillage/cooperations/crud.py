"""Create, read, update, end, delete and undo cooperations.

Keyword-only session functions; **the caller owns the transaction** (nothing here commits):
wrap calls in ``with session.begin():`` so that a refused change leaves the register as it
was. Every function validates completely before it touches the session.

Every write needs an authenticated ``editor`` or ``admin`` (see ``auth.py``), is kept in the
``change`` table (who, when, action, before JSON, after JSON) and can be undone with
:func:`undo`. Updates may pass ``expected_version``: if the record moved on since the caller
read it, :class:`ConflictError` is raised (the ``version`` column is also SQLAlchemy's
version counter, so two sessions racing on the same row cannot both win).

``exists`` parameters take a callable ``ref -> bool``; the default checks refs against
``maillage.reference`` and the shipped perimeters (:func:`_reference.default_index`).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.exc import StaleDataError

from maillage.cooperations.auth import require_role
from maillage.cooperations.db import (
    ActionRow,
    ChangeRow,
    CooperationRow,
    PartyRow,
    SourceRow,
    ThemeRow,
    UserRow,
    utcnow,
)
from maillage.cooperations.errors import (
    ConflictError,
    DuplicateRecord,
    RecordNotFound,
    UndoError,
)
from maillage.cooperations.records import Cooperation, Party, Source, check_record

Exists = Callable[[str], bool]
_DEFAULT = object()


@dataclass
class Change:
    """One entry of the history."""

    id: int
    at: datetime
    user: str
    action: str
    slug: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    undoes: int | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at.isoformat(),
            "user": self.user,
            "action": self.action,
            "slug": self.slug,
            "before": self.before,
            "after": self.after,
            "undoes": self.undoes,
        }


def _exists(exists: Any) -> Exists | None:
    if exists is _DEFAULT:
        from maillage.cooperations._reference import default_index

        return default_index().exists
    return exists


# ---------------------------------------------------------------------------------------------
# rows ↔ records


def _row_of(session: Session, slug: str) -> CooperationRow | None:
    return session.scalar(select(CooperationRow).where(CooperationRow.slug == slug))


def _require_row(session: Session, slug: str) -> CooperationRow:
    row = _row_of(session, slug)
    if row is None:
        raise RecordNotFound(f"no cooperation {slug!r} in the register")
    return row


def record_of(row: CooperationRow) -> Cooperation:
    """The record held by a row."""
    return Cooperation(
        slug=row.slug,
        name=row.name,
        instrument=row.instrument,
        status=row.status,
        themes=[t.theme for t in row.themes],
        parties=[
            Party(ref=p.ref, role=p.role, joined=p.joined, left=p.left_on, name=p.name, note=p.note)
            for p in row.parties
        ],
        start=row.start_date,
        end=row.end_date,
        governance=row.governance,
        funding=row.funding,
        description=row.description,
        actions=[a.text for a in row.actions],
        sources=[Source(s.document, s.page, s.quote, s.url) for s in row.sources],
        version=row.version,
    )


def _fill_row(row: CooperationRow, rec: Cooperation) -> None:
    session = object_session(row)
    if session is not None and row.id is not None:
        # delete the old children first: a flush would insert the new ones before deleting
        # orphans and trip the unique (cooperation_id, theme) constraint
        row.parties.clear()
        row.themes.clear()
        row.actions.clear()
        row.sources.clear()
        session.flush()
    row.slug = rec.slug
    row.name = rec.name
    row.instrument = rec.instrument
    row.status = rec.status
    row.start_date = rec.start
    row.end_date = rec.end
    row.governance = rec.governance
    row.funding = rec.funding
    row.description = rec.description
    row.updated_at = utcnow()
    row.parties = [
        PartyRow(position=i, ref=p.ref, role=p.role, joined=p.joined, left_on=p.left,
                 name=p.name, note=p.note)
        for i, p in enumerate(rec.parties)
    ]  # fmt: skip
    row.themes = [ThemeRow(position=i, theme=t) for i, t in enumerate(rec.themes)]
    row.actions = [ActionRow(position=i, text=a) for i, a in enumerate(rec.actions)]
    row.sources = [
        SourceRow(position=i, document=s.document, page=s.page, quote=s.quote, url=s.url)
        for i, s in enumerate(rec.sources)
    ]


def _dumps(rec: Cooperation | None) -> str | None:
    return None if rec is None else json.dumps(rec.to_dict(), ensure_ascii=False, sort_keys=True)


def _log(
    session: Session,
    user: UserRow | str,
    action: str,
    slug: str,
    before: Cooperation | None,
    after: Cooperation | None,
    undoes: int | None = None,
) -> ChangeRow:
    change = ChangeRow(
        at=utcnow(),
        user_name=user if isinstance(user, str) else user.name,
        action=action,
        slug=slug,
        before_json=_dumps(before),
        after_json=_dumps(after),
        undoes=undoes,
    )
    session.add(change)
    return change


def _flush(session: Session, slug: str) -> None:
    try:
        session.flush()
    except StaleDataError as exc:
        raise ConflictError(
            f"cooperation {slug!r} was changed by someone else meanwhile; reload it and retry"
        ) from exc


# ---------------------------------------------------------------------------------------------
# reading


def get(session: Session, slug: str) -> Cooperation:
    """The cooperation ``slug`` (with its ``version``); :class:`RecordNotFound` if absent."""
    return record_of(_require_row(session, slug))


def list_cooperations(
    session: Session,
    *,
    party: str | None = None,
    theme: str | None = None,
    status: str | None = None,
    instrument: str | None = None,
) -> list[Cooperation]:
    """Cooperations ordered by slug, optionally filtered.

    ``party`` keeps cooperations where that ref is directly a party; for the whole picture of
    a territory (through its EPCI and perimeters) use :func:`network.bodies_of`.
    """
    query = select(CooperationRow).order_by(CooperationRow.slug)
    if party:
        from maillage.cooperations._reference import normalise_ref

        sub = select(PartyRow.cooperation_id).where(PartyRow.ref == normalise_ref(party))
        query = query.where(CooperationRow.id.in_(sub))
    if theme:
        query = query.where(
            CooperationRow.id.in_(select(ThemeRow.cooperation_id).where(ThemeRow.theme == theme))
        )
    if status:
        query = query.where(CooperationRow.status == status)
    if instrument:
        query = query.where(CooperationRow.instrument == instrument)
    return [record_of(row) for row in session.scalars(query)]


def slugs(session: Session) -> set[str]:
    """Every slug of the register."""
    return set(session.scalars(select(CooperationRow.slug)))


# ---------------------------------------------------------------------------------------------
# writing


def create(
    session: Session,
    record: Cooperation | dict,
    *,
    user: UserRow | None,
    exists: Exists | Any | None = _DEFAULT,
    _action: str = "create",
    _user_name: str | None = None,
) -> Cooperation:
    """Add ``record`` to the register and return it (``version`` 1).

    Raises
    ------
    AuthError, PermissionDenied : no user, or a reader.
    RecordInvalid : unknown territory, theme, instrument, incoherent dates…
    DuplicateRecord : the slug exists already.
    """
    if _user_name is None:
        require_role(user, "editor")
    rec = record if isinstance(record, Cooperation) else Cooperation.from_dict(record)
    check_record(rec, _exists(exists))
    if _row_of(session, rec.slug) is not None:
        raise DuplicateRecord(f"cooperation {rec.slug!r} already exists; edit it instead")
    row = CooperationRow(created_at=utcnow())
    _fill_row(row, rec)
    session.add(row)
    _flush(session, rec.slug)
    created = record_of(row)
    _log(session, _user_name or user, _action, rec.slug, None, created)
    session.flush()
    return created


def update(
    session: Session,
    slug: str,
    changes: Cooperation | dict,
    *,
    user: UserRow | None,
    expected_version: int | None = None,
    exists: Exists | Any | None = _DEFAULT,
    _action: str = "update",
) -> Cooperation:
    """Change cooperation ``slug``; ``changes`` is a full record or a dict of fields to set.

    Renaming is allowed (a ``slug`` key in ``changes``) when the new slug is free.

    Raises
    ------
    RecordNotFound, ConflictError (stale ``expected_version``), RecordInvalid,
    DuplicateRecord, AuthError, PermissionDenied.
    """
    require_role(user, "editor")
    row = _require_row(session, slug)
    before = record_of(row)
    if expected_version is not None and row.version != expected_version:
        raise ConflictError(
            f"cooperation {slug!r} is at version {row.version}, not {expected_version}: "
            "someone changed it since you read it; reload it and apply your change again"
        )
    if isinstance(changes, Cooperation):
        data = changes.to_dict()
    else:
        data = before.to_dict()
        data.update(changes)
    data.pop("version", None)
    after = Cooperation.from_dict(data)
    check_record(after, _exists(exists))
    if after.slug != slug and _row_of(session, after.slug) is not None:
        raise DuplicateRecord(f"cannot rename {slug!r} to {after.slug!r}: that slug exists")
    _fill_row(row, after)
    _flush(session, slug)
    result = record_of(row)
    _log(session, user, _action, after.slug, before, result)
    session.flush()
    return result


def end(
    session: Session,
    slug: str,
    *,
    end_date: str,
    user: UserRow | None,
    expected_version: int | None = None,
    exists: Exists | Any | None = _DEFAULT,
) -> Cooperation:
    """Mark cooperation ``slug`` as ended on ``end_date`` (partial ISO date)."""
    return update(
        session,
        slug,
        {"status": "ended", "end": end_date},
        user=user,
        expected_version=expected_version,
        exists=exists,
        _action="end",
    )


def delete(
    session: Session, slug: str, *, user: UserRow | None, expected_version: int | None = None
) -> Cooperation:
    """Remove cooperation ``slug`` (kept in the history, undoable); returns what was removed."""
    require_role(user, "editor")
    row = _require_row(session, slug)
    if expected_version is not None and row.version != expected_version:
        raise ConflictError(
            f"cooperation {slug!r} is at version {row.version}, not {expected_version}"
        )
    before = record_of(row)
    session.delete(row)
    _flush(session, slug)
    _log(session, user, "delete", slug, before, None)
    session.flush()
    return before


# ---------------------------------------------------------------------------------------------
# history and undo


def _change_of(row: ChangeRow) -> Change:
    return Change(
        id=row.id,
        at=row.at,
        user=row.user_name,
        action=row.action,
        slug=row.slug,
        before=json.loads(row.before_json) if row.before_json else None,
        after=json.loads(row.after_json) if row.after_json else None,
        undoes=row.undoes,
    )


def history(session: Session, slug: str | None = None) -> list[Change]:
    """Changes, oldest first; only those of ``slug`` (under its names at the time) if given."""
    query = select(ChangeRow).order_by(ChangeRow.id)
    if slug:
        query = query.where(ChangeRow.slug == slug)
    return [_change_of(row) for row in session.scalars(query)]


def undo(
    session: Session,
    change_id: int,
    *,
    user: UserRow | None,
    exists: Exists | Any | None = None,
) -> Change:
    """Undo change ``change_id``: put the record back as it was before that change.

    Rule: the record must still be as the change left it (its state equals the change's
    "after"; absent for a deletion); otherwise :class:`UndoError` (undo the later changes
    first). The undo is itself a change (action ``undo``) and can be undone. Territory
    existence is not re-checked by default (``exists=None``): an undo restores what was.
    """
    require_role(user, "editor")
    row = session.get(ChangeRow, change_id)
    if row is None:
        raise RecordNotFound(f"no change #{change_id} in the history")
    change = _change_of(row)
    before = Cooperation.from_dict(change.before) if change.before else None
    after = Cooperation.from_dict(change.after) if change.after else None
    slug_now = after.slug if after else change.slug
    current_row = _row_of(session, slug_now)
    current = record_of(current_row) if current_row is not None else None
    same = (current is None and after is None) or (
        current is not None and after is not None and current.to_dict() == after.to_dict()
    )
    if not same:
        raise UndoError(
            f"change #{change_id} cannot be undone: cooperation {slug_now!r} changed since; "
            "undo the later changes first (see history)"
        )
    if before is not None and (before.slug != slug_now) and _row_of(session, before.slug):
        raise UndoError(f"change #{change_id} cannot be undone: slug {before.slug!r} is taken")
    if before is not None:
        check_record(before, exists)
    restored = None
    if current_row is not None and before is not None:
        _fill_row(current_row, before)
        _flush(session, slug_now)
        restored = record_of(current_row)
    elif current_row is not None:
        session.delete(current_row)
        _flush(session, slug_now)
    elif before is not None:
        new_row = CooperationRow(created_at=utcnow())
        _fill_row(new_row, before)
        session.add(new_row)
        _flush(session, before.slug)
        restored = record_of(new_row)
    log = _log(
        session, user, "undo", before.slug if before else slug_now, current, restored, change_id
    )
    session.flush()
    return _change_of(log)
