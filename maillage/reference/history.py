"""Commune codes across COG vintages: map any commune code to the communes of the reference.

Two tables of passage ``old_code → code`` with a ``ratio`` (the share of the old commune's
counts given to ``code``; the ratios of one old code sum to 1):

- the embedded one, :func:`history`, from the npm reference: former codes of merged communes
  (``anciensCodes``), delegated and associated communes, and municipal arrondissements
  (ARM → 75056/69123/13055). All ratios are 1. It holds no split: a split (``rétablissement``)
  usually gives back old codes while the original code stays current, so it depends on the
  vintage of the input codes.
- one built from an INSEE movements file for a given input vintage, :func:`load_insee_movements`,
  which adds code changes and splits (ratio = population share in the reference).

:func:`harmonise_codes` applies them and says what happened to each code.
"""

from __future__ import annotations

import csv
import re
from collections import defaultdict
from pathlib import Path

import pandas as pd

from maillage._errors import SourceError
from maillage._schema import ABROAD
from maillage.reference.communes import _read

#: Foreign work-place codes of INSEE files: AL (Allemagne), BE, SU (Suisse), LU, MO (Monaco)
#: followed by 3 characters, ``ZZZZZ`` (other foreign place), and INSEE country codes 99xxx.
ABROAD_PATTERN = re.compile(r"^(?:(?:AL|BE|SU|LU|MO)[0-9A-Z]{3}|ZZZZZ|99\d{3})$")

#: Movement codes (``MOD``) of the INSEE movements file that change the commune of a code.
MOD_SPLIT = {"21"}
MOD_MERGE = {"31", "32", "33", "34"}
MOD_CODE_CHANGE = {"41", "50"}
MOVEMENT_COLUMNS = ("MOD", "DATE_EFF", "TYPECOM_AV", "COM_AV", "TYPECOM_AP", "COM_AP")

_KIND_RANK = {"code_change": 1, "merged": 2, "split": 3}


def history() -> pd.DataFrame:
    """The embedded passage table ``old_code, code, ratio, kind``.

    ``kind`` ∈ {'merged', 'delegated', 'associated', 'arrondissement'}; one row per old code,
    ``ratio`` is 1.0. Old codes are never current communes of the reference.
    """
    return _read("history").copy()


def normalise_code(code: object) -> str:
    """Clean one input code: strip, upper-case ("2a004" → "2A004"), restore a lost leading
    zero on 4-digit codes ("1001" → "01001")."""
    text = str(code).strip().upper()
    if text.endswith(".0") and text[:-2].isdigit():  # codes read as floats by a spreadsheet
        text = text[:-2]
    if len(text) == 4 and text.isdigit():
        text = "0" + text
    return text


def is_abroad(code: str) -> bool:
    """True for codes of places outside France (``99999``, ``BE110``, ``99134``, ``ZZZZZ``)."""
    return code == ABROAD or bool(ABROAD_PATTERN.match(code))


def harmonise_codes(
    codes: pd.Series | list[str], passage: pd.DataFrame | None = None
) -> pd.DataFrame:
    """Map commune codes of any vintage to the communes of the reference.

    Parameters
    ----------
    codes : commune codes (strings; 4-digit codes get their leading zero back).
    passage : optional table ``old_code, code, ratio`` built for the vintage of ``codes`` by
        :func:`load_insee_movements`; its rows win over everything else for the codes it lists.

    Returns
    -------
    DataFrame with one row per (distinct input code, reference code) and columns
    ``input_code`` (as given), ``code``, ``ratio``, ``status``:

    - 'ok': already a commune of the reference (``code`` = input, ratio 1);
    - 'mapped': a former, delegated or associated commune, a municipal arrondissement, or a
      code in ``passage`` (a split gives several rows whose ratios sum to 1);
    - 'abroad': a place outside France (``code`` = '99999');
    - 'unknown': anything else (``code`` is missing).

    The ratios of each input code sum to 1, so multiplying counts by ``ratio`` and summing by
    ``code`` conserves totals.
    """
    inputs = pd.Series(pd.unique(pd.Series(codes, dtype="str").dropna()), dtype="str")
    clean = inputs.map(normalise_code)
    current = set(_read("communes").query("type == 'COM'")["code"])
    embedded = _read("history").set_index("old_code")["code"]
    extra: dict[str, list[tuple[str, float]]] = defaultdict(list)
    if passage is not None:
        for old, new, ratio in passage[["old_code", "code", "ratio"]].itertuples(index=False):
            extra[old].append((new, float(ratio)))
    rows = []
    for raw, code in zip(inputs, clean, strict=True):
        if code in extra:
            targets = extra[code]
            identity = len(targets) == 1 and targets[0][0] == code
            for new, ratio in targets:
                status = "ok" if identity else "mapped"
                if new not in current:
                    new, status = (
                        embedded.get(new),
                        "mapped" if new in embedded.index else "unknown",
                    )
                rows.append((raw, new, ratio, status))
        elif code in current:
            rows.append((raw, code, 1.0, "ok"))
        elif code in embedded.index:
            rows.append((raw, embedded[code], 1.0, "mapped"))
        elif is_abroad(code):
            rows.append((raw, ABROAD, 1.0, "abroad"))
        else:
            rows.append((raw, None, 1.0, "unknown"))
    out = pd.DataFrame(rows, columns=["input_code", "code", "ratio", "status"], dtype=object)
    out = out.groupby(["input_code", "code", "status"], dropna=False, sort=False, as_index=False)
    out = out["ratio"].sum()
    out["ratio"] = out["ratio"].astype("float64")
    out = out.astype({"input_code": "str", "code": "str", "status": "str"})
    return out[["input_code", "code", "ratio", "status"]]


