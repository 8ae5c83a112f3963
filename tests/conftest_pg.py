"""Fixtures for the register's tests: a throwaway PostgreSQL server and both backends.

Import the fixtures in a test module with ``from conftest_pg import *``-style explicit imports.

``pg_server`` starts a real PostgreSQL (``initdb`` + ``pg_ctl`` of the Debian package
postgresql-15, found under ``/usr/lib/postgresql/*/bin``) in a temporary folder, listening on
127.0.0.1 and a unix socket in that folder only, and stops it at the end of the session. The
server refuses to run as root: when the tests run as root, the commands run as the
``postgres`` user through ``runuser``. When no server binary is found the PostgreSQL tests are
skipped with the reason, unless ``MAILLAGE_REQUIRE_PG=1`` (set in CI), which turns the skip
into a failure.

``registry_url`` is parametrised over ``sqlite`` and ``postgresql``: each test gets a fresh
database (a file for SQLite, a new database on the shared server for PostgreSQL).
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

_counter = itertools.count()


def _pg_bin() -> Path | None:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        folder = Path(candidate)
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    found = shutil.which("pg_ctl")
    return Path(found).parent if found and shutil.which("initdb") else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _as_server_user(args: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *args]
    return args


class PgServer:
    """A running throwaway server; :meth:`new_database` gives a fresh database URL."""

    def __init__(self, bindir: Path) -> None:
        self.bindir = bindir
        self.root = Path(tempfile.mkdtemp(prefix="maillage-pg-"))
        self.data = self.root / "data"
        self.port = _free_port()
        if os.geteuid() == 0:
            shutil.chown(self.root, user="postgres", group="postgres")
        os.chmod(self.root, 0o755)

    def _run(self, *args: str) -> None:
        result = subprocess.run(
            _as_server_user([str(a) for a in args]), capture_output=True, text=True, check=False
        )
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stdout}\n{result.stderr}")

    def start(self) -> None:
        self._run(
            self.bindir / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
            "-E", "UTF8", "--locale=C", "--no-sync",
        )  # fmt: skip
        options = (
            f"-k {self.root} -p {self.port} -c listen_addresses=127.0.0.1 -F "
            "-c fsync=off -c full_page_writes=off"
        )
        self._run(
            self.bindir / "pg_ctl", "-D", self.data, "-o", options, "-l", self.root / "log", "-w",
            "start",
        )  # fmt: skip

    def stop(self) -> None:
        try:
            self._run(self.bindir / "pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        import psycopg

        name = f"t{os.getpid()}_{next(_counter)}"
        with psycopg.connect(
            host="127.0.0.1", port=self.port, user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """A throwaway PostgreSQL server for the whole session (see the module docstring)."""
    bindir = _pg_bin()
    if bindir is None:
        reason = (
            "PostgreSQL server binaries (initdb, pg_ctl) not found; "
            "install them with `apt-get install -y postgresql`"
        )
        if os.environ.get("MAILLAGE_REQUIRE_PG") == "1":
            pytest.fail(reason + " (MAILLAGE_REQUIRE_PG=1)")
        pytest.skip(reason)
    server = PgServer(bindir)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def registry_url(request, tmp_path) -> str:
    """URL of a fresh, empty register on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.sqlite'}"
    server = request.getfixturevalue("pg_server")
    return server.new_database()


@pytest.fixture
def engine(registry_url):
    """Engine on a fresh register, schema migrated."""
    from maillage.cooperations.db import open_registry

    eng = open_registry(registry_url)
    yield eng
    eng.dispose()


@pytest.fixture
def sessions(engine):
    """Session factory on the fresh register."""
    from maillage.cooperations.db import session_factory

    return session_factory(engine)


@pytest.fixture(scope="session")
def reference_index():
    """Index of ``maillage.reference`` + shipped perimeters (built once)."""
    from maillage.cooperations._reference import default_index

    return default_index()


@pytest.fixture
def editor(sessions):
    """An admin (first user, bootstrap) and an editor; returns the editor."""
    from maillage.cooperations.auth import add_user

    with sessions() as s, s.begin():
        admin = add_user(s, "alice", "alice-password", "admin")
        add_user(s, "bob", "bob-password", "editor", by=admin)
        add_user(s, "carol", "carol-password", "reader", by=admin)
    with sessions() as s:
        from maillage.cooperations.auth import authenticate

        return authenticate(s, "bob", "bob-password")
