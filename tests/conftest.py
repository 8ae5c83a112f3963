"""Shared fixtures: stores holding the real embedded reference, built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from maillage.store import Store

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def reference_db(tmp_path_factory) -> Path:
    """A store file holding the real reference and perimeters, no flows."""
    from maillage.build import load_reference

    path = tmp_path_factory.mktemp("ref") / "reference.duckdb"
    with Store(path) as store:
        load_reference(store)
    return path


@pytest.fixture(scope="session")
def built_db(tmp_path_factory, reference_db) -> Path:
    """A store file built exactly as `maillage build` does: reference + default model."""
    from maillage.build import build

    path = tmp_path_factory.mktemp("built") / "maillage.duckdb"
    shutil.copy(reference_db, path)
    with Store(path) as store:
        build(store)
    return path


@pytest.fixture()
def store(reference_db, tmp_path):
    """A writable copy of the reference store."""
    path = tmp_path / "maillage.duckdb"
    shutil.copy(reference_db, path)
    s = Store(path)
    yield s
    s.close()


@pytest.fixture()
def built_store(built_db, tmp_path):
    """A writable copy of the built store (reference + modelled commuting)."""
    path = tmp_path / "maillage.duckdb"
    shutil.copy(built_db, path)
    s = Store(path)
    yield s
    s.close()


def shared_data(*parts: str) -> Path:
    """A file of ../shared/data, or a skip when this checkout has none beside it."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"real extract {path} not available in this environment")
    return path
