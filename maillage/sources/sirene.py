"""Sirene stock files, read as published, turned into firm flows between communes.

Three monthly stock files of the "Base Sirene des entreprises et de leurs établissements"
(data.gouv.fr, schema 3.11, Licence Ouverte 2.0) are used, each a zip holding one CSV
(``,``-separated, ``"``-quoted, UTF-8, full header row):

=====================================================  ========================================
file                                                   used columns
=====================================================  ========================================
``StockEtablissement_utf8.zip``                        siren, nic, siret, etablissementSiege,
                                                       codeCommuneEtablissement,
                                                       codePaysEtrangerEtablissement,
                                                       etatAdministratifEtablissement,
                                                       trancheEffectifsEtablissement,
                                                       activitePrincipaleEtablissement,
                                                       nomenclatureActivitePrincipaleEtablissement,
                                                       dateDernierTraitementEtablissement
``StockUniteLegale_utf8.zip`` (optional)               siren, nicSiegeUniteLegale
``StockEtablissementLiensSuccession_utf8.zip``         siretEtablissementPredecesseur,
(optional)                                             siretEtablissementSuccesseur,
                                                       dateLienSuccession, transfertSiege,
                                                       continuiteEconomique
=====================================================  ========================================

Two flow kinds are derived (direction conventions of :mod:`maillage._schema`):

``hq_link`` (head office → establishment)
    every *active* establishment (``etatAdministratifEtablissement = 'A'``) is linked from the
    place of its head office to its own place. The head office of a siren is the establishment
    ``siren || nicSiegeUniteLegale`` when the legal-units file is given and that establishment
    is in the stock, else the establishment of the same siren (the first nine digits of its
    SIRET) flagged
    ``etablissementSiege = true`` (an active one first). Links inside one commune are kept (a
    single-site firm controls its own jobs): so ``inflow / destination_total`` of a territory
    is the share of its (weighted) establishments controlled from outside. Breakdown:
    ``section`` = NAF rev. 2 section letter A–U of the establishment (``?`` when the activity
    is coded in an older nomenclature or missing).
``establishment_transfer`` (predecessor → successor), one vintage per year of
    ``dateLienSuccession``
    both SIRETs are joined to the stock for their commune (for a closed establishment, its last
    address). A predecessor with *n* successors the same year counts 1/n towards each (no
    many-to-many blow-up; totals are conserved). Links within one commune are kept (internal
    flow). Breakdowns: ``transfert_siege`` and ``continuite_economique`` (``oui``/``non``).

Weights (``measure``)
    ``"jobs"`` (default): estimated employees = midpoint of the headcount band
    ``trancheEffectifsEtablissement`` (:data:`HEADCOUNT_MIDPOINTS`; ``NN`` — no employee or
    none declared —, ``00`` — no employee at 31/12 — and an empty band weigh 0; the open band
    ``53`` "10 000 or more" weighs 10 000). For transfers the band of the *predecessor* is used.
    Bands lag about two years (``anneeEffectifsEtablissement``). Pairs whose weight is 0 are
    not stored as flows (they are counted in the report).
    ``"establishments"``: every establishment (every succession link) counts 1.

Bad input
    a missing column or another file → :class:`~maillage._errors.SourceError` naming the file,
    line 1 and the column; malformed CSV rows → one SourceError listing them (nothing is
    imported). Rows that parse but carry bad values — a SIRET that is not 14 digits, a date
    that is not ``AAAA-MM-JJ``, an unknown headcount band, an establishment with neither
    commune nor country, a siren whose head office is not in the stock, a succession link to
    an establishment absent from the stock — are COUNTED and REPORTED with sample file lines
    in :attr:`SireneFlows.warnings` and :attr:`SireneFlows.counts`, and left out of the flows.
    Foreign places (``codePaysEtrangerEtablissement``, COG country codes ``99xxx``) are kept
    and flagged abroad, and old commune codes are mapped to the reference, by
    :func:`maillage.build.store_flows`.

Volumes: about 44 M establishments and 10 M succession links nationally (several GB). The
establishments stock is read ONCE by a numba byte scanner (:mod:`maillage.sources._sirene_scan`,
64 MB blocks, strict RFC-4180) straight into compact typed columns (SIRET as an integer,
place, flags, band, section code, date), checking on the way whether the SIRETs increase; the
few rows whose place or date is not written plainly are computed with the same SQL as the
DuckDB path. A file the scanner does not accept (header quoted oddly or repeated names, not
UTF-8, a malformed row) is read by DuckDB instead, which names the malformed lines. The table
then lives in an in-memory DuckDB database that spills to a temporary folder beyond
``memory_limit``; every check is one scan of it (sample lines only for the checks that hit).
For a scanned stock whose SIRETs increase (the published one), the checks are counted on the
scanned columns (:func:`_prepare_scanned`) and the head-office links computed on them (numba
passes over the siren runs in parallel parts, sorted integer keys on place ids;
:func:`_hq_links_numpy`), with the same counts, warnings and tables as the SQL path; the
DuckDB table is then made only when a step needs SQL (the succession links, a head-office
fallback). The other two files are read by DuckDB in parallel. Nothing is loaded whole into
Python.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import logging
import tempfile
import zipfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from maillage._errors import SourceError, ValidationError
from maillage.sources._files import (
    DESCRIPTIONS,
    OpenedFile,
    csv_scan_sql,
    open_table_file,
    quote_ident,
    require_separator,
    run_scan,
    sniff_header,
)

log = logging.getLogger("maillage")

Progress = Callable[[str, float], None]

#: Official addresses (data.gouv.fr stable links of the monthly stock; DATA_SOURCES.md A.4).
CATALOG: dict[str, dict[str, str]] = {
    "sirene_etablissement": {
        "url": "https://files.data.gouv.fr/insee-sirene/StockEtablissement_utf8.zip",
        "member": "StockEtablissement_utf8.csv",
    },
    "sirene_unite_legale": {
        "url": "https://files.data.gouv.fr/insee-sirene/StockUniteLegale_utf8.zip",
        "member": "StockUniteLegale_utf8.csv",
    },
    "sirene_succession": {
        "url": "https://files.data.gouv.fr/insee-sirene/StockEtablissementLiensSuccession_utf8.zip",
        "member": "StockEtablissementLiensSuccession_utf8.csv",
    },
}
PAGE = (
    "https://www.data.gouv.fr/fr/datasets/"
    "base-sirene-des-entreprises-et-de-leurs-etablissements-siren-siret/"
)
LICENCE = "Licence Ouverte / Open Licence 2.0 (Etalab)"

#: Full header of StockEtablissement, schema 3.11, in file order. Files published from 2025
#: add ``activitePrincipaleNAF25Etablissement`` at the end (accepted: only used columns are
#: required).
ETABLISSEMENT_COLUMNS: tuple[str, ...] = (
    "siren",
    "nic",
    "siret",
    "statutDiffusionEtablissement",
    "dateCreationEtablissement",
    "trancheEffectifsEtablissement",
    "anneeEffectifsEtablissement",
    "activitePrincipaleRegistreMetiersEtablissement",
    "dateDernierTraitementEtablissement",
    "etablissementSiege",
    "nombrePeriodesEtablissement",
    "complementAdresseEtablissement",
    "numeroVoieEtablissement",
    "indiceRepetitionEtablissement",
    "dernierNumeroVoieEtablissement",
    "indiceRepetitionDernierNumeroVoieEtablissement",
    "typeVoieEtablissement",
    "libelleVoieEtablissement",
    "codePostalEtablissement",
    "libelleCommuneEtablissement",
    "libelleCommuneEtrangerEtablissement",
    "distributionSpecialeEtablissement",
    "codeCommuneEtablissement",
    "codeCedexEtablissement",
    "libelleCedexEtablissement",
    "codePaysEtrangerEtablissement",
    "libellePaysEtrangerEtablissement",
    "identifiantAdresseEtablissement",
    "coordonneeLambertAbscisseEtablissement",
    "coordonneeLambertOrdonneeEtablissement",
    "complementAdresse2Etablissement",
    "numeroVoie2Etablissement",
    "indiceRepetition2Etablissement",
    "typeVoie2Etablissement",
    "libelleVoie2Etablissement",
    "codePostal2Etablissement",
    "libelleCommune2Etablissement",
    "libelleCommuneEtranger2Etablissement",
    "distributionSpeciale2Etablissement",
    "codeCommune2Etablissement",
    "codeCedex2Etablissement",
    "libelleCedex2Etablissement",
    "codePaysEtranger2Etablissement",
    "libellePaysEtranger2Etablissement",
    "dateDebut",
    "etatAdministratifEtablissement",
    "enseigne1Etablissement",
    "enseigne2Etablissement",
    "enseigne3Etablissement",
    "denominationUsuelleEtablissement",
    "activitePrincipaleEtablissement",
    "nomenclatureActivitePrincipaleEtablissement",
    "caractereEmployeurEtablissement",
)

#: Full header of StockUniteLegale, schema 3.11, in file order.
UNITE_LEGALE_COLUMNS: tuple[str, ...] = (
    "siren",
    "statutDiffusionUniteLegale",
    "unitePurgeeUniteLegale",
    "dateCreationUniteLegale",
    "sigleUniteLegale",
    "sexeUniteLegale",
    "prenom1UniteLegale",
    "prenom2UniteLegale",
    "prenom3UniteLegale",
    "prenom4UniteLegale",
    "prenomUsuelUniteLegale",
    "pseudonymeUniteLegale",
    "identifiantAssociationUniteLegale",
    "trancheEffectifsUniteLegale",
    "anneeEffectifsUniteLegale",
    "dateDernierTraitementUniteLegale",
    "nombrePeriodesUniteLegale",
    "categorieEntreprise",
    "anneeCategorieEntreprise",
    "dateDebut",
    "etatAdministratifUniteLegale",
    "nomUniteLegale",
    "nomUsageUniteLegale",
    "denominationUniteLegale",
    "denominationUsuelle1UniteLegale",
    "denominationUsuelle2UniteLegale",
    "denominationUsuelle3UniteLegale",
    "categorieJuridiqueUniteLegale",
    "activitePrincipaleUniteLegale",
    "nomenclatureActivitePrincipaleUniteLegale",
    "nicSiegeUniteLegale",
    "economieSocialeSolidaireUniteLegale",
    "societeMissionUniteLegale",
    "caractereEmployeurUniteLegale",
)

#: Full header of StockEtablissementLiensSuccession, in file order.
SUCCESSION_COLUMNS: tuple[str, ...] = (
    "siretEtablissementPredecesseur",
    "siretEtablissementSuccesseur",
    "dateLienSuccession",
    "transfertSiege",
    "continuiteEconomique",
    "dateDernierTraitementLienSuccession",
)

_NEED_ETAB: tuple[str, ...] = (
    "siren",
    "nic",
    "siret",
    "trancheEffectifsEtablissement",
    "dateDernierTraitementEtablissement",
    "etablissementSiege",
    "codeCommuneEtablissement",
    "codePaysEtrangerEtablissement",
    "etatAdministratifEtablissement",
    "activitePrincipaleEtablissement",
    "nomenclatureActivitePrincipaleEtablissement",
)
_NEED_UL: tuple[str, ...] = ("siren", "nicSiegeUniteLegale")
_NEED_SUCC: tuple[str, ...] = (
    "siretEtablissementPredecesseur",
    "siretEtablissementSuccesseur",
    "dateLienSuccession",
    "transfertSiege",
    "continuiteEconomique",
)

#: Estimated employees per headcount band (midpoint of the band; see module docstring).
#: 01 = 1–2, 02 = 3–5, 03 = 6–9, 11 = 10–19, 12 = 20–49, 21 = 50–99, 22 = 100–199,
#: 31 = 200–249, 32 = 250–499, 41 = 500–999, 42 = 1 000–1 999, 51 = 2 000–4 999,
#: 52 = 5 000–9 999, 53 = 10 000 or more (lower bound).
HEADCOUNT_MIDPOINTS: dict[str, float] = {
    "NN": 0.0,
    "00": 0.0,
    "01": 1.5,
    "02": 4.0,
    "03": 7.5,
    "11": 14.5,
    "12": 34.5,
    "21": 74.5,
    "22": 149.5,
    "31": 224.5,
    "32": 374.5,
    "41": 749.5,
    "42": 1499.5,
    "51": 3499.5,
    "52": 7499.5,
    "53": 10000.0,
}

#: NAF rev. 2 sections as ranges of divisions (first two digits of the activity code).
NAF_SECTIONS: tuple[tuple[str, int, int], ...] = (
    ("A", 1, 3),
    ("B", 5, 9),
    ("C", 10, 33),
    ("D", 35, 35),
    ("E", 36, 39),
    ("F", 41, 43),
    ("G", 45, 47),
    ("H", 49, 53),
    ("I", 55, 56),
    ("J", 58, 63),
    ("K", 64, 66),
    ("L", 68, 68),
    ("M", 69, 75),
    ("N", 77, 82),
    ("O", 84, 84),
    ("P", 85, 85),
    ("Q", 86, 88),
    ("R", 90, 93),
    ("S", 94, 96),
    ("T", 97, 98),
    ("U", 99, 99),
)

SECTION_LABELS_FR: dict[str, str] = {
    "A": "Agriculture, sylviculture et pêche",
    "B": "Industries extractives",
    "C": "Industrie manufacturière",
    "D": "Électricité, gaz, vapeur et air conditionné",
    "E": "Eau, assainissement, déchets, dépollution",
    "F": "Construction",
    "G": "Commerce ; réparation d'automobiles et de motocycles",
    "H": "Transports et entreposage",
    "I": "Hébergement et restauration",
    "J": "Information et communication",
    "K": "Activités financières et d'assurance",
    "L": "Activités immobilières",
    "M": "Activités spécialisées, scientifiques et techniques",
    "N": "Activités de services administratifs et de soutien",
    "O": "Administration publique",
    "P": "Enseignement",
    "Q": "Santé humaine et action sociale",
    "R": "Arts, spectacles et activités récréatives",
    "S": "Autres activités de services",
    "T": "Activités des ménages en tant qu'employeurs",
    "U": "Activités extra-territoriales",
    "?": "Activité inconnue ou d'une ancienne nomenclature",
}

MEASURES: tuple[str, ...] = ("jobs", "establishments")

#: Bump when the derivation changes: it enters the checksum, so a re-import is not skipped.
METHOD_VERSION = "sirene-2"

#: Sample lines quoted per kind of bad value.
_SAMPLES = 5

FLOW_SCHEMA = pa.schema(
    [("origin", pa.string()), ("destination", pa.string()), ("value", pa.float64())]
)
BREAKDOWN_SCHEMA = pa.schema(
    [
        ("origin", pa.string()),
        ("destination", pa.string()),
        ("dimension", pa.string()),
        ("category", pa.string()),
        ("value", pa.float64()),
    ]
)


def naf_section(code: str | None) -> str:
    """NAF rev. 2 section letter of an activity code (``"62.01Z"`` → ``"J"``); ``?`` if none.

    >>> naf_section("62.01Z"), naf_section("01.11Z"), naf_section("99.00Z"), naf_section("xx")
    ('J', 'A', 'U', '?')
    """
    text = (code or "").strip()
    if len(text) < 2 or not text[:2].isdigit():
        return "?"
    division = int(text[:2])
    for letter, lo, hi in NAF_SECTIONS:
        if lo <= division <= hi:
            return letter
    return "?"


# ---------------------------------------------------------------------------------------------
# Which file is which
# ---------------------------------------------------------------------------------------------


@dataclass
class SireneFiles:
    """The stock files of one import: the establishments stock is required."""

    etablissements: Path
    unites_legales: Path | None = None
    successions: Path | None = None
    ignored: list[str] = field(default_factory=list)


def _header_of(path: Path) -> list[str]:
    """Column names of a CSV or of the CSV in a zip (first line only)."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as zf:
                names = [
                    n for n in zf.namelist() if n.lower().endswith((".csv", ".txt"))
                ] or zf.namelist()
                with zf.open(names[0]) as fh:
                    first = fh.readline(1 << 16)
        else:
            with path.open("rb") as fh:
                first = fh.readline(1 << 16)
    except (OSError, zipfile.BadZipFile) as exc:
        raise SourceError(f"cannot read the file ({exc}).", path=str(path)) from exc
    text = first.decode("utf-8", errors="replace").lstrip("\ufeff").strip()
    sep = max((",", ";", "\t", "|"), key=text.count)
    return [c.strip().strip('"') for c in text.split(sep)]