# ---------------------------------------------------------------------------------------------
# INSEE movements file


def read_insee_movements(path: str | Path) -> pd.DataFrame:
    """Read an INSEE COG movements file (``v_mvt_commune_2025.csv`` layout) as published.

    Comma-separated, UTF-8 (a BOM is accepted), header ``MOD,DATE_EFF,TYPECOM_AV,COM_AV,…,
    TYPECOM_AP,COM_AP,…``. Every value is kept as a string.

    Raises
    ------
    SourceError naming the file, line and column of the first problem (missing column, bad
    date, malformed code).
    """
    path = Path(path)
    with path.open(encoding="utf-8-sig", newline="") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            raise SourceError(
                "empty file; expected an INSEE movements CSV", path=str(path)
            ) from None
        missing = [c for c in MOVEMENT_COLUMNS if c not in header]
        if missing:
            raise SourceError(
                f"missing column(s) {', '.join(missing)}; expected the INSEE movements layout "
                f"({','.join(MOVEMENT_COLUMNS)}, …), comma-separated",
                path=str(path),
                line=1,
                column=missing[0],
            )
        pos = {c: header.index(c) for c in MOVEMENT_COLUMNS}
        rows = []
        for line, record in enumerate(reader, start=2):
            if not record:
                continue
            if len(record) != len(header):
                raise SourceError(
                    f"{len(record)} fields instead of {len(header)}", path=str(path), line=line
                )
            row = {c: record[i].strip() for c, i in pos.items()}
            _check_movement(row, path, line)
            rows.append(row)
    return pd.DataFrame(rows, columns=list(MOVEMENT_COLUMNS), dtype="str")


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CODE = re.compile(r"^(?:\d{5}|2[AB]\d{3}|97\d{3})$")


def _check_movement(row: dict[str, str], path: Path, line: int) -> None:
    """Raise SourceError on a malformed movement row."""
    if not row["MOD"].isdigit():
        raise SourceError(
            f"MOD {row['MOD']!r} is not a movement code", path=str(path), line=line, column="MOD"
        )
    if not _DATE.match(row["DATE_EFF"]):
        raise SourceError(
            f"DATE_EFF {row['DATE_EFF']!r} is not a date YYYY-MM-DD",
            path=str(path),
            line=line,
            column="DATE_EFF",
        )
    for column in ("COM_AV", "COM_AP"):
        if not _CODE.match(row[column]):
            raise SourceError(
                f"{column} {row[column]!r} is not a commune code",
                path=str(path),
                line=line,
                column=column,
            )


