"""A sample's rows as columns of codes: what the leak analyser compares.

A million-row sample repeats itself (a family name, a town, a birth date come back thousands of
times), so each column's distinct values are normalised once, the way the blind indexes and the
comparison need them, and every row holds integer codes into one vocabulary per field. The
patients' decrypted values are put in the same vocabularies (a value no row gives has no code),
and the comparison of a million (row, patient) pairs is a few NumPy operations.

A field may hold several values on one row (a birth and a usage name, three phone columns): it
has a few slots, filled in column order; -1 is an empty slot.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import re
from collections.abc import Callable, Sequence
from functools import lru_cache
from operator import itemgetter
from typing import Any

import numpy as np
from stdnum.fr import nir as stdnum_nir

from rempart.breach import columns as cols
from rempart.exports import marks
from rempart.lib.caching import short_lru_cache
from rempart.lib.communes import fold_town
from rempart.lib.normalise import fold_email, fold_name, fold_nir, fold_phone
from rempart.patients import indexes as ix


class F:
    """The fields of a row; SOUND is the phonetic code of the FAMILY value in the same slot."""

    FAMILY, SOUND, GIVEN, DATE, SEX, NIR, EMAIL, PHONE, ADDRESS, POSTCODE, CITY, IPP = range(12)
    ALL = range(12)


SLOTS = {F.FAMILY: 4, F.SOUND: 4, F.GIVEN: 4, F.PHONE: 3}
STYLED = (F.PHONE, F.ADDRESS, F.CITY)  # the watermark's notations: phone, street type, saint
# DATE holds the date's ordinal and SEX 1 (M) or 2 (F); the other fields a vocabulary's codes.
VOCABULARIES = (F.FAMILY, F.SOUND, F.GIVEN, F.NIR, F.EMAIL, F.PHONE, F.ADDRESS, F.POSTCODE,
                F.CITY, F.IPP)  # fmt: skip

# The fields a row and a record are compared on, one bit each (the report names them).
FIELDS = ("nom", "prenom", "date_naissance", "sexe", "nir", "email", "telephone", "adresse",
          "code_postal", "ville", "ipp")  # fmt: skip
(NOM, PRENOM, DATE, SEXE, NIR, EMAIL, TEL, ADRESSE, CP, VILLE, IPP) = (
    1 << i for i in range(len(FIELDS)))  # fmt: skip
FIELD_BIT = {F.FAMILY: NOM, F.GIVEN: PRENOM, F.DATE: DATE, F.SEX: SEXE, F.NIR: NIR,
             F.EMAIL: EMAIL, F.PHONE: TEL, F.ADDRESS: ADRESSE, F.POSTCODE: CP, F.CITY: VILLE,
             F.IPP: IPP}  # fmt: skip

CATEGORIES = ("identite", "date_naissance", "ins", "adresse", "telephone", "email",
              "medecin_traitant", "ipp", "clinique")  # fmt: skip
CATEGORY_OF = {
    "family": "identite", "usage": "identite", "given": "identite", "full_name": "identite",
    "sex": "identite", "birth_date": "date_naissance", "nir": "ins", "birth_place": "ins",
    "address": "adresse", "postcode": "adresse", "city": "adresse", "phone": "telephone",
    "email": "email", "gp": "medecin_traitant", "gp_rpps": "medecin_traitant", "ipp": "ipp",
    "clinical": "clinique",
}  # fmt: skip
CATEGORY_BIT = {name: 1 << i for i, name in enumerate(CATEGORIES)}


def field_names(mask: int) -> set[str]:
    return {name for i, name in enumerate(FIELDS) if mask >> i & 1}


def category_names(mask: int) -> list[str]:
    return [name for i, name in enumerate(CATEGORIES) if mask >> i & 1]


class Vocabulary:
    """Distinct values and their codes, in the order they were first met."""

    __slots__ = ("codes", "values")

    def __init__(self) -> None:
        self.codes: dict[str, int] = {}
        self.values: list[str] = []

    def code(self, value: str) -> int:
        found = self.codes.get(value)
        if found is None:
            found = self.codes[value] = len(self.values)
            self.values.append(value)
        return found


class Traits:
    """Every row's fields as codes: `codes[field]` is a (slots, rows) int32 array, `styles`
    the notation seen in the same slot (-1 none), `categories` and `present` bit masks per row
    (the data categories the row shows; the FIELDS it gives)."""

    def __init__(self, rows: int) -> None:
        self.n = rows
        self.codes = {f: np.full((SLOTS.get(f, 1), rows), -1, dtype=np.int32) for f in F.ALL}
        self.styles = {f: np.full((SLOTS.get(f, 1), rows), -1, dtype=np.int8) for f in STYLED}
        self.vocab = {f: Vocabulary() for f in VOCABULARIES}
        self.categories = np.zeros(rows, dtype=np.int32)
        self.present = np.zeros(rows, dtype=np.int32)
        # Index digests made by the column workers: kind -> (distinct values, one per key).
        self.digests: dict[int, tuple[np.ndarray, list[np.ndarray]]] = {}

    def finish(self) -> Traits:
        for f, bit in FIELD_BIT.items():
            self.present[self.codes[f][0] >= 0] |= bit
        return self

    def given_fields(self) -> int:
        """The FIELDS bits given by at least one row."""
        return int(np.bitwise_or.reduce(self.present)) if self.n else 0

    def column(self, kind: str, values: Sequence[str]) -> None:
        """Add a column of this kind: its distinct values are read once, each row coded."""
        distinct = list(dict.fromkeys(values))
        index = {value: d for d, value in enumerate(distinct)}
        seen = np.fromiter(map(index.__getitem__, values), dtype=np.int64, count=self.n)
        cells = [value.strip() for value in distinct]
        if kind in _SCALAR or kind in ("family", "usage"):
            tables, category = self._scalar_column(kind, cells)
        else:
            tables, category = self._items_column(kind, cells)
        self.categories |= category[seen]
        self._fill(tables, seen)

    def _scalar_column(self, kind: str, cells: list[str]) -> tuple[Tables, np.ndarray]:
        """A column with one value per cell at most (most of them): straight into lists."""
        size = len(cells)
        bit = CATEGORY_BIT[CATEGORY_OF[kind]]
        category = np.array([bit if cell else 0 for cell in cells], dtype=np.int32)
        codes, styles = [-1] * size, [-1] * size
        if kind in ("family", "usage"):
            sounds = [-1] * size
            family, sound = self.vocab[F.FAMILY].code, self.vocab[F.SOUND].code
            for d, cell in enumerate(cells):
                if cell:
                    folded, spoken = name_keys(cell)
                    if folded:
                        codes[d] = family(folded)
                        if spoken:
                            sounds[d] = sound(spoken)
            return {(F.FAMILY, 0): _arrays(codes, styles),
                    (F.SOUND, 0): _arrays(sounds, styles)}, category  # fmt: skip
        field, read = _SCALAR[kind]
        code = self.vocab[field].code if field in self.vocab else None
        for d, cell in enumerate(cells):
            if cell and (got := read(cell)) is not None:
                value, style = got
                codes[d] = code(str(value)) if code is not None else int(value)
                styles[d] = style
        return {(field, 0): _arrays(codes, styles)}, category

    def _items_column(self, kind: str, cells: list[str]) -> tuple[Tables, np.ndarray]:
        """A column whose cells may give several values (given names, a full name, a line of
        text): each value into the k-th table of its field."""
        size = len(cells)
        found = [_contributions(kind, cell) for cell in cells]
        category = np.array([c for _, c in found], dtype=np.int32)
        lists: dict[tuple[int, int], tuple[list[int], list[int]]] = {}
        for d, (items, _) in enumerate(found):
            counts: dict[int, int] = {}
            for field, value, style in items:
                k = counts.get(field, 0)
                if k >= SLOTS.get(field, 1):
                    continue
                if field == F.FAMILY:
                    folded, spoken = name_keys(str(value))
                    if not folded:
                        continue
                    _slot(lists, F.FAMILY, k, size)[0][d] = self.vocab[F.FAMILY].code(folded)
                    if spoken:
                        _slot(lists, F.SOUND, k, size)[0][d] = self.vocab[F.SOUND].code(spoken)
                else:
                    code = value if isinstance(value, int) else self.vocab[field].code(value)
                    codes, styles = _slot(lists, field, k, size)
                    codes[d], styles[d] = code, style
                counts[field] = k + 1
        return {key: _arrays(*pair) for key, pair in lists.items()}, category

    def _fill(self, tables: Tables, seen: np.ndarray) -> None:
        """The column's values into each row's next free slots (SOUND follows FAMILY's)."""
        for field in sorted({f for f, _ in tables}):
            if field == F.SOUND:
                continue
            slots = SLOTS.get(field, 1)
            used = (self.codes[field] >= 0).sum(axis=0)
            for k in range(slots):
                if (field, k) not in tables:
                    break
                codes, styles = tables[(field, k)]
                values = codes[seen]
                rows = np.flatnonzero(values >= 0)
                slot = used[rows] + 0
                fits = slot < slots
                rows, slot = rows[fits], slot[fits]
                self.codes[field][slot, rows] = values[rows]
                if field in self.styles:
                    self.styles[field][slot, rows] = styles[seen[rows]]
                if field == F.FAMILY and (F.SOUND, k) in tables:
                    self.codes[F.SOUND][slot, rows] = tables[(F.SOUND, k)][0][seen[rows]]
                used[rows] += 1


Tables = dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]  # (field, k): codes, notations


