"""One-pass numba reader of the Sirene establishments stock into typed numpy columns.

:func:`scan_establishments` reads the CSV in large blocks (so the resident memory stays one
block, whatever the file size) and, in one pass over the bytes, splits RFC-4180 records
(``,`` separator, ``"`` quotes with ``""`` inside, LF or CRLF line ends, quoted commas and
line breaks) and turns the nine fields the importer uses into the columns of the typed
table of :func:`maillage.sources.sirene._etab_select`: SIRET as an integer, place id
(a dictionary of place codes), head-office, active and state flags, headcount-band index,
NAF section letter and treatment date.

The kernel only decides the values whose meaning is unambiguous byte by byte (a SIRET is 14
ASCII digits, a band one of the listed codes, ...). A row whose place or date is written in
another way (spaces around a code, non-ASCII bytes, a doubled quote, a code longer than 8
bytes, a date not ``AAAA-MM-JJ``) is marked *odd*: the caller re-reads those few rows with
Python's csv module and computes their values with the very SQL of the DuckDB path, so the
typed table is the same as DuckDB's, row for row.

Whatever the kernel does not accept as strict RFC-4180 with the header's number of fields (a
short or long row, a quote inside an unquoted field, text after a closing quote, a lone CR,
an empty line) stops the scan with :data:`STRUCTURE`: the caller then reads the file with
DuckDB, whose reject table names the malformed lines (nothing is imported).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numba as nb
import numpy as np

#: Bytes read per block (plus the tail of a record cut by the previous block).
BLOCK = 1 << 26
#: Kernel status: the block ends inside a record (read more, resume at ``pos``).
NEED_DATA = 0
#: Kernel status: an output array is full (grow it, resume at ``pos``).
FULL = 1
#: Kernel status: the file is not strict RFC-4180 with the header's field count.
STRUCTURE = 2
#: Kernel status: the whole buffer was read and it was the end of the file.
DONE = 3

#: Fields read, in slot order (the kernel's ``slot_of_column`` maps a column to its slot).
FIELDS: tuple[str, ...] = (
    "siret",
    "codeCommuneEtablissement",
    "codePaysEtrangerEtablissement",
    "etablissementSiege",
    "etatAdministratifEtablissement",
    "trancheEffectifsEtablissement",
    "activitePrincipaleEtablissement",
    "nomenclatureActivitePrincipaleEtablissement",
    "dateDernierTraitementEtablissement",
)
_SIRET, _COMMUNE, _PAYS, _SIEGE, _ETAT, _BAND, _ACTIVITY, _NOMENCLATURE, _TREATED = range(9)

#: Places table: open addressing over 8-byte keys, 2**17 slots to begin with (small enough
#: to stay in cache: the stock has a few tens of thousands of places), doubled when half full.
_HASH_BITS = 17

#: ``treated`` of a row without a date.
NO_DATE = np.iinfo(np.int32).min


@nb.njit(cache=True, inline="always")
def place_key(buf, start, end):
    # no byte is 0, so the packed bytes alone tell codes of different lengths apart
    key = np.uint64(0)
    for k in range(start, end):
        key = (key << np.uint64(8)) | np.uint64(buf[k])
    return key


@nb.njit(cache=True, inline="always")
def plain_code(buf, start, end):
    """A code that needs no trimming: 1–8 printable ASCII bytes, no space at the ends."""
    if end - start < 1 or end - start > 8:
        return False
    for k in range(start, end):
        b = buf[k]
        inner_space = b == 0x20 and start < k < end - 1
        if (b < 0x21 or b > 0x7E) and not inner_space:
            return False
    return True


@nb.njit(cache=True, inline="always")
def first_slot(key, mask):
    """Where the search for ``key`` starts (multiplicative hashing)."""
    return ((key * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(40)) & mask


@nb.njit(cache=True, inline="always")
def place_id(key, keys, ids, n_places):
    mask = np.uint64(keys.size - 1)
    h = first_slot(key, mask)
    while True:
        if ids[h] < 0:
            ids[h] = n_places[0]
            keys[h] = key
            n_places[0] += 1
            return ids[h]
        if keys[h] == key:
            return ids[h]
        h = (h + np.uint64(1)) & mask


@nb.njit(cache=True, inline="always")
def days(y, m, d):
    """Days since 1970-01-01 of a valid Gregorian date (civil-from-days inverse)."""
    y = y - (1 if m <= 2 else 0)
    era = y // 400
    yoe = y - era * 400
    mp = m + (-3 if m > 2 else 9)
    doy = (153 * mp + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


@nb.njit(cache=True, inline="always")
def iso_date(buf, s, e):
    """Days of an ``AAAA-MM-JJ`` prefix, or -2**31 when it is not one (odd)."""
    if e - s < 10:
        return NO_DATE
    for k in (0, 1, 2, 3, 5, 6, 8, 9):
        b = buf[s + k]
        if b < 48 or b > 57:
            return NO_DATE
    if buf[s + 4] != 45 or buf[s + 7] != 45:
        return NO_DATE
    y = (buf[s] - 48) * 1000 + (buf[s + 1] - 48) * 100 + (buf[s + 2] - 48) * 10
    y += buf[s + 3] - 48
    m = (buf[s + 5] - 48) * 10 + buf[s + 6] - 48
    d = (buf[s + 8] - 48) * 10 + buf[s + 9] - 48
    if y < 1 or m < 1 or m > 12 or d < 1:
        return NO_DATE
    leap = (y % 4 == 0 and y % 100 != 0) or y % 400 == 0
    month_days = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
    if d > month_days[m - 1]:
        return NO_DATE
    return days(y, m, d)


@nb.njit(cache=True)
def finish_row(
    buf,
    fs,
    fe,
    esc,
    row,
    band_codes,
    out_siret,
    out_place,
    out_flags,
    out_band,
    out_section,
    out_treated,
    keys,
    ids,
    n_places,
    sections,
):
    """Typed values of one record from its field offsets; returns True when odd."""
    odd = False
    # SIRET: exactly 14 ASCII digits
    s, e = fs[_SIRET], fe[_SIRET]
    value = np.int64(-1)
    if e - s == 14:
        value = 0
        for k in range(s, e):
            b = buf[k]
            if b < 48 or b > 57:
                value = -1
                break
            value = value * 10 + (b - 48)
    out_siret[row] = value
    # place: the commune, else the country
    slot = _COMMUNE if fe[_COMMUNE] > fs[_COMMUNE] else _PAYS
    s, e = fs[slot], fe[slot]
    if e == s:
        out_place[row] = -1
    elif esc[slot] or not plain_code(buf, s, e):
        out_place[row] = -1
        odd = True
    else:
        out_place[row] = place_id(place_key(buf, s, e), keys, ids, n_places)
    flags = np.uint8(0)
    s, e = fs[_SIEGE], fe[_SIEGE]
    if (
        e - s == 4
        and buf[s] == 116
        and buf[s + 1] == 114
        and buf[s + 2] == 117
        and buf[s + 3] == 101
    ):
        flags |= np.uint8(1)
    s, e = fs[_ETAT], fe[_ETAT]
    if e - s == 1 and buf[s] == 65:
        flags |= np.uint8(2 | 4)
    elif e - s == 1 and buf[s] == 70:
        flags |= np.uint8(4)
    # band: index in band_codes, -1 when empty, -2 when unknown
    s, e = fs[_BAND], fe[_BAND]
    band = np.int8(-1)
    if e > s:
        band = np.int8(-2)
        if e - s == 2:
            code = np.int32(buf[s]) * 256 + np.int32(buf[s + 1])
            for k in range(band_codes.size):
                if band_codes[k] == code:
                    band = np.int8(k)
                    break
    out_band[row] = band
    # section: NAFRev2 and two leading digits
    section = np.uint8(63)
    s, e = fs[_NOMENCLATURE], fe[_NOMENCLATURE]
    a, b_end = fs[_ACTIVITY], fe[_ACTIVITY]
    if (
        e - s == 7
        and buf[s] == 78
        and buf[s + 1] == 65
        and buf[s + 2] == 70
        and buf[s + 3] == 82
        and buf[s + 4] == 101
        and buf[s + 5] == 118
        and buf[s + 6] == 50
        and b_end - a >= 2
    ):
        d1, d2 = buf[a], buf[a + 1]
        if 48 <= d1 <= 57 and 48 <= d2 <= 57:
            section = sections[(d1 - 48) * 10 + d2 - 48]
    out_section[row] = section
    s, e = fs[_TREATED], fe[_TREATED]
    if e == s:
        out_treated[row] = NO_DATE
    else:
        out_treated[row] = NO_DATE if esc[_TREATED] else iso_date(buf, s, e)
        odd = odd or out_treated[row] == NO_DATE
    out_flags[row] = flags
    return odd


@nb.njit(cache=True)
def scan(
    buf,
    n,
    pos,
    final,
    n_cols,
    slot_of_column,
    band_codes,
    sections,
    row0,
    out_siret,
    out_place,
    out_flags,
    out_band,
    out_section,
    out_treated,
    keys,
    ids,
    n_places,
    odd_rows,
    odd_start,
    odd_end,
    n_odd,
    offset,
    state,
):
    """Scan complete records of ``buf[pos:n]``; returns (status, pos, rows written).

    ``offset`` is the file position of ``buf[0]`` (odd rows keep file offsets);
    ``state`` carries [previous valid SIRET, SIRETs not increasing] across blocks.
    """
    column_of_slot = np.zeros(9, np.int64)
    for c in range(n_cols):
        if slot_of_column[c] >= 0:
            column_of_slot[slot_of_column[c]] = c
    first = np.zeros(n_cols, np.int64)  # where each field starts (its opening quote if any)
    last = np.zeros(n_cols, np.int64)  # where it ends (its closing quote + 1 if any)
    quoted = np.zeros(n_cols, np.uint8)  # 1 quoted, 2 quoted with doubled quotes inside
    fs = np.zeros(9, np.int64)
    fe = np.zeros(9, np.int64)
    esc = np.zeros(9, np.bool_)
    row = row0
    cap = out_siret.size
    while pos < n:
        if row >= cap or n_odd[0] >= odd_rows.size or 2 * n_places[0] >= keys.size:
            return FULL, pos, row
        record = pos
        col = 0
        first[0] = pos
        quoted[0] = 0
        j = pos
        ended = False
        while j < n:
            b = buf[j]
            if b > 44:  # neither a separator, a quote nor a line end: most bytes
                j += 1
            elif b == 44:
                last[col] = j
                col += 1
                if col >= n_cols:
                    return STRUCTURE, record, row  # too many fields
                first[col] = j + 1
                quoted[col] = 0
                j += 1
            elif b == 10:
                last[col] = j
                j += 1
                ended = True
                break
            elif b == 34:
                if j != first[col]:
                    return STRUCTURE, record, row  # a quote inside an unquoted field
                quoted[col] = 1
                k = j + 1
                while True:
                    while k < n and buf[k] != 34:
                        k += 1
                    if k >= n:
                        return (STRUCTURE if final else NEED_DATA), record, row
                    if k + 1 >= n:
                        if not final:
                            return NEED_DATA, record, row  # "" or a closing quote?
                        break
                    if buf[k + 1] == 34:
                        quoted[col] = 2
                        k += 2
                        continue
                    break
                j = k + 1
                if j < n and buf[j] != 44 and buf[j] != 10 and buf[j] != 13:
                    return STRUCTURE, record, row  # text after a closing quote
            elif b == 13:
                if j + 1 >= n:
                    if not final:
                        return NEED_DATA, record, row
                    return STRUCTURE, record, row
                if buf[j + 1] != 10:
                    return STRUCTURE, record, row  # a lone CR
                last[col] = j
                j += 2
                ended = True
                break
            else:
                j += 1
        if not ended:
            if not final:
                return NEED_DATA, record, row
            last[col] = n  # last record without a line end
        if col != n_cols - 1:
            return STRUCTURE, record, row  # too few fields (or an empty line)
        for slot in range(9):
            c = column_of_slot[slot]
            if quoted[c]:
                fs[slot] = first[c] + 1
                fe[slot] = last[c] - 1
                esc[slot] = quoted[c] == 2
            else:
                fs[slot] = first[c]
                fe[slot] = last[c]
                esc[slot] = False
        if finish_row(
            buf,
            fs,
            fe,
            esc,
            row,
            band_codes,
            out_siret,
            out_place,
            out_flags,
            out_band,
            out_section,
            out_treated,
            keys,
            ids,
            n_places,
            sections,
        ):
            k = n_odd[0]
            odd_rows[k] = row
            odd_start[k] = offset + record
            odd_end[k] = offset + j
            n_odd[0] = k + 1
        value = out_siret[row]
        if value >= 0:
            if value <= state[0]:
                state[1] += 1
            state[0] = value
        row += 1
        pos = j
    return (DONE if final else NEED_DATA), pos, row


@dataclass
class ScannedStock:
    """Typed columns of the establishments stock, one entry per data row in file order.

    ``siret`` is -1 when not 14 digits; ``place`` indexes ``places`` (-1: none); ``flags``
    bit 1 head office, 2 active, 4 state A or F; ``band`` indexes the band codes (-1 empty,
    -2 unknown); ``section`` the ASCII code of the NAF section letter; ``treated`` days since
    1970-01-01 (-2**31: none). ``odd`` rows (with their file byte ranges) must be recomputed
    by the caller; ``increasing`` says whether the valid SIRETs strictly increase.
    """

    siret: np.ndarray
    place: np.ndarray
    flags: np.ndarray
    band: np.ndarray
    section: np.ndarray
    treated: np.ndarray
    places: list[str]
    odd_rows: np.ndarray
    odd_start: np.ndarray
    odd_end: np.ndarray
    increasing: bool
    rows: int


class NotStrict(Exception):
    """The file is not strict RFC-4180 with the header's field count (use DuckDB)."""


