"""The one configuration object of maillage.

Every field can be set by an environment variable prefixed ``MAILLAGE_`` (for example
``MAILLAGE_HOME=/srv/maillage``). Nothing is read at import time: build a ``Settings()``
where it is needed and pass it down.

Fields
------
home : folder holding the observatory database, the download cache and the register
    (default: the per-user data folder, e.g. ``~/.local/share/maillage``).
database : path of the DuckDB observatory file (default ``<home>/maillage.duckdb``).
cache_dir : downloads cached by checksum (default ``<home>/cache``).
registry_url : SQLAlchemy URL of the register of cooperations
    (default ``sqlite:///<home>/registry.sqlite``; ``postgresql+psycopg://…`` for a shared one).
basemap_url : optional raster-tile address template for the web map (``{z}/{x}/{y}``); empty
    means no base map, which is what works with no network.
host, port : where ``maillage serve`` listens (default 127.0.0.1:8000).
secret_key : signs the register's session tokens; set it for a shared deployment.
warm_up : compute the web interface's first view when the server starts, before it accepts
    connections (default true; ``MAILLAGE_WARM_UP=0`` starts at once with empty caches).
"""

from __future__ import annotations

from pathlib import Path

import platformdirs
from pydantic import model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_home() -> Path:
    """Per-user data folder used when ``MAILLAGE_HOME`` is not set."""
    return Path(platformdirs.user_data_dir("maillage", appauthor=False))


class Settings(BaseSettings):
    """Configuration of maillage; see the module docstring for every field."""

    model_config = SettingsConfigDict(env_prefix="MAILLAGE_", extra="ignore")

    home: Path = default_home()
    database: Path | None = None
    cache_dir: Path | None = None
    registry_url: str | None = None
    basemap_url: str = ""
    host: str = "127.0.0.1"
    port: int = 8000
    secret_key: str = "maillage-dev-secret-change-me"
    warm_up: bool = True

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        self.home = Path(self.home).expanduser()
        if self.database is None:
            self.database = self.home / "maillage.duckdb"
        if self.cache_dir is None:
            self.cache_dir = self.home / "cache"
        if self.registry_url is None:
            self.registry_url = f"sqlite:///{self.home / 'registry.sqlite'}"
        return self

    @property
    def database_path(self) -> Path:
        assert self.database is not None
        return Path(self.database)

    @property
    def cache_path(self) -> Path:
        assert self.cache_dir is not None
        return Path(self.cache_dir)
