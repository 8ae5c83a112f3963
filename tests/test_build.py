"""Building the observatory and importing INSEE files end to end (real reference, real store)."""

from __future__ import annotations

import threading
import zipfile
from pathlib import Path

import pytest

from maillage._errors import SourceError, StoreError
from maillage.analysis import flows as fl
from maillage.analysis import indicators as ind
from maillage.analysis.territories import resolve
from maillage.build import import_flows
from maillage.store import Store

DATA = Path(__file__).parent / "data" / "build"
FLUX = DATA / "base-flux-mobilite-domicile-lieu-travail-2021.csv"


def _rows() -> list[tuple[str, str, float]]:
    lines = FLUX.read_text("utf-8").splitlines()[1:]
    out = []
    for line in lines:
        c = line.split(";")
        out.append((c[0], c[2], float(c[4])))
    return out


def test_import_maps_arrondissements_mergers_and_flags(store):
    rep = import_flows(store, FLUX)
    assert rep.kind == "commute" and rep.vintage == 2021
    assert rep.rows_read == len(_rows())
    total = sum(v for _, _, v in _rows())
    # nothing is lost: the stored total equals the file's total
    assert store.scalar("SELECT sum(value) FROM flow") == pytest.approx(total)
    # Paris arrondissements are folded into 75056: ARM→ARM flows become internal to Paris
    paris = store.scalar("SELECT value FROM flow WHERE origin = '75056' AND destination = '75056'")
    assert paris == pytest.approx(300.5 + 120.25 + 500.0)
    # the commune merged in 2017 lands on 29021 and is summed with it
    merged = store.scalar("SELECT value FROM flow WHERE origin = '29021' AND destination = '29019'")
    assert merged == pytest.approx(55.5 + 20.0)
    flags = dict(
        store.con.execute(
            "SELECT flag, sum(value) FROM flow WHERE flag IS NOT NULL GROUP BY 1"
        ).fetchall()
    )
    assert flags == {"abroad": pytest.approx(12.0), "unknown": pytest.approx(4.0)}
    assert rep.rows_abroad == 1 and rep.rows_unknown == 1
    assert "29999" in rep.unknown_codes


def test_import_is_idempotent(store):
    first = import_flows(store, FLUX)
    n = store.scalar("SELECT count(*) FROM flow")
    second = import_flows(store, FLUX)
    assert second.skipped and second.import_id == first.import_id
    assert store.scalar("SELECT count(*) FROM flow") == n
    assert store.scalar("SELECT count(*) FROM import_log") == 1


def test_failed_import_leaves_store_intact(store, tmp_path):
    import_flows(store, FLUX)
    before = store.df("SELECT * FROM flow ORDER BY origin, destination")
    bad = tmp_path / "base-flux-mobilite-domicile-lieu-travail-2021.csv"
    text = FLUX.read_text("utf-8").replace("3500.500000", "3500,5x")
    bad.write_text(text, "utf-8")
    with pytest.raises(SourceError) as err:
        import_flows(store, bad)
    assert "line 3" in str(err.value) and "NBFLUX_C21_ACTOCC15P" in str(err.value)
    after = store.df("SELECT * FROM flow ORDER BY origin, destination")
    assert before.equals(after)


