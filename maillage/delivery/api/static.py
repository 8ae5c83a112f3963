"""The web interface's static files: compressed once, and cached by the browser.

The GZip middleware compresses a response on every request: for the 1 MB map library that is
≈ 60 ms of the server's event loop, spent just when the first view's API answers are due.
Here each text file is compressed once per version (path, size, modification time) and kept in
memory. Vendored libraries have versioned paths (``vendor/maplibre-gl-5.24.1/…``): browsers may
keep them a year without asking again. The app's own files are revalidated on every load
(``no-cache`` with their ETag: an unchanged file costs a 304, an edited one is fetched).
"""

from __future__ import annotations

import gzip
import os
import threading
from pathlib import Path

from starlette.datastructures import Headers
from starlette.responses import FileResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

#: Extensions worth compressing (text); images and fonts are already compressed.
COMPRESSIBLE = (".js", ".css", ".html", ".json", ".svg", ".txt", ".map")
#: Smallest file compressed (below it the headers weigh more than the gain).
MIN_SIZE = 1024
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"


class WebFiles(StaticFiles):
    """``StaticFiles`` sending gzip compressed once per file version, with cache headers."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._packed: dict[tuple[str, int, int], bytes] = {}
        self._lock = threading.Lock()

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["cache-control"] = self._cache_control(full_path)
        request = Headers(scope=scope)
        if (
            not isinstance(response, FileResponse)  # 304 Not Modified
            or status_code != 200
            or "range" in request
            or "gzip" not in request.get("accept-encoding", "")
            or not str(full_path).endswith(COMPRESSIBLE)
            or stat_result.st_size < MIN_SIZE
        ):
            return response
        headers = {k: v for k, v in response.headers.items() if k != "content-length"}
        headers |= {"content-encoding": "gzip", "vary": "accept-encoding"}
        return Response(self._gzipped(full_path, stat_result), headers=headers)

    def _cache_control(self, full_path: str | os.PathLike[str]) -> str:
        rel = Path(full_path).resolve().relative_to(Path(str(self.directory)).resolve())
        return IMMUTABLE if rel.parts and rel.parts[0] == "vendor" else REVALIDATE

    def precompress(self) -> int:
        """Compress every text file of the folder now (the server's warm-up); returns how many."""
        count = 0
        for path in sorted(Path(str(self.directory)).rglob("*")):
            if path.is_file() and path.suffix in COMPRESSIBLE:
                stat_result = path.stat()
                if stat_result.st_size >= MIN_SIZE:
                    self._gzipped(path, stat_result)
                    count += 1
        return count

    def _gzipped(self, full_path: str | os.PathLike[str], stat_result: os.stat_result) -> bytes:
        key = (os.path.realpath(full_path), stat_result.st_size, stat_result.st_mtime_ns)
        packed = self._packed.get(key)
        if packed is None:
            packed = gzip.compress(Path(full_path).read_bytes(), compresslevel=6)
            with self._lock:
                self._packed[key] = packed
        return packed
