"""Canonical names shared by every room: territory levels, flow kinds, statuses.

Commune codes are always 5-character strings ("01001", "2A004"), never integers.
"""

from __future__ import annotations

#: Levels of the territorial reference, from finest to coarsest, then user perimeters.
LEVELS: tuple[str, ...] = ("commune", "epci", "ept", "departement", "region", "perimeter")

#: Short prefixes used to name a territory on the command line and in URLs: ``epci:242900314``.
LEVEL_PREFIX: dict[str, str] = {
    "com": "commune",
    "epci": "epci",
    "ept": "ept",
    "dep": "departement",
    "reg": "region",
    "per": "perimeter",
}
PREFIX_OF_LEVEL: dict[str, str] = {v: k for k, v in LEVEL_PREFIX.items()}

#: Flow kinds. Direction conventions:
#: commute and school go residence → place of work/study; residential goes previous → current
#: residence; establishment_transfer predecessor → successor; hq_link head office → establishment;
#: wage place of work → place of residence.
FLOW_KINDS: tuple[str, ...] = (
    "commute",
    "residential",
    "school",
    "establishment_transfer",
    "hq_link",
    "wage",
)

KIND_LABELS_FR: dict[str, str] = {
    "commute": "Domicile – travail",
    "residential": "Migrations résidentielles",
    "school": "Domicile – études",
    "establishment_transfer": "Transferts d'établissements",
    "hq_link": "Liens siège – établissement",
    "wage": "Transferts de masse salariale",
}

#: Every figure is either observed (read from an official file) or modelled (estimated).
STATUSES: tuple[str, ...] = ("observed", "modelled")

#: Destination codes that are not French communes.
ABROAD = "99999"
UNKNOWN_FLAG = "unknown"
ABROAD_FLAG = "abroad"
