"""Errors of the register of cooperations, all subclasses of ``RegistryError``.

::

    RegistryError
    ├── RecordInvalid        a record breaks the rules (lists every problem: unknown territory,
    │                        unknown theme or instrument, end before start…)
    ├── DuplicateRecord      a slug already exists (or appears twice in one import)
    ├── RecordNotFound       no cooperation (or change) with that identifier
    ├── ConflictError        the record changed since the caller read it (stale ``version``)
    ├── AuthError            missing or wrong credentials
    ├── PermissionDenied     the user's role does not allow the change
    ├── UndoError            a change cannot be undone (the record moved on since)
    └── ImportFormatError    a CSV/JSON file cannot be read (also a ``SourceError``: file, line,
                             column)
"""

from __future__ import annotations

from maillage._errors import RegistryError, SourceError


class RecordInvalid(RegistryError):
    """A record breaks the rules; ``problems`` lists every failure found."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        text = message
        if self.problems:
            text += "\n" + "\n".join(f"  - {p}" for p in self.problems[:30])
            if len(self.problems) > 30:
                text += f"\n  … and {len(self.problems) - 30} more"
        super().__init__(text)


class DuplicateRecord(RegistryError):
    """A cooperation with this slug already exists."""


class RecordNotFound(RegistryError):
    """No cooperation or change with this identifier."""


class ConflictError(RegistryError):
    """The record changed since it was read: reload it and apply the change again."""


class AuthError(RegistryError):
    """Missing or wrong credentials."""


class PermissionDenied(RegistryError):
    """The user's role does not allow this change."""


class UndoError(RegistryError):
    """A change cannot be undone."""


class ImportFormatError(SourceError, RegistryError):
    """A CSV or JSON file of cooperations cannot be read; names file, line and column."""