def load_insee_movements(path: str | Path, since: int) -> pd.DataFrame:
    """Passage table from the commune codes of COG ``since`` to the reference, built from an
    INSEE movements file.

    Parameters
    ----------
    path : the movements file (``v_mvt_commune_2025.csv`` layout, see
        :func:`read_insee_movements`).
    since : COG vintage of the codes to harmonise (the COG of 1 January ``since``); the events
        effective after 1 January ``since`` are applied, in date order.

    Returns
    -------
    DataFrame ``old_code, code, ratio, kind`` for every code of COG ``since`` whose commune
    changed, to pass as ``passage`` to :func:`harmonise_codes`. ``kind`` is 'merged' (MOD 31–34),
    'code_change' (41, 50) or 'split' (21, strongest kind along the chain wins).

    Notes
    -----
    Only rows with ``TYPECOM_AV == TYPECOM_AP == 'COM'`` are used. For a merger every absorbed
    commune has a row ``COM_AV → COM_AP`` (new commune). For a split (rétablissement) the
    commune before the split has one row per resulting commune, itself included; its counts
    are then shared in proportion to the reference populations of the resulting communes,
    :math:`r_j = P_j / \\sum_k P_k` (equal shares if no population is known), except that a
    code of COG ``since`` merged with other communes after ``since`` and then re-established
    gets all its counts back (a re-established commune usually recovers its former outline).
    Resulting codes no longer current in the reference are followed through :func:`history`.
    """
    moves = read_insee_movements(path)
    useful = MOD_SPLIT | MOD_MERGE | MOD_CODE_CHANGE
    moves = moves[
        moves["MOD"].isin(useful)
        & (moves["TYPECOM_AV"] == "COM")
        & (moves["TYPECOM_AP"] == "COM")
        & (moves["DATE_EFF"] > f"{int(since):04d}-01-01")
    ]
    population = _reference_population()
    embedded = _read("history").set_index("old_code")["code"]

    def weight(code: str) -> float:
        return float(population.get(embedded.get(code, code), 0) or 0)

    # state: code of COG `since` → {current code: (ratio, kind)}
    state: dict[str, dict[str, tuple[float, str]]] = {}
    # codes of COG `since` merged with other communes after `since` (they can be re-established)
    absorbed: set[str] = set()
    for _date, step in moves.sort_values("DATE_EFF", kind="stable").groupby("DATE_EFF", sort=True):
        targets: dict[str, set[str]] = defaultdict(set)
        kinds: dict[str, str] = {}
        for mod, av, ap in step[["MOD", "COM_AV", "COM_AP"]].itertuples(index=False):
            targets[av].add(ap)
            kind = "split" if mod in MOD_SPLIT else "merged" if mod in MOD_MERGE else "code_change"
            if _KIND_RANK[kind] > _KIND_RANK.get(kinds.get(av, ""), 0):
                kinds[av] = kind
        for av in targets:
            state.setdefault(av, {av: (1.0, "")})
        fan_in: dict[str, int] = defaultdict(int)
        for av, aps_of_av in targets.items():
            if kinds[av] == "merged":
                for ap in aps_of_av:
                    fan_in[ap] += 1
        for origin, current in list(state.items()):
            new: dict[str, tuple[float, str]] = {}
            for code, (ratio, kind) in current.items():
                if code not in targets:
                    _add(new, code, ratio, kind)
                    continue
                aps = sorted(targets[code])
                weights = [weight(a) for a in aps]
                total = sum(weights)
                shares = [w / total for w in weights] if total > 0 else [1 / len(aps)] * len(aps)
                step_kind = kinds[code] if aps != [code] else kind
                if origin in aps and origin in absorbed and kinds[code] == "split":
                    # the origin's own commune is re-established: it gets its counts back
                    _add(new, origin, ratio, "split")
                    continue
                for ap, share in zip(aps, shares, strict=True):
                    if share > 0:
                        _add(new, ap, ratio * share, _stronger(kind, step_kind))
                if kinds[code] == "merged" and any(fan_in[ap] > 1 for ap in aps):
                    absorbed.add(origin)
            state[origin] = new
    rows = [
        (origin, code, ratio, kind or "merged")
        for origin, current in sorted(state.items())
        if set(current) != {origin}
        for code, (ratio, kind) in sorted(current.items())
    ]
    return pd.DataFrame(rows, columns=["old_code", "code", "ratio", "kind"])


def _add(acc: dict[str, tuple[float, str]], code: str, ratio: float, kind: str) -> None:
    """Accumulate ``ratio`` on ``code`` keeping the strongest kind."""
    old_ratio, old_kind = acc.get(code, (0.0, ""))
    acc[code] = (old_ratio + ratio, _stronger(old_kind, kind))


def _stronger(a: str, b: str) -> str:
    """The stronger of two kinds (split > merged > code_change > '')."""
    return a if _KIND_RANK.get(a, 0) >= _KIND_RANK.get(b, 0) else b


def _reference_population() -> dict[str, int]:
    """Population of each commune of the reference (missing → 0)."""
    com = _read("communes")
    com = com[com["type"] == "COM"]
    return dict(zip(com["code"], com["population"].fillna(0).astype(int), strict=True))