def _role(path: Path) -> str | None:
    header = _header_of(path)
    lower = {c.lower() for c in header}
    if "datefin" in lower or "historique" in path.name.lower():
        return None  # history files: not used
    if "siretetablissementpredecesseur" in lower:
        return "successions"
    if "siret" in lower and "codecommuneetablissement" in lower:
        return "etablissements"
    if "siren" in lower and "nicsiegeunitelegale" in lower:
        return "unites_legales"
    return None


def classify(paths: Sequence[str | Path]) -> SireneFiles:
    """Tell the stock files apart by their header; a folder contributes its zip/CSV files.

    Raises
    ------
    SourceError
        a path does not exist, two files play the same role, or no establishments stock.
    """
    found: dict[str, Path] = {}
    ignored: list[str] = []
    candidates: list[Path] = []
    for raw in paths:
        p = Path(raw)
        if not p.exists():
            raise SourceError("file or folder not found; check the path.", path=str(p))
        if p.is_dir():
            candidates += sorted(
                c for c in p.iterdir() if c.is_file() and c.suffix.lower() in (".zip", ".csv")
            )
        else:
            candidates.append(p)
    for p in candidates:
        role = _role(p)
        if role is None:
            ignored.append(p.name)
            continue
        if role in found:
            raise SourceError(
                f"two files look like the same Sirene stock ({found[role].name} and {p.name}); "
                "pass only one of each.",
                path=str(p),
            )
        found[role] = p
    if "etablissements" not in found:
        seen = ", ".join(c.name for c in candidates) or "nothing"
        raise SourceError(
            "no Sirene establishments stock (StockEtablissement_utf8.zip, with columns siret "
            f"and codeCommuneEtablissement) among the files given ({seen}).",
            path=str(paths[0]) if paths else None,
        )
    return SireneFiles(
        etablissements=found["etablissements"],
        unites_legales=found.get("unites_legales"),
        successions=found.get("successions"),
        ignored=ignored,
    )


