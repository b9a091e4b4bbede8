"""The leak analyser: a posted sample against the group, without decrypting the whole base.

1. The sample is read (rempart.breach.readers), each column given a kind (columns), and the
   rows turned into columns of codes (traits): each distinct value normalised once.
2. Each row's traits are normalised as the blind indexes are (name and birth date by sound,
   NIR, e-mail, phones) and digested under every enabled index key.
3. The digests meet the patients' blind-index columns in memory (NumPy, one sorted array per
   index): a (row, patient) pair that agrees on two indexes is a candidate; so is one that
   agrees on its only index, or on name and date when nothing else agrees. Invented rows
   agree on nothing twice: they cost no more than a few name-and-date candidates each.
4. Only the candidate patients are decrypted (in forked workers, each on its own patients),
   their values put in the sample's vocabularies, and every (row, patient) pair compared field
   by field at once: each row is an exact match (every field the row gives agrees), partial (it
   names the person, some fields differ) or none (invented, or from elsewhere).
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
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import orjson
import psycopg
from django.db import connection, connections

from rempart.access.models import CanaryMark
from rempart.breach import columns as cols
from rempart.breach.readers import Sample
from rempart.breach.traits import (
    ADRESSE,
    CATEGORIES,
    CP,
    DATE,
    EMAIL,
    FIELDS,
    IPP,
    NIR,
    NOM,
    PRENOM,
    SEX_CODE,
    SEXE,
    SLOTS,
    TEL,
    VILLE,
    F,
    Traits,
    address_key,
    category_names,
    given_words,
    iso_of,
    name_keys,
    table_traits,
    text_traits,
    town,
)
from rempart.lib.caching import short_lru_cache
from rempart.lib.normalise import fold_email, fold_phone
from rempart.lib.parallel import bounded_imap
from rempart.patients.models import Patient, PatientIdentifier
from rempart.vault.fields import BlindIndexField, EncryptedField
from rempart.vault.keystore import get_vault

Progress = Callable[[str, int], None]
STEPS = 6  # progress calls of an analysis: read, index, candidates, compared, rows, report

# Index kinds: the name-and-date index covers birth and usage names.
NAME_IX, NIR_IX, EMAIL_IX, PHONE_IX = 0, 1, 2, 3
_COLUMNS = {NAME_IX: ("bidx_name_birth", "bidx_name_usage"), NIR_IX: ("bidx_nir",),
            EMAIL_IX: ("bidx_email",),
            PHONE_IX: ("bidx_phone_mobile", "bidx_phone_home")}  # fmt: skip
_INDEX_NAMES = {NAME_IX: "name_date", NIR_IX: "nir", EMAIL_IX: "email", PHONE_IX: "phone"}
_DATE_BITS = 22  # a date's ordinal fits (year 9999 is 3,652,059)
_POPCOUNT = np.array([bin(i).count("1") for i in range(1 << 11)], dtype=np.int32)


def rows_traits(sample: Sample, kinds: list[str], workers: int = 0,
                meanwhile: Callable[[], object] | None = None) -> Traits:  # fmt: skip
    """The sample's traits; `meanwhile` is run while forked workers read a big table."""
    if sample.layout == "text":
        return text_traits([r[0] if r else "" for r in sample.rows])
    return table_traits(sample.rows, kinds, workers=workers, meanwhile=meanwhile,
                        digest=digests_for_fields)  # fmt: skip


# --- 2. digests -----------------------------------------------------------------------------------


def _bits(column: str) -> int:
    return cast(BlindIndexField, Patient._meta.get_field(column)).bits


_KIND_FIELD = {NIR_IX: F.NIR, EMAIL_IX: F.EMAIL, PHONE_IX: F.PHONE}
Digests = dict[int, tuple[np.ndarray, list[np.ndarray]]]  # kind: (distinct, digests per key)


def _name_combos(traits: Traits) -> tuple[np.ndarray, np.ndarray]:
    """(sound << 22 | birth date, row) of every row's family names."""
    dates = traits.codes[F.DATE][0]
    combos, owners = [], []
    for slot in range(SLOTS[F.SOUND]):
        sounds = traits.codes[F.SOUND][slot]
        rows = np.flatnonzero((sounds >= 0) & (dates >= 0))
        combos.append((sounds[rows].astype(np.int64) << _DATE_BITS) | dates[rows])
        owners.append(rows)
    return np.concatenate(combos), np.concatenate(owners)


