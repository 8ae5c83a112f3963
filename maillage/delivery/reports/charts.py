"""Charts of the sheets (matplotlib, PNG): partners' flows both ways, a pair's flows, and the
position of a territory in its stratum. Numbers on axes and bars are set in French.

The figures drawn are exactly those of the tables beside them: every chart takes the frame or
the dict returned by the analysis functions and draws its columns, it computes nothing.
"""

from __future__ import annotations

import io
import textwrap
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from maillage.delivery.reports.maps import DPI, IN_COLOUR, OUT_COLOUR, SELF_COLOUR
from maillage.delivery.reports.typography import NBSP, number, percent


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight", facecolor="white")
    plt.close(fig)
    return buf.getvalue()


def _fr_axis(ax: Any, axis: str = "x") -> None:
    fmt = plt.FuncFormatter(lambda v, _: number(v))
    (ax.xaxis if axis == "x" else ax.yaxis).set_major_formatter(fmt)


def _style(ax: Any) -> None:
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.tick_params(labelsize=7)


def partners_chart(
    partners: pd.DataFrame, *, unit: str = "pers.", modelled: bool = False, width_in: float = 7.0
) -> bytes:
    """Horizontal bars: outgoing (F_PQ) and incoming (F_QP) flows of each partner."""
    df = partners.iloc[::-1]
    n = max(len(df), 1)
    fig, ax = plt.subplots(figsize=(width_in, 0.32 * n + 0.9))
    y = np.arange(len(df))
    h = 0.38
    suffix = f" ({unit}{', modélisé' if modelled else ''})"
    ax.barh(y + h / 2, df["out_value"], height=h, color=OUT_COLOUR, label="Sortants" + suffix)
    ax.barh(y - h / 2, df["in_value"], height=h, color=IN_COLOUR, label="Entrants" + suffix)
    ax.set_yticks(y, [textwrap.shorten(str(s), 42, placeholder="…") for s in df["partner_name"]])
    _fr_axis(ax)
    _style(ax)
    ax.legend(fontsize=7, frameon=False, loc="lower right")
    return _png(fig)


def pair_chart(
    a_name: str,
    b_name: str,
    a_to_b: float,
    b_to_a: float,
    *,
    unit: str = "pers.",
    modelled: bool = False,
    width_in: float = 6.5,
) -> bytes:
    """Two bars, A → B and B → A, labelled with their values."""
    fig, ax = plt.subplots(figsize=(width_in, 1.5))
    labels = [
        textwrap.shorten(f"{a_name} → {b_name}", 60, placeholder="…"),
        textwrap.shorten(f"{b_name} → {a_name}", 60, placeholder="…"),
    ]
    vals = [a_to_b, b_to_a]
    bars = ax.barh([1, 0], vals, color=[OUT_COLOUR, IN_COLOUR], height=0.6)
    ax.set_yticks([1, 0], labels)
    vmax = max(vals) if max(vals) > 0 else 1.0
    ax.set_xlim(0, vmax * 1.25)
    mark = " (modélisé)" if modelled else ""
    for bar, v in zip(bars, vals):
        ax.text(bar.get_width() + vmax * 0.01, bar.get_y() + bar.get_height() / 2,
                f"{number(v)}{NBSP}{unit}{mark}", va="center", fontsize=7)  # fmt: skip
    _fr_axis(ax)
    _style(ax)
    return _png(fig)


def stratum_chart(block: dict[str, Any], *, width_in: float = 7.0) -> bytes:
    """Position of the territory among its stratum for the share indicators.

    For each indicator of unit ``share`` of an ``indicators_for`` block: the interquartile
    range of the stratum (bar), its median (tick) and the territory's value (dot).
    """
    items = [i for i in block["indicators"] if i["unit"] == "share" and i["stratum"]["n"]]
    fig, ax = plt.subplots(figsize=(width_in, 0.45 * max(len(items), 1) + 0.7))
    for k, item in enumerate(reversed(items)):
        st = item["stratum"]
        ax.plot([st["q1"], st["q3"]], [k, k], color="#9fb3c8", lw=7, solid_capstyle="butt")
        ax.plot([st["median"]], [k], marker="|", color="#34495e", ms=14, mew=2)
        if item["value"] is not None:
            ax.plot([item["value"]], [k], marker="o", color=SELF_COLOUR, mec="#7a3e00", ms=8)
            ax.text(item["value"], k + 0.3, percent(item["value"]), ha="center", fontsize=7)
    ax.set_yticks(range(len(items)), [textwrap.shorten(i["label"], 48) for i in reversed(items)])
    ax.set_ylim(-0.6, len(items) - 0.3)
    ax.set_xlim(0, 1)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: percent(v, 0)))
    ax.plot([], [], color="#9fb3c8", lw=7, label="Quartiles de la strate (Q1–Q3)")
    ax.plot([], [], marker="|", ls="", color="#34495e", ms=10, mew=2, label="Médiane")
    ax.plot([], [], marker="o", ls="", color=SELF_COLOUR, mec="#7a3e00", label="Territoire")
    ax.legend(fontsize=6.5, frameon=False, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    _style(ax)
    return _png(fig)