def _arrays(codes: list[int], styles: list[int]) -> tuple[np.ndarray, np.ndarray]:
    return np.array(codes, dtype=np.int32), np.array(styles, dtype=np.int8)


def _slot(lists: dict[tuple[int, int], tuple[list[int], list[int]]], field: int, k: int,
          size: int) -> tuple[list[int], list[int]]:  # fmt: skip
    pair = lists.get((field, k))
    if pair is None:
        pair = lists[(field, k)] = ([-1] * size, [-1] * size)
    return pair


def table_traits(rows: list[list[str]], kinds: list[str], *, workers: int = 0,
                 parallel_from: int = 100_000,
                 meanwhile: Callable[[], object] | None = None,
                 digest: Callable[[Traits, set[int]], Any] | None = None) -> Traits:  # fmt: skip
    """The rows of a table (CSV, JSON, XLSX) whose columns have these kinds. From
    `parallel_from` rows, the columns are shared among `workers` forked processes (the columns
    that fill one field stay together: their slots fill in column order), and `meanwhile` is
    run by this process while they work (it is not run otherwise); each worker hands
    `digest` its traits and the fields it read, and the result is kept in `digests`."""
    wanted = [i for i, kind in enumerate(kinds) if kind in _BY_KIND or kind in CATEGORY_OF]
    groups = _column_groups([(i, kinds[i]) for i in wanted], workers)
    if workers < 2 or len(rows) < parallel_from or len(groups) < 2:
        return _columns_traits(rows, kinds, wanted).finish()
    # Each column as one string for the workers: they split it into cells of their own, where
    # reading the parent's million small strings would copy every page of them.
    full = _full_width(rows, wanted)
    blobs = {i: _SEPARATOR.join(_cells(rows, i, full)) for i in wanted}
    if any(blob.count(_SEPARATOR) != len(rows) - 1 for blob in blobs.values()):
        return _columns_traits(rows, kinds, wanted).finish()  # a cell holds the separator
    _PART.update(blobs=blobs, kinds=kinds, rows=len(rows), digest=digest)
    try:
        with multiprocessing.get_context("fork").Pool(len(groups)) as pool:
            pending = pool.map_async(_columns_part, groups)
            if meanwhile is not None:
                meanwhile()
            parts = pending.get()
    finally:
        _PART.clear()
    traits = Traits(len(rows))
    for part in parts:
        traits.categories |= part["categories"]
        traits.digests.update(part["digests"])
        for field, codes in part["codes"].items():
            traits.codes[field] = codes
            if field in traits.styles:
                traits.styles[field] = part["styles"][field]
            if field in traits.vocab:
                values: list[str] = part["values"][field]
                traits.vocab[field].values = values
                traits.vocab[field].codes = {value: c for c, value in enumerate(values)}
    return traits.finish()