def test_truncated_zip_is_refused_and_store_unchanged(store, tmp_path):
    z = tmp_path / "base-flux-mobilite-domicile-lieu-travail-2021-csv.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(FLUX, FLUX.name)
    data = z.read_bytes()
    z.write_bytes(data[: len(data) // 2])
    with pytest.raises(SourceError):
        import_flows(store, z)
    assert store.scalar("SELECT count(*) FROM flow") == 0


def test_zip_as_published_gives_same_flows(store, tmp_path):
    z = tmp_path / "base-flux-mobilite-domicile-lieu-travail-2021-csv.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(FLUX, FLUX.name)
    import_flows(store, z)
    assert store.scalar("SELECT sum(value) FROM flow") == pytest.approx(
        sum(v for _, _, v in _rows())
    )


def test_indicators_after_import_match_the_file(store):
    import_flows(store, FLUX)
    # Brest commune: residents = every row with CODGEO 29019
    rows = _rows()
    r_brest = sum(v for o, _, v in rows if o == "29019")
    e_brest = sum(v for _, d, v in rows if d == "29019")
    m = ind.margins(store, "commune", "commute", code="29019").loc["29019"]
    assert m["origin_total"] == pytest.approx(r_brest)
    assert m["destination_total"] == pytest.approx(e_brest)
    # Brest Métropole holds Brest and Guipavas: their mutual flows are internal
    m = ind.margins(store, "epci", "commute", code="242900314").loc["242900314"]
    internal = sum(v for o, d, v in rows if o in {"29019", "29075"} and d in {"29019", "29075"})
    assert m["internal"] == pytest.approx(internal)
    p = fl.partners(store, "epci:242900314", "commute", top=None)
    assert p["status"].eq("observed").all()
    assert "!abroad" in set(p["partner_code"])


def test_observed_import_replaces_modelled(built_store):
    assert built_store.current("commute") == (2023, "modelled")
    before = fl.partners(built_store, "epci:242900314", "commute", top=3)  # memoised tables
    assert set(before["status"]) == {"modelled"}
    import_flows(built_store, FLUX)
    assert built_store.current("commute") == (2021, "observed")
    assert built_store.scalar("SELECT count(*) FROM flow WHERE status = 'modelled'") == 0
    # the import is a write: what was memoised on the modelled flows is not served any more
    after = fl.partners(built_store, "epci:242900314", "commute", top=None)
    assert set(after["status"]) == {"observed"}
    leaving = built_store.scalar(
        """WITH m AS (SELECT commune FROM membership WHERE level = 'epci' AND code = '242900314')
           SELECT sum(value) FROM flow WHERE origin IN (SELECT commune FROM m)
             AND destination NOT IN (SELECT commune FROM m)"""
    )
    assert leaving > 0
    assert after["out_value"].sum() == pytest.approx(leaving)


# -- the store's memo --------------------------------------------------------------------------


def test_memo_computes_once_per_key_until_a_write(store):
    calls = []
    version = store.data_version
    assert store.memo(("k",), lambda: calls.append(1) or len(calls)) == 1
    assert store.memo(("k",), lambda: calls.append(1) or len(calls)) == 1
    assert store.peek(("k",)) == 1 and store.peek(("other",)) is None
    with store.transaction():
        pass
    assert store.data_version > version
    assert store.peek(("k",)) is None
    assert store.memo(("k",), lambda: calls.append(1) or len(calls)) == 2


def test_memo_callers_of_one_key_wait_for_the_first_computation(store):
    started, release = threading.Event(), threading.Event()
    calls = []

    def slow() -> str:
        calls.append("slow")
        started.set()
        release.wait(30)
        return "first"

    results = {}
    a = threading.Thread(target=lambda: results.update(a=store.memo(("k",), slow)))
    a.start()
    assert started.wait(30)
    b = threading.Thread(
        target=lambda: results.update(b=store.memo(("k",), lambda: calls.append("b") or "b"))
    )
    b.start()
    b.join(0.5)  # b is waiting on the key, not computing it again
    release.set()
    a.join(30)
    b.join(30)
    assert calls == ["slow"]
    assert results == {"a": "first", "b": "first"}


def test_memo_drops_a_result_computed_while_a_write_landed(store):
    started, release = threading.Event(), threading.Event()

    def stale() -> str:
        started.set()
        release.wait(30)
        return "before the write"

    results = []
    t = threading.Thread(target=lambda: results.append(store.memo(("k",), stale)))
    t.start()
    assert started.wait(30)
    with store.transaction():
        pass
    release.set()
    t.join(30)
    assert results == ["before the write"]  # its caller gets it…
    assert store.peek(("k",)) is None  # …but it is not kept for the next ones
    assert store.memo(("k",), lambda: "after the write") == "after the write"


def test_default_model_is_complete_and_labelled(built_store):
    """Every commune of the reference sends modelled commuters; all rows are 'modelled'."""
    n_com = built_store.scalar(
        "SELECT count(*) FROM territory WHERE level = 'commune' AND population > 0"
    )
    n_orig = built_store.scalar("SELECT count(DISTINCT origin) FROM flow")
    assert n_orig == n_com
    assert built_store.scalar("SELECT count(*) FROM flow WHERE status <> 'modelled'") == 0
    p = ind.indicators_for(built_store, resolve(built_store, "epci:242900314"), "commute")
    assert p["meta"]["status"] == "modelled"
    sc = next(i for i in p["indicators"] if i["name"] == "self_containment")["value"]
    assert 0.0 < sc < 1.0


def test_queries_on_empty_store_explain_what_to_do(tmp_path):
    with Store(tmp_path / "empty.duckdb") as s, pytest.raises(StoreError, match="maillage build"):
        s.require_built()
