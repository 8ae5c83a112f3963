"""Files to reuse: a territory's indicators and partner flows as CSV, with a provenance file.

Every CSV is UTF-8 (with BOM so that Excel opens accents right), comma-separated, one header
row; the columns are documented in ``docs/exports.md``. Files are written under a temporary name
and renamed at the end, so an interrupted export never leaves a file that looks complete.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from maillage import __version__
from maillage.analysis.flows import partners
from maillage.analysis.indicators import profile

if TYPE_CHECKING:
    from maillage.store import Store


def _atomic_write_csv(df: pd.DataFrame, path: Path) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".part-", suffix=".csv", dir=path.parent)
    os.close(fd)
    try:
        df.to_csv(tmp, index=False, encoding="utf-8-sig")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def indicators_frame(prof: dict) -> pd.DataFrame:
    """One row per (kind, indicator) with value, status and stratum statistics."""
    rows = []
    for kind, block in prof["kinds"].items():
        for ind in block["indicators"]:
            st = ind["stratum"]
            rows.append(
                {
                    "territory_ref": prof["territory"]["ref"],
                    "territory_name": prof["territory"]["name"],
                    "kind": kind,
                    "indicator": ind["name"],
                    "label_fr": ind["label"],
                    "unit": ind["unit"],
                    "value": ind["value"],
                    "status": ind["status"],
                    "reliability": ind["reliability"],
                    "stratum": block["stratum"],
                    "stratum_n": st["n"],
                    "stratum_mean": st["mean"],
                    "stratum_median": st["median"],
                    "stratum_q1": st["q1"],
                    "stratum_q3": st["q3"],
                    "rank_in_stratum": st["rank"],
                    "source": block["meta"]["source"],
                    "vintage": block["meta"]["vintage"],
                }
            )
    return pd.DataFrame(rows)


def export_csv(
    store: Store,
    ref: str,
    folder: str | Path,
    *,
    kinds: list[str] | None = None,
    top: int | None = None,
) -> list[Path]:
    """Write ``<slug>_indicators.csv``, ``<slug>_partners_<kind>.csv`` and a provenance JSON."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    prof = profile(store, ref, kinds=kinds)
    t = prof["territory"]
    slug = t["ref"].replace(":", "_")
    written: list[Path] = []
    path = folder / f"{slug}_indicators.csv"
    _atomic_write_csv(indicators_frame(prof), path)
    written.append(path)
    for kind in prof["kinds"]:
        df = partners(store, t["ref"], kind, top=top)
        df.insert(0, "kind", kind)
        df.insert(0, "territory_ref", t["ref"])
        path = folder / f"{slug}_partners_{kind}.csv"
        _atomic_write_csv(df, path)
        written.append(path)
    prov = {
        "territory": t,
        "generated_at": dt.datetime.now().isoformat(timespec="seconds"),
        "software": f"maillage {__version__}",
        "sources": {k: b["meta"] for k, b in prof["kinds"].items()},
        "note": "Les chiffres de statut 'modelled' sont estimés par un modèle, pas observés.",
        "files": [p.name for p in written],
    }
    path = folder / f"{slug}_provenance.json"
    tmp = path.with_suffix(".part")
    tmp.write_text(json.dumps(prov, ensure_ascii=False, indent=2, default=str), "utf-8")
    os.replace(tmp, path)
    written.append(path)
    return written
