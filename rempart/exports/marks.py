"""The watermark an export writes into its rows, and how a found copy is read back.

Each exported row carries bits drawn from a keyed hash of (export, patient): the notation of each
phone number (four that French people write), whether the street type of the address is
abbreviated ("avenue" or "av."), whether a town's "Saint" is shortened ("ST-DENIS"), and the
rows' order (sorted by the same hash). None of it changes what the data says: a letter, a call or
a mailing works the same. The key is derived from the index root (a PRF kept outside the
database) and the export's id, so nothing in the database tells the marks of an export.

A copy that kept the formatting names its export row by row (each row agrees with the export's
expected notation or not: 1 in 4 by chance for a phone, 1 in 2 for a street); a copy whose
formatting was normalised still has the export's canary rows (rempart.exports.services).
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass

from rempart.lib.normalise import fold_name, fold_phone

PHONE_STYLES = 4  # "06 12 34 56 78", "06.12.34.56.78", "0612345678", "+33 6 12 34 56 78"

# Street types people write in full or abbreviated (the abbreviations La Poste uses).
STREET_TYPES = {
    "AVENUE": "AV", "BOULEVARD": "BD", "PLACE": "PL", "CHEMIN": "CHE", "ALLEE": "ALL",
    "IMPASSE": "IMP", "ROUTE": "RTE", "SQUARE": "SQ", "FAUBOURG": "FBG", "RESIDENCE": "RES",
}  # fmt: skip
_ABBREVIATED = {v: k for k, v in STREET_TYPES.items()}
_WORD = re.compile(r"[A-Za-zÀ-ÿ]+\.?")
_SAINT = re.compile(r"\b(SAINTE?|STE?)\b(?=[\s-])", re.IGNORECASE)


@dataclass(frozen=True)
class RowMark:
    """What one exported row should look like."""

    order: int  # the row's sort key
    phone_mobile: int  # style 0-3
    phone_home: int
    street: int  # 0 in full, 1 abbreviated
    saint: int  # 0 "SAINT", 1 "ST"


def row_mark(key: bytes, patient_id: uuid.UUID | bytes) -> RowMark:
    raw = patient_id.bytes if isinstance(patient_id, uuid.UUID) else patient_id
    value = int.from_bytes(hashlib.blake2b(raw, key=key, digest_size=8).digest(), "big")
    return RowMark(order=value, phone_mobile=value & 3, phone_home=(value >> 2) & 3,
                   street=(value >> 4) & 1, saint=(value >> 5) & 1)  # fmt: skip


# --- writing ------------------------------------------------------------------------------------


def phone_written(number: str, style: int) -> str:
    """A French number (+33 and 9 digits) in one of the four notations; others as they are."""
    digits = fold_phone(number)
    if not (len(digits) == 11 and digits.startswith("33")):
        return number
    national = "0" + digits[2:]
    pairs = [national[i : i + 2] for i in range(0, 10, 2)]
    if style == 0:
        return " ".join(pairs)
    if style == 1:
        return ".".join(pairs)
    if style == 2:
        return national
    return "+33 " + national[1] + " " + " ".join(pairs[1:])


def _street_type(address: str) -> tuple[re.Match[str], str, int] | None:
    """The street type that opens the address ("12 bis avenue ..."): its place, full name and
    whether it is abbreviated; None when the first word is not one ("12 rue de la Place")."""
    for match in _WORD.finditer(address):
        folded = fold_name(match.group(0))
        if folded in _REPEATS:
            continue
        if folded in STREET_TYPES:
            return match, folded, 0
        if folded in _ABBREVIATED:
            return match, _ABBREVIATED[folded], 1
        return None
    return None


_REPEATS = frozenset({"BIS", "TER", "QUATER", "B", "T"})


def street_written(address: str, abbreviated: int) -> str:
    """The street type opening the address in full or abbreviated, in the address's case."""
    found = _street_type(address)
    if found is not None:
        match, full, _ = found
        word = match.group(0)
        target = (STREET_TYPES[full] + ".") if abbreviated else _full_spelling(full)
        if word.islower():
            target = target.lower()
        elif not word.isupper():
            target = target.capitalize()
        return address[: match.start()] + target + address[match.end() :]
    return address


def _full_spelling(folded: str) -> str:
    return {"ALLEE": "ALLÉE", "RESIDENCE": "RÉSIDENCE"}.get(folded, folded)


def town_written(city: str, abbreviated: int) -> str:
    def shorten(match: re.Match[str]) -> str:
        feminine = match.group(1).upper() in ("SAINTE", "STE")
        if abbreviated:
            return "STE" if feminine else "ST"
        return "SAINTE" if feminine else "SAINT"

    return _SAINT.sub(shorten, city)


# --- reading a found copy -----------------------------------------------------------------------

_PHONE_INTL = re.compile(r"^\s*(\+|00)\s*33")


def phone_style(text: str, digits: str | None = None) -> int | None:
    """The notation of a phone number as found, or None (empty, abroad, unreadable);
    `digits`: the number already folded, when the caller has it."""
    text = text.strip()
    digits = fold_phone(text) if digits is None else digits
    if not (len(digits) == 11 and digits.startswith("33")):
        return None
    if _PHONE_INTL.match(text):
        return 3
    if "." in text:
        return 1
    if " " in text:
        return 0
    return 2 if text.isdigit() else None


def street_style(address: str) -> int | None:
    found = _street_type(address)
    return None if found is None else found[2]


def saint_style(city: str) -> int | None:
    match = _SAINT.search(city)
    if match is None:
        return None
    return 1 if match.group(1).upper() in ("ST", "STE") else 0