@nb.njit(cache=True)
def rehash(keys, ids, new_keys, new_ids):
    """Move the places table into a larger one (same ids)."""
    mask = np.uint64(new_keys.size - 1)
    for h in range(keys.size):
        if ids[h] >= 0:
            g = first_slot(keys[h], mask)
            while new_ids[g] >= 0:
                g = (g + np.uint64(1)) & mask
            new_keys[g] = keys[h]
            new_ids[g] = ids[h]


def _decode_key(key: int) -> str:
    return key.to_bytes(8, "big").lstrip(b"\0").decode("ascii")


def _grow(array: np.ndarray, size: int) -> np.ndarray:
    bigger = np.empty(size, dtype=array.dtype)
    bigger[: array.size] = array
    return bigger


def scan_establishments(
    path: Path,
    header: list[str],
    band_codes: list[str],
    section_letters: str,
    data_start: int,
    block: int = BLOCK,
) -> ScannedStock:
    """Scan the CSV at ``path`` whose data rows start at byte ``data_start``.

    ``block``: bytes read at a time (the buffer grows when one record is longer).

    Raises
    ------
    NotStrict
        a record the kernel does not accept (the DuckDB path then reports it).
    """
    slot_of_column = np.full(len(header), -1, dtype=np.int64)
    for slot, name in enumerate(FIELDS):
        slot_of_column[header.index(name)] = slot
    codes = np.array([ord(c[0]) * 256 + ord(c[1]) for c in band_codes], dtype=np.int32)
    sections = np.frombuffer(section_letters.encode("ascii"), dtype=np.uint8).copy()
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(data_start)
        sample = fh.read(1 << 16)
    per_row = max(64, len(sample) // max(1, sample.count(b"\n")))
    cap = int((size - data_start) / per_row * 1.05) + 1024
    siret = np.empty(cap, np.int64)
    place = np.empty(cap, np.int32)
    flags = np.empty(cap, np.uint8)
    band = np.empty(cap, np.int8)
    section = np.empty(cap, np.uint8)
    treated = np.empty(cap, np.int32)
    keys = np.zeros(1 << _HASH_BITS, np.uint64)
    ids = np.full(1 << _HASH_BITS, -1, np.int32)
    n_places = np.zeros(1, np.int64)
    odd_rows = np.empty(1024, np.int64)
    odd_start = np.empty(1024, np.int64)
    odd_end = np.empty(1024, np.int64)
    n_odd = np.zeros(1, np.int64)
    state = np.array([-1, 0], dtype=np.int64)
    buf = np.empty(block, np.uint8)
    held = 0  # bytes of buf holding data not yet scanned (from 0)
    offset = data_start  # file position of buf[0]
    rows = 0
    final = False
    with path.open("rb", buffering=0) as fh:
        fh.seek(data_start)
        while True:
            if not final:
                if held == buf.size:
                    buf = _grow(buf, buf.size * 2)  # one record longer than a block
                got = fh.readinto(memoryview(buf)[held:])
                final = got == 0
                held += got
            pos = 0
            while True:
                status, pos, rows = scan(
                    buf, held, pos, final, len(header), slot_of_column, codes, sections, rows,
                    siret, place, flags, band, section, treated, keys, ids, n_places,
                    odd_rows, odd_start, odd_end, n_odd, offset, state,
                )  # fmt: skip
                if status != FULL:
                    break
                if rows >= siret.size:
                    cap = siret.size * 2
                    siret, place, flags = _grow(siret, cap), _grow(place, cap), _grow(flags, cap)
                    band, section = _grow(band, cap), _grow(section, cap)
                    treated = _grow(treated, cap)
                if 2 * n_places[0] >= keys.size:
                    bigger_keys = np.zeros(keys.size * 2, np.uint64)
                    bigger_ids = np.full(keys.size * 2, -1, np.int32)
                    rehash(keys, ids, bigger_keys, bigger_ids)
                    keys, ids = bigger_keys, bigger_ids
                if n_odd[0] >= odd_rows.size:
                    cap = odd_rows.size * 4
                    odd_rows = _grow(odd_rows, cap)
                    odd_start, odd_end = _grow(odd_start, cap), _grow(odd_end, cap)
            if status == STRUCTURE:
                raise NotStrict(f"record at byte {offset + pos} is not strict CSV")
            if status == DONE:
                break
            if final:
                raise NotStrict(f"unterminated quoted field at byte {offset + pos}")
            # keep the cut record at the start of the buffer
            buf[: held - pos] = buf[pos:held]
            offset += pos
            held -= pos
    used = ids >= 0
    order = np.argsort(ids[used])
    places = [_decode_key(int(k)) for k in keys[used][order]]
    k = int(n_odd[0])
    return ScannedStock(
        siret=siret[:rows],
        place=place[:rows],
        flags=flags[:rows],
        band=band[:rows],
        section=section[:rows],
        treated=treated[:rows],
        places=places,
        odd_rows=odd_rows[:k],
        odd_start=odd_start[:k],
        odd_end=odd_end[:k],
        increasing=int(state[1]) == 0,
        rows=rows,
    )


# ---------------------------------------------------------------------------------------------
# Head-office links over the scanned columns (a stock whose valid SIRETs increase)
# ---------------------------------------------------------------------------------------------

#: ``hq_origins`` output of a row that is not linked (bad SIRET, not active, no place).
NOT_LINKED = -2
#: ``hq_origins`` output of a linked row whose siren has no head office with a place.
NO_HEAD_OFFICE = -1


@nb.njit(cache=True)
def hq_origins(siret, place, flags):
    """Place id of the head office of every active establishment with a place.

    The valid SIRETs (>= 0) strictly increase, so the establishments of a siren (first nine
    digits) are one run. The head office of a run: its first active flagged establishment
    (flag bit 1, active bit 2) with a place, else its first flagged one with a place. Rows
    not linked get :data:`NOT_LINKED`, linked rows without head office :data:`NO_HEAD_OFFICE`.
    """
    n = siret.size
    origin = np.full(n, NOT_LINKED, np.int32)
    i = 0
    while i < n:
        if siret[i] < 0:
            i += 1
            continue
        siren = siret[i] // 100000
        head = -1
        fallback = -1
        j = i
        while j < n:
            if siret[j] >= 0:
                if siret[j] // 100000 != siren:
                    break
                if (flags[j] & 1) != 0 and place[j] >= 0:
                    if (flags[j] & 2) != 0 and head < 0:
                        head = place[j]
                    if fallback < 0:
                        fallback = place[j]
            j += 1
        if head < 0:
            head = fallback
        for k in range(i, j):
            if siret[k] >= 0 and (flags[k] & 2) != 0 and place[k] >= 0:
                origin[k] = head
        i = j
    return origin


@nb.njit(cache=True)
def link_keys(origin, place, section, band, rank):
    """One sortable key per link (``origin`` >= 0), and the number of links to another place.

    key = origin rank << 37 | destination rank << 13 | section << 5 | band + 1 (``rank``
    orders the place ids by code, below 2**24; band -2..15 → 0 for no weight, else band + 1):
    sorted keys group the links by (origin, destination, section) in code order.
    """
    n = 0
    for i in range(origin.size):
        if origin[i] >= 0:
            n += 1
    keys = np.empty(n, np.int64)
    other = 0
    k = 0
    for i in range(origin.size):
        o = origin[i]
        if o < 0:
            continue
        d = place[i]
        if o != d:
            other += 1
        b = band[i] + 1 if band[i] >= 0 else 0
        keys[k] = (rank[o] << 37) | (rank[d] << 13) | (np.int64(section[i]) << 5) | b
        k += 1
    return keys, other