# ---------------------------------------------------------------------------------------------
# Reading
# ---------------------------------------------------------------------------------------------


@dataclass
class SireneFlows:
    """Firm flows derived from the Sirene stock.

    Attributes
    ----------
    hq : ``hq_link`` flows (origin, destination, value) and their ``section`` breakdown.
    hq_vintage : year of the state described (latest ``dateDernierTraitementEtablissement``).
    transfers : year → (flows, breakdown) of ``establishment_transfer``.
    measure : ``"jobs"`` or ``"establishments"``.
    sha256 : checksum of every input file (and the method), the identity of this import.
    files : file names read.
    rows : data rows read per file role.
    counts : every count of the checks (kept, bad SIRET, malformed dates, …).
    warnings : what was left out and why, with sample file lines.
    """

    hq: pa.Table
    hq_breakdown: pa.Table
    hq_vintage: int
    transfers: dict[int, tuple[pa.Table, pa.Table]]
    measure: str
    sha256: dict[str, str]
    files: dict[str, str]
    rows: dict[str, int]
    counts: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @classmethod
    def empty(cls, measure: str) -> SireneFlows:
        """No flow yet: what the reader fills in, file by file."""
        return cls(
            hq=_empty(FLOW_SCHEMA),
            hq_breakdown=_empty(BREAKDOWN_SCHEMA),
            hq_vintage=0,
            transfers={},
            measure=measure,
            sha256={},
            files={},
            rows={},
        )

    def digest(self, *extra: object) -> str:
        """One checksum for the import of one (kind, vintage): inputs, method, ``extra``."""
        h = hashlib.sha256()
        for role in sorted(self.sha256):
            h.update(f"{role}={self.sha256[role]};".encode())
        h.update(f"{METHOD_VERSION};{self.measure};".encode())
        for x in extra:
            h.update(f"{x};".encode())
        return h.hexdigest()


@contextlib.contextmanager
def workspace(
    tmp_dir: str | Path | None = None, *, memory_limit: str = "2GB", threads: int | None = None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """An in-memory DuckDB database that spills to a temporary folder beyond ``memory_limit``."""
    with tempfile.TemporaryDirectory(prefix="maillage-sirene-", dir=tmp_dir) as tmp:
        con = duckdb.connect(":memory:")
        try:
            con.execute("SET autoinstall_known_extensions=false")
            con.execute("SET autoload_known_extensions=false")
            con.execute(f"SET temp_directory='{tmp}'")
            con.execute(f"SET memory_limit='{memory_limit}'")
            # staged tables keep file order: their ``rowid + 2`` is the file line
            con.execute("SET preserve_insertion_order=true")
            con.execute("SET enable_progress_bar=false")
            if threads:
                con.execute(f"SET threads={int(threads)}")
            yield con
        finally:
            con.close()


def _check_columns(opened: OpenedFile, needed: Sequence[str], what: str, expected: str) -> None:
    """Missing columns → SourceError (line 1, the first missing column) saying what it is."""
    require_separator(opened, ",")
    have = set(opened.header)
    missing = [c for c in needed if c not in have]
    if not missing:
        return
    looks = sniff_header(opened.header)
    hint = (
        f" It looks like {DESCRIPTIONS.get(looks, looks)}."
        if looks not in ("unknown", expected)
        else ""
    )
    raise SourceError(
        f"this is not {what} as published: column(s) {', '.join(missing)} missing.{hint} "
        f"Download {CATALOG[expected]['member'].replace('.csv', '.zip')} from {PAGE}.",
        path=opened.display,
        line=1,
        column=missing[0],
    )


def _stage(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    needed: Sequence[str],
    table: str,
    what: str,
    expected: str,
    prefer: str,
    select: str | None = None,
) -> tuple[int, str, str]:
    """Read the file once into ``table``, in file order; returns (rows, display, sha256).

    ``select`` turns the text columns into the compact typed columns the derivation needs
    (default: the ``needed`` columns as text). ``rowid + 2`` of the table is the file line.
    """
    with open_table_file(path, prefer_member=(prefer,)) as opened:
        if opened.format == "xlsx":
            raise SourceError(
                f"{what} is published as a zipped CSV, not as a workbook.", path=opened.display
            )
        _check_columns(opened, needed, what, expected)
        columns = select or ", ".join(quote_ident(c) for c in needed)
        run_scan(
            con,
            opened,
            lambda o: f"CREATE OR REPLACE TABLE {table} AS SELECT {columns} FROM {csv_scan_sql(o)}",
        )
        con.execute("DROP TABLE IF EXISTS reject_errors; DROP TABLE IF EXISTS reject_scans")
        rows = int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])
        return rows, opened.display, opened.sha256


def _stage_establishments(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    *,
    scanner: bool = True,
    keep: dict[str, Any] | None = None,
    table: bool = True,
) -> tuple[int, str, str, bool | None]:
    """Read the establishments stock into ``etab`` (same table as ``_stage`` with
    ``_etab_select()``); returns (rows, display, sha256, whether the valid SIRETs strictly
    increase — None when not known from the read).

    The numba scanner (:mod:`maillage.sources._sirene_scan`) reads the CSV in one pass when
    the file is UTF-8 with a plain header (no quotes, no repeated names) and every record is
    strict RFC-4180 with the header's field count. Otherwise — another header layout, another
    encoding, a malformed row — the file is read by DuckDB as before, which also names the
    malformed lines in its error (nothing is imported either way).

    ``keep``: when given and the scanner read the file, ``keep["stock"]`` is set to the
    scanned columns (:class:`~maillage.sources._sirene_scan.ScannedStock`), for the numpy
    head-office links. ``table=False`` (with ``keep``): a scanned stock is not copied into
    ``etab`` yet; the caller does it (:func:`_etab_from_stock`) if it needs the table.
    """
    what, expected = "a Sirene establishments stock", "sirene_etablissement"
    if scanner:
        with open_table_file(path, prefer_member=("StockEtablissement",)) as opened:
            if opened.format == "xlsx":
                raise SourceError(
                    f"{what} is published as a zipped CSV, not as a workbook.",
                    path=opened.display,
                )
            _check_columns(opened, _NEED_ETAB, what, expected)
            stock = _scan_into(con, opened)
            if stock is not None:
                if keep is not None:
                    keep["stock"] = stock
                if table or keep is None:
                    _etab_from_stock(con, stock)
                return stock.rows, opened.display, opened.sha256, stock.increasing
    return *_stage(
        con,
        path,
        _NEED_ETAB,
        "etab",
        what,
        expected,
        "StockEtablissement",
        select=_etab_select(),
    ), None