_PART: dict[str, Any] = {}  # what the forked column workers inherit: the columns, their kinds
# What reading a cell costs, roughly, by kind (a name's sound is the dearest).
_COST = {"family": 6.0, "usage": 6.0, "full_name": 8.0, "phone": 4.0, "email": 1.5}


def _column_groups(columns: list[tuple[int, str]], workers: int) -> list[list[int]]:
    """The columns in at most `workers` groups of about equal cost, the columns writing one
    field in one group."""
    units: list[tuple[set[int], list[int]]] = []  # (fields written, columns)
    for i, kind in columns:
        fields = _FIELDS_OF.get(kind, set())
        joined = [u for u in units if u[0] & fields]
        merged = (set(fields), [i])
        for unit in joined:
            units.remove(unit)
            merged[0].update(unit[0])
            merged[1].extend(unit[1])
        units.append(merged)
    kind_of = dict(columns)

    def cost(unit_columns: list[int]) -> float:
        return sum(_COST.get(kind_of[c], 1.0) for c in unit_columns)

    bins: list[tuple[float, list[int]]] = [(0.0, []) for _ in range(max(workers, 1))]
    for unit_columns in sorted((u[1] for u in units), key=cost, reverse=True):
        k = min(range(len(bins)), key=lambda b: bins[b][0])
        bins[k] = (bins[k][0] + cost(unit_columns), bins[k][1] + unit_columns)
    return [sorted(group) for _, group in bins if group]


