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

The file is scanned in parts at once, one thread per usable core (:func:`default_parts`; the
kernel and the file reads release the GIL), each part with its own columns, places table
and state. A part starts just after a line end, which is only a guess at a record start (the
line end may be inside a quoted field): a part is kept when the scan of the part before it
(itself kept) stopped exactly at its start, i.e. no record crosses the split; otherwise it is
scanned again from where the part before stopped. The kept parts are then joined (place ids
renumbered in order of first appearance in the file, odd rows shifted), so the result is
the same as a scan in one piece, whatever the number of parts.

Whatever the kernel does not accept as strict RFC-4180 with the header's number of fields (a
short or long row, a quote inside an unquoted field, text after a closing quote, a lone CR,
an empty line) stops the scan with :data:`STRUCTURE`: the caller then reads the file with
DuckDB, whose reject table names the malformed lines (nothing is imported). A part whose
start is not proven is never reported: only the first bad record a one-piece scan would
meet is.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
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
#: A slot holds the key and the id side by side, so a lookup reads one cache line.
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
def place_id(key, table, n_places):
    """Id of the place ``key`` in ``table`` (slot h: key at 2h, id + 1 at 2h + 1, 0 = free),
    a new id when it is not there yet."""
    mask = np.uint64((table.size >> 1) - 1)
    h = first_slot(key, mask)
    while True:
        i = np.int64(h) * 2
        if table[i + 1] == 0:
            table[i] = key
            n_places[0] += 1
            table[i + 1] = np.uint64(n_places[0])
            return np.int64(n_places[0] - 1)
        if table[i] == key:
            return np.int64(table[i + 1]) - 1
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


@nb.njit(cache=True, nogil=True)
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
    table,
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
    ``state`` carries [previous valid SIRET, SIRETs not increasing, first valid SIRET] across
    blocks (-1, 0, -1 before the first row).
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
        if row >= cap or n_odd[0] >= odd_rows.size or 4 * n_places[0] >= table.size:
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
        # the typed values (in this function: a call per row passing the arrays would
        # update their reference counts, shared between the scanning threads)
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
            out_place[row] = place_id(place_key(buf, s, e), table, n_places)
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
        if odd:
            k = n_odd[0]
            odd_rows[k] = row
            odd_start[k] = offset + record
            odd_end[k] = offset + j
            n_odd[0] = k + 1
        value = out_siret[row]
        if value >= 0:
            if value <= state[0]:
                state[1] += 1
            if state[2] < 0:
                state[2] = value
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


@nb.njit(cache=True, nogil=True)
def rehash(table, bigger):
    """Move the places table into a larger one (same ids)."""
    mask = np.uint64((bigger.size >> 1) - 1)
    for i in range(0, table.size, 2):
        if table[i + 1] != 0:
            g = np.int64(first_slot(table[i], mask)) * 2
            while bigger[g + 1] != 0:
                g = (g + 2) & (bigger.size - 1)
            bigger[g] = table[i]
            bigger[g + 1] = table[i + 1]


def _decode_key(key: int) -> str:
    return key.to_bytes(8, "big").lstrip(b"\0").decode("ascii")


def _grow(array: np.ndarray, size: int) -> np.ndarray:
    bigger = np.empty(size, dtype=array.dtype)
    bigger[: array.size] = array
    return bigger


@dataclass(frozen=True)
class _Layout:
    """What every part's scan needs besides its bytes (from the header and the code lists)."""

    path: Path
    n_cols: int
    slot_of_column: np.ndarray
    codes: np.ndarray
    sections: np.ndarray
    per_row: int
    block: int