def _plain_header_start(opened: OpenedFile) -> int | None:
    """Byte offset of the first data row when the header is one plain line, else None.

    Plain: names bare or quoted as a whole, none repeated, as read when the file was opened.
    """
    assert opened.csv_path is not None
    with opened.csv_path.open("rb") as fh:
        first = fh.readline(1 << 20)
    if not first.endswith(b"\n"):
        return None
    text = first.removeprefix(b"\xef\xbb\xbf").rstrip(b"\r\n")
    if b"\r" in text:
        return None
    try:
        names = text.decode("utf-8").split(",")
    except UnicodeDecodeError:
        return None
    # each name bare or wholly quoted, with no quote or comma inside
    names = [n[1:-1] if len(n) > 1 and n[0] == n[-1] == '"' else n for n in names]
    if any('"' in n for n in names):
        return None
    if names != opened.header or len(set(names)) != len(names):
        return None
    return len(first)


def _scan_into(con: duckdb.DuckDBPyConnection, opened: OpenedFile) -> Any:
    """Scan the stock with the numba scanner; None when the DuckDB path must read the file.

    Returns the scanned columns (their ``increasing`` says whether the valid SIRETs strictly
    increase in file order, checked while scanning)."""
    from maillage.sources import _sirene_scan as scan

    if opened.encoding != "utf-8" or opened.csv_path is None or opened.separator != ",":
        return None
    start = _plain_header_start(opened)
    if start is None:
        return None
    try:
        stock = scan.scan_establishments(
            opened.csv_path, opened.header, list(HEADCOUNT_MIDPOINTS), _section_lookup(), start
        )
    except scan.NotStrict as exc:
        log.info("%s: read by DuckDB (%s)", opened.display, exc)
        return None
    if not opened.encoding_checked and not opened.checksum.result()[1]:
        return None  # not UTF-8 beyond its first block: DuckDB's path re-reads it
    try:
        _fix_odd_rows(con, opened.csv_path, opened.header, stock)
    except (UnicodeDecodeError, csv.Error, ValueError) as exc:
        log.info("%s: read by DuckDB (%s)", opened.display, exc)
        return None
    return stock


def _etab_from_stock(con: duckdb.DuckDBPyConnection, stock: Any) -> None:
    """``etab`` (the DuckDB path's typed table) from the scanned columns."""
    con.register("_etab_scan", _scanned_table(stock))
    try:
        con.execute(
            "CREATE OR REPLACE TABLE etab AS SELECT siret, place::VARCHAR AS place, siege, "
            "active, state_ok, weight, bad_band, section, treated FROM _etab_scan"
        )
    finally:
        con.unregister("_etab_scan")


def _fix_odd_rows(
    con: duckdb.DuckDBPyConnection, csv_path: Path, header: list[str], stock: Any
) -> None:
    """Place and date of the rows the kernel left to SQL, with the DuckDB path's own SQL."""
    from maillage.sources._sirene_scan import NO_DATE

    if not stock.odd_rows.size:
        return
    texts: dict[str, list[str | None]] = {name: [] for name in _NEED_ETAB}
    with csv_path.open("rb") as fh:
        for start, end in zip(stock.odd_start.tolist(), stock.odd_end.tolist(), strict=True):
            fh.seek(start)
            record = fh.read(end - start).decode("utf-8")
            fields = next(csv.reader(io.StringIO(record, newline="")))
            by_name = dict(zip(header, fields, strict=True))
            for name in _NEED_ETAB:
                # DuckDB reads an empty field, quoted or not, as NULL
                texts[name].append(by_name[name] or None)
    odd = pa.table(
        {"_k": pa.array(range(stock.odd_rows.size), pa.int64())}
        | {k: pa.array(v, pa.string()) for k, v in texts.items()}
    )
    con.register("_etab_odd", odd)
    try:
        rows = con.execute(
            f"SELECT place, treated FROM (SELECT _k, {_etab_select()} FROM _etab_odd) ORDER BY _k"
        ).fetchall()
    finally:
        con.unregister("_etab_odd")
    index = {p: i for i, p in enumerate(stock.places)}
    epoch = dt.date(1970, 1, 1)
    for row, (place, treated) in zip(stock.odd_rows.tolist(), rows, strict=True):
        stock.place[row] = -1 if place is None else index.setdefault(place, len(index))
        stock.treated[row] = (treated - epoch).days if treated is not None else NO_DATE
    stock.places = list(index)


def _scanned_table(stock: Any) -> pa.Table:
    """The scanned columns as an arrow table with the types of the DuckDB path's table."""
    from maillage.sources._sirene_scan import NO_DATE

    midpoints = np.array([*HEADCOUNT_MIDPOINTS.values(), 0.0, 0.0], dtype=np.float32)
    flags = stock.flags
    return pa.table(
        {
            "siret": _arrow_column(stock.siret, pa.int64(), stock.siret >= 0),
            "place": pa.DictionaryArray.from_arrays(
                _arrow_column(stock.place, pa.int32(), stock.place >= 0),
                _arrow_strings(stock.places),
            ),
            "siege": _arrow_column(flags & 1, pa.bool_()),
            "active": _arrow_column(flags & 2, pa.bool_()),
            "state_ok": _arrow_column(flags & 4, pa.bool_()),
            # band -1 (empty) and -2 (unknown) pick the two trailing zeros, masked as NULL
            "weight": _arrow_column(midpoints[stock.band], pa.float32(), stock.band >= 0),
            "bad_band": _arrow_column(stock.band == -2, pa.bool_()),
            "section": _arrow_column(stock.section, pa.uint8()),
            "treated": _arrow_column(stock.treated, pa.date32(), stock.treated != NO_DATE),
        }
    )


@dataclass(frozen=True)
class _Check:
    """A kind of bad value: its count key, the SQL condition of a bad row, the message."""

    key: str
    where: str
    message: str
    left_out: bool = True


def _sample_lines(con: duckdb.DuckDBPyConnection, table: str, where: str, line: str) -> str:
    rows = con.execute(
        f"SELECT {line} AS _l FROM {table} WHERE {where} ORDER BY _l LIMIT {_SAMPLES}"
    ).fetchall()
    return ", ".join(str(r[0]) for r in rows)


def _report(
    con: duckdb.DuckDBPyConnection,
    flows: SireneFlows,
    table: str,
    checks: Sequence[_Check],
    display: str,
    line: str = "rowid + 2",
) -> None:
    """Count every check in one scan of ``table``; a warning with sample lines for each hit."""
    counts = con.execute(
        "SELECT "
        + ", ".join(f"count(*) FILTER (WHERE {c.where})" for c in checks)
        + f" FROM {table}"
    ).fetchall()[0]
    for check, n in zip(checks, counts, strict=True):
        _count(
            flows, check, int(n), display, lambda c=check: _sample_lines(con, table, c.where, line)
        )


def _count(
    flows: SireneFlows, check: _Check, n: int, display: str, lines: Callable[[], str]
) -> None:
    """Store the count of a check; a warning quoting ``lines()`` when it hits."""
    flows.counts[check.key] = n
    if n:
        tail = "; left out" if check.left_out else ""
        flows.warnings.append(f"{display}: {n:,} {check.message}{tail} (e.g. line(s) {lines()})")


def _siret(column: str) -> str:
    """SQL: the SIRET as BIGINT when it is exactly 14 digits, else NULL."""
    return f"CASE WHEN regexp_full_match({column}, '[0-9]{{14}}') THEN {column}::BIGINT END"


def _section_lookup() -> str:
    """100 characters: the NAF section letter of each division 00–99 (``?`` for none)."""
    letters = ["?"] * 100
    for letter, lo, hi in NAF_SECTIONS:
        for division in range(lo, hi + 1):
            letters[division] = letter
    return "".join(letters)