def key_digests(traits: Traits, kinds: Iterable[int]) -> Digests:
    """Each distinct value of these index kinds digested under every enabled index key: for
    the name-and-date index the distinct (sound, date) pairs, for the others the vocabulary.
    Run by the forked column workers for the fields they read, when there are some."""
    indexer = get_vault().indexer
    out: Digests = {}
    for kind in kinds:
        if kind == NAME_IX:
            distinct = _unique(_name_combos(traits)[0])
            spoken = traits.vocab[F.SOUND].values
            mask = (1 << _DATE_BITS) - 1
            normalised = [f"{spoken[c >> _DATE_BITS]}|{iso_of(c & mask)}"
                          for c in distinct.tolist()]  # fmt: skip
        else:
            normalised = traits.vocab[_KIND_FIELD[kind]].values
            distinct = np.arange(len(normalised))
        bits = _bits(_COLUMNS[kind][0])
        out[kind] = (distinct, [
            np.array(indexer.digests(_INDEX_NAMES[kind], normalised, bits, key_id), np.int64)
            for key_id in indexer.key_ids
        ])  # fmt: skip
    return out


def digests_for_fields(traits: Traits, fields: set[int]) -> Digests:
    """What a column worker digests: the index kinds whose fields it read in full."""
    kinds = [k for k, f in _KIND_FIELD.items() if f in fields]
    if {F.FAMILY, F.DATE} <= fields:
        kinds.append(NAME_IX)
    return key_digests(traits, kinds)


