"""Controlled vocabularies of the register of cooperations.

Every controlled value is stored as a short ASCII slug (``contrat_reciprocite``,
``developpement_economique``) and shown with its French label. Users may type either the slug
or the label, with or without accents or capitals: :func:`normalise_choice` maps both to the
slug and refuses anything else.
"""

from __future__ import annotations

import re
import unicodedata

#: Legal or practical instrument of a cooperation → French label.
INSTRUMENTS: dict[str, str] = {
    "entente": "entente",
    "convention": "convention",
    "contrat_reciprocite": "contrat de réciprocité",
    "contrat_partenariat": "contrat de partenariat",
    "accord_cadre": "accord-cadre",
    "pole_metropolitain": "pôle métropolitain",
    "petr_pays": "PETR / pays",
    "syndicat_mixte": "syndicat mixte",
    "spl_sem": "SPL / SEM",
    "groupement_autorites_concedantes": "groupement d'autorités concédantes",
    "association": "association",
    "informal_network": "réseau informel",
    "gect": "GECT",
    "other": "autre",
}

#: Themes of cooperation → French label. The last six are also suggested from flow kinds.
THEMES: dict[str, str] = {
    "mobilite": "mobilité",
    "alimentation": "alimentation",
    "agriculture": "agriculture",
    "energie": "énergie",
    "eau": "eau",
    "dechets": "déchets",
    "tourisme": "tourisme",
    "culture": "culture",
    "enseignement_superieur_recherche": "enseignement supérieur et recherche",
    "developpement_economique": "développement économique",
    "sante": "santé",
    "habitat": "habitat",
    "numerique": "numérique",
    "environnement": "environnement",
    "attractivite": "attractivité",
    "ingenierie_mutualisation": "ingénierie / mutualisation",
    "amenagement_planification": "aménagement et planification",
    "insertion": "insertion",
    "jeunesse": "jeunesse",
    "logistique": "logistique",
    "cooperation_internationale": "coopération internationale",
    "emploi": "emploi",
    "education": "éducation",
    "solidarite_financiere": "solidarité financière",
}

#: Life cycle of a cooperation.
STATUSES: dict[str, str] = {"planned": "en projet", "active": "active", "ended": "terminée"}

#: Role of a party in a cooperation.
ROLES: dict[str, str] = {"lead": "chef de file", "member": "membre", "associate": "associé"}

#: Roles of the users of the register, weakest first.
USER_ROLES: tuple[str, ...] = ("reader", "editor", "admin")

#: Flow kind (see ``maillage._schema.FLOW_KINDS``) → themes a strong link of that kind suggests.
THEMES_OF_FLOW_KIND: dict[str, tuple[str, ...]] = {
    "commute": ("mobilite", "emploi"),
    "residential": ("habitat",),
    "school": ("education",),
    "establishment_transfer": ("developpement_economique",),
    "hq_link": ("developpement_economique",),
    "wage": ("solidarite_financiere",),
}


def _fold(text: str) -> str:
    """Lower-case, strip accents and collapse punctuation to single spaces."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^a-z0-9]+", " ", text.lower()).strip()


def normalise_choice(value: str, vocabulary: dict[str, str]) -> str | None:
    """Return the slug of ``value`` in ``vocabulary`` (slug or label, any case/accents), or None.

    Examples
    --------
    >>> normalise_choice("Contrat de réciprocité", INSTRUMENTS)
    'contrat_reciprocite'
    >>> normalise_choice("mobilite", THEMES)
    'mobilite'
    """
    if not isinstance(value, str):
        return None
    if value in vocabulary:
        return value
    folded = _fold(value)
    for slug, label in vocabulary.items():
        if folded in (_fold(slug), _fold(label)):
            return slug
    return None


def label(slug: str, vocabulary: dict[str, str]) -> str:
    """French label of ``slug`` (the slug itself when unknown)."""
    return vocabulary.get(slug, slug)