def _etab_select() -> str:
    """The establishments stock as compact typed columns, computed while the CSV is read.

    ``weight`` is the band midpoint (NULL for an empty or unknown band); ``section`` is the
    ASCII code of the NAF section letter, so the table stays small for the national stock.
    """
    bands = " ".join(f"WHEN '{k}' THEN {v!r}" for k, v in HEADCOUNT_MIDPOINTS.items())
    division = "substr(activitePrincipaleEtablissement, 1, 2)"
    return f"""
        {_siret("siret")} AS siret,
        coalesce(nullif(trim(codeCommuneEtablissement), ''),
                 nullif(trim(codePaysEtrangerEtablissement), '')) AS place,
        coalesce(etablissementSiege = 'true', false) AS siege,
        coalesce(etatAdministratifEtablissement = 'A', false) AS active,
        coalesce(etatAdministratifEtablissement, '') IN ('A', 'F') AS state_ok,
        (CASE trancheEffectifsEtablissement {bands} END)::FLOAT AS weight,
        weight IS NULL AND coalesce(trancheEffectifsEtablissement <> '', false) AS bad_band,
        ascii(CASE WHEN nomenclatureActivitePrincipaleEtablissement = 'NAFRev2'
                    AND regexp_full_match({division}, '[0-9][0-9]')
              THEN substr('{_section_lookup()}', {division}::INTEGER + 1, 1)
              ELSE '?' END)::UTINYINT AS section,
        TRY_CAST(substr(dateDernierTraitementEtablissement, 1, 10) AS DATE) AS treated
    """


_UL_SELECT = """
    CASE WHEN regexp_full_match(siren || lpad(nicSiegeUniteLegale, 5, '0'), '[0-9]{14}')
         THEN (siren || lpad(nicSiegeUniteLegale, 5, '0'))::BIGINT END AS hq_siret
"""

_SUCC_SELECT = f"""
    {_siret("siretEtablissementPredecesseur")} AS pred,
    {_siret("siretEtablissementSuccesseur")} AS succ,
    year(try_strptime(dateLienSuccession, '%Y-%m-%d')) AS year,
    coalesce(transfertSiege = 'true', false) AS transfert,
    coalesce(continuiteEconomique = 'true', false) AS continuite
"""


def _prepare_establishments(
    con: duckdb.DuckDBPyConnection,
    flows: SireneFlows,
    disp: str,
    increasing: bool | None = None,
) -> None:
    """Checks on the stock, then ``etab_ok``: one row per valid SIRET (the first listed).

    ``increasing``: whether the valid SIRETs strictly increase, when the reader knows it.
    """
    _report(con, flows, "etab", _etab_checks(), disp)
    if increasing is None:
        increasing = _increasing(con)
    dup = 0 if increasing else _duplicates(con)
    flows.counts["etab_duplicate_siret"] = dup
    if not dup:
        _etab_ok_view(con)
        return
    con.execute(
        f"CREATE OR REPLACE TABLE etab_ok AS SELECT {_ETAB_OK_COLUMNS}, rowid + 2 AS line, "
        "row_number() OVER (PARTITION BY siret ORDER BY rowid) AS copy FROM etab "
        "WHERE siret IS NOT NULL"
    )
    lines = _sample_lines(con, "etab_ok", "copy > 1", "line")
    flows.warnings.append(
        f"{disp}: {dup:,} SIRET(s) listed more than once (first kept); the other copies left "
        f"out (e.g. line(s) {lines})"
    )
    con.execute("DELETE FROM etab_ok WHERE copy > 1")


_ETAB_OK_COLUMNS = "siret, siret // 100000 AS siren, place, siege, active, weight, section"


def _etab_ok_view(con: duckdb.DuckDBPyConnection) -> None:
    """``etab_ok`` over ``etab`` when no valid SIRET is repeated."""
    con.execute(
        f"CREATE OR REPLACE VIEW etab_ok AS SELECT {_ETAB_OK_COLUMNS}, rowid + 2 AS line "
        "FROM etab WHERE siret IS NOT NULL"
    )


def _etab_checks() -> list[_Check]:
    """The checks of the establishments stock (SQL conditions on ``etab``)."""
    ok = "siret IS NOT NULL"
    return [
        _Check("etab_bad_siret", "siret IS NULL", "establishment(s) whose SIRET is not 14 digits"),
        _Check(
            "etab_bad_band",
            "bad_band",
            "establishment(s) with an unknown headcount band (trancheEffectifsEtablissement; "
            "weighted 0, kept)",
            left_out=False,
        ),
        _Check(
            "etab_no_place",
            f"place IS NULL AND {ok}",
            "establishment(s) with neither commune (codeCommuneEtablissement) nor country "
            "(codePaysEtrangerEtablissement)",
        ),
        _Check(
            "etab_bad_state",
            f"NOT state_ok AND {ok}",
            "establishment(s) whose etatAdministratifEtablissement is neither A nor F "
            "(not counted as active)",
            left_out=False,
        ),
    ]


def _prepare_scanned(flows: SireneFlows, disp: str, stock: Any) -> None:
    """The checks of :func:`_prepare_establishments` on the scanned columns of a stock whose
    valid SIRETs strictly increase (none repeated): same counts, warnings and sample lines,
    without the DuckDB table."""
    valid = stock.siret >= 0
    bad = {
        "etab_bad_siret": lambda: ~valid,
        "etab_bad_band": lambda: stock.band == -2,
        "etab_no_place": lambda: (stock.place < 0) & valid,
        "etab_bad_state": lambda: ((stock.flags & 4) == 0) & valid,
    }
    for check in _etab_checks():
        rows = bad[check.key]()

        def lines(rows: np.ndarray = rows) -> str:
            return ", ".join(str(i + 2) for i in np.flatnonzero(rows)[:_SAMPLES].tolist())

        _count(flows, check, int(np.count_nonzero(rows)), disp, lines)
    flows.counts["etab_duplicate_siret"] = 0


def _increasing(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the valid SIRETs are strictly increasing in file order (so none is repeated).

    The published stock is sorted by SIRET: one streaming pass then replaces the hash
    aggregation that finds repeated SIRETs (several seconds on the national stock).
    """
    row = con.execute(
        "SELECT count(*) FILTER (WHERE siret <= previous) FROM ("
        "SELECT siret, lag(siret) OVER () AS previous FROM etab WHERE siret IS NOT NULL)"
    ).fetchall()[0]
    return int(row[0]) == 0


def _duplicates(con: duckdb.DuckDBPyConnection) -> int:
    """Number of SIRETs listed more than once."""
    row = con.execute(
        "SELECT count(*) FROM (SELECT siret FROM etab WHERE siret IS NOT NULL "
        "GROUP BY siret HAVING count(*) > 1)"
    ).fetchall()[0]
    return int(row[0])


def _scanned_stock_year(stock: Any) -> tuple[int, dt.date | None]:
    """:func:`_stock_year` from the scanned columns."""
    from maillage.sources._sirene_scan import NO_DATE

    latest = int(stock.treated.max()) if stock.treated.size else NO_DATE
    if latest == NO_DATE:  # the smallest int32: only rows without a date
        return dt.date.today().year, None
    day = dt.date(1970, 1, 1) + dt.timedelta(days=latest)
    return day.year, day


def _stock_year(con: duckdb.DuckDBPyConnection) -> tuple[int, dt.date | None]:
    latest = con.execute("SELECT max(treated) FROM etab").fetchall()[0][0]
    if latest is None:
        return dt.date.today().year, None
    return latest.year, latest


def _hq_links(
    con: duckdb.DuckDBPyConnection,
    flows: SireneFlows,
    have_ul: bool,
    disp: str,
    stock: Any = None,
    before_sql: Callable[[], None] | None = None,
) -> None:
    """Head office of each siren, then head-office place → establishment place, by section.

    With the scanned columns of a stock whose SIRETs increase (the published one), the links
    are computed with numba and numpy on integer place ids (:func:`_hq_links_numpy`);
    otherwise with SQL (``before_sql`` is called first: it makes ``etab_ok`` when deferred).
    Both give the same counts, warnings and tables (rows ordered by origin, destination and
    section).
    """
    if stock is not None and stock.increasing and _hq_links_numpy(con, flows, have_ul, disp, stock):
        return
    if before_sql is not None:
        before_sql()
    # an active flagged establishment first, then the first listed (2^40 > any line number)
    flagged = """
        SELECT siren, arg_max(place, active::BIGINT * 1099511627776 - line) AS place
        FROM etab_ok WHERE siege GROUP BY siren
    """
    if have_ul:
        con.execute(
            f"""
            CREATE OR REPLACE TABLE hq AS
            WITH by_ul AS (
                SELECT e.siren, e.place FROM ul u JOIN etab_ok e ON e.siret = u.hq_siret
            ), by_flag AS ({flagged})
            SELECT coalesce(by_ul.siren, by_flag.siren) AS siren,
                   coalesce(by_ul.place, by_flag.place) AS place
            FROM by_ul FULL OUTER JOIN by_flag ON by_flag.siren = by_ul.siren
            """
        )
    else:
        con.execute(f"CREATE OR REPLACE TABLE hq AS {flagged}")
    weight = "coalesce(e.weight, 0)::DOUBLE" if flows.measure == "jobs" else "1.0"
    # one join for the links and for the establishments whose head office is not found
    # (origin NULL)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE hq_pairs AS
        SELECT h.place AS origin, e.place AS destination, e.section,
               sum({weight}) AS value, count(*) AS n,
               count(*) FILTER (WHERE {weight} = 0) AS n_zero
        FROM etab_ok e LEFT JOIN hq h ON h.siren = e.siren
        WHERE e.active AND e.place IS NOT NULL
        GROUP BY ALL
        """
    )
    row = con.execute(
        "SELECT coalesce(sum(n) FILTER (WHERE origin IS NULL), 0), "
        "coalesce(sum(n) FILTER (WHERE origin IS NOT NULL), 0), "
        "coalesce(sum(value) FILTER (WHERE origin IS NOT NULL), 0), "
        "coalesce(sum(n) FILTER (WHERE origin <> destination), 0), "
        "coalesce(sum(n_zero) FILTER (WHERE origin IS NOT NULL), 0) FROM hq_pairs"
    ).fetchall()[0]
    not_found = int(row[0])
    flows.counts["hq_not_found"] = not_found
    flows.counts["hq_establishments_linked"] = int(row[1])
    flows.counts["hq_value"] = float(row[2])
    flows.counts["hq_establishments_other_commune"] = int(row[3])
    flows.counts["hq_establishments_zero_weight"] = int(row[4])
    sample = ""
    if not_found:
        sample = _sample_lines(
            con,
            "etab_ok e LEFT JOIN hq h ON h.siren = e.siren",
            "e.active AND e.place IS NOT NULL AND h.place IS NULL",
            "e.line",
        )
    _hq_warnings(flows, have_ul, disp, sample)
    flows.counts["active_establishments"] = int(
        con.execute("SELECT count(*) FROM etab_ok WHERE active").fetchall()[0][0]
    )
    flows.hq = (
        con.sql(
            "SELECT origin, destination, sum(value)::DOUBLE AS value FROM hq_pairs "
            "WHERE origin IS NOT NULL GROUP BY ALL HAVING sum(value) > 0 ORDER BY 1, 2"
        )
        .to_arrow_table()
        .cast(FLOW_SCHEMA)
    )
    flows.hq_breakdown = (
        con.sql(
            "SELECT origin, destination, 'section' AS dimension, chr(section) AS category, "
            "value::DOUBLE AS value FROM hq_pairs WHERE value > 0 AND origin IS NOT NULL "
            "ORDER BY 1, 2, 4"
        )
        .to_arrow_table()
        .cast(BREAKDOWN_SCHEMA)
    )


