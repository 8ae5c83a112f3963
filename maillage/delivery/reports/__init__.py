"""Reports: sheets to debate (territory and pair sheets, HTML and PDF) and their maps and charts.

- ``sheets``: gather the figures (from ``maillage.analysis``), render and write a sheet;
- ``maps``: static maps drawn with matplotlib from the embedded polygons;
- ``charts``: bar and stratum charts (matplotlib);
- ``typography``: French numbers and punctuation spaces;
- ``pdf``: HTML → PDF with WeasyPrint, offline;
- ``routes``: a FastAPI router serving sheets and export files (mounted by the API).

Files to reuse (CSV, XLSX, GeoPackage) are in ``maillage.delivery.exports``; batches over
every EPCI of a région in ``maillage.delivery.batch``. Nothing here imports the API or the CLI.
Importing this package is cheap: matplotlib is loaded with ``sheets`` on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Sheet", "load_register", "pair_sheet", "render_html", "territory_sheet", "write_sheet"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from maillage.delivery.reports import sheets

        return getattr(sheets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
