"""The register of inter-territorial cooperations.

Who cooperates with whom, how (instrument), on what (themes), since when, with which
governance, funding and actions, and from which source. One SQL layer (SQLAlchemy 2) over
SQLite (embedded default) and PostgreSQL; every write is authenticated, kept in a history and
undoable. Beside the register: coverage of measured flows by cooperations (``coverage``) and
the whole picture of a territory and the network of cooperating territories (``network``).

Modules: ``vocab`` (controlled vocabularies), ``records`` (the record and its validation),
``db`` (tables, engine), ``migrations`` (schema steps), ``auth`` (users, tokens, roles),
``crud`` (edit, history, undo), ``io`` (CSV/JSON), ``seed`` (records of the mission
document), ``coverage``, ``network``.
"""

from maillage.cooperations.errors import (
    AuthError,
    ConflictError,
    DuplicateRecord,
    ImportFormatError,
    PermissionDenied,
    RecordInvalid,
    RecordNotFound,
    UndoError,
)
from maillage.cooperations.records import Cooperation, Party, Source

__all__ = [
    "AuthError",
    "ConflictError",
    "Cooperation",
    "DuplicateRecord",
    "ImportFormatError",
    "Party",
    "PermissionDenied",
    "RecordInvalid",
    "RecordNotFound",
    "Source",
    "UndoError",
]
