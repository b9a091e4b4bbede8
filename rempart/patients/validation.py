"""Validation of a patient's identity and contact before anything is written.

Errors name the field and the rule, never the value: they may reach a log or a reject file.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from rempart.lib.caching import ColumnMemo
from rempart.lib.communes import address_warning
from rempart.lib.identifiers import (
    INSEE_PLACE,
    check_nir_matches_traits,
    validate_insee_place,
    validate_nir,
)
from rempart.lib.normalise import fold_phone
from rempart.patients.models import IdentityStatus, Sex

StrOrPromise = str | Promise
_POSTCODE = re.compile(r"^\d{5}$")
_OLDEST = dt.date(1890, 1, 1)
_SEXES = frozenset(Sex.values)
_STATUSES = frozenset(IdentityStatus.values)
_WITH_INS = frozenset((IdentityStatus.RETRIEVED, IdentityStatus.QUALIFIED))


@dataclass(frozen=True)
class PatientData:
    """Everything that can be said of a patient at the admission desk."""

    birth_name: str
    given_names: str
    sex: str
    birth_date: dt.date
    first_given_name: str = ""
    usage_name: str = ""
    birth_place_code: str = ""
    nir: str = ""
    identity_status: str = IdentityStatus.PROVISIONAL
    email: str = ""
    phone_mobile: str = ""
    phone_home: str = ""
    address_line: str = ""
    postcode: str = ""
    city: str = ""
    gp_id: uuid.UUID | None = None
    extra: dict[str, str] = field(default_factory=dict)

    def as_model_values(self) -> dict[str, object]:
        """Model attribute values; empty strings become NULL so absent data costs no ciphertext."""
        own = vars(self)
        return {name: None if own[name] == "" else own[name] for name in _MODEL_FIELDS}


_MODEL_FIELDS = tuple(f.name for f in fields(PatientData) if f.name != "extra")
_FIELDS = frozenset(f.name for f in fields(PatientData))


def patient_data(values: dict[str, Any]) -> PatientData:
    """A PatientData from the value of every one of its fields, without the frozen dataclass's
    __init__ (an object.__setattr__ per field: seven microseconds, twice per imported row)."""
    if values.keys() != _FIELDS:
        raise TypeError(f"PatientData fields expected, got {sorted(values)}")
    made = object.__new__(PatientData)
    made.__dict__.update(values)
    return made


# Addresses of the plainest shape (a dot-atom of letters, digits, "_", "+" and "-"; labels of
# at most 63 characters; a TLD of letters), in lower case: a part of what Django's validator
# accepts (tests/test_validation.py checks it), read by one regex, about ten times faster.
_PLAIN_EMAIL = re.compile(
    r"[a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}",
    re.ASCII,
)


def email_is_valid(email: str) -> bool:
    """An address as French people have them: the plainest by one regex, other ASCII ones by
    Django's validator, the others (`lou.guér3@exemple.fr`: RFC 6531) by email-validator,
    without any network look-up."""
    if len(email) <= 320 and _PLAIN_EMAIL.fullmatch(email):
        return True
    if email.isascii():
        try:
            validate_email(email)
        except ValidationError:
            return False
        return True
    import email_validator

    try:
        email_validator.validate_email(email, check_deliverability=False, allow_smtputf8=True)
    except email_validator.EmailNotValidError:
        return False
    return True


def clean_patient(
    data: PatientData, *, today: dt.date | None = None, **changes: Any
) -> PatientData:
    """The data tidied (spaces, case, first given name) or a ValidationError listing every fault.
    `changes` are set as they are (a resolved médecin traitant, say); bulk callers pass `today`."""
    errors: dict[str, list[StrOrPromise]] = {}

    def fail(name: str, message: StrOrPromise) -> None:
        errors.setdefault(name, []).append(message)

    birth_name = " ".join(data.birth_name.split()).upper()
    usage_name = " ".join(data.usage_name.split()).upper()
    given_names = " ".join(data.given_names.split())
    first_given = " ".join(data.first_given_name.split()) or (
        given_names.split(" ")[0] if given_names else ""
    )
    if not birth_name:
        fail("birth_name", _("Le nom de naissance est obligatoire."))
    if not given_names:
        fail("given_names", _("Au moins un prénom est obligatoire."))
    if data.sex not in _SEXES:
        fail("sex", _("Le sexe doit être M, F ou I."))
    today = today or timezone.localdate()
    if not isinstance(data.birth_date, dt.date):
        fail("birth_date", _("La date de naissance est obligatoire."))
    elif data.birth_date > today:
        fail("birth_date", _("La date de naissance est dans le futur."))
    elif data.birth_date < _OLDEST:
        fail("birth_date", _("La date de naissance est trop ancienne."))
    if data.identity_status not in _STATUSES:
        fail("identity_status", _("Statut d'identité inconnu."))

    place = data.birth_place_code.strip().upper()
    if place:
        try:
            validate_insee_place(place)
        except ValidationError as exc:
            fail("birth_place_code", exc.messages[0])

    nir = ""
    if data.nir.strip():
        try:
            nir = validate_nir(data.nir)
        except ValidationError as exc:
            fail("nir", exc.messages[0])
        else:
            if (
                "sex" not in errors
                and "birth_date" not in errors
                and "birth_place_code" not in errors
            ):
                try:
                    check_nir_matches_traits(
                        nir, sex=data.sex, birth_date=data.birth_date, birth_place_code=place
                    )
                except ValidationError as exc:
                    for message in exc.messages:
                        fail("nir", message)
    if data.identity_status in _WITH_INS and not data.nir.strip():
        fail("nir", _("Une identité récupérée ou qualifiée a un matricule INS."))
    if data.identity_status in _WITH_INS and not place:
        fail("birth_place_code", _("Une identité récupérée ou qualifiée a un lieu de naissance."))

    email = data.email.strip().lower()
    if email and not email_is_valid(email):
        fail("email", _("L'adresse électronique est mal formée."))
    phones = {"phone_mobile": data.phone_mobile, "phone_home": data.phone_home}
    for name, value in phones.items():
        raw = value.strip()
        if raw:
            if not _phone_ok(fold_phone(raw)):
                fail(name, _("Le numéro de téléphone est mal formé."))
            phones[name] = raw
    postcode = data.postcode.strip()
    if postcode and not _POSTCODE.match(postcode):
        fail("postcode", _("Le code postal doit comporter 5 chiffres."))

    if errors:
        raise ValidationError(errors)
    cleaned = dict(vars(data))  # dataclasses.replace, at a fifth of its cost
    cleaned.update(
        birth_name=birth_name,
        usage_name=usage_name,
        given_names=given_names,
        first_given_name=first_given,
        birth_place_code=place,
        nir=nir,
        email=email,
        postcode=postcode,
        address_line=" ".join(data.address_line.split()),
        city=" ".join(data.city.split()).upper(),
        **phones,
        **changes,
    )
    return patient_data(cleaned)


def _spaced(value: str) -> str:
    return " ".join(value.split())


def _spaced_upper(value: str) -> str:
    return " ".join(value.split()).upper()


def _nir_plain(raw: str, sex: str, birth_date: Any, place: str) -> str | None:
    """The NIR as clean_patient keeps it ("" when none), or None when it would say something of
    it (form, key, or traits the row's readable traits contradict)."""
    if not raw.strip():
        return ""
    if not isinstance(birth_date, dt.date):
        return None  # the row is not plain anyway
    try:
        nir = validate_nir(raw)
        check_nir_matches_traits(nir, sex=sex, birth_date=birth_date, birth_place_code=place)
    except ValidationError:
        return None
    return nir


# clean_plain's columns whose values repeat, each distinct value checked once per process
_USAGE_NAME = ColumnMemo(lambda name: _spaced_upper(name) or None)
_PLACE = ColumnMemo(lambda code: code.strip().upper())
_PLACE_OK = ColumnMemo(lambda code: not code or INSEE_PLACE.match(code) is not None)
_POSTCODE_STRIPPED = ColumnMemo(str.strip)
_POSTCODE_OK = ColumnMemo(lambda code: not code or _POSTCODE.match(code) is not None)
_CITY = ColumnMemo(_spaced_upper)
_ADDRESS_OK = ColumnMemo(lambda pair: pair[0] is None or not address_warning(*pair))


def clean_plain(
    raw: dict[str, Sequence[Any]], *, today: dt.date, mobile_digits: Sequence[str]
) -> tuple[dict[str, list[Any]], list[bool]]:
    """What `clean_for_import(patient_data(row), today=today)` gives as model values for each
    row of a batch held column by column, and which rows it has nothing to say of (no fault, no
    warning): the others' values are meaningless, and the caller runs clean_for_import on them.
    Column by column, values that repeat computed once: a legacy import's rows are nearly all
    plain (tests/test_import_plain.py compares the two on every row of a synthetic export and
    on generated ones). `raw` holds every PatientData field but `extra` (gp_id as resolved);
    `mobile_digits`: fold_phone of each mobile."""
    sex, birth_date, status = raw["sex"], raw["birth_date"], raw["identity_status"]
    birth_name = list(map(_spaced_upper, raw["birth_name"]))
    given_names = list(map(_spaced, raw["given_names"]))  # too many to keep (137,000)
    place = _PLACE(raw["birth_place_code"])
    place_ok = _PLACE_OK(place)
    nir = list(map(_nir_plain, raw["nir"], sex, birth_date, place))
    email = [e.strip().lower() for e in raw["email"]]
    mobile = [m.strip() for m in raw["phone_mobile"]]
    home = [h.strip() for h in raw["phone_home"]]
    postcode = _POSTCODE_STRIPPED(raw["postcode"])
    postcode_ok = _POSTCODE_OK(postcode)
    city = _CITY(raw["city"])
    address_ok = _ADDRESS_OK(
        [(pc if ok else None, c) for pc, ok, c in zip(postcode, postcode_ok, city, strict=True)]
    )
    plain = [
        s in _SEXES
        and isinstance(d, dt.date)
        and _OLDEST <= d <= today
        and st in _STATUSES
        and bool(bn)
        and bool(gn)
        and pok
        and n is not None
        and not (st in _WITH_INS and (not n or not pl))
        and (not e or email_is_valid(e))
        and (not m or _phone_ok(md or fold_phone(m)))
        and (not h or _phone_ok(fold_phone(h)))
        and pcok
        and aok
        for s, d, st, bn, gn, pok, n, pl, e, m, md, h, pcok, aok in zip(
            sex, birth_date, status, birth_name, given_names, place_ok, nir, place, email,
            mobile, mobile_digits, home, postcode_ok, address_ok, strict=True,
        )
    ]  # fmt: skip
    first_given = [
        _spaced(f) or g.split(" ")[0]
        for f, g in zip(raw["first_given_name"], given_names, strict=True)
    ]
    return {
        "birth_name": birth_name,
        "given_names": given_names,
        "sex": list(sex),
        "birth_date": list(birth_date),
        "first_given_name": [f or None for f in first_given],
        "usage_name": _USAGE_NAME(raw["usage_name"]),
        "birth_place_code": [p or None for p in place],
        "nir": [n or None for n in nir],
        "identity_status": list(status),
        "email": [e or None for e in email],
        "phone_mobile": [m or None for m in mobile],
        "phone_home": [h or None for h in home],
        "address_line": [_spaced(a) or None for a in raw["address_line"]],
        "postcode": [p or None for p in postcode],
        "city": [c or None for c in city],
        "gp_id": list(raw["gp_id"]),
    }, plain


def _phone_ok(digits: str) -> bool:
    return (digits.startswith("33") and len(digits) == 11) or 8 <= len(digits) <= 15


# Fields a legacy import leaves out (with a warning) rather than lose the patient over.
OPTIONAL = ("email", "phone_mobile", "phone_home", "postcode", "birth_place_code", "nir",
            "usage_name", "city", "address_line")  # fmt: skip
_FATAL = ("birth_name", "given_names", "birth_date")


def clean_for_import(
    data: PatientData, *, today: dt.date | None = None, **changes: Any
) -> tuple[PatientData, list[str]]:
    """What a legacy import keeps of a row: refused (ValidationError) only without a usable
    identity (no family name, no given name, no or an impossible birth date); a faulty optional
    field is left out with a warning; a sex the source did not give becomes "I"; an identity
    that lost its INS (a NIR whose key or traits are wrong, a bad birth place) is provisional,
    never qualified. Returns the cleaned data and the warnings (field: reason, never a value)."""
    warnings: list[str] = []
    for _attempt in range(4):
        try:
            kept = clean_patient(data, today=today, **changes)
        except ValidationError as exc:
            faults = exc.message_dict
        else:
            address = address_warning(kept.postcode, kept.city)
            if address:
                warnings.append(f"{address[0]}: {address[1]} Adresse gardée, à vérifier.")
            return kept, warnings
        fatal = {k: v for k, v in faults.items() if k in _FATAL}
        if fatal:
            raise ValidationError(fatal)
        dropped: dict[str, Any] = {}
        for name, messages in faults.items():
            text = " ".join(messages)
            if name in OPTIONAL:
                dropped[name] = ""
                warnings.append(f"{name}: {text} Champ écarté.")
            elif name == "sex":
                dropped["sex"] = Sex.UNDETERMINED
                warnings.append(f"sex: {text} Sexe enregistré comme indéterminé.")
            elif name == "identity_status":
                dropped["identity_status"] = IdentityStatus.PROVISIONAL
                warnings.append(f"identity_status: {text} Identité provisoire.")
            else:
                raise ValidationError({name: messages})
        status = dropped.get("identity_status", data.identity_status)
        wrong_nir = "nir" in dropped and status != IdentityStatus.PROVISIONAL
        if wrong_nir or (status in _WITH_INS and "birth_place_code" in dropped):
            dropped["identity_status"] = IdentityStatus.PROVISIONAL
            warnings.append("identity_status: identité sans INS vérifiable, enregistrée "
                            "provisoire.")  # fmt: skip
        data = replace(data, **dropped)
    raise ValidationError(_("Ligne inutilisable."))