def sample_keys(traits: Traits) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(kind, value, row) arrays: each row's normalised traits under every enabled index key,
    as `slot << 32 | digest` (slot: the key's place among the enabled ones). Each distinct
    value is digested once (by the column workers when there were some)."""
    missing = [k for k in (NAME_IX, NIR_IX, EMAIL_IX, PHONE_IX) if k not in traits.digests]
    digests = {**traits.digests, **key_digests(traits, missing)}
    wanted: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # kind: (distinct value, row)
    combo, owners = _name_combos(traits)
    wanted[NAME_IX] = (np.searchsorted(digests[NAME_IX][0], combo), owners)
    for kind, field in _KIND_FIELD.items():
        codes = traits.codes[field]
        holding = [np.flatnonzero(codes[s] >= 0) for s in range(codes.shape[0])]
        wanted[kind] = (np.concatenate([codes[s][r] for s, r in enumerate(holding)]),
                        np.concatenate(holding))  # fmt: skip
    kinds, values, who = [], [], []
    for kind, (which, rows) in wanted.items():
        if not rows.size:
            continue
        for slot, digested in enumerate(digests[kind][1]):
            kinds.append(np.full(rows.size, kind, dtype=np.int8))
            values.append((slot << 32) | digested[which])
            who.append(rows)
    if not kinds:
        return np.zeros(0, np.int8), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return np.concatenate(kinds), np.concatenate(values), np.concatenate(who)


# --- 3. candidates --------------------------------------------------------------------------------


@dataclass
class Base:
    ids: np.ndarray  # (patients, 16) uint8: each patient's id
    sorted_values: dict[int, np.ndarray]  # kind -> sorted slot<<32|digest
    sorted_owner: dict[int, np.ndarray]  # kind -> patient index, aligned

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def load_base() -> Base:
    """Every patient's blind-index values (no decryption): what the sample's digests meet."""
    indexer = get_vault().indexer
    slots = {key_id: slot for slot, key_id in enumerate(indexer.key_ids)}
    names = [c for kind in (NAME_IX, NIR_IX, EMAIL_IX, PHONE_IX) for c in _COLUMNS[kind]]
    ids, key_ids, arrays = _base_columns(names)
    slot_of = np.vectorize(lambda k: slots.get(int(k), -1), otypes=[np.int64])
    distinct_keys = _unique(key_ids)
    slot_arr = (slot_of(distinct_keys)[np.searchsorted(distinct_keys, key_ids)]
                if distinct_keys.size else np.zeros(0, np.int64))  # fmt: skip
    sorted_values, sorted_owner = {}, {}
    for kind in (NAME_IX, NIR_IX, EMAIL_IX, PHONE_IX):
        parts_v, parts_o = [], []
        for name in _COLUMNS[kind]:
            column = arrays[name]
            keep = (column >= 0) & (slot_arr >= 0)
            parts_v.append((slot_arr[keep] << 32) | column[keep])
            parts_o.append(np.flatnonzero(keep))
        values = np.concatenate(parts_v)
        owners = np.concatenate(parts_o)
        order = np.argsort(values, kind="stable")
        sorted_values[kind], sorted_owner[kind] = values[order], owners[order]
    return Base(ids, sorted_values, sorted_owner)


def _base_columns(names: list[str]) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(ids, index key ids, blind-index columns; -1 for none). On PostgreSQL one binary COPY
    read straight into NumPy: every field has a fixed width once NULLs are -1."""
    table = Patient._meta.db_table
    if connection.vendor == "postgresql":
        selected = ", ".join(f"coalesce({c}, -1)::int8" for c in ("index_key_id", *names))
        buffer = bytearray()
        with connection.cursor() as cursor, cursor.cursor.copy(
            f"COPY (SELECT id, {selected} FROM {table}) TO STDOUT (FORMAT binary)"  # noqa: S608
        ) as copy:  # fmt: skip
            for block in copy:
                buffer += block
        fields = [("count", ">i2"), ("id_len", ">i4"), ("id", "V16")]
        for i in range(len(names) + 1):
            fields += [(f"len{i}", ">i4"), (f"v{i}", ">i8")]
        layout = np.dtype(fields)
        header = 11 + 4 + 4 + int.from_bytes(buffer[15:19], "big")
        count = (len(buffer) - header - 2) // layout.itemsize
        rows = np.frombuffer(buffer, dtype=layout, count=count, offset=header)
        ids = np.ascontiguousarray(rows["id"]).view(np.uint8).reshape(-1, 16)
        arrays = {name: rows[f"v{i + 1}"].astype(np.int64) for i, name in enumerate(names)}
        return ids.copy(), rows["v0"].astype(np.int64), arrays
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id, index_key_id, {', '.join(names)} FROM {table}")  # noqa: S608
        fetched = cursor.fetchall()
    raw = b"".join(_uuid(r[0]).bytes for r in fetched)
    ids = np.frombuffer(raw, dtype=np.uint8).reshape(-1, 16).copy()
    key_ids = np.array([-1 if r[1] is None else r[1] for r in fetched], dtype=np.int64)
    arrays = {name: np.array([-1 if r[i] is None else r[i] for r in fetched], dtype=np.int64)
              for i, name in enumerate(names, start=2)}  # fmt: skip
    return ids, key_ids, arrays


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


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
               row_count: int) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(row, patient index) pairs worth decrypting (see the module's docstring)."""
    kinds, values, owners = keys
    n = max(len(base), 1)
    per_kind: dict[int, np.ndarray] = {}  # kind -> distinct row * n + patient
    available = np.zeros(row_count, dtype=np.int64)  # how many index kinds each row offers
    for kind in (NAME_IX, NIR_IX, EMAIL_IX, PHONE_IX):
        mask = kinds == kind
        if not mask.any():
            continue
        offers = np.zeros(row_count, dtype=bool)
        offers[owners[mask]] = True
        available += offers
        # Sorted needles: the binary searches then walk the base in order (five times faster).
        order = np.argsort(values[mask], kind="stable")
        wanted, who = values[mask][order], owners[mask][order]
        lo = np.searchsorted(base.sorted_values[kind], wanted, side="left")
        hi = np.searchsorted(base.sorted_values[kind], wanted, side="right")
        counts = hi - lo
        total = int(counts.sum())
        if total == 0:
            continue
        offsets = np.arange(total) - np.repeat(np.cumsum(counts) - counts, counts)
        patients = base.sorted_owner[kind][np.repeat(lo, counts) + offsets]
        per_kind[kind] = _unique(np.repeat(who, counts) * n + patients)
    if not per_kind:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    # How many kinds each (row, patient) pair agrees on.
    pair_ids, agree = _unique_counts(np.sort(np.concatenate(list(per_kind.values()))))
    pair_row = pair_ids // n
    strong = (agree >= 2) | (available[pair_row] == 1)
    has_strong = np.zeros(row_count, dtype=bool)
    has_strong[pair_row[strong]] = True
    # A row that names someone by name and date alone (an old phone, a changed address): its
    # name-and-date candidates too.
    name_pairs = per_kind.get(NAME_IX, np.zeros(0, np.int64))
    extra = name_pairs[~has_strong[name_pairs // n]]
    chosen = _unique(np.concatenate((pair_ids[strong], extra)))
    return chosen // n, chosen % n


# --- 4. decryption of the candidates --------------------------------------------------------------


# A patient's values as codes of the sample's vocabularies (-2: a value no row gives), per field
# and slot: birth and usage names and their sounds, given names the sample knows, mobile and
# home phones, IPPs the sample knows.
_RECORD_SLOTS = {F.FAMILY: 2, F.SOUND: 2, F.GIVEN: 4, F.PHONE: 2, F.IPP: 3}


@dataclass
class Records:
    """The decrypted candidates, in id order (position = rank among the candidates)."""

    patients: np.ndarray  # base index of each
    ids: np.ndarray  # (m, 16) uint8
    codes: dict[int, np.ndarray]  # field -> (slots, m) int32
    created: np.ndarray  # int64 microseconds since the epoch
    canary: np.ndarray  # bool: a canary patient of the database
    found: np.ndarray  # bool: the row was read (not deleted meanwhile)

    def uuid(self, position: int) -> uuid.UUID:
        return uuid.UUID(bytes=self.ids[position].tobytes())


_STATE: dict[str, Any] = {}  # what forked workers inherit: vocabularies, ids, keys


def open_records(traits: Traits, base: Base, patients: np.ndarray, *,
                 workers: int) -> Records:  # fmt: skip
    """Decrypt these patients (base indexes) and code what the comparison needs. With
    `workers` (PostgreSQL, many patients) in forked processes, each on a run of ids."""
    ids = base.ids[patients]
    order = np.lexsort((_u64(ids, 8), _u64(ids, 0)))  # id order: the primary key's
    patients, ids = patients[order], ids[order]
    base_keys = _sorted_keys(base.ids)
    step = 20_000
    tasks = []
    for start in range(0, len(patients), step):
        stop = min(start + step, len(patients))
        lo = np.searchsorted(base_keys, _key_of(ids[start]), side="left")
        hi = np.searchsorted(base_keys, _key_of(ids[stop - 1]), side="right")
        tasks.append((start, stop, bool(3 * (stop - start) >= hi - lo)))  # dense: read the id range
    indexer = get_vault().indexer
    tags = {bytes(t) for t in CanaryMark.objects.values_list("tag", flat=True)}
    _STATE.update(ids=ids, vocab={f: v.codes for f, v in traits.vocab.items()},
                  need=traits.given_fields(), key_ids=indexer.key_ids,
                  canary_tags=tags)  # fmt: skip
    try:
        if workers > 0 and connection.vendor == "postgresql" and len(tasks) > 1:
            connections.close_all()  # forked workers open their own connections
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                parts = list(bounded_imap(pool, _open_slice, tasks, ahead=2 * workers))
        else:
            parts = [_open_slice(task) for task in tasks]
    finally:
        _STATE.clear()
    m = len(patients)
    codes = {f: np.concatenate([p["codes"][f] for p in parts], axis=1) if parts
             else np.full((_RECORD_SLOTS.get(f, 1), m), -1, dtype=np.int32)
             for f in F.ALL}  # fmt: skip
    joined = {k: np.concatenate([p[k] for p in parts]) if parts else np.zeros(0)
              for k in ("created", "canary", "found")}  # fmt: skip
    return Records(patients, ids, codes, joined["created"].astype(np.int64),
                   joined["canary"].astype(bool), joined["found"].astype(bool))  # fmt: skip


def _u64(ids: np.ndarray, at: int) -> np.ndarray:
    return np.ascontiguousarray(ids[:, at : at + 8]).view(">u8").ravel().astype(np.uint64)


def _sorted_keys(ids: np.ndarray) -> np.ndarray:
    """The ids as sortable 16-byte keys (NumPy compares void records bytewise)."""
    keys = np.ascontiguousarray(ids).view("S16").ravel()
    return np.sort(keys)


def _key_of(raw: np.ndarray) -> np.bytes_:
    return cast(np.bytes_, np.ascontiguousarray(raw).view("S16")[0])


def _open_slice(task: tuple[int, int, bool]) -> dict[str, Any]:
    """Decrypt a run of candidates and code their values (plain lists while filling: a NumPy
    item assignment costs ten times a list's)."""
    start, stop, dense = task
    ids: np.ndarray = _STATE["ids"][start:stop]
    vocab: dict[int, dict[str, int]] = _STATE["vocab"]
    need: int = _STATE["need"]
    m = stop - start
    out = {f: [[-1] * m for _ in range(_RECORD_SLOTS.get(f, 1))] for f in F.ALL}
    created, canary, found = [0] * m, [False] * m, [False] * m
    position = {ids[i].tobytes(): i for i in range(m)}
    cipher = get_vault().cipher
    opened = []
    for column in ("identity", "contact"):
        sealed_field = cast(EncryptedField, Patient._meta.get_field(column))
        opened.append((sealed_field.category, sealed_field.associated_data(bytes(16))[:-16]))
    (i_category, i_prefix), (c_category, c_prefix) = opened
    family, sound, given = vocab[F.FAMILY], vocab[F.SOUND], vocab[F.GIVEN]
    nirs, emails, phones = vocab[F.NIR], vocab[F.EMAIL], vocab[F.PHONE]
    addresses, postcodes, towns = vocab[F.ADDRESS], vocab[F.POSTCODE], vocab[F.CITY]
    fam, snd, giv, tel = out[F.FAMILY], out[F.SOUND], out[F.GIVEN], out[F.PHONE]
    born_at, sex_of = out[F.DATE][0], out[F.SEX][0]
    nir_of, email_of, address_of = out[F.NIR][0], out[F.EMAIL][0], out[F.ADDRESS][0]
    postcode_of, city_of = out[F.POSTCODE][0], out[F.CITY][0]
    indexer = get_vault().indexer
    tags, key_ids = _STATE["canary_tags"], _STATE["key_ids"]
    for raw, sealed_i, sealed_c, micros in _sealed_rows(ids, dense):
        j = position.get(raw)
        if j is None:
            continue
        found[j] = True
        created[j] = micros
        i = orjson.loads(cipher.open(i_category, sealed_i, i_prefix + raw)) if sealed_i else {}
        c = orjson.loads(cipher.open(c_category, sealed_c, c_prefix + raw)) if sealed_c else {}
        for k, name in enumerate((i.get("birth_name"), i.get("usage_name"))):
            if name:
                folded, spoken = name_keys(name)
                fam[k][j] = family.get(folded, -2)
                if spoken:
                    snd[k][j] = sound.get(spoken, -2)
        if need & PRENOM:
            known = [code for w in given_words(i.get("given_names") or "")
                     if (code := given.get(w, -2)) >= 0]  # fmt: skip
            for k, code in enumerate(known[:4]):
                giv[k][j] = code
        if born := i.get("birth_date"):
            born_at[j] = _ordinal(born)
        sex_of[j] = SEX_CODE.get(i.get("sex", ""), -2)
        if need & NIR and i.get("nir"):
            nir_of[j] = nirs.get(i["nir"], -2)
        if need & EMAIL and c.get("email"):
            email_of[j] = emails.get(fold_email(c["email"]), -2)
        if number := c.get("phone_mobile"):
            tel[0][j] = phones.get(fold_phone(number), -2)
        if number := c.get("phone_home"):
            tel[1][j] = phones.get(fold_phone(number), -2)
        if need & ADRESSE and c.get("address_line"):
            address_of[j] = addresses.get(address_key(c["address_line"]), -2)
        if need & CP and c.get("postcode"):
            postcode_of[j] = postcodes.get(c["postcode"], -2)
        if need & VILLE and c.get("city"):
            city_of[j] = towns.get(town(c["city"])[0], -2)
        if tags and any(indexer.tag("canary", raw, k) in tags for k in key_ids):
            canary[j] = True
    codes = {f: np.array(out[f], dtype=np.int32) for f in F.ALL}
    if need & IPP:
        _ipps_into(ids, position, vocab[F.IPP], codes[F.IPP])
    return {"codes": codes, "created": np.array(created, dtype=np.int64),
            "canary": np.array(canary, dtype=bool),
            "found": np.array(found, dtype=bool)}  # fmt: skip


@short_lru_cache(maxsize=100_000)
def _ordinal(iso: str) -> int:
    try:
        return dt.date.fromisoformat(iso).toordinal()
    except ValueError:
        return -2


def _sealed_rows(ids: np.ndarray, dense: bool) -> Iterator[tuple[bytes, Any, Any, int]]:
    """(id bytes, identity, contact, created_at in microseconds) of these patients (sorted
    ids): on PostgreSQL in binary, the whole id range when most of it is wanted, else by id."""
    table = Patient._meta.db_table
    if not len(ids):
        return
    if connection.vendor != "postgresql":
        chunk = [uuid.UUID(bytes=ids[i].tobytes()) for i in range(len(ids))]
        for start in range(0, len(chunk), 500):
            for pid, sealed_i, sealed_c, created in Patient.objects.filter(
                pk__in=chunk[start : start + 500]
            ).values_list("id", "identity", "contact", "created_at"):  # fmt: skip
                sealed_i, sealed_c = cast(Any, sealed_i), cast(Any, sealed_c)
                yield (_uuid(pid).bytes, sealed_i and bytes(sealed_i), sealed_c and bytes(sealed_c),
                       int(created.timestamp() * 1_000_000))  # fmt: skip
        return
    columns = ("SELECT uuid_send(id), identity, contact, "  # noqa: S608
               f"(extract(epoch FROM created_at) * 1000000)::int8 FROM {table} ")  # fmt: skip
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:  # binary results: bytes as they are
        if dense:
            first, last = uuid.UUID(bytes=ids[0].tobytes()), uuid.UUID(bytes=ids[-1].tobytes())
            cursor.execute(columns + "WHERE id BETWEEN %s AND %s", [first, last], binary=True)
        else:
            wanted = [uuid.UUID(bytes=ids[i].tobytes()) for i in range(len(ids))]
            cursor.execute(columns + "WHERE id = ANY(%s)", [wanted], binary=True)
        yield from cursor


def _ipps_into(ids: np.ndarray, position: dict[bytes, int], known: dict[str, int],
               out: np.ndarray) -> None:  # fmt: skip
    """The patients' IPPs that the sample gives, into their slots."""
    table = PatientIdentifier._meta.db_table
    wanted = [uuid.UUID(bytes=ids[i].tobytes()) for i in range(len(ids))]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT patient_id, ipp FROM {table} "  # noqa: S608
                           "WHERE patient_id = ANY(%s)", [wanted])  # fmt: skip
            pairs = cursor.fetchall()
    else:
        pairs = [pair for start in range(0, len(wanted), 500) for pair in
                 PatientIdentifier.objects.filter(patient_id__in=wanted[start : start + 500])
                 .values_list("patient_id", "ipp")]  # fmt: skip
    used = np.zeros(out.shape[1], dtype=np.int64)
    for pid, ipp in pairs:
        code = known.get(ipp.lstrip("0"), -2)
        j = position.get(_uuid(pid).bytes)
        if code >= 0 and j is not None and used[j] < out.shape[0]:
            out[used[j], j] = code
            used[j] += 1


# --- 5. comparison --------------------------------------------------------------------------------


def compare(traits: Traits, records: Records, rows: np.ndarray,
            at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(agreeing, differing) field bits of each (row, record position) pair, all at once."""
    tc, rc = traits.codes, records.codes
    agree = np.zeros(rows.size, dtype=np.int32)

    def any_equal(field: int, other: int | None = None) -> np.ndarray:
        mine = tc[field]
        theirs = rc[field if other is None else other]
        hit = np.zeros(rows.size, dtype=bool)
        for s in range(mine.shape[0]):
            value = mine[s][rows]
            if not (value >= 0).any():
                continue
            for k in range(theirs.shape[0]):
                hit |= (value == theirs[k][at]) & (value >= 0)
        return hit

    agree[any_equal(F.FAMILY) | any_equal(F.SOUND)] |= NOM
    for field, bit in ((F.GIVEN, PRENOM), (F.DATE, DATE), (F.SEX, SEXE), (F.NIR, NIR),
                       (F.EMAIL, EMAIL), (F.PHONE, TEL), (F.ADDRESS, ADRESSE), (F.POSTCODE, CP),
                       (F.CITY, VILLE), (F.IPP, IPP)):  # fmt: skip
        agree[any_equal(field)] |= bit
    differ = traits.present[rows] & ~agree
    return agree, differ


def verdicts(agree: np.ndarray, differ: np.ndarray) -> np.ndarray:
    """0 none, 1 partial, 2 exact. Exact: it names someone (name and date, NIR, e-mail or
    phone), two fields at least, and nothing differs; partial: the same with fields that
    differ; none otherwise."""
    names = ((agree & (NOM | DATE)) == (NOM | DATE)) | ((agree & (NIR | EMAIL | TEL)) != 0)
    valid = names & (_POPCOUNT[agree] >= 2)
    return np.where(valid, np.where(differ == 0, 2, 1), 0).astype(np.int8)


@dataclass
class Matches:
    """The rows that match a patient, in row order: their best patient (record position), and
    the fields that agree and differ."""

    rows: np.ndarray
    at: np.ndarray
    exact: np.ndarray  # bool
    agree: np.ndarray
    differ: np.ndarray

    def __len__(self) -> int:
        return int(self.rows.size)


def best_matches(traits: Traits, records: Records, pair_rows: np.ndarray,
                 pair_patients: np.ndarray) -> Matches:  # fmt: skip
    """Each row's best match among its candidates: most fields agreeing, then fewest
    differing, then the lowest id."""
    position = np.full(int(pair_patients.max()) + 1 if pair_patients.size else 0, -1, np.int64)
    position[records.patients] = np.arange(records.patients.size)
    at = position[pair_patients] if pair_patients.size else pair_patients
    keep = records.found[at] if at.size else np.zeros(0, bool)
    rows, at = pair_rows[keep], at[keep]
    agree, differ = compare(traits, records, rows, at)
    kind = verdicts(agree, differ)
    valid = kind > 0
    rows, at, agree, differ, kind = rows[valid], at[valid], agree[valid], differ[valid], kind[valid]
    score = _POPCOUNT[agree] * 16 - _POPCOUNT[differ]
    order = np.lexsort((at, -score, rows))
    rows, at, agree, differ, kind = (a[order] for a in (rows, at, agree, differ, kind))
    first = np.concatenate(([True], rows[1:] != rows[:-1])) if rows.size else rows.astype(bool)
    return Matches(rows[first], at[first], kind[first] == 2, agree[first], differ[first])


# --- 6. the whole analysis ------------------------------------------------------------------------


@dataclass
class Analysis:
    report: dict[str, Any]
    matches: Matches
    records: Records
    traits: Traits


def analyse(sample: Sample, *, file_name: str, data: bytes, progress: Progress | None = None,
            workers: int = 2) -> Analysis:  # fmt: skip
    """The whole analysis. Python's cyclic garbage collector is paused meanwhile: the
    vocabularies hold millions of small objects, none in a cycle, and each full collection
    walks them all."""
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
    loaded: list[Base] = []  # the group's blind indexes, read while workers read the sample
    traits = rows_traits(sample, kinds, workers, meanwhile=lambda: loaded.append(load_base()))
    tell("lignes lues", traits.n)
    keys = sample_keys(traits)
    base = loaded[0] if loaded else load_base()
    tell("index du groupe", len(base))
    pair_rows, pair_patients = candidates(base, keys, traits.n)
    tell("lignes avec des candidats", int(_unique(pair_rows).size))
    records = open_records(traits, base, _unique(pair_patients), workers=workers)
    tell("dossiers candidats déchiffrés", int(records.found.sum()))
    matches = best_matches(traits, records, pair_rows, pair_patients)
    tell("lignes comparées", traits.n)
    report = _report(sample, kinds, traits, matches, records, file_name=file_name, data=data)
    report["source"] = sources.find_source(traits, matches, records)
    tell("établissements, origine et rapport", report["matches"]["patients"])
    report["seconds"] = round(time.perf_counter() - started, 2)
    return Analysis(report, matches, records, traits)


def matched_positions(matches: Matches) -> np.ndarray:
    """The record positions of the matched patients, each once (in id order)."""
    return _unique(matches.at)


def _report(
    sample: Sample, kinds: list[str], traits: Traits, matches: Matches, records: Records, *,
    file_name: str, data: bytes,
) -> dict[str, Any]:  # fmt: skip
    from rempart.breach import sources

    exact = int(matches.exact.sum())
    partial = len(matches) - exact
    total = traits.n
    matched = matched_positions(matches)
    share = len(matches) / total if total else 0.0
    if share >= 0.9:
        nature = "authentique"
    elif share >= 0.05:
        nature = "mélange"
    else:
        nature = "inventé ou d'une autre source"
    shown, counts = _unique_counts(np.sort(traits.categories))
    categories = {c: 0 for c in CATEGORIES}
    for mask, count in zip(shown.tolist(), counts.tolist(), strict=True):
        for name in category_names(mask):
            categories[name] += count
    created = records.created[matched].astype("datetime64[us]")
    months, per_month = _unique_counts(np.sort(created.astype("datetime64[M]")))
    by_month = {str(m): int(c) for m, c in zip(months, per_month, strict=True)}
    newest = (dt.datetime.fromtimestamp(int(records.created[matched].max()) / 1e6, dt.UTC)
              if matched.size else None)  # fmt: skip
    agreement = {name: int(((matches.agree >> i) & 1).sum()) for i, name in enumerate(FIELDS)}
    agreement = dict(sorted(((k, v) for k, v in agreement.items() if v), key=lambda kv: -kv[1]))
    return {
        "file": {"name": file_name, "sha256": hashlib.sha256(data).hexdigest(),
                 "bytes": len(data), "layout": sample.layout, "encoding": sample.encoding,
                 "rows": total,
                 "columns": [{"header": _header(sample, i), "kind": k}
                             for i, k in enumerate(kinds)]},
        "matches": {"exact": exact, "partial": partial, "none": total - len(matches),
                    "patients": int(matched.size), "share": round(share, 4),
                    "confidence": _confidence(matches), "fields_agreeing": agreement},
        "nature": nature,
        "categories": {c: n for c, n in categories.items() if n},
        "freshness": {"newest_record": newest.isoformat() if newest else None,
                      "by_month": dict(sorted(by_month.items())[-24:])},
        **sources.where(records.ids[matched]),
    }  # fmt: skip


def _header(sample: Sample, i: int) -> str:
    """A column's header for the report: only one that names a kind (a header row taken for a
    data row would otherwise put a patient's values in the report)."""
    if sample.header and i < len(sample.header) and cols.header_kind(sample.header[i]):
        return sample.header[i][:60]
    return f"colonne {i + 1}"


def _confidence(matches: Matches) -> str:
    if not len(matches):
        return "aucune"
    strong = int((matches.exact & (_POPCOUNT[matches.agree] >= 4)).sum())
    if strong / len(matches) >= 0.8:
        return "élevée"
    return "bonne" if strong / len(matches) >= 0.4 else "moyenne"


def log_likelihood(agree: int, seen: int, chance: float, slip: float = 0.02) -> float:
    """How much likelier `agree` of `seen` watermark bits are under "this export" (each bit
    kept but for a slip) than under "another source" (each bit right by chance)."""
    if seen == 0:
        return 0.0
    return agree * math.log((1 - slip) / chance) + (seen - agree) * math.log(slip / (1 - chance))
