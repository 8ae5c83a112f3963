"""The territorial reference: communes, EPCI, EPT, départements, régions, their polygons and
points, and the history of commune codes.

``reference.history`` is the module (``reference.history.harmonise_codes``,
``reference.history.history()``); the embedded passage table is also ``code_history()``.

Everything is read lazily from the Parquet files of ``data/`` (see ``data/README.md`` for
sources, vintage and licences); importing this package does no I/O.

>>> from maillage import reference
>>> reference.search.resolve("Brest Métropole")
('epci', '242900314')
"""

from __future__ import annotations

from maillage.reference import history, search
from maillage.reference.communes import (
    REFERENCE_LEVELS,
    communes,
    departements,
    epci,
    ept,
    memberships,
    regions,
    table,
    territories,
)
from maillage.reference.geometry import GEOMETRY_LEVELS, geometry, shapes
from maillage.reference.history import harmonise_codes, load_insee_movements
from maillage.reference.history import history as code_history

__all__ = [
    "GEOMETRY_LEVELS",
    "REFERENCE_LEVELS",
    "code_history",
    "communes",
    "departements",
    "epci",
    "ept",
    "geometry",
    "harmonise_codes",
    "history",
    "load_insee_movements",
    "memberships",
    "regions",
    "search",
    "shapes",
    "table",
    "territories",
]
