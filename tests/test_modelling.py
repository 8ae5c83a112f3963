"""Models and functional territories run on the observatory's flows (real reference)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from maillage.analysis import modelling
from maillage.cli import app


def test_fit_report_on_a_departement(built_store):
    df = modelling.fit_report(
        built_store, level="epci", scope="dep:29", laws=("GravExp", "Rad"), models=("PCM", "DCM")
    )
    assert len(df) == 4
    assert df["cpc"].between(0, 1).all() and df["cpc_ge100"].between(0, 1).all()
    assert (df["nrmse"] >= 0).all()
    assert set(df["observed_status"]) == {"modelled"}  # the embedded default
    # the default flows come from an exponential gravity model: it must fit best
    assert df.iloc[0]["law"] == "GravExp"


def test_observed_pairs_stay_in_scope(built_store):
    pairs, units, _ = modelling.observed_pairs(
        built_store, "commute", "commune", scope=modelling.resolve(built_store, "dep:29")
    )
    assert units["code"].str.startswith("29").all()
    assert pairs["origin"].str.startswith("29").all()
    assert np.array_equal(units["code"].to_numpy()[pairs["i"]], pairs["origin"].to_numpy())


def test_ties_of_a_territory_are_labelled_modelled(built_store):
    df = modelling.ties(built_store, level="epci", scope="dep:29", ref="epci:242900314", top=None)
    assert ((df["origin"] == "242900314") | (df["destination"] == "242900314")).all()
    assert set(df["expected_status"]) == {"modelled"}
    ok = df[df["flag"] == "ok"]
    assert np.allclose(ok["pearson"], (ok["observed"] - ok["expected"]) / np.sqrt(ok["expected"]))


def test_aav_around_brest(built_store):
    areas = modelling.delineate(built_store, "aav", scope="dep:29", poles=["com:29019"])
    assert areas.loc["29019"] == "29019"
    # Guipavas, next to Brest, sends far more than 15 % of its workers to Brest in the model
    assert areas.get("29075") == "29019"
    cmp = modelling.compare(built_store, areas)
    assert len(cmp.areas) == 1


def test_cli_model_fit_json(built_db, tmp_path, monkeypatch):
    shutil.copy(built_db, tmp_path / "maillage.duckdb")
    monkeypatch.setenv("MAILLAGE_HOME", str(tmp_path))
    res = CliRunner().invoke(
        app,
        [
            "model",
            "fit",
            "--level",
            "epci",
            "--scope",
            "dep:29",
            "--law",
            "GravExp",
            "--model",
            "DCM",
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)
    assert rows[0]["law"] == "GravExp" and 0 < rows[0]["cpc"] <= 1


def test_too_large_dense_fit_is_refused(built_store):
    with pytest.raises(modelling.ModelError, match="too many"):
        modelling.fit_report(built_store, level="commune", laws=("GravExp",), models=("DCM",))


def test_fit_by_region_one_block_per_region(built_store):
    df = modelling.fit_by_region(
        built_store, level="departement", laws=("GravExp",), models=("DCM",)
    )
    # every région of metropolitan France has at least three départements; the DROM do not
    assert {"53", "84", "11"} <= set(df["region"])
    assert not set(df["region"]) & {"01", "02", "03", "04", "06"}
    assert df.groupby("region").size().eq(1).all()
    assert df["cpc"].between(0, 1).all()
