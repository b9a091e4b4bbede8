"""Postcode and town against INSEE's list of communes: a check that warns, never refuses.

The table (`data/communes.tsv.gz`, rebuilt by `scripts/communes-build` from INSEE's Code
officiel géographique and La Poste's routing labels) maps each postcode to the communes it
serves, under every name people write: the commune, its communes déléguées and associées, the
arrondissements of Paris, Lyon and Marseille, La Poste's label. A town is compared folded
("St-Denis", "SAINT DENIS" and "Saint-Denis" are one), without a CEDEX mention or an
arrondissement number ("Paris 11e" is "Paris").

A delivery-only postcode (CEDEX) is not in the list: it warns like an unknown one.
"""

from __future__ import annotations

import gzip
import re
from functools import cache
from pathlib import Path

from django.utils.translation import gettext as _

from rempart.lib.caching import short_lru_cache
from rempart.lib.normalise import fold_name

TABLE = Path(__file__).resolve().parent / "data" / "communes.tsv.gz"

_WORD = re.compile(r"[A-Z0-9]+")
_SAINTS = {"ST": "SAINT", "STE": "SAINTE", "STS": "SAINTS", "STES": "SAINTES"}
_TAIL = re.compile(r"^(\d{1,2}(ER|E|EME)?|ARRONDISSEMENT|ARR|CEDEX|\d+)$")


@short_lru_cache(maxsize=20_000)
def fold_town(value: str) -> str:
    """One key per way of writing a town: words without accents, saints spelt out, a trailing
    arrondissement number or CEDEX mention dropped, then folded like a name."""
    words = _WORD.findall(fold_name_words(value))
    words = [_SAINTS.get(w, w) for w in words]
    while len(words) > 1 and _TAIL.match(words[-1]):
        words.pop()
    return fold_name("".join(words))


def fold_name_words(value: str) -> str:
    """Upper case without accents, keeping the word boundaries that fold_name removes."""
    return " ".join(fold_name(word) for word in re.split(r"[\s\-'’.,/]+", value) if word)


@cache
def _towns_by_postcode() -> dict[str, frozenset[str]]:
    towns: dict[str, set[str]] = {}
    with gzip.open(TABLE, "rt", encoding="utf-8") as lines:
        for line in lines:
            postcode, _code, name = line.rstrip("\n").split("\t")
            towns.setdefault(postcode, set()).add(fold_town(name))
    return {postcode: frozenset(names) for postcode, names in towns.items()}


def load() -> None:
    """Read the table now (0.5 s): before bulk workers fork, so that they share one copy."""
    _towns_by_postcode()


def address_warning(postcode: str, city: str) -> tuple[str, str] | None:
    """None when the postcode serves a commune of that name (or no postcode is given); else the
    field at fault and why, without the values (the reason may reach a log or an import report).
    """
    fault = _address_fault(postcode.strip(), city.strip())
    if fault == "postcode":
        return fault, _("Code postal absent de la liste des communes de l'INSEE (CEDEX ou erroné).")
    if fault == "city":
        return fault, _("La ville ne correspond à aucune commune de ce code postal (liste INSEE).")
    return None


@short_lru_cache(maxsize=50_000)
def _address_fault(postcode: str, city: str) -> str | None:
    if not postcode:
        return None
    towns = _towns_by_postcode().get(postcode)
    if towns is None:
        return "postcode"
    if city and fold_town(city) not in towns:
        return "city"
    return None
