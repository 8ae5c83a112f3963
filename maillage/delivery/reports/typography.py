"""French typography for sheets and charts: numbers, percentages, punctuation spaces.

Rules (Imprimerie nationale, *Lexique des règles typographiques*):

- thousands are grouped by a narrow no-break space (U+202F): ``12 345``;
- the decimal separator is a comma: ``3,5``;
- a no-break space precedes ``%`` and units: ``43,2 %``, ``12 km``;
- a narrow no-break space precedes ``;`` ``!`` ``?`` and a no-break space (U+00A0)
  precedes ``:``; French quotes are ``« … »`` with no-break spaces inside.

:func:`fix_typography` applies the punctuation rules to the text of an HTML page (never to
tags, styles or scripts), so that names and labels coming from the data are set right too.
"""

from __future__ import annotations

import math
import re
from html import escape, unescape
from typing import Any

NBSP = "\u00a0"  # espace insécable
NNBSP = "\u202f"  # espace fine insécable

#: French names of the reliability classes of ``analysis.indicators.reliability``.
RELIABILITY_FR = {
    "modelled": "modélisé",
    "fragile": "fragile (< 200)",
    "caution": "à prendre avec précaution (< 500)",
    "reliable": "fiable",
    "n/a": "",
}
STATUS_FR = {"modelled": "modélisé", "observed": "observé"}


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def number(value: Any, decimals: int = 0, *, signed: bool = False, empty: str = "—") -> str:
    """``12345.6`` → ``12 346`` (narrow no-break space between thousands, decimal comma).

    >>> number(1234567.891, 1)
    '1\u202f234\u202f567,9'
    """
    if _missing(value):
        return empty
    v = float(value)
    if decimals == 0 and round(v) == 0:
        v = 0.0  # no "-0"
    text = f"{abs(v):,.{decimals}f}".replace(",", NNBSP).replace(".", ",")
    if v < 0 and text.strip("0,\u202f"):
        return "−" + text  # true minus sign
    if signed and v > 0 and text.strip("0,\u202f"):
        return "+" + text
    return text


def percent(share: Any, decimals: int = 1, *, empty: str = "—") -> str:
    """A share in [0, 1] as a French percentage: ``0.4321`` → ``43,2 %``."""
    if _missing(share):
        return empty
    return f"{number(100.0 * float(share), decimals)}{NNBSP}%"


def value_of(value: Any, unit: str) -> str:
    """Format an indicator value according to its unit (persons, share, index)."""
    if unit == "share":
        return percent(value)
    if unit == "index":
        return number(value, 1)
    return number(value, 0, signed=False)


def km(distance_m: float) -> str:
    """A distance in metres as ``12 km`` or ``500 m``."""
    if distance_m >= 1000:
        return f"{number(distance_m / 1000, 0 if distance_m >= 10_000 else 1)}{NBSP}km"
    return f"{number(distance_m)}{NBSP}m"


def reliability_fr(rel: str | None) -> str:
    """French label of a reliability class (``modelled`` → ``modélisé``)."""
    return RELIABILITY_FR.get(rel or "n/a", rel or "")


def stratum_fr(key: str) -> str:
    """A stratum key in words (the one definition lives in ``analysis.indicators``)."""
    from maillage.analysis.indicators import stratum_label

    return stratum_label(key)


_TAG = re.compile(r"(<[^>]*>)")
_SPACES = "[ \u00a0\u202f]*"
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(_SPACES + r"([;!?])"), NNBSP + r"\1"),
    (re.compile(r"(?<=\S)" + _SPACES + r":(?=\s|$)"), NBSP + ":"),
    (re.compile("«" + _SPACES), "«" + NBSP),
    (re.compile(_SPACES + "»"), NBSP + "»"),
    (re.compile(r"(?<=\d)[ \u00a0]%"), NNBSP + "%"),
)


def fix_text(text: str) -> str:
    """Apply the French punctuation spaces to plain text (no markup, no entities).

    >>> fix_text("Source : INSEE ; « flux » !") == (
    ...     "Source\u00a0: INSEE\u202f; «\u00a0flux\u00a0»\u202f!")
    True
    """
    for pattern, repl in _RULES:
        text = pattern.sub(repl, text)
    return text


def fix_typography(html: str) -> str:
    """Apply :func:`fix_text` to the text nodes of an HTML page (not to tags, CSS, scripts).

    Entities are decoded first and ``&``, ``<``, ``>`` escaped again, so ``&amp;`` never
    gains a space before its semicolon.
    """
    out: list[str] = []
    skip = False
    for piece in _TAG.split(html):
        if piece.startswith("<"):
            low = piece.lower()
            if low.startswith(("<style", "<script")):
                skip = True
            elif low.startswith(("</style", "</script")):
                skip = False
            out.append(piece)
        elif skip or not piece.strip():
            out.append(piece)
        else:
            out.append(escape(fix_text(unescape(piece)), quote=False))
    return "".join(out)
