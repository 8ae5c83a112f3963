"""Migration 1: the initial schema (frozen copy; never edit once released)."""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Connection


def _tables() -> MetaData:
    meta = MetaData()
    Table(
        "cooperation",
        meta,
        Column("id", Integer, primary_key=True),
        Column("slug", String(120), unique=True, nullable=False),
        Column("name", Text, nullable=False),
        Column("instrument", String(64), nullable=False),
        Column("status", String(16), nullable=False),
        Column("start_date", String(10)),
        Column("end_date", String(10)),
        Column("governance", Text),
        Column("funding", Text),
        Column("description", Text),
        Column("version", Integer, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("updated_at", DateTime(timezone=True), nullable=False),
    )

    def child(name: str, *columns: Column, extra=()) -> None:
        Table(
            name,
            meta,
            Column("id", Integer, primary_key=True),
            Column(
                "cooperation_id",
                Integer,
                ForeignKey("cooperation.id", ondelete="CASCADE"),
                nullable=False,
                index=True,
            ),
            Column("position", Integer, nullable=False),
            *columns,
            *extra,
        )

    child(
        "party",
        Column("ref", String(140), index=True),
        Column("role", String(16), nullable=False),
        Column("joined", String(10)),
        Column("left_on", String(10)),
        Column("name", Text),
        Column("note", Text),
    )
    child(
        "cooperation_theme",
        Column("theme", String(64), nullable=False, index=True),
        extra=(UniqueConstraint("cooperation_id", "theme"),),
    )
    child("cooperation_action", Column("text", Text, nullable=False))
    child(
        "cooperation_source",
        Column("document", Text, nullable=False),
        Column("page", String(32)),
        Column("quote", Text),
        Column("url", Text),
    )
    Table(
        "registry_user",
        meta,
        Column("id", Integer, primary_key=True),
        Column("name", String(80), unique=True, nullable=False),
        Column("role", String(16), nullable=False),
        Column("password_hash", Text, nullable=False),
        Column("active", Boolean, nullable=False),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "api_token",
        meta,
        Column("id", Integer, primary_key=True),
        Column(
            "user_id",
            Integer,
            ForeignKey("registry_user.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        Column("token_hash", String(64), unique=True, nullable=False),
        Column("label", Text),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    Table(
        "change",
        meta,
        Column("id", Integer, primary_key=True),
        Column("at", DateTime(timezone=True), nullable=False),
        Column("user_name", String(80), nullable=False),
        Column("action", String(16), nullable=False),
        Column("slug", String(120), nullable=False, index=True),
        Column("before_json", Text),
        Column("after_json", Text),
        Column("undoes", Integer),
    )
    return meta


def upgrade(connection: Connection) -> None:
    """Create every table of the first schema."""
    _tables().create_all(connection)