class _Part:
    """The scan of the bytes ``[start, end)`` of the file: its own columns, places and state.

    ``final``: ``end`` is the end of the file (a record may end without a line end there).
    After :meth:`run`, ``stop`` is the file offset where the scan stopped: ``end`` when the
    records end exactly there, else the start of the record that crosses ``end`` (or of the
    record that is not strict, ``error`` then says so).
    """

    def __init__(
        self, layout: _Layout, start: int, end: int, final: bool, reserve: int | None = None
    ) -> None:
        self.layout, self.start, self.end, self.final = layout, start, end, final
        # ``reserve``: bytes to size the columns for (the first part keeps room for the rows of
        # the later ones; untouched pages of np.empty cost no memory)
        cap = int((reserve or end - start) / layout.per_row * 1.05) + 1024
        self.siret = np.empty(cap, np.int64)
        self.place = np.empty(cap, np.int32)
        self.flags = np.empty(cap, np.uint8)
        self.band = np.empty(cap, np.int8)
        self.section = np.empty(cap, np.uint8)
        self.treated = np.empty(cap, np.int32)
        self.table = np.zeros(2 << _HASH_BITS, np.uint64)  # (key, id + 1) per slot
        self.n_places = np.zeros(1, np.int64)
        self.odd_rows = np.empty(1024, np.int64)
        self.odd_start = np.empty(1024, np.int64)
        self.odd_end = np.empty(1024, np.int64)
        self.n_odd = np.zeros(1, np.int64)
        self.state = np.array([-1, 0, -1], dtype=np.int64)
        self.rows = 0
        self.stop = start
        self.error: str | None = None

    def run(self) -> _Part:
        """Scan the part block by block (file reads and kernel both release the GIL)."""
        layout = self.layout
        buf = np.empty(min(layout.block, max(1, self.end - self.start)), np.uint8)
        held = 0  # bytes of buf holding data not yet scanned (from 0)
        offset = self.start  # file position of buf[0]
        left = self.end - self.start  # bytes of the part not read yet
        final = False
        with layout.path.open("rb", buffering=0) as fh:
            fh.seek(self.start)
            while True:
                if left > 0:
                    if held == buf.size:
                        buf = _grow(buf, buf.size * 2)  # one record longer than a block
                    want = min(buf.size - held, left)
                    got = fh.readinto(memoryview(buf)[held : held + want])
                    if got == 0:  # the file is shorter than it was
                        left = 0
                    held += got
                    left -= got
                # the kernel's ``final`` only for the file's end (a part's end may cut a record)
                final = left == 0 and self.final
                status, pos = self._scan_buffer(buf, held, offset, final)
                if status == STRUCTURE:
                    self.error = f"record at byte {offset + pos} is not strict CSV"
                    self.stop = offset + pos
                    return self
                if status == DONE:
                    self.stop = offset + pos
                    return self
                if left == 0:
                    if final:
                        self.error = f"unterminated quoted field at byte {offset + pos}"
                    self.stop = offset + pos
                    return self
                # keep the cut record at the start of the buffer
                buf[: held - pos] = buf[pos:held]
                offset += pos
                held -= pos

    def _scan_buffer(self, buf: np.ndarray, held: int, offset: int, final: bool) -> tuple[int, int]:
        """Run the kernel over ``buf[:held]``, growing full outputs; returns (status, pos)."""
        layout = self.layout
        pos = 0
        while True:
            status, pos, self.rows = scan(
                buf, held, pos, final, layout.n_cols, layout.slot_of_column, layout.codes,
                layout.sections, self.rows, self.siret, self.place, self.flags, self.band,
                self.section, self.treated, self.table, self.n_places, self.odd_rows,
                self.odd_start, self.odd_end, self.n_odd, offset, self.state,
            )  # fmt: skip
            if status != FULL:
                return status, pos
            self._grow_outputs()

    def _grow_outputs(self) -> None:
        if self.rows >= self.siret.size:
            cap = self.siret.size * 2
            self.siret, self.place = _grow(self.siret, cap), _grow(self.place, cap)
            self.flags, self.band = _grow(self.flags, cap), _grow(self.band, cap)
            self.section, self.treated = _grow(self.section, cap), _grow(self.treated, cap)
        if 4 * self.n_places[0] >= self.table.size:
            bigger = np.zeros(self.table.size * 2, np.uint64)
            rehash(self.table, bigger)
            self.table = bigger
        if self.n_odd[0] >= self.odd_rows.size:
            cap = self.odd_rows.size * 4
            self.odd_rows = _grow(self.odd_rows, cap)
            self.odd_start, self.odd_end = _grow(self.odd_start, cap), _grow(self.odd_end, cap)

    def place_keys(self) -> np.ndarray:
        """The packed place codes of the part, in the order of its place ids."""
        keys, ids = self.table[0::2], self.table[1::2]
        used = ids != 0
        return keys[used][np.argsort(ids[used])]


#: Least bytes of data per part: smaller files are scanned by one thread.
MIN_PART = 1 << 24
#: Most parts scanned at once.
MAX_PARTS = 8


