"""The leak analyser: a posted sample against the group, without decrypting the whole base.

1. The sample is read (rempart.breach.readers) and each column given a kind (columns).
2. Each row's traits are normalised as the blind indexes are (name and birth date by sound,
   NIR, e-mail, phones) and digested under every enabled index key.
3. The digests meet the patients' blind-index columns in memory (NumPy, one sorted array per
   index): a (row, patient) pair that agrees on two indexes is a candidate; so is one that
   agrees on its only index, or on name and date when nothing else agrees. Invented rows
   agree on nothing twice: they cost no decryption.
4. Only the candidates are decrypted and compared field by field: each row is an exact match
   (every field the row gives agrees), partial (it names the person, some fields differ) or
   none (invented, or from elsewhere).
5. The matched patients give the establishments, services and freshness; the source is looked
   for in the exports (their canary rows, their rows' watermark and order), the database's
   canary patients, and the accounts whose reads best cover the sample (the audit trail).

The report holds counts, names of establishments, exports and accounts: never a patient's
values. Which patients matched, and which categories of their data the sample shows, is kept
for the notifications (LeakedPatient).
"""

from __future__ import annotations

import datetime as dt
import gc
import hashlib
import math
import multiprocessing
import re
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, cast

import numpy as np
from django.db import connection, connections
from stdnum.fr import nir as stdnum_nir

from rempart.breach import columns as cols
from rempart.breach.readers import Sample
from rempart.exports import marks
from rempart.lib.communes import fold_town
from rempart.lib.normalise import fold_email, fold_name, fold_nir, fold_phone
from rempart.lib.parallel import bounded_imap
from rempart.patients import indexes as ix
from rempart.patients.models import Patient, PatientIdentifier
from rempart.vault.fields import BlindIndexField, EncryptedField
from rempart.vault.keystore import get_vault

Progress = Callable[[str, int], None]
STEPS = 6  # progress calls of an analysis: read, index, candidates, compared, rows, report

# Index kinds: the name-and-date index covers birth and usage names.
NAME, NIR, EMAIL, PHONE = 0, 1, 2, 3
_COLUMNS = {NAME: ("bidx_name_birth", "bidx_name_usage"), NIR: ("bidx_nir",),
            EMAIL: ("bidx_email",), PHONE: ("bidx_phone_mobile", "bidx_phone_home")}  # fmt: skip
CATEGORY_OF = {
    "family": "identite", "usage": "identite", "given": "identite", "full_name": "identite",
    "sex": "identite", "birth_date": "date_naissance", "nir": "ins", "birth_place": "ins",
    "address": "adresse", "postcode": "adresse", "city": "adresse", "phone": "telephone",
    "email": "email", "gp": "medecin_traitant", "gp_rpps": "medecin_traitant", "ipp": "ipp",
    "clinical": "clinique",
}  # fmt: skip
CATEGORIES = ("identite", "date_naissance", "ins", "adresse", "telephone", "email",
              "medecin_traitant", "ipp", "clinique")  # fmt: skip


class Row:
    """One sample row's traits, normalised; `street`, `saint` and each phone's notation as seen
    (for the watermarks). A plain class with slots: a million of them are made."""

    __slots__ = ("address", "birth_date", "born", "categories", "city", "email", "families",
                 "folded", "given", "gp_rpps", "ipp", "nir", "phones", "postcode", "present",
                 "saint", "sex", "sounds", "street")  # fmt: skip

    def __init__(self) -> None:
        self.families: list[str] = []
        self.given: set[str] = set()
        self.birth_date: dt.date | None = None
        self.sex = self.nir = self.email = self.address = self.postcode = self.city = ""
        self.ipp = self.gp_rpps = self.born = ""
        self.phones: list[tuple[str, int | None]] = []  # (digits, notation)
        self.street: int | None = None
        self.saint: int | None = None
        self.categories: set[str] = set()
        self.folded: set[str] = set()  # the family names folded, and their sounds
        self.sounds: set[str] = set()
        self.present = 0  # the fields the row gives (FIELDS bits)

    def finish(self) -> Row:
        keys = [_name_keys(f) for f in self.families]
        self.folded = {folded for folded, _ in keys}
        self.sounds = {sound for _, sound in keys if sound}
        self.born = self.birth_date.isoformat() if self.birth_date else ""
        self.present = (
            (NOM if self.families else 0) | (PRENOM if self.given else 0)
            | (DATE if self.born else 0) | (SEXE if self.sex else 0)
            | (NIR_F if self.nir else 0) | (EMAIL_F if self.email else 0)
            | (TEL if self.phones else 0) | (ADRESSE if self.address else 0)
            | (CP if self.postcode else 0) | (VILLE if self.city else 0)
            | (IPP if self.ipp else 0)
        )  # fmt: skip
        return self


