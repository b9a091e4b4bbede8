"""Normalisation before blind-indexing and exact comparison: one spelling per person."""

from __future__ import annotations

import re
import unicodedata

from rempart.lib.caching import short_lru_cache

_LIGATURES = str.maketrans({"Œ": "OE", "Æ": "AE", "ß": "SS", "œ": "OE", "æ": "AE"})
_NOT_ALNUM = re.compile(r"[^A-Z0-9]")
_NOT_DIGIT = re.compile(r"\D")
_NIR_SEPARATORS = re.compile(r"[\s.\-]")
_ASCII_NOT_DIGITS = bytes(b for b in range(128) if not 0x30 <= b <= 0x39)


@short_lru_cache(maxsize=50_000)
def fold_name(value: str) -> str:
    """Upper case, accents and ligatures removed, hyphens, apostrophes and spaces folded away.

    "Le Goff", "LE-GOFF" and "legoff" give one key; "Hélène" and "HELENE" too.
    """
    if value.isascii():  # no accent, no ligature: upper case and folding are all there is
        return _NOT_ALNUM.sub("", value.upper())
    upper = value.translate(_LIGATURES).upper()
    stripped = "".join(
        c for c in unicodedata.normalize("NFKD", upper) if not unicodedata.combining(c)
    )
    return _NOT_ALNUM.sub("", stripped)


def fold_email(value: str) -> str:
    return value.strip().lower()


def fold_phone(value: str) -> str:
    """A French phone number as its international digits: "06 12 34 56 78" -> "33612345678"."""
    if value.isascii():  # the usual case: bytes.translate deletes in a third of a regex's time
        digits = value.encode().translate(None, _ASCII_NOT_DIGITS).decode()
    else:
        digits = _NOT_DIGIT.sub("", value)
    if digits.startswith("00"):
        digits = digits[2:]
    elif len(digits) == 10 and digits.startswith("0"):
        digits = "33" + digits[1:]
    if len(digits) == 12 and digits.startswith("330"):  # "+33 (0)6 12 34 56 78"
        digits = "33" + digits[3:]
    return digits


def fold_nir(value: str) -> str:
    return _NIR_SEPARATORS.sub("", value).upper()
