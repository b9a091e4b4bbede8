"""Checks of French identifiers: NIR/INS (python-stdnum), FINESS and RPPS (Luhn key).

Each check raises django ValidationError with a message a secretary can act on. Messages never
repeat the value itself, so they are safe to log.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _
from stdnum import luhn
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.fr import nir as stdnum_nir

from rempart.lib.normalise import fold_nir

_FINESS = re.compile(r"^\d{9}$")
_RPPS = re.compile(r"^\d{11}$")
INSEE_PLACE = re.compile(r"^(\d{5}|2[AB]\d{3})$")
# The NIR's form, as python-stdnum's validate() checks it (2A/2B for Corsica), so that the key
# alone is left to stdnum: an import checks 760,000 of them.
_NIR_FORM = re.compile(r"^\d{5}(\d\d|2[AB])\d{8}$")

# NIR first digit: 1/2 born in France or registered, 3/4 provisional, 7/8 NIA (temporary number).
_NIR_SEX = {"1": "M", "2": "F", "3": "M", "4": "F", "7": "M", "8": "F"}


def finess_validator(value: str) -> None:
    validate_finess(value)


def rpps_validator(value: str) -> None:
    validate_rpps(value)


def validate_finess(value: str) -> str:
    if not _FINESS.match(value):
        raise ValidationError(
            _("Le numéro FINESS doit comporter 9 chiffres."), code="finess_format"
        )
    if not luhn.is_valid(value):
        raise ValidationError(_("La clé du numéro FINESS est fausse."), code="finess_key")
    return value


def validate_rpps(value: str) -> str:
    if not _RPPS.match(value):
        raise ValidationError(_("Le numéro RPPS doit comporter 11 chiffres."), code="rpps_format")
    if not luhn.is_valid(value):
        raise ValidationError(_("La clé du numéro RPPS est fausse."), code="rpps_key")
    return value


_PLACE_FORMAT = _(
    "Le code INSEE du lieu de naissance doit comporter 5 caractères (99xxx à l'étranger)."
)


def validate_insee_place(value: str) -> str:
    if not INSEE_PLACE.match(value):
        raise ValidationError(
            _PLACE_FORMAT,
            code="birth_place_format",
        )
    return value


def validate_nir(value: str) -> str:
    """The NIR/NIA normalised (15 characters) when its form and key are right."""
    nir = value if value.isascii() and value.isdigit() else fold_nir(value)  # nothing to fold
    if not _NIR_FORM.match(nir):
        raise ValidationError(
            _("Le NIR doit comporter 13 caractères et une clé de 2 chiffres."), code="nir_format"
        )
    try:
        key_ok = stdnum_nir.calc_check_digits(nir) == nir[13:]
    except StdnumError:
        key_ok = False
    if not key_ok:
        raise ValidationError(_("La clé du NIR est fausse."), code="nir_key")
    if nir[0] not in _NIR_SEX:
        raise ValidationError(_("Le NIR doit commencer par 1, 2, 3, 4, 7 ou 8."), code="nir_format")
    return nir


def check_nir_matches_traits(
    nir: str, *, sex: str, birth_date: dt.date, birth_place_code: str
) -> None:
    """The NIR must agree with the INS traits it identifies (sex, year and month, birth place)."""
    errors: dict[str, Any] = {}
    if sex in ("M", "F") and _NIR_SEX[nir[0]] != sex:
        errors["nir"] = _("Le NIR ne correspond pas au sexe.")
    if int(nir[1:3]) != birth_date.year % 100:
        errors["nir"] = _("Le NIR ne correspond pas à l'année de naissance.")
    month = int(nir[3:5])
    if 1 <= month <= 12 and month != birth_date.month:
        errors["nir"] = _("Le NIR ne correspond pas au mois de naissance.")
    # Registered in France: digits 6-10 are the INSEE code of the birth commune (or 99 + country).
    if nir[0] in "12" and birth_place_code and nir[5:10] != birth_place_code:
        errors["nir"] = _("Le NIR ne correspond pas au lieu de naissance.")
    if errors:
        raise ValidationError(errors)


def nir_check_digits(first13: str) -> str:
    return str(stdnum_nir.calc_check_digits(first13))


def luhn_complete(digits: str) -> str:
    """digits followed by their Luhn key (used to mint synthetic FINESS and RPPS numbers)."""
    return digits + str(luhn.calc_check_digit(digits))


# --- IPP numbering ---------------------------------------------------------------------------

# About one IPP number in IPP_GAP is left free when numbers are given out: canary patients
# (rempart.access.canaries) take free numbers among the others, so an IPP does not date them.
IPP_GAP = 20


def ipp_step(draw: int | None = None) -> int:
    """How far the counter moves for the next IPP: 1, or 2 (a number left free) about once in
    IPP_GAP. `draw` makes it deterministic (the generator passes a value from its seed)."""
    import secrets

    value = secrets.randbelow(IPP_GAP) if draw is None else draw % IPP_GAP
    return 2 if value == 0 else 1