@lru_cache(maxsize=200_000)
def _name_keys(name: str) -> tuple[str, str | None]:
    return fold_name(name), ix.name_sound(name)


@lru_cache(maxsize=100_000)
def _given_words(value: str) -> frozenset[str]:
    return frozenset(fold_name(w) for w in re.split(r"[\s,]+", value) if w)


@lru_cache(maxsize=100_000)
def _date(value: str) -> dt.date | None:
    return cols.parse_date(value)


@lru_cache(maxsize=20_000)
def _town(value: str) -> tuple[str, int | None]:
    return fold_town(value), marks.saint_style(value)


# --- 1. rows to traits ----------------------------------------------------------------------------

_SEX = {"M": "M", "H": "M", "1": "M", "MALE": "M", "HOMME": "M", "MASCULIN": "M", "F": "F",
        "2": "F", "FEMALE": "F", "FEMME": "F", "FEMININ": "F"}  # fmt: skip
_TEXT_EMAIL = re.compile(r"[^\s;,<>\"']+@[^\s;,<>\"']+\.[A-Za-z]{2,}")
_TEXT_NIR = re.compile(
    r"\b[1-478](?:[\s.]?\d){4}[\s.]?(?:\d\d|2[AB])(?:[\s.]?\d){6}(?:[\s.]?\d\d)?\b"
)
_TEXT_DATE = re.compile(r"\b\d{1,4}[/.\-]\d{1,2}[/.\-]\d{2,4}\b")
_TEXT_PHONE = re.compile(r"(?:\+|00)?\d[\d .\-]{7,16}\d")
_TEXT_POSTCODE = re.compile(r"\b\d{5}\b")
_WORDS = re.compile(r"[A-Za-zÀ-ÿ'\-]{2,}")
_STREET_FULL = {abbr: full for full, abbr in marks.STREET_TYPES.items()}


def _address_key(text: str) -> str:
    """An address compared whatever the street type's spelling ("av." or "avenue")."""
    words = [fold_name(w) for w in re.split(r"[\s,]+", text) if w]
    return "".join(_STREET_FULL.get(w, w) for w in words)


def _add_phone(row: Row, text: str) -> None:
    digits = fold_phone(text)
    if len(digits) >= 8:
        row.phones.append((digits, marks.phone_style(text)))


def _set_family(row: Row, value: str) -> None:
    row.families.append(value)


def _set_given(row: Row, value: str) -> None:
    row.given.update(_given_words(value))


def _set_date(row: Row, value: str) -> None:
    row.birth_date = _date(value)


def _set_sex(row: Row, value: str) -> None:
    row.sex = _SEX.get(value.upper(), "")


def _set_nir(row: Row, value: str) -> None:
    row.nir = _nir(value)


def _set_email(row: Row, value: str) -> None:
    row.email = fold_email(value)


def _set_address(row: Row, value: str) -> None:
    row.address, row.street = _address_key(value), marks.street_style(value)


def _set_postcode(row: Row, value: str) -> None:
    row.postcode = value


def _set_city(row: Row, value: str) -> None:
    row.city, row.saint = _town(value)


def _set_ipp(row: Row, value: str) -> None:
    row.ipp = value.lstrip("0")


def _set_rpps(row: Row, value: str) -> None:
    row.gp_rpps = value


_SETTERS: dict[str, Callable[[Row, str], None]] = {
    "family": _set_family, "usage": _set_family, "given": _set_given,
    "full_name": lambda row, value: _full_name(row, value), "birth_date": _set_date,
    "sex": _set_sex, "nir": _set_nir, "email": _set_email, "phone": _add_phone,
    "address": _set_address, "postcode": _set_postcode, "city": _set_city, "ipp": _set_ipp,
    "gp_rpps": _set_rpps,
}  # fmt: skip


