"""What each column of a sample holds: by its header in French or English when there is one,
otherwise (or when the header says nothing) by its values: NIRs, e-mail addresses, dates, phone
numbers, postcodes, towns of INSEE's list, given names of the French lists, street addresses.
Shuffled, renamed or unnamed columns are all the same to it."""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from collections.abc import Callable, Sequence
from functools import cache

from rempart.lib.normalise import fold_name, fold_phone

KINDS = ("family", "usage", "given", "full_name", "birth_date", "sex", "nir", "email", "phone",
         "address", "postcode", "city", "gp", "gp_rpps", "ipp", "birth_place", "clinical",
         "other")  # fmt: skip

# Folded header words -> kind (the first that a header contains wins, longest first).
_HEADERS: tuple[tuple[str, str], ...] = (
    ("statutidentite", "other"), ("identitystatus", "other"), ("statut", "other"),
    ("medecintraitantrpps", "gp_rpps"), ("rpps", "gp_rpps"), ("medecintraitant", "gp"),
    ("generalpractitioner", "gp"), ("doctor", "gp"), ("medecin", "gp"),
    ("nomdusage", "usage"), ("nomusage", "usage"), ("nomdepouse", "usage"),
    ("marriedname", "usage"), ("usagename", "usage"), ("nomdenaissance", "family"),
    ("nomnaissance", "family"), ("nomdejeunefille", "family"), ("birthname", "family"),
    ("maidenname", "family"), ("lastname", "family"), ("familyname", "family"),
    ("surname", "family"), ("nomdefamille", "family"), ("prenoms", "given"), ("prenom", "given"),
    ("firstname", "given"), ("givenname", "given"), ("forename", "given"),
    ("datedenaissance", "birth_date"), ("datenaissance", "birth_date"), ("naissance", "birth_date"),
    ("birthdate", "birth_date"), ("dateofbirth", "birth_date"), ("dob", "birth_date"),
    ("ddn", "birth_date"), ("born", "birth_date"), ("lieudenaissance", "birth_place"),
    ("lieunaissance", "birth_place"), ("birthplace", "birth_place"), ("sexe", "sex"),
    ("sex", "sex"), ("gender", "sex"), ("genre", "sex"), ("matriculeins", "nir"), ("nir", "nir"),
    ("securitesociale", "nir"), ("numerosecu", "nir"), ("secu", "nir"), ("ssn", "nir"),
    ("insee", "nir"), ("ins", "nir"), ("email", "email"), ("courriel", "email"), ("mail", "email"),
    ("telephone", "phone"), ("portable", "phone"), ("mobile", "phone"), ("phone", "phone"),
    ("tel", "phone"), ("fixe", "phone"), ("codepostal", "postcode"), ("postcode", "postcode"),
    ("postalcode", "postcode"), ("zipcode", "postcode"), ("zip", "postcode"), ("cp", "postcode"),
    ("ville", "city"), ("commune", "city"), ("city", "city"), ("town", "city"),
    ("localite", "city"), ("adresse", "address"), ("address", "address"), ("street", "address"),
    ("rue", "address"), ("ipp", "ipp"), ("idpatient", "ipp"), ("patientid", "ipp"),
    ("numeropatient", "ipp"), ("dossier", "ipp"), ("nomcomplet", "full_name"),
    ("fullname", "full_name"), ("patient", "full_name"), ("nom", "family"), ("name", "full_name"),
    ("diagnostic", "clinical"), ("prescription", "clinical"), ("traitement", "clinical"),
    ("medicament", "clinical"), ("sejour", "clinical"), ("service", "clinical"),
    ("motif", "clinical"), ("allergie", "clinical"), ("antecedent", "clinical"),
    ("pathologie", "clinical"), ("diagnosis", "clinical"), ("drug", "clinical"),
    ("medication", "clinical"), ("admission", "clinical"), ("ordonnance", "clinical"),
)  # fmt: skip
_NON_ALNUM = re.compile(r"[^a-z0-9]")


def _fold_header(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text.lower()).encode("ascii", "ignore").decode()
    return _NON_ALNUM.sub("", plain)


def header_kind(text: str) -> str | None:
    folded = _fold_header(text)
    if not folded:
        return None
    for word, kind in _HEADERS:
        if folded == word or (len(word) > 3 and word in folded):
            return kind
    return None


# --- values ---------------------------------------------------------------------------------------

