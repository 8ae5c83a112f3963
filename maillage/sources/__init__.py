"""Sources: where each official file is published and how to read it exactly as published.

- :mod:`maillage.sources.catalog` — download addresses per source and vintage;
- :mod:`maillage.sources.flux` — INSEE "bases flux" (MOBPRO, MIGCOM, MOBSCO): :func:`read_flux`;
- :mod:`maillage.sources.detail` — INSEE detail files (FD_MOBPRO, FD_MIGCOM, FD_MOBSCO):
  :func:`read_detail`;
- :func:`sniff` — which source a file looks like.

Downloading (``_download``) and opening files (``_files``) are private plumbing.
"""

from __future__ import annotations

from maillage.sources._files import sniff as sniff
from maillage.sources.catalog import CatalogEntry as CatalogEntry
from maillage.sources.catalog import find as find
from maillage.sources.detail import DetailFile as DetailFile
from maillage.sources.detail import read_detail as read_detail
from maillage.sources.flux import FluxFile as FluxFile
from maillage.sources.flux import read_flux as read_flux

__all__ = [
    "CatalogEntry",
    "DetailFile",
    "FluxFile",
    "find",
    "read_detail",
    "read_flux",
    "sniff",
]
