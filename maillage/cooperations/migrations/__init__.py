"""Schema migrations of the register: a tiny hand-written, versioned list.

Why not Alembic: the register has a dozen tables, two engines and no autogenerate need; a
list of numbered Python steps (sqlite-utils style) runs the same on SQLite and PostgreSQL,
ships inside the wheel with no ``alembic.ini``/``env.py``, and is applied by
:func:`upgrade` whenever the register is opened. Each step is a module ``mNNNN_<name>.py``
with a frozen copy of the DDL it needs (built with SQLAlchemy Core, so the SQL is right for
each dialect) and a function ``upgrade(connection)``. Applied steps are recorded in the table
``schema_version`` (version, name, applied_at). Steps never change once released: a schema
change is a new step. ``tests/test_cooperations_db.py`` checks that the migrated schema equals
the ORM models of ``db.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, insert, select
from sqlalchemy.engine import Connection, Engine

from maillage.cooperations.migrations import m0001_initial


@dataclass(frozen=True)
class Migration:
    """One schema step."""

    version: int
    name: str
    upgrade: Callable[[Connection], None]


MIGRATIONS: tuple[Migration, ...] = (Migration(1, "initial", m0001_initial.upgrade),)

_meta = MetaData()
schema_version = Table(
    "schema_version",
    _meta,
    Column("version", Integer, primary_key=True, autoincrement=False),
    Column("name", String(80), nullable=False),
    Column("applied_at", DateTime(timezone=True), nullable=False),
)


def applied_versions(engine: Engine) -> list[int]:
    """Versions already applied to the database (empty for a new database)."""
    with engine.connect() as conn:
        if not engine.dialect.has_table(conn, "schema_version"):
            return []
        return sorted(conn.execute(select(schema_version.c.version)).scalars())


def upgrade(engine: Engine) -> list[int]:
    """Apply the missing steps in order, each in its own transaction; return those applied."""
    _meta.create_all(engine, checkfirst=True)
    done = set(applied_versions(engine))
    applied = []
    for step in MIGRATIONS:
        if step.version in done:
            continue
        with engine.begin() as conn:
            step.upgrade(conn)
            conn.execute(
                insert(schema_version).values(
                    version=step.version, name=step.name, applied_at=datetime.now(UTC)
                )
            )
        applied.append(step.version)
    return applied


def current_version(engine: Engine) -> int:
    """Highest applied version (0 for an empty database)."""
    versions = applied_versions(engine)
    return versions[-1] if versions else 0
