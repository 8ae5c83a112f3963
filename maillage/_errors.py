"""The exception tree of maillage.

::

    MaillageError
    ├── SourceError            a source file cannot be read as published (names file, line, column)
    ├── ValidationError        input breaks a data contract (lists every problem found)
    ├── UnknownTerritory       a code or name matches no territory of the reference
    ├── AmbiguousTerritory     a name matches several territories
    ├── StoreError             the observatory database is missing, locked or inconsistent
    ├── ModelError             a model cannot be fitted or evaluated (masses, points, convergence)
    └── RegistryError          the register of cooperations refuses a change

Every message says what went wrong, why, and what to do.
"""

from __future__ import annotations


class MaillageError(Exception):
    """Base class of every error raised on purpose by maillage."""


class SourceError(MaillageError):
    """A source file cannot be read as published.

    Parameters
    ----------
    message : what went wrong and what to do.
    path : the file (or member of a zip) concerned.
    line : 1-based line number in the file (the header is line 1), when known.
    column : the column name, when known.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.reason = message
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.path:
            where.append(str(self.path))
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.column:
            where.append(f"column {self.column}")
        prefix = ", ".join(where)
        return f"{prefix}: {self.reason}" if prefix else self.reason


class ValidationError(MaillageError):
    """Input breaks a data contract; ``problems`` lists every failure found."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        text = message
        if self.problems:
            shown = "\n".join(f"  - {p}" for p in self.problems[:20])
            more = len(self.problems) - 20
            text += "\n" + shown + (f"\n  … and {more} more" if more > 0 else "")
        super().__init__(text)


class UnknownTerritory(MaillageError, KeyError):
    """A code or a name matches no territory of the reference."""

    def __str__(self) -> str:  # KeyError quotes its argument; we want plain text
        return str(self.args[0]) if self.args else ""


class AmbiguousTerritory(MaillageError):
    """A name matches several territories; ``candidates`` lists them."""

    def __init__(self, message: str, candidates: list[str] | None = None) -> None:
        self.candidates = list(candidates or [])
        super().__init__(message)


class StoreError(MaillageError):
    """The observatory database is missing, locked or inconsistent."""


class ModelError(MaillageError):
    """A model cannot be fitted or evaluated."""


class RegistryError(MaillageError):
    """The register of cooperations refuses a change."""
