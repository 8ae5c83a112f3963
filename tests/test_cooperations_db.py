"""The register on SQLite and PostgreSQL: schema, editing, validation, auth, history, undo,
optimistic concurrency. Every test runs on both backends."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select

from maillage.cooperations import crud
from maillage.cooperations.auth import add_user, authenticate, authenticate_token, create_token
from maillage.cooperations.db import Base, ChangeRow, CooperationRow
from maillage.cooperations.errors import (
    AuthError,
    ConflictError,
    DuplicateRecord,
    PermissionDenied,
    RecordInvalid,
    RecordNotFound,
    UndoError,
)
from maillage.cooperations.migrations import current_version, upgrade

pytest_plugins = ["conftest_pg"]


def record(**over):
    data = {
        "slug": "entente-brest-quimper",
        "name": "Entente Brest – Quimper",
        "instrument": "entente",
        "status": "active",
        "start": "2012",
        "themes": ["attractivite"],
        "parties": [
            {"ref": "epci:242900314", "role": "member", "joined": "2012"},
            {"ref": "epci:200068120", "role": "member"},
            {"ref": None, "name": "l’État", "role": "associate"},
        ],
        "sources": [{"document": "mission", "page": "6", "quote": "En 2012, …"}],
    }
    data.update(over)
    return data


def count(sessions, table=CooperationRow):
    with sessions() as s:
        return len(s.scalars(select(table)).all())


def test_migrated_schema_matches_models(engine):
    inspector = inspect(engine)
    for table in Base.metadata.sorted_tables:
        got = {c["name"] for c in inspector.get_columns(table.name)}
        assert got == {c.name for c in table.columns}, table.name
    assert current_version(engine) == 1
    assert upgrade(engine) == []  # idempotent


def test_create_get_list(sessions, editor, reference_index):
    with sessions() as s, s.begin():
        created = crud.create(s, record(), user=editor, exists=reference_index.exists)
    assert created.version == 1
    with sessions() as s:
        got = crud.get(s, "entente-brest-quimper")
        assert got.to_dict() == created.to_dict()
        assert got.unresolved_parties == ["l’État"]
        assert [c.slug for c in crud.list_cooperations(s, party="epci:242900314")] == [
            "entente-brest-quimper"
        ]
        assert crud.list_cooperations(s, party="epci:244400404") == []
        assert len(crud.list_cooperations(s, theme="attractivite")) == 1
        assert crud.list_cooperations(s, theme="mobilite") == []


@pytest.mark.parametrize(
    ("change", "fragment"),
    [
        ({"parties": [{"ref": "epci:999999999"}]}, "no such territory"),
        ({"themes": ["astrologie"]}, "theme 'astrologie' is unknown"),
        ({"instrument": "traité"}, "instrument 'traité' is unknown"),
        ({"start": "2015", "end": "2014-12"}, "end before start"),
        (
            {"parties": [{"ref": "com:29019", "joined": "2015-03", "left": "2015-02"}]},
            "left before joined",
        ),
        ({"status": "ended"}, "needs an end date"),
        ({"start": "2015-13"}, "not a date"),
        ({"parties": [{"ref": "29019"}]}, "level:code"),
    ],
)
def test_invalid_records_leave_register_unchanged(
    sessions, editor, reference_index, change, fragment
):
    with pytest.raises(RecordInvalid, match=fragment), sessions() as s, s.begin():
        crud.create(s, record(**change), user=editor, exists=reference_index.exists)
    assert count(sessions) == 0
    assert count(sessions, ChangeRow) == 0


def test_duplicate_and_missing(sessions, editor):
    with sessions() as s, s.begin():
        crud.create(s, record(), user=editor, exists=None)
    with pytest.raises(DuplicateRecord), sessions() as s, s.begin():
        crud.create(s, record(name="autre"), user=editor, exists=None)
    with pytest.raises(RecordNotFound), sessions() as s:
        crud.get(s, "nope")
    assert count(sessions) == 1


def test_writes_need_editor(sessions, editor):
    with sessions() as s:
        reader = authenticate(s, "carol", "carol-password")
    with pytest.raises(PermissionDenied), sessions() as s, s.begin():
        crud.create(s, record(), user=reader, exists=None)
    with pytest.raises(AuthError), sessions() as s, s.begin():
        crud.create(s, record(), user=None, exists=None)
    with pytest.raises(AuthError, match="wrong user name or password"), sessions() as s:
        authenticate(s, "bob", "not-his-password")
    with pytest.raises(AuthError, match="credentials needed"), sessions() as s:
        authenticate(s, None, None)
    assert count(sessions) == 0


def test_users_and_tokens(sessions, editor):
    with pytest.raises(AuthError, match="admin"), sessions() as s, s.begin():
        add_user(s, "dave", "dave-password", "editor")  # users exist: needs an admin
    with pytest.raises(PermissionDenied), sessions() as s, s.begin():
        add_user(s, "dave", "dave-password", "editor", by=authenticate(s, "bob", "bob-password"))
    with sessions() as s, s.begin():
        token = create_token(s, authenticate(s, "bob", "bob-password"), "api")
    with sessions() as s:
        assert authenticate_token(s, token).name == "bob"
        with pytest.raises(AuthError):
            authenticate_token(s, token + "x")
        stored = s.scalars(
            select(__import__("maillage.cooperations.db").cooperations.db.UserRow)
        ).all()
        assert all(u.password_hash.startswith("scrypt$") for u in stored)
        assert all("password" not in u.password_hash for u in stored)


def test_update_end_delete_history_undo(sessions, editor):
    with sessions() as s, s.begin():
        crud.create(s, record(), user=editor, exists=None)
    with sessions() as s, s.begin():
        updated = crud.update(
            s, "entente-brest-quimper", {"themes": ["attractivite", "mobilite"]},
            user=editor, expected_version=1, exists=None,
        )  # fmt: skip
    assert updated.version == 2 and updated.themes == ["attractivite", "mobilite"]
    with sessions() as s, s.begin():
        ended = crud.end(s, "entente-brest-quimper", end_date="2020-06", user=editor, exists=None)
    assert (ended.status, ended.end, ended.version) == ("ended", "2020-06", 3)
    with sessions() as s, s.begin():
        crud.delete(s, "entente-brest-quimper", user=editor)
    with sessions() as s:
        changes = crud.history(s, "entente-brest-quimper")
    assert [c.action for c in changes] == ["create", "update", "end", "delete"]
    assert all(c.user == "bob" for c in changes)
    assert changes[1].before["themes"] == ["attractivite"]
    assert changes[1].after["themes"] == ["attractivite", "mobilite"]
    assert changes[3].after is None
    # undoing the "update" now is refused: the record moved on (ended, then deleted)
    with pytest.raises(UndoError), sessions() as s, s.begin():
        crud.undo(s, changes[1].id, user=editor)
    # undo in reverse order
    with sessions() as s, s.begin():
        crud.undo(s, changes[3].id, user=editor)  # un-delete
    with sessions() as s:
        assert crud.get(s, "entente-brest-quimper").status == "ended"
    with sessions() as s, s.begin():
        crud.undo(s, changes[2].id, user=editor)  # un-end
    with sessions() as s, s.begin():
        last = crud.undo(s, changes[1].id, user=editor)  # un-update
    with sessions() as s:
        now = crud.get(s, "entente-brest-quimper")
    assert now.to_dict() == changes[0].after
    # the undo is itself a change, and can be undone
    with sessions() as s, s.begin():
        crud.undo(s, last.id, user=editor)
    with sessions() as s:
        assert crud.get(s, "entente-brest-quimper").themes == ["attractivite", "mobilite"]
    # undo the creation
    with sessions() as s:
        history = crud.history(s)
    with pytest.raises(UndoError), sessions() as s, s.begin():
        crud.undo(s, history[0].id, user=editor)  # record differs from right after creation


def test_stale_version_conflicts(sessions, editor):
    with sessions() as s, s.begin():
        crud.create(s, record(), user=editor, exists=None)
    with sessions() as s, s.begin():
        crud.update(s, "entente-brest-quimper", {"name": "A"}, user=editor, exists=None)
    with pytest.raises(ConflictError, match="version 2, not 1"), sessions() as s, s.begin():
        crud.update(
            s, "entente-brest-quimper", {"name": "B"}, user=editor, expected_version=1, exists=None
        )
    with sessions() as s:
        assert crud.get(s, "entente-brest-quimper").name == "A"


def test_concurrent_sessions_cannot_both_win(sessions, editor):
    """Two sessions load version 1; the second flush fails (SQL-level version check)."""
    with sessions() as s, s.begin():
        crud.create(s, record(), user=editor, exists=None)
    first, second = sessions(), sessions()
    try:
        first.begin()
        second.begin()
        row1 = first.scalar(select(CooperationRow))
        row2 = second.scalar(select(CooperationRow))
        assert row1.version == row2.version == 1
        row1.name = "first"
        first.commit()
        row2.name = "second"
        with pytest.raises(ConflictError):
            crud._flush(second, row2.slug)
        second.rollback()
    finally:
        first.close()
        second.close()
    with sessions() as s:
        got = crud.get(s, "entente-brest-quimper")
    assert (got.name, got.version) == ("first", 2)