# The fields each kind fills; family names and birth dates go to one worker, which can then
# digest the name-and-date index.
_FIELDS_OF = {"family": {F.FAMILY, F.DATE}, "usage": {F.FAMILY, F.DATE},
              "full_name": {F.FAMILY, F.GIVEN, F.DATE}, "given": {F.GIVEN},
              "birth_date": {F.DATE}, "sex": {F.SEX}, "nir": {F.NIR},
              "email": {F.EMAIL}, "phone": {F.PHONE}, "address": {F.ADDRESS},
              "postcode": {F.POSTCODE}, "city": {F.CITY}, "ipp": {F.IPP}}  # fmt: skip


_SEPARATOR = "\x00"


def _full_width(rows: list[list[str]], columns: list[int]) -> bool:
    return bool(rows) and min(map(len, rows)) >= (max(columns) + 1 if columns else 0)


def _cells(rows: list[list[str]], i: int, full: bool) -> list[str]:
    """Column i: with every row that wide, a C-speed getter; otherwise short rows' cells are
    empty."""
    return list(map(itemgetter(i), rows)) if full else [r[i] if i < len(r) else "" for r in rows]


def _columns_traits(rows: list[list[str]], kinds: list[str], columns: list[int]) -> Traits:
    traits = Traits(len(rows))
    full = _full_width(rows, columns)
    for i in columns:
        traits.column(kinds[i], _cells(rows, i, full))
    return traits


def _columns_part(columns: list[int]) -> dict[str, Any]:
    traits = Traits(_PART["rows"])
    for i in columns:
        traits.column(_PART["kinds"][i], _PART["blobs"][i].split(_SEPARATOR))
    fields = {f for i in columns for f in _FIELDS_OF.get(_PART["kinds"][i], set())}
    if F.FAMILY in fields:
        fields.add(F.SOUND)
    digest = _PART["digest"]
    return {"categories": traits.categories,
            "digests": digest(traits.finish(), fields) if digest else {},
            "codes": {f: traits.codes[f] for f in fields},
            "styles": {f: traits.styles[f] for f in fields if f in traits.styles},
            "values": {f: traits.vocab[f].values for f in fields if f in traits.vocab}}  # fmt: skip


def text_traits(lines: list[str]) -> Traits:
    """Plain-text lines: the traits found in each line by their shape."""
    traits = Traits(len(lines))
    traits.column("text", lines)
    return traits.finish()


# --- one cell's contributions -----------------------------------------------------------------

Item = tuple[int, str | int, int]  # (field, value, notation or -1)