def _plan(kinds: list[str]) -> list[tuple[int, Callable[[Row, str], None] | None, str | None]]:
    """For each column that says something: its index, what it sets, its data category."""
    return [(i, _SETTERS.get(kind), CATEGORY_OF.get(kind)) for i, kind in enumerate(kinds)
            if kind != "other" and (kind in _SETTERS or kind in CATEGORY_OF)]  # fmt: skip


def _row_traits(kinds: list[str], values: list[str], plan: Any = None) -> Row:
    row = Row()
    width = len(values)
    for i, setter, category in plan if plan is not None else _plan(kinds):
        if i >= width:
            continue
        value = values[i].strip()
        if not value:
            continue
        if category:
            row.categories.add(category)
        if setter is not None:
            setter(row, value)
    return row


def _full_name(row: Row, value: str) -> None:
    words = [w for w in re.split(r"[\s,]+", value) if w]
    family = [w for w in words if fold_name(w) not in cols.given_names()]
    row.given.update(fold_name(w) for w in words if fold_name(w) in cols.given_names())
    if family:
        row.families.append(" ".join(family))
    if len(words) >= 2:  # "Jean MARTIN" where MARTIN is also a given name
        row.families.extend((words[0], words[-1]))


def _nir(value: str) -> str:
    nir = fold_nir(value)
    if len(nir) == 13 and cols.NIR_SHAPE.match(nir):
        try:
            return nir + str(stdnum_nir.calc_check_digits(nir))
        except Exception:  # stdnum's own errors: a malformed value is no NIR
            return ""
    return nir if len(nir) == 15 else ""


def _text_traits(text: str) -> Row:
    """A plain-text line: the traits found by their shape, each alphabetic word a name."""
    row = Row()
    rest = text
    if found := _TEXT_EMAIL.search(rest):
        row.email = fold_email(found.group(0))
        row.categories.add("email")
        rest = rest.replace(found.group(0), " ")
    if found := _TEXT_NIR.search(rest):
        row.nir = _nir(found.group(0))
        row.categories.add("ins")
        rest = rest.replace(found.group(0), " ")
    for found in _TEXT_DATE.finditer(rest):
        if (date := cols.parse_date(found.group(0))) is not None:
            row.birth_date = row.birth_date or date
            row.categories.add("date_naissance")
    rest = _TEXT_DATE.sub(" ", rest)
    for found in _TEXT_PHONE.finditer(rest):
        if cols.is_phone(found.group(0)):
            _add_phone(row, found.group(0))
            row.categories.add("telephone")
    rest = _TEXT_PHONE.sub(" ", rest)
    if found := _TEXT_POSTCODE.search(rest):
        row.postcode = found.group(0)
        row.categories.add("adresse")
    words = _WORDS.findall(rest)
    given = cols.given_names()
    row.given.update(fold_name(w) for w in words if fold_name(w) in given)
    row.families.extend(w for w in words if len(w) > 1)
    if words:
        row.categories.add("identite")
    return row


def rows_traits(sample: Sample, kinds: list[str]) -> list[Row]:
    if sample.layout == "text":
        return [_text_traits(r[0]).finish() for r in sample.rows]
    plan = _plan(kinds)
    return [_row_traits(kinds, r, plan).finish() for r in sample.rows]


# --- 2. digests -----------------------------------------------------------------------------------


def _bits(column: str) -> int:
    return cast(BlindIndexField, Patient._meta.get_field(column)).bits