def default_parts(data_bytes: int) -> int:
    """Parts for ``data_bytes`` of records: one per usable core, each at least MIN_PART."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_PARTS, data_bytes // MIN_PART))


def _line_start_after(path: Path, offset: int, size: int) -> int:
    """The offset just after the first LF at or after ``offset`` (``size`` when none)."""
    with path.open("rb") as fh:
        fh.seek(offset)
        while offset < size:
            chunk = fh.read(1 << 16)
            if not chunk:
                break
            at = chunk.find(b"\n")
            if at >= 0:
                return offset + at + 1
            offset += len(chunk)
    return size


def _part_bounds(path: Path, data_start: int, size: int, parts: int) -> list[tuple[int, int]]:
    """``[start, end)`` of each part: nominal equal splits moved just after a line end.

    A split is only a guess at a record start (the LF may be inside a quoted field): the
    merge checks it (:func:`_valid_parts`).
    """
    step = (size - data_start) / parts
    starts = [data_start]
    for k in range(1, parts):
        start = _line_start_after(path, data_start + int(step * k), size)
        if starts[-1] < start < size:
            starts.append(start)
    return list(zip(starts, [*starts[1:], size], strict=True))


def _valid_parts(parts: list[_Part], data_start: int) -> list[_Part]:
    """The parts whose start is a true record start; a wrong guess is scanned again.

    The first part starts at ``data_start``; each scan that stops exactly at its end proves
    that the next part starts a record. When it stops before (a record crosses the split, so
    the guessed start was inside a quoted field), the next part is scanned again from there,
    in this thread. A part that is not strict is reported only when its start is proven (the
    same first bad record as a sequential scan).
    """
    valid: list[_Part] = []
    pos = data_start
    for part in parts:
        if part.start != pos:
            part = _Part(part.layout, pos, part.end, part.final).run()
        if part.error is not None:
            raise NotStrict(part.error)
        valid.append(part)
        pos = part.stop
    return valid


def _merge(parts: list[_Part]) -> ScannedStock:
    """One stock from the parts in file order, the same as a scan in one piece.

    Place ids are renumbered in order of first appearance in the file, odd rows shifted by
    the rows of the parts before; the SIRETs increase when they do in every part and across
    every split.
    """
    rows = [p.rows for p in parts]
    base = np.cumsum([0, *rows])

    def column(name: str) -> np.ndarray:
        head = getattr(parts[0], name)
        if head.size < base[-1]:
            head = _grow(head, int(base[-1]))
        for k, part in enumerate(parts[1:], start=1):  # after the first part's rows, in place
            head[base[k] : base[k + 1]] = getattr(part, name)[: part.rows]
            setattr(part, name, None)  # free the part's column now
        return head[: base[-1]]

    place = column("place")
    ids: dict[int, int] = {}
    for k, part in enumerate(parts):
        keys = part.place_keys().tolist()
        remap = np.array([ids.setdefault(key, len(ids)) for key in keys] + [-1], np.int32)
        if k > 0 and keys:
            segment = place[base[k] : base[k + 1]]
            segment[:] = remap[segment]  # -1 (no place) picks the trailing -1
    odd_rows = np.concatenate([p.odd_rows[: p.n_odd[0]] + base[k] for k, p in enumerate(parts)])
    increasing, last = True, -1
    for part in parts:
        increasing = increasing and int(part.state[1]) == 0
        if part.state[2] >= 0:  # the part has a valid SIRET
            increasing = increasing and int(part.state[2]) > last
            last = int(part.state[0])
    return ScannedStock(
        siret=column("siret"),
        place=place,
        flags=column("flags"),
        band=column("band"),
        section=column("section"),
        treated=column("treated"),
        places=[_decode_key(key) for key in ids],
        odd_rows=odd_rows,
        odd_start=np.concatenate([p.odd_start[: p.n_odd[0]] for p in parts]),
        odd_end=np.concatenate([p.odd_end[: p.n_odd[0]] for p in parts]),
        increasing=increasing,
        rows=int(base[-1]),
    )


def scan_establishments(
    path: Path,
    header: list[str],
    band_codes: list[str],
    section_letters: str,
    data_start: int,
    block: int = BLOCK,
    parts: int | None = None,
) -> ScannedStock:
    """Scan the CSV at ``path`` whose data rows start at byte ``data_start``.

    ``block``: bytes read at a time by each part (the buffer grows when one record is
    longer). ``parts``: pieces of the file scanned at once, each in its own thread (default
    :func:`default_parts`); the result does not depend on it.

    Raises
    ------
    NotStrict
        a record the kernel does not accept (the DuckDB path then reports it).
    """
    slot_of_column = np.full(len(header), -1, dtype=np.int64)
    for slot, name in enumerate(FIELDS):
        slot_of_column[header.index(name)] = slot
    size = path.stat().st_size
    with path.open("rb") as fh:
        fh.seek(data_start)
        sample = fh.read(1 << 16)
    layout = _Layout(
        path=path,
        n_cols=len(header),
        slot_of_column=slot_of_column,
        codes=np.array([ord(c[0]) * 256 + ord(c[1]) for c in band_codes], dtype=np.int32),
        sections=np.frombuffer(section_letters.encode("ascii"), dtype=np.uint8).copy(),
        per_row=max(64, len(sample) // max(1, sample.count(b"\n"))),
        block=block,
    )
    bounds = _part_bounds(path, data_start, size, parts or default_parts(size - data_start))
    reserve = size - data_start
    scans = [
        _Part(layout, a, b, b == size, reserve if a == data_start else None) for a, b in bounds
    ]
    if len(scans) == 1:
        scans[0].run()
    else:
        with ThreadPoolExecutor(len(scans), thread_name_prefix="maillage-scan") as pool:
            for _ in pool.map(_Part.run, scans):
                pass
    return _merge(_valid_parts(scans, data_start))


# ---------------------------------------------------------------------------------------------
# Head-office links over the scanned columns (a stock whose valid SIRETs increase)
# ---------------------------------------------------------------------------------------------

#: ``hq_origins`` output of a row that is not linked (bad SIRET, not active, no place).
NOT_LINKED = -2
#: ``hq_origins`` output of a linked row whose siren has no head office with a place.
NO_HEAD_OFFICE = -1


@nb.njit(cache=True, nogil=True)
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


@nb.njit(cache=True, nogil=True)
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


@nb.njit(cache=True, nogil=True)
def link_sums(keys, weights):
    """Sums of the sorted ``link_keys`` per (origin, destination, section) group.

    ``weights[key & 31]`` is the weight of a link. Returns the groups whose sum is positive
    (key >> 5, in order; written over the start of ``keys``, which is consumed), their sums,
    the number of links that weigh 0 and the total of all sums.
    """
    n = keys.size
    sums = np.empty(n, np.float64)
    m = 0
    zero = 0
    total = 0.0
    i = 0
    while i < n:
        group = keys[i] >> 5
        value = 0.0
        while i < n and keys[i] >> 5 == group:
            w = weights[keys[i] & 31]
            if w == 0:
                zero += 1
            value += w
            i += 1
        total += value
        if value > 0:
            keys[m] = group
            sums[m] = value
            m += 1
    return keys[:m], sums[:m], zero, total


@nb.njit(cache=True, nogil=True)
def gather_strings(offsets, data, ranks):
    """Arrow string buffers (offsets, bytes) of the strings ``ranks`` picks from the strings
    ``data[offsets[r]:offsets[r + 1]]``: a ``take`` into numpy buffers."""
    n = ranks.size
    out_offsets = np.empty(n + 1, np.int32)
    out_offsets[0] = 0
    size = 0
    for i in range(n):
        r = ranks[i]
        size += offsets[r + 1] - offsets[r]
        out_offsets[i + 1] = size
    out = np.empty(size, np.uint8)
    for i in range(n):
        r = ranks[i]
        start = out_offsets[i]
        for k in range(offsets[r + 1] - offsets[r]):
            out[start + k] = data[offsets[r] + k]
    return out_offsets, out


@nb.njit(cache=True, nogil=True)
def next_run_start(siret, j):
    """The first row at or after ``j`` that starts a siren run (a valid SIRET whose siren
    differs from the one of the valid SIRET before it), else ``siret.size``: the runs of
    ``hq_origins`` never cross such a row, so the rows can be split there."""
    k = j - 1
    while k >= 0 and siret[k] < 0:
        k -= 1
    previous = siret[k] // 100000 if k >= 0 else -1
    while j < siret.size:
        if siret[j] >= 0 and siret[j] // 100000 != previous:
            return j
        j += 1
    return siret.size


@nb.njit(cache=True, nogil=True)
def merge_sums(keys_a, sums_a, keys_b, sums_b):
    """Two sorted lists of group keys with their sums as one (sums of equal keys added)."""
    keys = np.empty(keys_a.size + keys_b.size, np.int64)
    sums = np.empty(keys.size, np.float64)
    i = j = m = 0
    while i < keys_a.size or j < keys_b.size:
        if j == keys_b.size or (i < keys_a.size and keys_a[i] < keys_b[j]):
            keys[m], sums[m] = keys_a[i], sums_a[i]
            i += 1
        elif i == keys_a.size or keys_b[j] < keys_a[i]:
            keys[m], sums[m] = keys_b[j], sums_b[j]
            j += 1
        else:
            keys[m], sums[m] = keys_a[i], sums_a[i] + sums_b[j]
            i += 1
            j += 1
        m += 1
    return keys[:m], sums[:m]