def _hq_warnings(flows: SireneFlows, have_ul: bool, disp: str, sample: str) -> None:
    """The warnings of the head-office links, from ``flows.counts`` (both paths)."""
    if flows.counts["hq_not_found"]:
        flows.warnings.append(
            f"{disp}: {flows.counts['hq_not_found']:,} active establishment(s) whose head office "
            "is not in the stock (no establishment of the same siren flagged "
            "etablissementSiege=true"
            + (" nor siren||nicSiegeUniteLegale" if have_ul else "")
            + f"); left out (e.g. line(s) {sample})"
        )
    if flows.counts["hq_establishments_zero_weight"]:
        flows.warnings.append(
            f"{flows.counts['hq_establishments_zero_weight']:,} linked active establishment(s) "
            "weigh 0 jobs (headcount band NN, 00, empty or unknown): they are not in the "
            "hq_link flows (import with measure 'establishments' to count them)"
        )


def _legal_unit_origins(
    con: duckdb.DuckDBPyConnection, stock: Any, origin: np.ndarray
) -> np.ndarray | None:
    """``origin`` (from the flagged head offices) with the head offices named by the legal
    units (``siren || nicSiegeUniteLegale``) instead, when they are in the stock with a place
    (SQL ``coalesce``); None when a siren would get two (the SQL path then decides)."""
    from maillage.sources._sirene_scan import NO_HEAD_OFFICE

    named = con.execute("SELECT hq_siret FROM ul WHERE hq_siret IS NOT NULL").fetchnumpy()
    named = np.asarray(named["hq_siret"], dtype=np.int64)
    rows = np.flatnonzero(stock.siret >= 0)
    siret = stock.siret[rows]
    pos = np.minimum(np.searchsorted(siret, named), max(siret.size - 1, 0))
    found = siret[pos] == named if siret.size else np.zeros(named.size, bool)
    ul_siren, ul_place = named[found] // 100000, stock.place[rows[pos[found]]]
    if np.unique(ul_siren).size != ul_siren.size:
        return None
    ul_siren, ul_place = ul_siren[ul_place >= 0], ul_place[ul_place >= 0]
    linked = np.flatnonzero(origin >= NO_HEAD_OFFICE)
    siren = stock.siret[linked] // 100000
    at = np.minimum(np.searchsorted(ul_siren, siren), max(ul_siren.size - 1, 0))
    named_here = ul_siren[at] == siren if ul_siren.size else np.zeros(siren.size, bool)
    origin = origin.copy()
    origin[linked[named_here]] = ul_place[at[named_here]]
    return origin


#: Least rows per part of the head-office links (smaller stocks are linked by one thread).
_LINK_PART_ROWS = 1 << 20