def _contributions(kind: str, value: str) -> tuple[list[Item], int]:
    """What a cell says: its items and its data categories (bits)."""
    if not value:
        return [], 0
    if kind == "text":
        return _text_items(value)
    category = CATEGORY_BIT[CATEGORY_OF[kind]] if kind in CATEGORY_OF else 0
    read = _BY_KIND.get(kind)
    return (read(value) if read else []), category


@short_lru_cache(maxsize=1_000_000)
def name_keys(name: str) -> tuple[str, str | None]:
    """A name folded and its sound (cached: the sample's names and the patients' are much
    the same few hundred thousand)."""
    return fold_name(name), ix.name_sound(name)


@short_lru_cache(maxsize=100_000)
def given_words(value: str) -> frozenset[str]:
    return frozenset(w for w in (fold_name(w) for w in re.split(r"[\s,]+", value) if w) if w)


_STREET_FULL = {abbr: full for full, abbr in marks.STREET_TYPES.items()}
_SEX = {"M": 1, "H": 1, "1": 1, "MALE": 1, "HOMME": 1, "MASCULIN": 1, "F": 2, "2": 2,
        "FEMALE": 2, "FEMME": 2, "FEMININ": 2}  # fmt: skip
SEX_CODE = {"M": 1, "F": 2}


def address_key(text: str) -> str:
    """An address compared whatever the street type's spelling ("av." or "avenue")."""
    words = [fold_name(w) for w in re.split(r"[\s,]+", text) if w]
    return "".join(_STREET_FULL.get(w, w) for w in words)


@short_lru_cache(maxsize=20_000)
def town(value: str) -> tuple[str, int | None]:
    return fold_town(value), marks.saint_style(value)


def nir_value(value: str) -> str:
    nir = fold_nir(value)
    if len(nir) == 13 and cols.NIR_SHAPE.match(nir):
        try:
            return nir + str(stdnum_nir.calc_check_digits(nir))
        except Exception:  # stdnum's own errors: a malformed value is no NIR
            return ""
    return nir if len(nir) == 15 else ""


def _phone(value: str) -> list[Item]:
    digits = fold_phone(value)
    if len(digits) < 8:
        return []
    style = marks.phone_style(value)
    return [(F.PHONE, digits, -1 if style is None else style)]


def _nir(value: str) -> list[Item]:
    nir = nir_value(value)
    return [(F.NIR, nir, -1)] if nir else []


def _full_name(value: str) -> list[Item]:
    words = [w for w in re.split(r"[\s,]+", value) if w]
    known = cols.given_names()
    items: list[Item] = [(F.GIVEN, fold_name(w), -1) for w in words if fold_name(w) in known]
    family = [w for w in words if fold_name(w) not in known]
    names = [" ".join(family)] if family else []
    if len(words) >= 2:  # "Jean MARTIN" where MARTIN is also a given name
        names += [words[0], words[-1]]
    items += [(F.FAMILY, name, -1) for name in dict.fromkeys(names)]
    return items


# Kinds whose cells may give several values.
_BY_KIND: dict[str, Callable[[str], list[Item]]] = {
    "given": lambda v: [(F.GIVEN, w, -1) for w in sorted(given_words(v))],
    "full_name": _full_name,
}

Scalar = tuple[str | int, int] | None  # a cell's one value and its notation, or nothing


def _phone_value(cell: str) -> Scalar:
    digits = fold_phone(cell)
    if len(digits) < 8:
        return None
    style = marks.phone_style(cell, digits)
    return digits, -1 if style is None else style


def _date_value(cell: str) -> Scalar:
    date = cols.parse_date(cell)
    return None if date is None else (date.toordinal(), -1)


def _address_value(cell: str) -> Scalar:
    style = marks.street_style(cell)
    return address_key(cell), -1 if style is None else style


def _city_value(cell: str) -> Scalar:
    folded, style = town(cell)
    return (folded, -1 if style is None else style) if folded else None


def _plain(value: str | int | None) -> Scalar:
    return (value, -1) if value else None


