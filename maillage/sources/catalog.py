"""Where each INSEE flow file is published: one declarative entry per source and vintage.

Addresses come from DATA_SOURCES.md (A.1–A.3), which cites them from public pages and code;
``url=None`` marks a file that exists (its name or page is known) but whose download address
has not been checked: download it by hand from ``page`` and pass the local file.

Sources
-------
flux_commute, flux_residential, flux_school
    the "bases flux de mobilité" (commune × commune counts).
detail_commute, detail_residential, detail_school
    the detail files FD_MOBPRO, FD_MIGCOM, FD_MOBSCO (one row per person).
wages_cs_commune
    INSEE's base communale of private-sector wages by sex and socio-professional group
    (``maillage import wages``; ``vintage`` = year of the wages).
urssaf_wage_mass_region
    Urssaf's quarterly private-sector wage mass by région × sector (``--totals`` of
    ``maillage import wages``; the export holds every quarter since 1998, ``vintage`` = last
    complete year when the entry was written). Licence ODbL.

``vintage`` is the census year; codes follow the COG of 1 January ``vintage + 2``
(``cog_vintage``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from maillage._errors import SourceError

LICENCE = "Licence Ouverte / Open Licence 2.0 (Etalab)"
INSEE = "https://www.insee.fr/fr/statistiques"

SOURCES: dict[str, str] = {
    "flux_commute": "commute",
    "flux_residential": "residential",
    "flux_school": "school",
    "detail_commute": "commute",
    "detail_residential": "residential",
    "detail_school": "school",
    "wages_cs_commune": "wage",
    "urssaf_wage_mass_region": "wage",
}


@dataclass(frozen=True)
class CatalogEntry:
    """One published file.

    Attributes
    ----------
    source : catalogue id, e.g. ``"flux_commute"``.
    kind : ``"commute"``, ``"residential"``, ``"school"`` or ``"wage"``.
    vintage : census year (wage files: year of the wages).
    cog_vintage : COG vintage of its codes (``vintage + 2``).
    url : official download address, or None when not known.
    member : name of the data file inside the zip (or the file name), when known.
    format : ``"zip-csv"``, ``"csv"`` or ``"xlsx"``.
    encoding : expected encoding (``"utf-8"`` or ``"iso-8859-1"``); the reader detects it anyway.
    licence : licence of the data.
    page : INSEE page describing the file, when known.
    note : provenance of the address.
    """

    source: str
    vintage: int
    url: str | None
    member: str | None = None
    format: str = "zip-csv"
    encoding: str = "utf-8"
    licence: str = LICENCE
    page: str | None = None
    note: str = ""
    kind: str = field(init=False)
    cog_vintage: int = field(init=False)

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise ValueError(f"unknown source {self.source!r}")
        object.__setattr__(self, "kind", SOURCES[self.source])
        object.__setattr__(self, "cog_vintage", self.vintage + 2)


def _flux_commute(vintage: int, number: str, zip_name: str) -> CatalogEntry:
    return CatalogEntry(
        "flux_commute",
        vintage,
        f"{INSEE}/fichier/{number}/{zip_name}",
        member=f"base-flux-mobilite-domicile-lieu-travail-{vintage}.csv",
        page=f"{INSEE}/{number}",
        note="address seen in public code (DATA_SOURCES.md A.1.a)",
    )


ENTRIES: tuple[CatalogEntry, ...] = (
    # --- home–work base flux (A.1.a) ---------------------------------------------------------
    _flux_commute(2022, "8582949", "base-flux-mobilite-domicile-lieu-travail-2022_csv.zip"),
    _flux_commute(2021, "8201899", "base-flux-mobilite-domicile-lieu-travail-2021-csv.zip"),
    _flux_commute(2020, "7630376", "base-flux-mobilite-domicile-lieu-travail-2020-csv.zip"),
    _flux_commute(2019, "6454112", "base-csv-flux-mobilite-domicile-lieu-travail-2019.zip"),
    _flux_commute(2018, "5393835", "base-csv-flux-mobilite-domicile-lieu-travail-2018.zip"),
    # --- residential-migration base flux (A.2) ------------------------------------------------
    CatalogEntry(
        "flux_residential",
        2021,
        None,
        member="base-flux-mobilite-residentielle-2021.csv",
        note="file name and column NBFLUX_C21_POP01P seen in public code; address not checked",
    ),
    CatalogEntry(
        "flux_residential",
        2020,
        None,
        member="base-flux-mobilite-residentielle-2020.csv",
        note="address not checked",
    ),
    CatalogEntry(
        "flux_residential",
        2019,
        None,
        member="base-flux-mobilite-residentielle-2019.csv",
        note="file name seen in public code; address not checked",
    ),
    CatalogEntry(
        "flux_residential",
        2018,
        f"{INSEE}/fichier/5393826/base-csv-flux-mobilite-residentielle-2018.zip",
        member="base-flux-mobilite-residentielle-2018.csv",
        page=f"{INSEE}/5393826",
        note="DATA_SOURCES.md A.2",
    ),
    CatalogEntry(
        "flux_residential",
        2017,
        f"{INSEE}/fichier/4509335/base-csv-flux-mobilite-residentielle-2017.zip",
        member="base-flux-mobilite-residentielle-2017.csv",
        page=f"{INSEE}/4509335",
        note="DATA_SOURCES.md A.2",
    ),
    *(
        CatalogEntry(
            "flux_residential",
            year,
            None,
            member=f"base-texte-flux-mobilite-residentielle-{year}.csv",
            format="csv",
            encoding="iso-8859-1",
            note="old 'base-texte' file, ISO-8859-1 (DATA_SOURCES.md A.2); address not checked",
        )
        for year in (2016, 2015, 2014)
    ),
    # --- home–study base flux (A.3) -----------------------------------------------------------
    CatalogEntry(
        "flux_school",
        2021,
        f"{INSEE}/fichier/8201894/base-flux-mobilite-domicile-lieu-etude-2021-csv.zip",
        member="base-flux-mobilite-domicile-lieu-etude-2021.csv",
        page=f"{INSEE}/8201894",
        note="address seen in public code; not checked against insee.fr",
    ),
    *(
        CatalogEntry(
            "flux_school",
            year,
            None,
            member=f"base-flux-mobilite-domicile-lieu-etude-{year}.csv",
            note="file name seen in public code; address not checked",
        )
        for year in (2022, 2020, 2019)
    ),
    # --- detail files (A.1.b, A.2, A.3) -------------------------------------------------------
    CatalogEntry(
        "detail_commute",
        2016,
        f"{INSEE}/fichier/4171531/RP2016_mobpro_csv.zip",
        member="FD_MOBPRO_2016.csv",
        page=f"{INSEE}/4171531",
        note="DATA_SOURCES.md A.1.b",
    ),
    CatalogEntry(
        "detail_commute",
        2018,
        f"{INSEE}/fichier/5395749/RP2018_mobpro_csv.zip",
        member="FD_MOBPRO_2018.csv",
        page=f"{INSEE}/5395749?sommaire=5395764",
        note="DATA_SOURCES.md A.1.b",
    ),
    CatalogEntry(
        "detail_commute",
        2019,
        "https://www.data.gouv.fr/fr/datasets/r/f3f22487-22d0-45f4-b250-af36fc56ccd0",
        member="FD_MOBPRO_2019.csv",
        note="data.gouv.fr mirror (rp2019-mobpro-csv.zip), DATA_SOURCES.md A.1.b",
    ),
    CatalogEntry(
        "detail_commute",
        2020,
        None,
        member="RP2020_MOBPRO_csv/FD_MOBPRO_2020.csv",
        note="member name seen in public code; address not checked",
    ),
    CatalogEntry(
        "detail_commute",
        2021,
        None,
        member="FD_MOBPRO_2021.csv",
        note="cited as Licence Ouverte 2.0; address not checked",
    ),
    CatalogEntry(
        "detail_residential",
        2016,
        f"{INSEE}/fichier/4171543/RP2016_migcom_csv.zip",
        member="FD_MIGCOM_2016.csv",
        page=f"{INSEE}/4171543",
        note="DATA_SOURCES.md A.2",
    ),
    CatalogEntry(
        "detail_school",
        2016,
        f"{INSEE}/fichier/4171517/RP2016_mobsco_csv.zip",
        member="FD_MOBSCO_2016.csv",
        page=f"{INSEE}/4171517",
        note="DATA_SOURCES.md A.3",
    ),
    CatalogEntry(
        "detail_school",
        2019,
        None,
        member="FD_MOBSCO_2019.csv",
        note="file name seen in public code; address not checked",
    ),
    # --- wages and wage-mass totals (A.6) -----------------------------------------------------
    CatalogEntry(
        "wages_cs_commune",
        2014,
        None,
        format="csv",
        page="https://www.data.gouv.fr/datasets/salaires-dans-le-secteur-prive-selon-le-sexe-et-"
        "la-categorie-socioprofessionnelle-base-communale/",
        note="columns CODGEO;LIBGEO;SNHM14;SNHMC14;SNHMP14;SNHME14;SNHMO14;… seen in public "
        "code (2019: SNHM19…, département file cc_bases-tous-salaries_2019_DEP.csv); file "
        "address not checked",
    ),
    CatalogEntry(
        "urssaf_wage_mass_region",
        2024,
        "https://open.urssaf.fr/api/explore/v2.1/catalog/datasets/effectifs-salaries-et-masse-"
        "salariale-du-secteur-prive-par-region-x-na38/exports/csv",
        format="csv",
        licence="Open Database License (ODbL) 1.0",
        page="https://open.urssaf.fr/explore/dataset/effectifs-salaries-et-masse-salariale-du-"
        "secteur-prive-par-region-x-na38/",
        note="Opendatasoft API v2.1 export (header = field names); dataset id and field names "
        "seen in public code, address not checked from here",
    ),
)


def entries(source: str | None = None) -> list[CatalogEntry]:
    """Every entry, or those of one source, sorted by source then vintage."""
    chosen = [e for e in ENTRIES if source is None or e.source == source]
    return sorted(chosen, key=lambda e: (e.source, e.vintage))


def vintages(source: str) -> list[int]:
    """Census vintages known for ``source``."""
    return [e.vintage for e in entries(source)]


def find(source: str, vintage: int) -> CatalogEntry:
    """The entry of ``source`` for census ``vintage``.

    Raises
    ------
    SourceError
        when the source or the vintage is not in the catalogue; the message lists what exists.
    """
    if source not in SOURCES:
        raise SourceError(
            f"unknown source {source!r}; known sources: {', '.join(SOURCES)}.", path=None
        )
    for entry in ENTRIES:
        if entry.source == source and entry.vintage == vintage:
            return entry
    known = ", ".join(str(v) for v in vintages(source))
    raise SourceError(
        f"no {source} file for census {vintage} in the catalogue; known vintages: {known}. "
        "For another vintage, download the file from insee.fr and import the local copy."
    )
