"""PDF output of the sheets with WeasyPrint, offline.

Fonts come from the system (DejaVu, Debian package ``fonts-dejavu-core``) through fontconfig;
the page embeds its images as ``data:`` URIs, and the URL fetcher refuses anything else, so
rendering never reaches the network. WeasyPrint needs Pango (Debian ``libpango-1.0-0``,
``libpangoft2-1.0-0``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from maillage._errors import MaillageError


def _offline_fetcher() -> Any:
    """A WeasyPrint fetcher that serves ``data:`` URIs only (no network, no local files)."""
    from weasyprint.urls import URLFetcher

    return URLFetcher(allowed_protocols={"data"}, fail_on_errors=True)


def html_to_pdf(html: str, path: str | Path) -> Path:
    """Render a self-contained HTML page to a PDF file (A4, fonts from the system)."""
    try:
        from weasyprint import HTML
    except (ImportError, OSError) as exc:  # OSError: Pango missing
        raise MaillageError(
            f"PDF output needs WeasyPrint and Pango ({exc}). Install them with "
            "`pip install weasyprint` and `apt-get install libpango-1.0-0 libpangoft2-1.0-0`, "
            "or write the sheet as .html."
        ) from exc
    path = Path(path)
    HTML(string=html, url_fetcher=_offline_fetcher(), base_url=None).write_pdf(str(path))
    return path
