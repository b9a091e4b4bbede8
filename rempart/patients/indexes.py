"""What each blind index of a patient hashes, after normalisation.

No index hashes a low-entropy trait alone: a family name, a phonetic code, a given name or a
birth date shows its frequency through the size of its buckets whatever the bit length (MARTIN's
bucket stands out), and two indexes on one trait join into a finer one. A name is indexed only
with the birth date: `(phonetic code of the name, birth date)` is nearly unique per person, so a
bucket holds C strangers drawn at random and the same name on another date lands elsewhere.
The exact name needs no index of its own: it is a function of the phonetic code, so it would add
bits on the same input without removing a candidate worth the leak. Budget and measurements:
docs/ARCHITECTURE.md ("Blind indexes") and bench/index_attack.py.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from rempart.lib.normalise import fold_email, fold_name, fold_nir, fold_phone
from rempart.lib.phonetic import phonetic_code, phonetic_codes

EXPECTED_ROWS = 760_000


def coincidences(bits: int, rows: int = EXPECTED_ROWS) -> float:
    return float(rows / 2**bits)


def name_sound(name: str) -> str | None:
    """What a name is indexed by: its phonetic code (DUPONT and DUPOND alike), or the folded name
    itself when nothing pronounceable is left (a one-letter name)."""
    code = phonetic_code(name)
    if code:
        return code
    folded = fold_name(name)
    return f"={folded}" if folded else None


def name_date_key(name: str, birth_date: dt.date) -> str | None:
    sound = name_sound(name)
    return f"{sound}|{birth_date.isoformat()}" if sound else None


def usage_date_key(usage_name: str, birth_date: dt.date, birth_name: str) -> str | None:
    """The usage name with the birth date; nothing when it sounds like the birth name (found
    through the birth name's index anyway, and two equal digests on one row would say that the
    names are equal, which is likelier for a common name)."""
    sound = name_sound(usage_name)
    if not sound or sound == name_sound(birth_name):
        return None
    return f"{sound}|{birth_date.isoformat()}"


def nir_key(nir: str) -> str | None:
    return fold_nir(nir) or None


def email_key(email: str) -> str | None:
    return fold_email(email) or None


def phone_key(phone: str) -> str | None:
    return fold_phone(phone) or None


# The same keys over columns (one value per row, None when absent: the row has no key), for bulk
# loads: the names' phonetic codes in one pass (phonetic_codes). tests/test_normalise.py compares
# them with the keys above.


def _sounds(names: Sequence[str | None]) -> list[str | None]:
    codes = phonetic_codes([name or "" for name in names])
    return [
        None if name is None else code or (f"={folded}" if (folded := fold_name(name)) else None)
        for name, code in zip(names, codes, strict=True)
    ]


def name_date_keys(
    names: Sequence[str | None], birth_dates: Sequence[dt.date | None]
) -> list[str | None]:
    return [
        f"{sound}|{born.isoformat()}" if sound and born is not None else None
        for sound, born in zip(_sounds(names), birth_dates, strict=True)
    ]


def usage_date_keys(
    usage_names: Sequence[str | None],
    birth_dates: Sequence[dt.date | None],
    birth_names: Sequence[str | None],
) -> list[str | None]:
    usage_sounds = _sounds(usage_names)
    present = [u is not None and d is not None and b is not None
               for u, d, b in zip(usage_names, birth_dates, birth_names, strict=True)]  # fmt: skip
    birth_sounds = _sounds([b if p else None for b, p in zip(birth_names, present, strict=True)])
    return [
        f"{sound}|{born.isoformat()}" if p and sound and sound != birth_sound else None  # type: ignore[union-attr]
        for p, sound, born, birth_sound in zip(
            present, usage_sounds, birth_dates, birth_sounds, strict=True
        )
    ]