def _link_bounds(siret: np.ndarray, parts: int | None) -> list[tuple[int, int]]:
    """``[start, end)`` rows of each part of the head-office links, split where a siren run
    starts (``parts``: default one per usable core, each at least ``_LINK_PART_ROWS``)."""
    from maillage.sources import _sirene_scan as scan

    n = siret.size
    if parts is None:
        parts = scan.default_parts(n * scan.MIN_PART // _LINK_PART_ROWS)
    starts = [0]
    for k in range(1, parts):
        start = int(scan.next_run_start(siret, k * n // parts))
        if starts[-1] < start < n:
            starts.append(start)
    return list(zip(starts, [*starts[1:], n], strict=True))


def _in_threads(work: Callable[[tuple[int, int]], Any], bounds: list[tuple[int, int]]) -> list:
    """``work`` over every part, each in its own thread when there are several (the numba
    kernels and numpy's sort release the GIL)."""
    if len(bounds) == 1:
        return [work(bounds[0])]
    with ThreadPoolExecutor(len(bounds), thread_name_prefix="maillage-links") as pool:
        return list(pool.map(work, bounds))


def _hq_links_numpy(
    con: duckdb.DuckDBPyConnection,
    flows: SireneFlows,
    have_ul: bool,
    disp: str,
    stock: Any,
    parts: int | None = None,
) -> bool:
    """The head-office links of ``_hq_links`` over the scanned columns (numba kernels).

    The stock's valid SIRETs strictly increase (so none is repeated and the establishments
    of a siren are one run): the head office of every run is found in one pass; each link
    becomes one integer key (place ranks in code order, section, band) and the sorted keys
    give the (origin, destination, section) sums in one more pass; place ids become codes
    only for the resulting pairs. The rows are cut into ``parts`` (:func:`_link_bounds`)
    where a siren run starts, linked in parallel threads, their sums then merged: the
    result does not depend on the parts. Returns False (nothing done) when the SQL path must
    decide.
    """
    from maillage.sources import _sirene_scan as scan

    bounds = _link_bounds(stock.siret, parts)

    def head_offices(ab: tuple[int, int]) -> np.ndarray:
        a, b = ab
        return scan.hq_origins(stock.siret[a:b], stock.place[a:b], stock.flags[a:b])

    origins = _in_threads(head_offices, bounds)
    origin = origins[0] if len(origins) == 1 else np.concatenate(origins)
    del origins
    if have_ul:
        origin = _legal_unit_origins(con, stock, origin)
        if origin is None:
            return False
    codes = np.array(stock.places, dtype=object)
    order = np.argsort(codes, kind="stable") if codes.size else np.zeros(0, np.int64)
    rank = np.empty(max(codes.size, 1), dtype=np.int64)
    rank[order] = np.arange(codes.size)
    # weight of the low 5 bits of a key: 0 for no band, else the band's midpoint
    if flows.measure == "jobs":
        weights = np.zeros(32, dtype=np.float64)
        weights[1 : len(HEADCOUNT_MIDPOINTS) + 1] = np.array(
            list(HEADCOUNT_MIDPOINTS.values()), dtype=np.float32
        )
    else:
        weights = np.ones(32, dtype=np.float64)

    def link(ab: tuple[int, int]) -> tuple[np.ndarray, np.ndarray, int, int, float, int]:
        a, b = ab
        keys, other = scan.link_keys(
            origin[a:b], stock.place[a:b], stock.section[a:b], stock.band[a:b], rank
        )
        keys.sort()
        groups, sums, zero, total = scan.link_sums(keys, weights)
        return groups, sums, keys.size, zero, total, other

    parts_done = _in_threads(link, bounds)
    groups, sums = parts_done[0][:2]
    for more in parts_done[1:]:
        groups, sums = scan.merge_sums(groups, sums, *more[:2])
    # the weights are multiples of 0.5: every sum is exact, in any order
    linked = sum(p[2] for p in parts_done)
    zero_weight = sum(p[3] for p in parts_done)
    total = sum(p[4] for p in parts_done)
    other = sum(p[5] for p in parts_done)
    lost = np.flatnonzero(origin == scan.NO_HEAD_OFFICE)
    flows.counts["hq_not_found"] = int(lost.size)
    flows.counts["hq_establishments_linked"] = int(linked)
    flows.counts["hq_value"] = float(total)
    flows.counts["hq_establishments_other_commune"] = int(other)
    flows.counts["hq_establishments_zero_weight"] = int(zero_weight)
    sample = ", ".join(str(x) for x in (lost[:_SAMPLES] + 2).tolist())
    _hq_warnings(flows, have_ul, disp, sample)
    flows.counts["active_establishments"] = int(
        np.count_nonzero((stock.flags & 2).astype(bool) & (stock.siret >= 0))
    )
    flows.hq, flows.hq_breakdown = _hq_tables(codes[order].tolist(), groups, sums)
    return True


def _arrow_column(
    values: np.ndarray, type_: pa.DataType, valid: np.ndarray | None = None
) -> pa.Array:
    """A numpy column as an arrow array of ``type_`` (same bytes), NULL where not ``valid``.

    Built from buffers: ``pa.array`` on a numpy array imports pandas (a quarter of a second).
    """
    values = np.ascontiguousarray(values)
    bitmap, nulls = None, 0
    if valid is not None:
        nulls = int(valid.size - np.count_nonzero(valid))
        if nulls:
            bitmap = pa.py_buffer(np.packbits(valid, bitorder="little"))
    if type_ == pa.bool_():
        data = pa.py_buffer(np.packbits(values.astype(bool, copy=False), bitorder="little"))
    else:
        data = pa.py_buffer(values)
    return pa.Array.from_buffers(type_, values.size, [bitmap, data], null_count=nulls)


def _string_buffers(texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(offsets, bytes) of ``texts`` laid out as an arrow string array."""
    encoded = [t.encode("utf-8") for t in texts]
    offsets = np.zeros(len(encoded) + 1, dtype=np.int32)
    offsets[1:] = np.cumsum(np.array([len(b) for b in encoded], dtype=np.int64))
    return offsets, np.frombuffer(b"".join(encoded), dtype=np.uint8)


def _arrow_strings(texts: Sequence[str]) -> pa.Array:
    """Strings as an arrow string array, built from buffers (see :func:`_arrow_column`)."""
    offsets, data = _string_buffers(texts)
    return pa.StringArray.from_buffers(len(texts), pa.py_buffer(offsets), pa.py_buffer(data))


def _hq_tables(
    codes: Sequence[str], keys: np.ndarray, sums: np.ndarray
) -> tuple[pa.Table, pa.Table]:
    """(flows, section breakdown) from the sorted group keys (origin rank << 32 |
    destination rank << 8 | section, ranks into ``codes``) and sums: rows with a positive
    value, ordered by origin, destination and section.

    The string columns are gathered by numba into numpy buffers that arrow wraps: arrow's
    own ``take`` allocates from its memory pool, whose first use of that much memory costs
    several times the gathering itself.
    """
    from maillage.sources._sirene_scan import gather_strings

    keep = sums > 0
    keys, value = keys[keep], sums[keep]

    def column(table: tuple[np.ndarray, np.ndarray], ranks: np.ndarray) -> pa.Array:
        offsets, data = gather_strings(*table, ranks.astype(np.int32))
        return pa.StringArray.from_buffers(ranks.size, pa.py_buffer(offsets), pa.py_buffer(data))

    def repeated(text: bytes, n: int) -> pa.Array:
        offsets = np.arange(0, len(text) * (n + 1), len(text), dtype=np.int32)
        return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(text * n))

    places = _string_buffers(codes)
    section = (keys & 0xFF).astype(np.uint8)
    if section.size and section.max() >= 0x80:  # not one ASCII letter: UTF-8 of chr(code)
        category = column(_string_buffers([chr(i) for i in range(256)]), section)
    else:  # one byte per row
        offsets = np.arange(section.size + 1, dtype=np.int32)
        category = pa.StringArray.from_buffers(
            section.size, pa.py_buffer(offsets), pa.py_buffer(section)
        )
    pair = keys >> 8
    starts = np.flatnonzero(np.r_[True, pair[1:] != pair[:-1]]) if pair.size else pair
    ranks = (keys >> 32, pair & 0xFFFFFF, pair[starts] >> 24, pair[starts] & 0xFFFFFF)
    # the four place columns: two threads (the gathering releases the GIL)
    with ThreadPoolExecutor(2, thread_name_prefix="maillage-links") as pool:
        origin, destination, pair_origin, pair_destination = pool.map(
            lambda r: column(places, r), ranks
        )
    breakdown = pa.table(
        {
            "origin": origin,
            "destination": destination,
            "dimension": repeated(b"section", keys.size),
            "category": category,
            "value": _arrow_column(value, pa.float64()),
        }
    )
    flows = pa.table(
        {
            "origin": pair_origin,
            "destination": pair_destination,
            "value": _arrow_column(
                np.add.reduceat(value, starts) if pair.size else value, pa.float64()
            ),
        }
    )
    return flows.cast(FLOW_SCHEMA), breakdown.cast(BREAKDOWN_SCHEMA)


def _transfers(
    con: duckdb.DuckDBPyConnection,
    flows: SireneFlows,
    years: Sequence[int] | None,
    last_complete: int,
    disp: str,
) -> None:
    """Succession links → predecessor place → successor place, per year of the link."""
    date_ok = f"year BETWEEN 1900 AND {last_complete + 1}"
    _report(
        con,
        flows,
        "succ_in",
        [
            _Check(
                "succ_bad_siret",
                "pred IS NULL OR succ IS NULL",
                "succession link(s) whose SIRET is not 14 digits",
            ),
            _Check(
                "succ_bad_date",
                f"year IS NULL OR NOT ({date_ok})",
                "succession link(s) whose dateLienSuccession is not a date AAAA-MM-JJ",
            ),
        ],
        disp,
    )
    weight = "coalesce(p.weight, 0)::DOUBLE" if flows.measure == "jobs" else "1.0"
    con.execute(
        f"""
        CREATE OR REPLACE TABLE succ AS
        SELECT s.year, s.transfert, s.continuite, s.pred, s.rowid + 2 AS line,
               p.place AS origin, q.place AS destination, {weight} AS w,
               p.siret IS NOT NULL AND q.siret IS NOT NULL AS in_stock
        FROM succ_in s
        LEFT JOIN etab_ok p ON p.siret = s.pred LEFT JOIN etab_ok q ON q.siret = s.succ
        WHERE s.pred IS NOT NULL AND s.succ IS NOT NULL AND s.{date_ok}
        """
    )
    _report(
        con,
        flows,
        "succ",
        [
            _Check(
                "succ_not_in_stock",
                "NOT in_stock",
                "succession link(s) to an establishment absent from the stock",
            ),
            _Check(
                "succ_no_place",
                "in_stock AND (origin IS NULL OR destination IS NULL)",
                "succession link(s) whose predecessor or successor has no commune nor country",
            ),
        ],
        disp,
        line="line",
    )
    con.execute(
        """
        CREATE OR REPLACE TABLE tr_pairs AS
        WITH ok AS (
            SELECT *, count(*) OVER (PARTITION BY pred, year) AS n_succ FROM succ
            WHERE in_stock AND origin IS NOT NULL AND destination IS NOT NULL
        )
        SELECT year, origin, destination, transfert, continuite,
               sum(w / n_succ) AS value, sum(1.0 / n_succ) AS links
        FROM ok GROUP BY ALL
        """
    )
    held = [
        int(r[0]) for r in con.execute("SELECT DISTINCT year FROM tr_pairs ORDER BY 1").fetchall()
    ]
    wanted = sorted(set(held) & set(years)) if years is not None else held
    flows.counts["succ_links_kept"] = float(
        con.execute("SELECT coalesce(sum(links), 0) FROM tr_pairs").fetchall()[0][0]
    )
    outside = [y for y in held if y not in wanted]
    if outside:
        n_out = con.execute(
            "SELECT coalesce(sum(links), 0) FROM tr_pairs WHERE year NOT IN "
            f"({', '.join(str(y) for y in wanted) or 'NULL'})"
        ).fetchall()[0][0]
        flows.warnings.append(
            f"{float(n_out):,.0f} succession link(s) dated outside the years imported "
            f"({_years_text(sorted(years) if years is not None else held)}) were not "
            f"imported (their years: {', '.join(str(y) for y in outside)})"
        )
        flows.counts["succ_links_other_years"] = float(n_out)
    for year in wanted:
        f = con.sql(
            "SELECT origin, destination, sum(value)::DOUBLE AS value FROM tr_pairs "
            f"WHERE year = {year} GROUP BY ALL HAVING sum(value) > 0 ORDER BY 1, 2"
        ).to_arrow_table()
        b = con.sql(
            f"""
            SELECT origin, destination, dimension, category, sum(value)::DOUBLE AS value FROM (
              SELECT origin, destination, 'transfert_siege' AS dimension,
                     CASE WHEN transfert THEN 'oui' ELSE 'non' END AS category, value
              FROM tr_pairs WHERE year = {year}
              UNION ALL
              SELECT origin, destination, 'continuite_economique',
                     CASE WHEN continuite THEN 'oui' ELSE 'non' END, value
              FROM tr_pairs WHERE year = {year})
            WHERE value > 0 GROUP BY ALL ORDER BY 1, 2, 3, 4
            """
        ).to_arrow_table()
        flows.transfers[year] = (f.cast(FLOW_SCHEMA), b.cast(BREAKDOWN_SCHEMA))


def _empty(schema: pa.Schema) -> pa.Table:
    # not ``schema.empty_table()`` nor ``pa.array([])``: they import pandas (half a second)
    return pa.Table.from_batches([], schema=schema)


def _years_text(years: Sequence[int]) -> str:
    if not years:
        return "none"
    return f"{years[0]}–{years[-1]}" if len(years) > 1 else str(years[0])


def last_complete_year(latest: dt.date | None, fallback: int) -> int:
    """Latest year fully covered by a stock whose newest treatment date is ``latest``."""
    if latest is None:
        return fallback - 1
    return latest.year if (latest.month, latest.day) == (12, 31) else latest.year - 1


def read_sirene(
    paths: Sequence[str | Path] | str | Path,
    *,
    measure: str = "jobs",
    years: Sequence[int] | None = None,
    last_years: int = 10,
    memory_limit: str = "2GB",
    threads: int | None = None,
    tmp_dir: str | Path | None = None,
    progress: Progress | None = None,
    scanner: bool = True,
) -> SireneFlows:
    """Read the Sirene stock files and derive ``hq_link`` and ``establishment_transfer`` flows.

    Parameters
    ----------
    paths : a folder holding the stock files, or the files themselves (zip as published, or
        the extracted CSV): StockEtablissement (required), StockUniteLegale and
        StockEtablissementLiensSuccession (optional). Other files (history) are ignored.
    measure : ``"jobs"`` (headcount-band midpoints) or ``"establishments"`` (counts).
    years : years of ``dateLienSuccession`` to derive transfers for; default: the
        ``last_years`` complete years before the state date of the stock.
    memory_limit : DuckDB memory limit (the work spills to a temporary folder beyond it).
    threads : DuckDB threads (default: all cores).
    tmp_dir : where the temporary database goes (default: the system's temporary folder).
    scanner : read the establishments stock with the one-pass numba scanner when the file
        allows it (see :func:`_stage_establishments`); False forces the DuckDB reader.

    Raises
    ------
    SourceError
        a file is missing, is not the expected stock, lacks a column, or has malformed rows.
    """
    if measure not in MEASURES:
        raise ValidationError(f"measure must be one of {', '.join(MEASURES)}, not '{measure}'")
    say = progress or (lambda _m, _f: None)
    if isinstance(paths, str | Path):
        paths = [paths]
    files = classify(paths)
    flows = SireneFlows.empty(measure)
    if files.ignored:
        flows.warnings.append(
            f"files not used (not a stock file we read): {', '.join(files.ignored)}"
        )
    with workspace(tmp_dir, memory_limit=memory_limit, threads=threads) as con:
        say("Lecture du stock des établissements Sirene", 0.05)
        scanned: dict[str, Any] = {}
        n, disp, sha, increasing = _stage_establishments(
            con, files.etablissements, scanner=scanner, keep=scanned, table=False
        )
        flows.rows["etablissements"], flows.files["etablissements"] = n, disp
        flows.sha256["etablissements"] = sha
        # a scanned stock whose SIRETs increase is checked on its columns; its DuckDB table
        # is only made when a step needs SQL (the succession links, a head-office fallback)
        deferred = scanned.get("stock") if increasing else None
        if deferred is not None:
            year, latest = _scanned_stock_year(deferred)
            _prepare_scanned(flows, disp, deferred)
        else:
            if "stock" in scanned:
                _etab_from_stock(con, scanned["stock"])
            year, latest = _stock_year(con)
            _prepare_establishments(con, flows, disp, increasing)
        flows.hq_vintage = year

        def etab_tables() -> None:
            nonlocal deferred
            if deferred is not None:
                _etab_from_stock(con, deferred)
                _etab_ok_view(con)
                deferred = None

        have_ul = files.unites_legales is not None
        if files.unites_legales is not None:
            say("Lecture du stock des unités légales", 0.3)
            n, disp_ul, sha = _stage(
                con,
                files.unites_legales,
                _NEED_UL,
                "ul",
                "a Sirene legal units stock",
                "sirene_unite_legale",
                "StockUniteLegale",
                select=_UL_SELECT,
            )
            flows.rows["unites_legales"], flows.files["unites_legales"] = n, disp_ul
            flows.sha256["unites_legales"] = sha
        say("Liens siège – établissement", 0.5)
        _hq_links(con, flows, have_ul, disp, scanned.pop("stock", None), etab_tables)
        if files.successions is not None:
            say("Lecture des liens de succession", 0.6)
            n, disp_s, sha = _stage(
                con,
                files.successions,
                _NEED_SUCC,
                "succ_in",
                "a Sirene succession links stock",
                "sirene_succession",
                "StockEtablissementLiensSuccession",
                select=_SUCC_SELECT,
            )
            flows.rows["successions"], flows.files["successions"] = n, disp_s
            flows.sha256["successions"] = sha
            last = last_complete_year(latest, year)
            wanted = (
                list(years) if years is not None else list(range(last - last_years + 1, last + 1))
            )
            say("Transferts d'établissements", 0.75)
            etab_tables()
            _transfers(con, flows, wanted, last, disp_s)
        else:
            flows.warnings.append(
                "no succession links file (StockEtablissementLiensSuccession): no "
                "establishment transfers derived"
            )
    say("Flux d'entreprises calculés", 0.9)
    return flows


def read_header_only(path: str | Path) -> list[str]:
    """The header of a Sirene file (zip or CSV), for diagnostics."""
    return _header_of(Path(path))


def describe(flows: SireneFlows) -> dict[str, Any]:
    """A plain summary of what was read (for logs, JSON output and the import report)."""
    return {
        "measure": flows.measure,
        "hq_vintage": flows.hq_vintage,
        "hq_pairs": flows.hq.num_rows,
        "transfer_years": sorted(flows.transfers),
        "files": flows.files,
        "rows": flows.rows,
        "counts": flows.counts,
        "warnings": flows.warnings,
    }


__all__ = [
    "CATALOG",
    "ETABLISSEMENT_COLUMNS",
    "HEADCOUNT_MIDPOINTS",
    "NAF_SECTIONS",
    "SECTION_LABELS_FR",
    "SUCCESSION_COLUMNS",
    "UNITE_LEGALE_COLUMNS",
    "SireneFiles",
    "SireneFlows",
    "classify",
    "describe",
    "naf_section",
    "read_sirene",
]
