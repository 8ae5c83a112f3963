"""The register's tables (SQLAlchemy 2 ORM) and the engine factory.

One SQL layer for two engines: SQLite (embedded default, one file) and PostgreSQL (shared
deployment). The URL comes from ``Settings().registry_url`` unless given. Nothing is created at
import time: call :func:`open_registry` (engine + migrations) and :func:`session_factory`.

Tables
------
cooperation (one row per record, ``version`` for optimistic concurrency), and its children
party, cooperation_theme, cooperation_action, cooperation_source (ordered by ``position``);
registry_user and api_token (authentication); change (history: who, when, what, before and
after as JSON); schema_version (applied migrations, see ``migrations/``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    create_engine,
    event,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship, sessionmaker


def utcnow() -> datetime:
    """Current time, timezone-aware UTC."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    """Declarative base of the register."""


class CooperationRow(Base):
    __tablename__ = "cooperation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slug: Mapped[str] = mapped_column(String(120), unique=True, nullable=False)
    name: Mapped[str] = mapped_column(Text, nullable=False)
    instrument: Mapped[str] = mapped_column(String(64), nullable=False)
    status: Mapped[str] = mapped_column(String(16), nullable=False)
    start_date: Mapped[str | None] = mapped_column(String(10))
    end_date: Mapped[str | None] = mapped_column(String(10))
    governance: Mapped[str | None] = mapped_column(Text)
    funding: Mapped[str | None] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    version: Mapped[int] = mapped_column(Integer, nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    parties: Mapped[list[PartyRow]] = relationship(
        cascade="all, delete-orphan", order_by="PartyRow.position", lazy="selectin"
    )
    themes: Mapped[list[ThemeRow]] = relationship(
        cascade="all, delete-orphan", order_by="ThemeRow.position", lazy="selectin"
    )
    actions: Mapped[list[ActionRow]] = relationship(
        cascade="all, delete-orphan", order_by="ActionRow.position", lazy="selectin"
    )
    sources: Mapped[list[SourceRow]] = relationship(
        cascade="all, delete-orphan", order_by="SourceRow.position", lazy="selectin"
    )

    __mapper_args__ = {"version_id_col": version}  # noqa: RUF012


class PartyRow(Base):
    __tablename__ = "party"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cooperation_id: Mapped[int] = mapped_column(
        ForeignKey("cooperation.id", ondelete="CASCADE"), nullable=False, index=True
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    ref: Mapped[str | None] = mapped_column(String(140), index=True)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    joined: Mapped[str | None] = mapped_column(String(10))
    left_on: Mapped[str | None] = mapped_column(String(10))
    name: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str | None] = mapped_column(Text)


class ThemeRow(Base):
    __tablename__ = "cooperation_theme"
    __table_args__ = (UniqueConstraint("cooperation_id", "theme"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cooperation_id: Mapped[int] = mapped_column(
        ForeignKey("cooperation.id", ondelete="CASCADE"), nullable=False, index=True
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    theme: Mapped[str] = mapped_column(String(64), nullable=False, index=True)


class ActionRow(Base):
    __tablename__ = "cooperation_action"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cooperation_id: Mapped[int] = mapped_column(
        ForeignKey("cooperation.id", ondelete="CASCADE"), nullable=False, index=True
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    text: Mapped[str] = mapped_column(Text, nullable=False)


class SourceRow(Base):
    __tablename__ = "cooperation_source"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    cooperation_id: Mapped[int] = mapped_column(
        ForeignKey("cooperation.id", ondelete="CASCADE"), nullable=False, index=True
    )
    position: Mapped[int] = mapped_column(Integer, nullable=False)
    document: Mapped[str] = mapped_column(Text, nullable=False)
    page: Mapped[str | None] = mapped_column(String(32))
    quote: Mapped[str | None] = mapped_column(Text)
    url: Mapped[str | None] = mapped_column(Text)


class UserRow(Base):
    __tablename__ = "registry_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(80), unique=True, nullable=False)
    role: Mapped[str] = mapped_column(String(16), nullable=False)
    password_hash: Mapped[str] = mapped_column(Text, nullable=False)
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class TokenRow(Base):
    __tablename__ = "api_token"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("registry_user.id", ondelete="CASCADE"), nullable=False, index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True, nullable=False)
    label: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)

    user: Mapped[UserRow] = relationship(lazy="joined")


class ChangeRow(Base):
    __tablename__ = "change"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    user_name: Mapped[str] = mapped_column(String(80), nullable=False)
    action: Mapped[str] = mapped_column(String(16), nullable=False)
    slug: Mapped[str] = mapped_column(String(120), nullable=False, index=True)
    before_json: Mapped[str | None] = mapped_column(Text)
    after_json: Mapped[str | None] = mapped_column(Text)
    undoes: Mapped[int | None] = mapped_column(Integer)


def make_engine(url: str | None = None, **kwargs) -> Engine:
    """Engine for ``url`` (default ``Settings().registry_url``); SQLite gets foreign keys on.

    The parent folder of a SQLite file is created when missing.
    """
    if url is None:
        from maillage.settings import Settings

        url = Settings().registry_url
    assert url is not None
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def open_registry(url: str | None = None, **kwargs) -> Engine:
    """Engine for ``url`` with the schema migrated to the latest version."""
    from maillage.cooperations.migrations import upgrade

    engine = make_engine(url, **kwargs)
    upgrade(engine)
    return engine


def session_factory(engine: Engine) -> sessionmaker:
    """Session factory bound to ``engine`` (``expire_on_commit=False``: records stay readable)."""
    return sessionmaker(engine, expire_on_commit=False)
