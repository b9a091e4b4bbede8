"""What each blind index of a patient hashes, after normalisation.

Bit lengths follow CipherSweet's rule for R = 760,000 rows: expected coincidences C = R / 2^L with
2 <= C < sqrt(R) = 871.8 for single-field indexes, i.e. L between 10 and 18. Each index states its C
where it is declared (rempart/patients/models.py).
"""

from __future__ import annotations

import datetime as dt

from rempart.lib.normalise import fold_email, fold_name, fold_nir, fold_phone
from rempart.lib.phonetic import phonetic_code

EXPECTED_ROWS = 760_000


def coincidences(bits: int, rows: int = EXPECTED_ROWS) -> float:
    return float(rows / 2**bits)


def name_key(name: str) -> str | None:
    return fold_name(name) or None


def phonetic_key(name: str) -> str | None:
    return phonetic_code(name) or None


def date_key(birth_date: dt.date) -> str:
    return birth_date.isoformat()


def nir_key(nir: str) -> str | None:
    return fold_nir(nir) or None


def email_key(email: str) -> str | None:
    return fold_email(email) or None


def phone_key(phone: str) -> str | None:
    return fold_phone(phone) or None


def identity_key(birth_name: str, first_given_name: str, birth_date: dt.date) -> str | None:
    name, given = fold_name(birth_name), fold_name(first_given_name)
    if not name or not given:
        return None
    return f"{name}|{given}|{birth_date.isoformat()}"