# Kinds whose cells hold one value at most: (field, reader).
_SCALAR: dict[str, tuple[int, Callable[[str], Scalar]]] = {
    "birth_date": (F.DATE, _date_value), "sex": (F.SEX, lambda v: _plain(_SEX.get(v.upper()))),
    "nir": (F.NIR, lambda v: _plain(nir_value(v))),
    "email": (F.EMAIL, lambda v: _plain(fold_email(v))), "phone": (F.PHONE, _phone_value),
    "address": (F.ADDRESS, _address_value), "postcode": (F.POSTCODE, _plain),
    "city": (F.CITY, _city_value), "ipp": (F.IPP, lambda v: _plain(v.lstrip("0"))),
}  # fmt: skip

_TEXT_EMAIL = re.compile(r"[^\s;,<>\"']+@[^\s;,<>\"']+\.[A-Za-z]{2,}")
_TEXT_NIR = re.compile(
    r"\b[1-478](?:[\s.]?\d){4}[\s.]?(?:\d\d|2[AB])(?:[\s.]?\d){6}(?:[\s.]?\d\d)?\b"
)
_TEXT_DATE = re.compile(r"\b\d{1,4}[/.\-]\d{1,2}[/.\-]\d{2,4}\b")
_TEXT_PHONE = re.compile(r"(?:\+|00)?\d[\d .\-]{7,16}\d")
_TEXT_POSTCODE = re.compile(r"\b\d{5}\b")
_WORDS = re.compile(r"[A-Za-zÀ-ÿ'\-]{2,}")
# Words of an address or a sentence, never a family name on their own.
_NOT_NAMES = frozenset({"RUE", "AVENUE", "AV", "BOULEVARD", "BD", "CHEMIN", "IMPASSE", "PLACE",
                        "ALLEE", "ROUTE", "QUAI", "COURS", "DE", "DES", "DU", "LA", "LE", "LES",
                        "NE", "NEE", "TEL", "MAIL", "EMAIL", "CEDEX"})  # fmt: skip


def _text_items(text: str) -> tuple[list[Item], int]:
    """A plain-text line: the traits found by their shape, each alphabetic word a name."""
    items: list[Item] = []
    found_in: set[str] = set()
    rest = text
    if found := _TEXT_EMAIL.search(rest):
        items.append((F.EMAIL, fold_email(found.group(0)), -1))
        found_in.add("email")
        rest = rest.replace(found.group(0), " ")
    if found := _TEXT_NIR.search(rest):
        items += _nir(found.group(0))
        found_in.add("ins")
        rest = rest.replace(found.group(0), " ")
    dates = [d for m in _TEXT_DATE.finditer(rest) if (d := cols.parse_date(m.group(0)))]
    if dates:
        items.append((F.DATE, dates[0].toordinal(), -1))
        found_in.add("date_naissance")
    rest = _TEXT_DATE.sub(" ", rest)
    for found in _TEXT_PHONE.finditer(rest):
        if cols.is_phone(found.group(0)):
            items += _phone(found.group(0))
            found_in.add("telephone")
    rest = _TEXT_PHONE.sub(" ", rest)
    if found := _TEXT_POSTCODE.search(rest):
        items.append((F.POSTCODE, found.group(0), -1))
        found_in.add("adresse")
    words = _WORDS.findall(rest)
    known = cols.given_names()
    items += [(F.GIVEN, fold_name(w), -1) for w in words if fold_name(w) in known]
    # A line's family name is among its first words, or in capitals: those first, since a row
    # keeps SLOTS[F.FAMILY] of them ("12 rue des Lilas 75011 Paris DUPONT Jean").
    names = [w for w in dict.fromkeys(words) if fold_name(w) not in _NOT_NAMES]
    names.sort(key=lambda w: not w.isupper())
    items += [(F.FAMILY, w, -1) for w in names]
    if words:
        found_in.add("identite")
    return items, sum(CATEGORY_BIT[c] for c in found_in)


def iso_of(ordinal: int) -> str:
    return _iso(int(ordinal))


@lru_cache(maxsize=100_000)
def _iso(ordinal: int) -> str:
    return dt.date.fromordinal(ordinal).isoformat()