def sample_keys(rows: list[Row]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kind, value, row) arrays: each row's normalised traits under every enabled index key,
    as `slot << 32 | digest` (slot: the key's place among the enabled ones)."""
    indexer = get_vault().indexer
    wanted: list[tuple[int, str, int]] = []  # (kind, normalised, row)
    for r, row in enumerate(rows):
        if row.birth_date is not None:
            born = row.birth_date.isoformat()
            wanted.extend((NAME, f"{sound}|{born}", r) for sound in row.sounds)
        if row.nir:
            wanted.append((NIR, row.nir, r))
        if row.email:
            wanted.append((EMAIL, row.email, r))
        for digits, _ in row.phones:
            wanted.append((PHONE, digits, r))
    kinds: list[int] = []
    values: list[int] = []
    owners: list[int] = []
    index_names = {NAME: "name_date", NIR: "nir", EMAIL: "email", PHONE: "phone"}
    for slot, key_id in enumerate(indexer.key_ids):
        for kind in (NAME, NIR, EMAIL, PHONE):
            mine = [(v, r) for k, v, r in wanted if k == kind]
            if not mine:
                continue
            bits = _bits(_COLUMNS[kind][0])
            digests = indexer.digests(index_names[kind], [v for v, _ in mine], bits, key_id)
            kinds.extend([kind] * len(mine))
            values.extend((slot << 32) | int(d or 0) for d in digests)
            owners.extend(r for _, r in mine)
    return (np.array(kinds, dtype=np.int8), np.array(values, dtype=np.int64),
            np.array(owners, dtype=np.int64))  # fmt: skip


# --- 3. candidates --------------------------------------------------------------------------------


@dataclass
class Base:
    ids: list[uuid.UUID]
    sorted_values: dict[int, np.ndarray]  # kind -> sorted slot<<32|digest
    sorted_owner: dict[int, np.ndarray]  # kind -> patient index, aligned


def load_base() -> Base:
    """Every patient's blind-index values (no decryption): what the sample's digests meet."""
    indexer = get_vault().indexer
    slots = {key_id: slot for slot, key_id in enumerate(indexer.key_ids)}
    names = [c for kind in (NAME, NIR, EMAIL, PHONE) for c in _COLUMNS[kind]]
    table = Patient._meta.db_table
    with connection.cursor() as cursor:  # raw: the ORM's per-value converters cost seconds here
        cursor.execute(f"SELECT id, index_key_id, {', '.join(names)} FROM {table}")  # noqa: S608
        fetched = cursor.fetchall()
    ids = [r[0] if isinstance(r[0], uuid.UUID) else uuid.UUID(str(r[0])) for r in fetched]
    slot_arr = np.array([slots.get(r[1], -1) for r in fetched], dtype=np.int64)
    arrays = {name: np.array([-1 if r[i] is None else r[i] for r in fetched], dtype=np.int64)
              for i, name in enumerate(names, start=2)}  # fmt: skip
    del fetched
    sorted_values, sorted_owner = {}, {}
    for kind in (NAME, NIR, EMAIL, PHONE):
        parts_v, parts_o = [], []
        for name in _COLUMNS[kind]:
            column = arrays[name]
            keep = (column >= 0) & (slot_arr >= 0)
            parts_v.append((slot_arr[keep] << 32) | column[keep])
            parts_o.append(np.nonzero(keep)[0])
        values = np.concatenate(parts_v) if parts_v else np.zeros(0, np.int64)
        owners = np.concatenate(parts_o) if parts_o else np.zeros(0, np.int64)
        order = np.argsort(values, kind="stable")
        sorted_values[kind], sorted_owner[kind] = values[order], owners[order]
    return Base(ids, sorted_values, sorted_owner)


def _unique(values: np.ndarray) -> np.ndarray:
    """np.unique by sorting (NumPy 2's hash-based unique took 8 s on 4 million int64 here)."""
    if values.size == 0:
        return values
    ordered = np.sort(values)
    keep = np.empty(ordered.size, dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def _unique_counts(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct values of a sorted array and how often each comes."""
    if ordered.size == 0:
        return ordered, ordered
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    counts = np.diff(np.append(starts, ordered.size))
    return ordered[starts], counts


def candidates(base: Base, keys: tuple[np.ndarray, np.ndarray, np.ndarray],
               row_count: int) -> dict[int, list[int]]:  # fmt: skip
    """Row -> patient indexes worth decrypting (see the module's docstring)."""
    kinds, values, owners = keys
    pair_rows, pair_patients, pair_kinds = [], [], []
    for kind in (NAME, NIR, EMAIL, PHONE):
        mask = kinds == kind
        if not mask.any():
            continue
        wanted, who = values[mask], owners[mask]
        lo = np.searchsorted(base.sorted_values[kind], wanted, side="left")
        hi = np.searchsorted(base.sorted_values[kind], wanted, side="right")
        counts = hi - lo
        if counts.sum() == 0:
            continue
        rows = np.repeat(who, counts)
        starts = np.repeat(lo, counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        pair_rows.append(rows)
        pair_patients.append(base.sorted_owner[kind][starts + offsets])
        pair_kinds.append(np.full(rows.shape, kind, dtype=np.int64))
    out: dict[int, list[int]] = defaultdict(list)
    if not pair_rows:
        return out
    rows = np.concatenate(pair_rows)
    patients = np.concatenate(pair_patients)
    kinds_hit = np.concatenate(pair_kinds)
    n = max(len(base.ids), 1)
    triple = _unique((rows * n + patients) * 4 + kinds_hit)  # distinct (row, patient, kind)
    pair = triple // 4
    pair_ids, agree = _unique_counts(pair)
    kind_of = triple % 4
    available = np.zeros(row_count, dtype=np.int64)  # how many index kinds each row offers
    for kind in (NAME, NIR, EMAIL, PHONE):
        available[_unique(owners[kinds == kind])] += 1
    pair_row = pair_ids // n
    strong = (agree >= 2) | (available[pair_row] == 1)
    chosen = set(pair_ids[strong].tolist())
    rows_with_strong = _unique(pair_ids[strong] // n)
    # A row that names someone by name and date alone (an old phone, a changed address): its
    # name-and-date candidates too.
    name_pairs = pair[kind_of == NAME]
    extra = name_pairs[~np.isin(name_pairs // n, rows_with_strong)]
    chosen.update(extra.tolist())
    for value in chosen:
        out[int(value // n)].append(int(value % n))
    return out


# --- 4. decryption and comparison -----------------------------------------------------------------


# The fields a row and a record are compared on, one bit each.
FIELDS = ("nom", "prenom", "date_naissance", "sexe", "nir", "email", "telephone", "adresse",
          "code_postal", "ville", "ipp")  # fmt: skip
(NOM, PRENOM, DATE, SEXE, NIR_F, EMAIL_F, TEL, ADRESSE, CP, VILLE, IPP) = (
    1 << i for i in range(len(FIELDS)))  # fmt: skip


def field_names(mask: int) -> set[str]:
    return {name for i, name in enumerate(FIELDS) if mask >> i & 1}


@dataclass(slots=True)
class Record:
    """A candidate patient's values, folded for comparison (only those the sample gives)."""

    created_at: dt.datetime
    phones: dict[str, str] = field(default_factory=dict)  # digits -> phone_mobile / phone_home
    families: set[str] = field(default_factory=set)
    names: tuple[str, ...] = ()  # as stored, for their sounds when the spelling differs
    sounds: set[str] | None = None
    given: set[str] = field(default_factory=set)
    birth_date: str = ""
    sex: str = ""
    nir: str = ""
    email: str = ""
    address: str = ""
    postcode: str = ""
    city: str = ""


def _sealed_rows(ids: list[uuid.UUID]) -> Iterator[tuple[Any, ...]]:
    """(id, identity, contact, created_at) of these patients: one array parameter per
    10,000 on PostgreSQL (an IN list of UUIDs costs Django more than the query)."""
    table = Patient._meta.db_table
    for start in range(0, len(ids), 10_000):
        chunk = ids[start : start + 10_000]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    f"SELECT id, identity, contact, created_at FROM {table} "  # noqa: S608
                    "WHERE id = ANY(%s)", [chunk],
                )  # fmt: skip
                yield from cursor.fetchall()
        else:
            yield from Patient.objects.filter(pk__in=chunk).values_list(
                "id", "identity", "contact", "created_at")  # fmt: skip


def open_records(ids: list[uuid.UUID], need: int = -1) -> dict[uuid.UUID, Record]:
    """Decrypt these patients and fold what the comparison needs (`need`: field bits)."""
    identity = cast(EncryptedField, Patient._meta.get_field("identity"))
    contact = cast(EncryptedField, Patient._meta.get_field("contact"))
    out: dict[uuid.UUID, Record] = {}
    for pid, sealed_i, sealed_c, created in _sealed_rows(ids):
        pid = pid if isinstance(pid, uuid.UUID) else uuid.UUID(str(pid))
        i = identity.open_value(pid, bytes(sealed_i)) if sealed_i else {}
        c = contact.open_value(pid, bytes(sealed_c)) if sealed_c else {}
        names = tuple(n for n in (i.get("birth_name"), i.get("usage_name")) if n)
        record = Record(
            created_at=created, names=names, families={fold_name(n) for n in names},
            phones={fold_phone(c[k]): k for k in ("phone_mobile", "phone_home") if c.get(k)},
            birth_date=i.get("birth_date", ""), sex=i.get("sex", ""), nir=i.get("nir", ""),
            postcode=c.get("postcode", ""),
        )  # fmt: skip
        if need & PRENOM:
            record.given = set(_given_words(i.get("given_names") or ""))
        if need & EMAIL_F:
            record.email = fold_email(c.get("email", ""))
        if need & ADRESSE:
            record.address = _address_key(c.get("address_line", ""))
        if need & VILLE and c.get("city"):
            record.city = _town(c["city"])[0]
        out[pid] = record
    return out


def _ipps_of(ids: list[uuid.UUID]) -> dict[uuid.UUID, set[str]]:
    out: dict[uuid.UUID, set[str]] = defaultdict(set)
    table = PatientIdentifier._meta.db_table
    for start in range(0, len(ids), 20_000):
        chunk = ids[start : start + 20_000]
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(f"SELECT patient_id, ipp FROM {table} "  # noqa: S608
                               "WHERE patient_id = ANY(%s)", [chunk])  # fmt: skip
                pairs = cursor.fetchall()
        else:
            pairs = list(PatientIdentifier.objects.filter(patient_id__in=chunk)
                         .values_list("patient_id", "ipp"))  # fmt: skip
        for pid, ipp in pairs:
            out[pid].add(ipp.lstrip("0"))
    return out


def compare(row: Row, record: Record, ipps: set[str]) -> int:
    """The bits of the fields the row gives that agree with the record."""
    given = row.present
    same = 0
    if given & NOM:
        if row.folded & record.families:
            same |= NOM
        elif row.sounds:
            if record.sounds is None:
                record.sounds = {s for n in record.names if (s := _name_keys(n)[1])}
            if row.sounds & record.sounds:
                same |= NOM
    if given & PRENOM and row.given & record.given:
        same |= PRENOM
    if given & DATE and row.born == record.birth_date:
        same |= DATE
    if given & SEXE and row.sex == record.sex:
        same |= SEXE
    if given & NIR_F and row.nir == record.nir:
        same |= NIR_F
    if given & EMAIL_F and row.email == record.email:
        same |= EMAIL_F
    if given & TEL and any(d in record.phones for d, _ in row.phones):
        same |= TEL
    if given & ADRESSE and row.address == record.address:
        same |= ADRESSE
    if given & CP and row.postcode == record.postcode:
        same |= CP
    if given & VILLE and row.city == record.city:
        same |= VILLE
    if given & IPP and row.ipp in ipps:
        same |= IPP
    return same


def verdict(agree: int, differ: int) -> str:
    """Exact: it names someone (name and date, NIR, e-mail or phone), two fields at least, and
    nothing differs; partial: the same with fields that differ; none otherwise."""
    names_someone = (agree & (NOM | DATE)) == (NOM | DATE) or bool(agree & (NIR_F | EMAIL_F | TEL))
    if not names_someone or agree.bit_count() < 2:
        return "none"
    return "exact" if not differ else "partial"


_STATE: dict[str, Any] = {}  # what forked workers inherit: the rows and who chose whom


# A worker's answer: (row, patient id bytes, agreeing bits, differing bits) per verdict, and the
# created_at and phones of the patients that matched (all the main process needs of them).
Found = tuple[list[tuple[int, bytes, int, int]], dict[bytes, tuple[dt.datetime, dict[str, str]]]]


def _compare_patients(task: tuple[int, int]) -> Found:
    """Decrypt a slice of the candidate patients and compare each with the rows that chose it."""
    rows: list[Row] = _STATE["rows"]
    patients: list[tuple[uuid.UUID, list[int]]] = _STATE["patients"][task[0] : task[1]]
    records = open_records([pid for pid, _ in patients], _STATE["need"])
    ipps = _ipps_of(list(records)) if _STATE["need"] & IPP else {}
    found: list[tuple[int, bytes, int, int]] = []
    kept: dict[bytes, tuple[dt.datetime, dict[str, str]]] = {}
    none: set[str] = set()
    for pid, row_indexes in patients:
        record = records.get(pid)
        if record is None:
            continue
        mine = ipps.get(pid, none)
        for r in row_indexes:
            row = rows[r]
            agree = compare(row, record, mine)
            differ = row.present & ~agree
            if verdict(agree, differ) != "none":
                found.append((r, pid.bytes, agree, differ))
                kept[pid.bytes] = (record.created_at, record.phones)
    return found, kept


def match_rows(rows: list[Row], chosen: dict[int, list[int]], base: Base, *,
               workers: int) -> tuple[list[Match], dict[uuid.UUID, Record]]:  # fmt: skip
    """Each row's best match among its candidates (most fields agreeing, fewest differing).
    With `workers` (PostgreSQL, many candidates) the decryption and comparison run in forked
    processes, each on its own patients."""
    by_patient: dict[int, list[int]] = defaultdict(list)
    for r, patient_indexes in chosen.items():
        for p in patient_indexes:
            by_patient[p].append(r)
    patients = sorted(((base.ids[p], rs) for p, rs in by_patient.items()),
                      key=lambda item: item[0].bytes)  # fmt: skip
    need = 0
    for row in rows:
        need |= row.present
    _STATE.update(rows=rows, patients=patients, need=need)
    step = 20_000
    tasks = [(start, min(start + step, len(patients))) for start in range(0, len(patients), step)]
    best: dict[int, tuple[int, int, bytes, int, int]] = {}
    seen: dict[bytes, tuple[dt.datetime, dict[str, str]]] = {}
    try:
        if workers > 0 and connection.vendor == "postgresql" and len(patients) > step:
            connections.close_all()  # forked workers open their own connections
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                results = list(bounded_imap(pool, _compare_patients, tasks, ahead=2 * workers))
        else:
            results = [_compare_patients(task) for task in tasks]
    finally:
        _STATE.clear()
    for found, kept in results:
        seen.update(kept)
        for r, raw, agree, differ in found:
            score = agree.bit_count(), -differ.bit_count()
            current = best.get(r)
            if current is None or score > current[:2]:
                best[r] = (*score, raw, agree, differ)
    matches: list[Match] = []
    records: dict[uuid.UUID, Record] = {}
    for r in sorted(best):
        _, _, raw, agree, differ = best[r]
        patient_id = uuid.UUID(bytes=raw)
        matches.append(Match(r, patient_id, verdict(agree, differ), agree, differ))
        if patient_id not in records:
            created, phones = seen[raw]
            records[patient_id] = Record(created_at=created, phones=phones)
    return matches, records


# --- 5. the whole analysis ------------------------------------------------------------------------


@dataclass
class Match:
    row: int
    patient_id: uuid.UUID
    kind: str  # exact / partial
    agree_bits: int
    differ_bits: int

    @property
    def agree(self) -> set[str]:
        return field_names(self.agree_bits)

    @property
    def differ(self) -> set[str]:
        return field_names(self.differ_bits)


@dataclass
class Analysis:
    report: dict[str, Any]
    matches: list[Match]
    rows: list[Row]


def analyse(sample: Sample, *, file_name: str, data: bytes, progress: Progress | None = None,
            workers: int = 2) -> Analysis:  # fmt: skip
    """The whole analysis. Python's cyclic garbage collector is paused meanwhile: a million
    rows make millions of small containers, none in a cycle, and each full collection walks
    them all (measured: 5.5 s instead of 1.1 s to read 200,000 rows' traits)."""
    with paused_gc():
        return _analyse(sample, file_name=file_name, data=data, progress=progress,
                        workers=workers)  # fmt: skip


@contextmanager
def paused_gc() -> Iterator[None]:
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def _analyse(sample: Sample, *, file_name: str, data: bytes, progress: Progress | None,
             workers: int) -> Analysis:  # fmt: skip
    from rempart.breach import sources

    started = time.perf_counter()
    tell = progress or (lambda _step, _n: None)
    kinds = cols.column_kinds(sample.header, sample.rows) if sample.layout != "text" else ["text"]
    rows = rows_traits(sample, kinds)
    tell("lignes lues", len(rows))
    keys = sample_keys(rows)
    base = load_base()
    tell("index du groupe", len(base.ids))
    chosen = candidates(base, keys, len(rows))
    tell("lignes avec des candidats", len(chosen))
    matches, records = match_rows(rows, chosen, base, workers=workers)
    tell("dossiers candidats déchiffrés et comparés", len(records))
    matches.sort(key=lambda m: m.row)
    tell("lignes comparées", len(rows))
    report = _report(sample, kinds, rows, matches, records, file_name=file_name, data=data)
    report["source"] = sources.find_source(rows, matches, records)
    tell("établissements, origine et rapport", report["matches"]["patients"])
    report["seconds"] = round(time.perf_counter() - started, 2)
    return Analysis(report, matches, rows)


def _report(
    sample: Sample, kinds: list[str], rows: list[Row], matches: list[Match],
    records: dict[uuid.UUID, Record], *, file_name: str, data: bytes,
) -> dict[str, Any]:  # fmt: skip
    from rempart.breach import sources

    exact = sum(1 for m in matches if m.kind == "exact")
    partial = len(matches) - exact
    total = len(rows)
    matched_ids = {m.patient_id for m in matches}
    share = len(matches) / total if total else 0.0
    if share >= 0.9:
        nature = "authentique"
    elif share >= 0.05:
        nature = "mélange"
    else:
        nature = "inventé ou d'une autre source"
    categories: Counter[str] = Counter()
    for shown, count in Counter(frozenset(row.categories) for row in rows).items():
        for category in shown:
            categories[category] += count
    by_month = Counter(records[pid].created_at.strftime("%Y-%m") for pid in matched_ids)
    newest = max((records[pid].created_at for pid in matched_ids), default=None)
    agreement: Counter[str] = Counter()
    for bits, count in Counter(m.agree_bits for m in matches).items():
        for name in field_names(bits):
            agreement[name] += count
    return {
        "file": {"name": file_name, "sha256": hashlib.sha256(data).hexdigest(),
                 "bytes": len(data), "layout": sample.layout, "encoding": sample.encoding,
                 "rows": total,
                 "columns": [{"header": _header(sample, i), "kind": k}
                             for i, k in enumerate(kinds)]},
        "matches": {"exact": exact, "partial": partial, "none": total - len(matches),
                    "patients": len(matched_ids), "share": round(share, 4),
                    "confidence": _confidence(matches),
                    "fields_agreeing": dict(agreement.most_common())},
        "nature": nature,
        "categories": {c: categories[c] for c in CATEGORIES if categories[c]},
        "freshness": {"newest_record": newest.isoformat() if newest else None,
                      "by_month": dict(sorted(by_month.items())[-24:])},
        **sources.where(matched_ids),
    }  # fmt: skip


def _header(sample: Sample, i: int) -> str:
    """A column's header for the report: only one that names a kind (a header row taken for a
    data row would otherwise put a patient's values in the report)."""
    if sample.header and i < len(sample.header) and cols.header_kind(sample.header[i]):
        return sample.header[i][:60]
    return f"colonne {i + 1}"


def _confidence(matches: list[Match]) -> str:
    if not matches:
        return "aucune"
    strong = sum(1 for m in matches if m.kind == "exact" and m.agree_bits.bit_count() >= 4)
    if strong / len(matches) >= 0.8:
        return "élevée"
    return "bonne" if strong / len(matches) >= 0.4 else "moyenne"


def log_likelihood(agree: int, seen: int, chance: float, slip: float = 0.02) -> float:
    """How much likelier `agree` of `seen` watermark bits are under "this export" (each bit
    kept but for a slip) than under "another source" (each bit right by chance)."""
    if seen == 0:
        return 0.0
    return agree * math.log((1 - slip) / chance) + (seen - agree) * math.log(slip / (1 - chance))