NIR_SHAPE = re.compile(r"^[1-478]\d{4}(\d\d|2[AB])\d{6}(\d\d)?$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_POSTCODE = re.compile(r"^\d{5}$")
_DIGITS = re.compile(r"^\d{4,14}$")
_ADDRESS = re.compile(r"^\d+\s*(bis|ter|b|t)?\s*,?\s+\D")
_SEXES = {"M", "F", "H", "I", "1", "2", "MALE", "FEMALE", "HOMME", "FEMME", "MASCULIN",
          "FEMININ", "U", "X"}  # fmt: skip
_STATUSES = {"PROV", "RECUP", "VALI", "QUAL"}
_DATE_FORMATS = ("%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y", "%Y/%m/%d", "%d/%m/%y",
                 "%m/%d/%Y", "%Y%m%d")  # fmt: skip


def parse_date(text: str) -> dt.date | None:
    text = text.strip()[:10]
    if len(text) < 6:
        return None
    for fmt in _DATE_FORMATS:
        try:
            value = dt.datetime.strptime(text, fmt).date()  # noqa: DTZ007  # a date, no time
        except ValueError:
            continue
        if 1880 <= value.year <= 2100:
            return value
    return None


def is_nir(text: str) -> bool:
    return bool(NIR_SHAPE.match(re.sub(r"[\s.\-]", "", text).upper()))


def is_phone(text: str) -> bool:
    digits = fold_phone(text)
    return (len(digits) == 11 and digits.startswith("33") and digits[2] != "0") or (
        text.strip().startswith("+") and 8 <= len(digits) <= 15
    )


@cache
def given_names() -> frozenset[str]:
    from faker.providers.person.fr_FR import Provider

    from rempart.synth.data import GIVEN_NAMES_BY_DECADE

    names = {fold_name(n) for n in (*Provider.first_names_male, *Provider.first_names_female)}
    for by_sex in GIVEN_NAMES_BY_DECADE.values():
        for listed in by_sex.values():
            names.update(fold_name(n) for n in listed)
    return frozenset(n for n in names if len(n) > 1)


@cache
def known_towns() -> frozenset[str]:
    from rempart.lib.communes import _towns_by_postcode

    return frozenset(t for towns in _towns_by_postcode().values() for t in towns)


def _share(values: Sequence[str], test: Callable[[str], object]) -> float:
    if not values:
        return 0.0
    return sum(1 for v in values if test(v)) / len(values)


def _first_word_given(value: str) -> bool:
    words = re.split(r"[\s,\-]+", value.strip())
    return bool(words) and fold_name(words[0]) in given_names()


def _has_given_word(value: str) -> bool:
    words = [w for w in re.split(r"[\s,]+", value.strip()) if w]
    return len(words) >= 2 and any(fold_name(w) in given_names() for w in words)


def _wordy(value: str) -> bool:
    return any(c.isalpha() for c in value) and not any(c.isdigit() for c in value)


def value_kind(values: Sequence[str]) -> str:
    """A column's kind from up to a few hundred of its non-empty values."""
    from rempart.lib.communes import fold_town

    values = [v.strip() for v in values if v.strip()][:400]
    if not values:
        return "other"
    if _share(values, lambda v: _EMAIL.match(v)) > 0.6:
        return "email"
    if _share(values, is_nir) > 0.6:
        return "nir"
    if _share(values, lambda v: parse_date(v) is not None) > 0.6:
        return "birth_date"
    if _share(values, lambda v: _POSTCODE.match(v)) > 0.6:
        return "postcode"
    if _share(values, is_phone) > 0.6:
        return "phone"
    if _share(values, lambda v: _DIGITS.match(v)) > 0.6:
        return "ipp"
    if _share(values, lambda v: v.upper() in _SEXES) > 0.8:
        return "sex"
    if _share(values, lambda v: v.upper() in _STATUSES) > 0.8:
        return "other"  # identity statuses (PROV, VALI...)
    if _share(values, lambda v: _ADDRESS.match(v.lower())) > 0.5:
        return "address"
    if _share(values, lambda v: fold_town(v) in known_towns()) > 0.6:
        return "city"
    if _share(values, _first_word_given) > 0.5:
        return "given"
    if _share(values, _has_given_word) > 0.6:
        return "full_name"
    if _share(values, _wordy) > 0.8:
        return "family"
    return "other"


def column_kinds(header: list[str] | None, rows: list[list[str]]) -> list[str]:
    """One kind per column. A header decides when it names a kind its values agree with (or
    that values cannot tell, such as usage name against family name); otherwise the values."""
    width = max((len(r) for r in rows[:2000]), default=0)
    if header:
        width = max(width, len(header))
    kinds: list[str] = []
    for i in range(width):
        values = [r[i] for r in rows[:2000] if i < len(r) and r[i].strip()][:400]
        by_values = value_kind(values)
        by_header = header_kind(header[i]) if header and i < len(header) else None
        kinds.append(by_header if by_header and _header_wins(by_header, by_values) else by_values)
    return _settle_names(kinds)


# Kinds that values cannot tell apart (a usage name looks like a family name): the header says.
_BY_NAME_ONLY = ("usage", "family", "given", "gp", "gp_rpps", "clinical", "birth_place",
                 "full_name")  # fmt: skip
_TEXTUAL = ("family", "given", "full_name", "other", "ipp", "city")


def _header_wins(by_header: str, by_values: str) -> bool:
    return (
        by_header == "other"
        or by_header == by_values
        or (by_header == "birth_place" and by_values in ("postcode", "ipp"))
        or (by_header in _BY_NAME_ONLY and by_values in _TEXTUAL)
        or (by_header in ("phone", "ipp", "postcode", "sex") and by_values == "other")
    )


def _settle_names(kinds: list[str]) -> list[str]:
    """Two columns of names without a header: the first is the family name (as French files
    write them), a second "family" is the given names only if the values said so."""
    seen_family = False
    out = []
    for kind in kinds:
        if kind == "family" and seen_family:
            kind = "usage"
        seen_family = seen_family or kind == "family"
        out.append(kind)
    return out
