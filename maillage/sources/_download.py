"""Download source files once, keep them in a cache addressed by checksum.

``fetch(url, cache_dir)`` returns a local path:

- a local path or a ``file://`` address is returned as it is (checked against
  ``expected_sha256`` when one is given);
- otherwise the cache index ``<cache_dir>/index.json`` (url → sha256, relative path, size) is
  consulted; a hit whose file is still there (same size, same checksum as expected) makes no
  request;
- a miss streams the download with httpx into a temporary file of the cache folder, hashing as
  it goes, checks ``expected_sha256``, then renames it atomically to
  ``<cache_dir>/files/<sha256>/<file name>`` and rewrites the index atomically. A failed or
  corrupt download leaves nothing in the cache.

No resume of partial downloads, no lock between concurrent processes (the last writer of the
index wins; both files stay valid).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx

from maillage._errors import SourceError
from maillage.sources._files import CHUNK, sha256_file

log = logging.getLogger("maillage")

INDEX_NAME = "index.json"
TIMEOUT = httpx.Timeout(60.0, connect=15.0)

#: ``progress(bytes_done, bytes_total_or_None)``.
Progress = Callable[[int, int | None], None]


def fetch(
    url: str | Path,
    cache_dir: str | Path,
    *,
    expected_sha256: str | None = None,
    client: httpx.Client | None = None,
    progress: Progress | None = None,
) -> Path:
    """Return a local copy of ``url``, downloading it into ``cache_dir`` if needed.

    Parameters
    ----------
    url : ``http(s)://`` address, ``file://`` address or local path.
    cache_dir : cache folder (created if missing), usually ``Settings().cache_path``.
    expected_sha256 : hex checksum the file must have; a mismatch raises and caches nothing.
    client : an httpx client to use (its transport, proxies, headers); one is made otherwise.
    progress : called with (bytes so far, total bytes or None) while downloading.

    Raises
    ------
    SourceError
        file missing, HTTP error, network error, or checksum mismatch.
    """
    local = _local_path(url)
    if local is not None:
        return _check_local(local, expected_sha256)
    url = str(url)
    cache = Path(cache_dir)
    cache.mkdir(parents=True, exist_ok=True)
    hit = _cache_hit(cache, url, expected_sha256)
    if hit is not None:
        log.info("cache hit for %s: %s", url, hit)
        return hit
    own_client = client is None
    http = client or httpx.Client(timeout=TIMEOUT, follow_redirects=True)
    try:
        return _download(http, url, cache, expected_sha256, progress)
    finally:
        if own_client:
            http.close()


def _local_path(url: str | Path) -> Path | None:
    if isinstance(url, Path):
        return url
    parsed = urlparse(url)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if parsed.scheme in ("http", "https"):
        return None
    return Path(url)


def _check_local(path: Path, expected_sha256: str | None) -> Path:
    if not path.is_file():
        raise SourceError("file not found; check the path.", path=str(path))
    if expected_sha256:
        actual = sha256_file(path)
        if actual != expected_sha256.lower():
            raise SourceError(
                f"checksum mismatch: expected sha256 {expected_sha256}, file has {actual}. "
                "The file differs from the one catalogued; download it again.",
                path=str(path),
            )
    return path


def read_index(cache: Path) -> dict[str, dict[str, object]]:
    """The cache index (url → {sha256, path, size}); empty if missing or unreadable."""
    index = cache / INDEX_NAME
    try:
        return json.loads(index.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_index(cache: Path, index: dict[str, dict[str, object]]) -> None:
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=".index-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(index, fh, indent=1, sort_keys=True)
    os.replace(tmp, cache / INDEX_NAME)


def _cache_hit(cache: Path, url: str, expected_sha256: str | None) -> Path | None:
    entry = read_index(cache).get(url)
    if not entry:
        return None
    path = cache / str(entry["path"])
    if not path.is_file() or path.stat().st_size != entry.get("size"):
        return None
    if expected_sha256 and str(entry["sha256"]) != expected_sha256.lower():
        return None
    return path


def _file_name(url: str, response: httpx.Response) -> str:
    disposition = response.headers.get("content-disposition", "")
    if "filename=" in disposition:
        name = disposition.split("filename=")[-1].strip().strip('"').strip("'")
        if name:
            return Path(name).name
    name = Path(unquote(urlparse(str(response.url)).path)).name
    return name or Path(unquote(urlparse(url).path)).name or "download"


def _download(
    http: httpx.Client,
    url: str,
    cache: Path,
    expected_sha256: str | None,
    progress: Progress | None,
) -> Path:
    fd, tmp_name = tempfile.mkstemp(dir=cache, prefix=".part-")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out, http.stream("GET", url) as response:
            if response.status_code >= 400:
                raise SourceError(
                    f"download failed: HTTP {response.status_code} {response.reason_phrase}. "
                    "Check the address, or download the file by hand and pass the local copy.",
                    path=url,
                )
            total = response.headers.get("content-length")
            total_bytes = int(total) if total and total.isdigit() else None
            digest = hashlib.sha256()
            done = 0
            for chunk in response.iter_bytes(CHUNK):
                out.write(chunk)
                digest.update(chunk)
                done += len(chunk)
                if progress:
                    progress(done, total_bytes)
            name = _file_name(url, response)
        sha = digest.hexdigest()
        if expected_sha256 and sha != expected_sha256.lower():
            raise SourceError(
                f"checksum mismatch: expected sha256 {expected_sha256}, downloaded {sha} "
                f"({done:,} bytes). Nothing was cached; retry, or check the catalogue.",
                path=url,
            )
        if total_bytes is not None and done != total_bytes:
            raise SourceError(
                f"download incomplete: {done:,} of {total_bytes:,} bytes. Nothing was cached; "
                "retry.",
                path=url,
            )
        target_dir = cache / "files" / sha
        target_dir.mkdir(parents=True, exist_ok=True)
        target = target_dir / name
        os.replace(tmp, target)
    except httpx.HTTPError as exc:
        raise SourceError(
            f"download failed ({type(exc).__name__}: {exc}). Check the network, or download "
            "the file by hand and pass the local copy.",
            path=url,
        ) from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    index = read_index(cache)
    index[url] = {"sha256": sha, "path": str(target.relative_to(cache)), "size": done}
    _write_index(cache, index)
    log.info("downloaded %s (%s bytes) to %s", url, f"{done:,}", target)
    return target


def local_path(path_or_url: str, cache_dir: Path) -> Path:
    """A local file for ``path_or_url``: an http(s) address is fetched into the cache first;
    a ``file://`` address or a plain path is used as it is."""
    if "://" in path_or_url and not path_or_url.startswith("file://"):
        return fetch(path_or_url, cache_dir)
    return Path(path_or_url.removeprefix("file://"))
