"""Batches: every EPCI of a région, resumable through the manifest, failures reported."""

from __future__ import annotations

import json

import pytest

from maillage._errors import UnknownTerritory, ValidationError
from maillage.delivery.batch import epci_refs, read_manifest, run_batch
from maillage.delivery.exports import OutputError
from maillage.store import Store

TWO = ["epci:242900801", "epci:242900074"]


def test_epci_of_a_region(built_db):
    from maillage import reference

    with Store(built_db, read_only=True) as store:
        refs = epci_refs(store, "53")
        everything = epci_refs(store)
        with pytest.raises(UnknownTerritory, match="99"):
            epci_refs(store, "99")
    epci = reference.epci()
    assert len(refs) == int((epci["reg"].astype(str) == "53").sum())
    assert "epci:242900314" in refs
    assert len(everything) == len(epci)


def test_batch_is_resumable_and_reports_failures(built_db, tmp_path):
    seen = []
    out = tmp_path / "out"
    refs = [*TWO, "epci:000000000"]
    res = run_batch(built_db, refs, out, ["html", "xlsx"], progress=lambda *a: seen.append(a))
    assert res.done == TWO
    assert list(res.failed) == ["epci:000000000"]
    assert "000000000" in res.failed["epci:000000000"]
    assert [s[2] for s in seen] == [1, 2, 3]
    manifest = read_manifest(out)
    assert manifest["items"]["epci:000000000"]["status"] == "failed"
    for ref in TWO:
        entry = manifest["items"][ref]
        assert entry["status"] == "done"
        assert all((out / f).exists() for f in entry["files"])
    # again: the items done are skipped, the failure is retried
    again = run_batch(built_db, refs, out, ["html", "xlsx"])
    assert again.skipped == TWO and again.done == [] and list(again.failed) == ["epci:000000000"]
    # a missing file makes its item redone
    victim = out / manifest["items"][TWO[0]]["files"][0]
    victim.unlink()
    third = run_batch(built_db, TWO, out, ["html", "xlsx"])
    assert third.done == [TWO[0]] and third.skipped == [TWO[1]]
    assert victim.exists()
    assert not list(out.rglob(".part-*"))


def test_batch_in_two_worker_processes(built_db, tmp_path):
    res = run_batch(built_db, TWO, tmp_path, ["xlsx"], workers=2)
    assert sorted(res.done) == sorted(TWO) and not res.failed
    manifest = json.loads((tmp_path / "manifest.json").read_text("utf-8"))
    assert {k for k, v in manifest["items"].items() if v["status"] == "done"} == set(TWO)


def test_bad_formats_and_unwritable_folder(built_db, tmp_path):
    with pytest.raises(ValidationError, match="docx"):
        run_batch(built_db, TWO, tmp_path / "a", ["pdf", "docx"])
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot create"):
        run_batch(built_db, TWO, blocker / "out", ["xlsx"])
