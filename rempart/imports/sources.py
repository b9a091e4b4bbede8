"""Reading legacy CSV exports: encoding and delimiter sniffed, columns mapped to patient fields.

French software writes CSV in UTF-8 or cp1252 (Windows Latin-1), with `;` more often than `,`.
A mapping names, for each patient field, the source columns to try in order.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import json
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import compress
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError

from rempart.lib.caching import ColumnMemo, short_lru_cache
from rempart.lib.normalise import fold_phone
from rempart.patients.validation import PatientData, clean_plain, patient_data

SNIFF_BYTES = 1 << 20

# Mediboard-style patient export (the group's previous software).
MEDIBOARD: dict[str, Any] = {
    "name": "mediboard",
    "columns": {
        "birth_name": ["nom_jeune_fille", "nom"],
        "usage_name": ["nom"],
        "given_names": ["prenoms", "prenom"],
        "first_given_name": ["prenom"],
        "sex": ["sexe"],
        "birth_date": ["naissance"],
        "birth_place_code": ["lieu_naissance", "cp_naissance_insee"],
        "nir": ["matricule"],
        "phone_1": ["tel"],
        "phone_2": ["tel2"],
        "email": ["email"],
        "address_line": ["adresse"],
        "postcode": ["cp"],
        "city": ["ville"],
        "gp_rpps": ["medecin_traitant_rpps", "medecin_traitant"],
        "ipp": ["ipp"],
        "identity_status": ["statut_identite"],
    },
    "date_formats": ["%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%Y"],
}
REQUIRED = ("birth_name", "given_names", "sex", "birth_date")
_SEX = {"m": "M", "h": "M", "1": "M", "f": "F", "2": "F", "i": "I", "3": "I"}


class SourceError(Exception):
    """The file cannot be read as a whole (encoding, header, mapping): nothing is imported."""


@dataclass(frozen=True)
class Mapping:
    name: str
    columns: dict[str, list[str]]
    date_formats: list[str] = field(default_factory=lambda: ["%d/%m/%Y", "%Y-%m-%d"])

    @classmethod
    def load(cls, path: Path | None) -> Mapping:
        if path is None:
            return cls(MEDIBOARD["name"], MEDIBOARD["columns"], MEDIBOARD["date_formats"])
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            columns = {
                k: [c.strip().lower() for c in ([v] if isinstance(v, str) else v)]
                for k, v in raw["columns"].items()
            }
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise SourceError(f"mapping {path.name} unreadable: {type(exc).__name__}") from None
        unknown = set(columns) - set(MEDIBOARD["columns"])
        if unknown:
            raise SourceError(f"mapping names unknown fields: {', '.join(sorted(unknown))}")
        return cls(
            str(raw.get("name", path.stem)), columns, list(raw.get("date_formats", ["%d/%m/%Y"]))
        )

    def check_header(self, header: list[str]) -> None:
        present = set(header)
        missing = [f for f in REQUIRED if not any(c in present for c in self.columns.get(f, []))]
        if missing:
            raise SourceError(
                f"the file has no column for {', '.join(missing)} (mapping {self.name})"
            )


@dataclass(frozen=True)
class Dialect:
    encoding: str
    delimiter: str


def sniff(path: Path) -> Dialect:
    with path.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    if not sample:
        raise SourceError("the file is empty")
    encoding = "utf-8-sig"
    try:
        text = sample.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if exc.start >= len(sample) - 3:  # a character cut by the sample's end
            text = sample[: exc.start].decode("utf-8-sig")
        else:
            encoding = "cp1252"
            text = sample.decode("cp1252", errors="replace")
    first_lines = "\n".join(text.splitlines()[:50])
    try:
        delimiter = csv.Sniffer().sniff(first_lines, delimiters=";,\t|").delimiter
    except csv.Error:
        raise SourceError("no column delimiter found (expected ; , tab or |)") from None
    return Dialect(encoding, delimiter)


Row = tuple[int, list[str]]  # (line number, values)


def _csv_error(line: int, exc: csv.Error) -> SourceError:
    # the csv module's own words (a field over its limit, say): they hold no value
    return SourceError(f"unreadable CSV at line {line}: {exc}")


def _header(reader: Any, dialect: Dialect) -> list[str]:
    try:
        return [h.strip().lower() for h in next(reader)]
    except StopIteration:
        raise SourceError("the file has no header line") from None
    except (UnicodeDecodeError, csv.Error):
        raise SourceError(f"unreadable header line ({dialect.encoding})") from None


def read_header(path: Path, dialect: Dialect) -> list[str]:
    """The column names of line 1, stripped and in lower case."""
    with path.open("r", encoding=dialect.encoding, errors="strict", newline="") as handle:
        return _header(csv.reader(handle, delimiter=dialect.delimiter), dialect)


def read_rows(path: Path, dialect: Dialect) -> tuple[list[str], Iterator[Row]]:
    """The header and an iterator of (line number, values); line 1 is the header."""
    handle = path.open("r", encoding=dialect.encoding, errors="strict", newline="")
    reader = csv.reader(handle, delimiter=dialect.delimiter)
    try:
        header = _header(reader, dialect)
    except SourceError:
        handle.close()
        raise

    def rows() -> Iterator[Row]:
        with handle:
            try:
                for values in reader:
                    if values and "".join(values).strip():  # not a blank line
                        yield reader.line_num, values
            except UnicodeDecodeError:
                raise SourceError(
                    f"undecodable bytes after line {reader.line_num} ({dialect.encoding})"
                ) from None
            except csv.Error as exc:
                raise _csv_error(reader.line_num, exc) from None

    return header, rows()


# --- plain files, read by the workers ----------------------------------------------------------
#
# In a file without a quote or a carriage return out of CRLF, a record is a line and a
# field is what lies between two delimiters: the csv module has nothing else to do. Such a file
# (the usual legacy export) is cut by the main process into blocks of whole lines, sent as bytes
# and read by the workers, so that the main process neither parses nor pickles the rows. Any
# other file is read by the csv module in the main process (read_rows), as before.


@dataclass
class Table:
    """A batch's rows of the header's width, column by column (`cells`: one sequence of values
    per column, in the header's order; `lines`: their line numbers), and the other rows."""

    lines: list[int]
    cells: list[Sequence[str]]
    others: list[Row]

    @classmethod
    def of_rows(cls, rows: list[Row], width: int) -> Table:
        fit = [row for row in rows if len(row[1]) == width]
        others = [row for row in rows if len(row[1]) != width] if len(fit) < len(rows) else []
        cells: list[Sequence[str]] = (
            list(zip(*(values for _, values in fit), strict=True)) if fit else [()] * width
        )
        return cls([line for line, _ in fit], cells, others)


class PlainScan:
    """Fed a file's bytes in order: does the whole file split as plain lines?"""

    def __init__(self) -> None:
        self._quoted = False
        self._returns = self._crlfs = 0
        self._last = b""

    def update(self, block: bytes) -> None:
        if self._quoted:
            return
        self._quoted = b'"' in block
        self._returns += block.count(b"\r")
        self._crlfs += (self._last + block).count(b"\r\n")  # a CRLF across two blocks too
        self._last = block[-1:]

    @property
    def plain(self) -> bool:
        return not self._quoted and self._returns == self._crlfs


@dataclass(frozen=True)
class Block:
    """Whole lines of a plain file, its first line numbered `first_line` (the header is 1)."""

    first_line: int
    data: bytes

    def table(self, dialect: Dialect, width: int) -> Table:
        """The block's rows as read_rows gives them (blank lines left out), as a Table. When
        the lines have the header's width, which is nearly always, the whole block is split
        at once and each column sliced out of it."""
        try:
            text = self.data.decode(dialect.encoding)
        except UnicodeDecodeError as exc:
            before = self.first_line + self.data.count(b"\n", 0, exc.start)
            raise SourceError(
                f"undecodable bytes after line {before - 1} ({dialect.encoding})"
            ) from None
        if "\r" in text:
            text = text.replace("\r\n", "\n")
        if text.endswith("\n"):  # the newline that ends the block
            text = text[:-1]
        lines = text.split("\n")
        delimiter, limit = dialect.delimiter, csv.field_size_limit()
        if max(map(len, lines)) > limit:
            for line, raw in enumerate(lines, self.first_line):
                if len(raw) > limit and max(map(len, raw.split(delimiter))) > limit:
                    error = csv.Error(f"field larger than field limit ({limit})")
                    raise _csv_error(line, error)
        # Blank lines (nothing but delimiters and white space, as str.strip's): those left
        # empty by stripping spaces, tabs and delimiters, and those left starting with another
        # white space, checked whole (a regex over the block costs three times as much).
        ends = " \t" + delimiter
        blank = {
            i
            for i, raw in enumerate(lines)
            if not (rest := raw.strip(ends))
            or (rest[0].isspace() and not raw.replace(delimiter, "").strip())
        }
        counts = [raw.count(delimiter) for raw in lines]
        if not blank and counts.count(width - 1) == len(lines):
            flat = text.replace("\n", delimiter).split(delimiter)
            lines_numbers = list(range(self.first_line, self.first_line + len(lines)))
            return Table(lines_numbers, [flat[i::width] for i in range(width)], [])
        rows = [(self.first_line + i, raw.split(delimiter)) for i, raw in enumerate(lines)
                if i not in blank]  # fmt: skip
        return Table.of_rows(rows, width)

    @property
    def last_line(self) -> int:
        return self.first_line + self.data.count(b"\n", 0, len(self.data) - 1)


def read_blocks(path: Path, after_line: int, lines: int) -> Iterator[Block]:
    """A plain file's lines past `after_line` (past the header at least), `lines` to a block."""
    after_line, lines = max(after_line, 1), max(lines, 1)
    with path.open("rb") as handle:
        line, tail = 1, b""  # `line`: the number of the line starting at data[start]
        while chunk := handle.read(1 << 20):
            data, start = tail + chunk, 0
            while True:
                if line <= after_line:  # done already (or the header): skipped
                    skip = min(after_line - line + 1, data.count(b"\n", start))
                    if not skip:
                        break
                    line, start = line + skip, _nth_newline(data, start, skip) + 1
                    continue
                end = _nth_newline(data, start, lines)
                if end < 0:
                    break
                yield Block(line, data[start : end + 1])
                line, start = line + lines, end + 1
            tail = data[start:]
        if tail and line > after_line:
            yield Block(line, tail)  # the last lines, the very last one maybe without newline


def _nth_newline(data: bytes, start: int, n: int) -> int:
    """The offset of the n-th newline at or after `start`, or -1."""
    at = start - 1
    for _ in range(n):
        at = data.find(b"\n", at + 1)
        if at < 0:
            return -1
    return at


@short_lru_cache(maxsize=65_536)  # a file's birth dates repeat: about 37,000 days for the group
def _read_date(raw: str, formats: tuple[str, ...]) -> dt.date | None:
    """The date `raw` stands for in the first of `formats` that reads it, or None."""
    if len(raw) == 10 and raw.isascii():  # the usual shapes, without strptime
        day_first = "".join(sep for sep in "/-." if f"%d{sep}%m{sep}%Y" in formats)
        if raw[2] == raw[5] and raw[2] in day_first:  # dd/mm/yyyy
            day, month, year = raw[:2], raw[3:5], raw[6:]
        elif raw[4] == raw[7] == "-" and "%Y-%m-%d" in formats:  # yyyy-mm-dd
            year, month, day = raw[:4], raw[5:7], raw[8:]
        else:
            day = month = year = ""
        if day.isdigit() and month.isdigit() and year.isdigit():
            try:
                return dt.date(int(year), int(month), int(day))
            except ValueError:
                pass  # 31/02: the formats below refuse it too, or read it another way
    for fmt in formats:
        try:
            return dt.datetime.strptime(raw, fmt).date()  # noqa: DTZ007  # a date, no time
        except ValueError:
            continue
    return None


@functools.cache  # one per set of formats (a mapping's)
def _date_memo(formats: tuple[str, ...]) -> ColumnMemo:
    # A messy export writes the group's 37,000 birth dates in several forms: 90,000 of them.
    return ColumnMemo(lambda raw: _read_date(raw, formats) if raw else None, size=2**17)


def _status(raw: str) -> str:
    return raw.upper() or "PROV"


def _sex(raw: str) -> str:
    return _SEX.get(raw[:1].lower(), "") if raw else ""


_SEXES = ColumnMemo(_sex)
_STATUSES = ColumnMemo(_status)


def _names(birth_name: str, usage_name: str, given_names: str, first: str) -> tuple[str, str, str]:
    """(usage name, given names, first given name) as the source means them: a usage name that
    is the birth name is none; the first given name leads the given names."""
    if usage_name.upper() == birth_name.upper():
        usage_name = ""
    first = first or given_names.split(" ")[0]
    if first and given_names and first.split(" ")[0] not in given_names.split(" "):
        given_names = f"{first} {given_names}"
    return usage_name, given_names, first


def _phones(phone_1: str, phone_2: str) -> tuple[str, str, str]:
    """(mobile, its folded digits, home phone): the first number that looks like a mobile (06,
    07) is the mobile, the other one the home phone."""
    digits_1 = fold_phone(phone_1) if phone_1 else ""
    if digits_1[2:3] in ("6", "7"):
        return phone_1, digits_1, phone_2 if phone_2 != phone_1 else ""
    if phone_2 and (digits_2 := fold_phone(phone_2))[2:3] in ("6", "7"):
        return phone_2, digits_2, phone_1
    return "", "", phone_1 or phone_2


@dataclass(frozen=True)
class Extracted:
    data: PatientData
    gp_rpps: str
    ipp: str


class RowReader:
    """Turns one CSV row into patient data, with the source's conventions undone."""

    def __init__(self, mapping: Mapping, header: list[str]) -> None:
        self.mapping = mapping
        position = {name: i for i, name in enumerate(header)}
        # (target, its columns in order of preference); a row's fields read in one pass
        # (every target, those the mapping does not name with no column)
        self._plan = [
            (target, tuple(position[c] for c in mapping.columns.get(target, ()) if c in position))
            for target in MEDIBOARD["columns"]
        ]
        self.width = len(header)
        self._formats = formats = tuple(mapping.date_formats)
        self._dates = _date_memo(formats)

    def _fields(self, values: list[str]) -> dict[str, str]:
        """Each target's value, stripped: the first non-empty of its columns, or ""."""
        stripped = [v.strip() for v in values]
        count = len(stripped)
        out = {}
        for target, columns in self._plan:
            value = ""
            for i in columns:
                if i < count and stripped[i]:
                    value = stripped[i]
                    break
            out[target] = value
        return out

    def _date(self, raw: str) -> dt.date | None:
        return _read_date(raw, self._formats)

    def extract(self, values: list[str]) -> Extracted:
        errors: dict[str, list[str]] = {}
        if len(values) != self.width:
            errors["ligne"] = [f"{len(values)} colonnes au lieu de {self.width}."]
        get = self._fields(values).get
        raw_date = get("birth_date", "")
        birth_date = self._date(raw_date) if raw_date else None
        if raw_date and birth_date is None:
            errors["birth_date"] = ["Date de naissance illisible."]
        sex = _sex(get("sex", ""))
        birth_name = get("birth_name", "")
        usage_name, given_names, first = _names(
            birth_name, get("usage_name", ""), get("given_names", ""), get("first_given_name", "")
        )
        mobile, _, home = _phones(get("phone_1", ""), get("phone_2", ""))
        if errors:
            raise ValidationError(errors)
        data = patient_data(
            dict(
                birth_name=birth_name,
                usage_name=usage_name,
                given_names=given_names,
                first_given_name=first,
                sex=sex,
                birth_date=birth_date,  # None is refused by validation
                birth_place_code=get("birth_place_code", ""),
                nir=get("nir", ""),
                identity_status=_status(get("identity_status", "")),
                email=get("email", ""),
                phone_mobile=mobile,
                phone_home=home,
                address_line=get("address_line", ""),
                postcode=get("postcode", ""),
                city=get("city", ""),
                gp_id=None,
                extra={},
            )
        )
        return Extracted(data, get("gp_rpps", ""), get("ipp", ""))

    def plain_rows(
        self, table: Table, today: dt.date, gp: Callable[[str], uuid.UUID | None]
    ) -> PlainRows:
        """The model values and IPPs the import keeps of the rows of which `extract` and
        `clean_for_import` would have nothing to say (validation.clean_plain), read column by
        column; the other rows are left to them. `gp` gives the médecin traitant of an RPPS,
        None when there is something to say of it."""
        cells, count = table.cells, len(table.lines)
        get: dict[str, list[str]] = {}
        for target, sources in self._plan:  # the first non-empty of the target's columns
            value: list[str] | None = None
            for i in sources:
                stripped = [v.strip() for v in cells[i]]
                value = (
                    stripped
                    if value is None
                    else [a or b for a, b in zip(value, stripped, strict=True)]
                )
            get[target] = value if value is not None else [""] * count
        birth_date = self._dates(get["birth_date"])
        named = list(map(_names, get["birth_name"], get["usage_name"], get["given_names"],
                         get["first_given_name"]))  # fmt: skip
        phones = list(map(_phones, get["phone_1"], get["phone_2"]))
        # each RPPS looked up once (a fresh memo: `gp` notes the batch's new practitioners)
        gp_id = ColumnMemo(lambda rpps: gp(rpps) if rpps else None)(get["gp_rpps"])
        gp_ok = [not r or g is not None for r, g in zip(get["gp_rpps"], gp_id, strict=True)]
        columns, plain = clean_plain(
            {
                "birth_name": get["birth_name"],
                "usage_name": [n[0] for n in named],
                "given_names": [n[1] for n in named],
                "first_given_name": [n[2] for n in named],
                "sex": _SEXES(get["sex"]),
                "birth_date": birth_date,
                "birth_place_code": get["birth_place_code"],
                "nir": get["nir"],
                "identity_status": _STATUSES(get["identity_status"]),
                "email": get["email"],
                "phone_mobile": [p[0] for p in phones],
                "phone_home": [p[2] for p in phones],
                "address_line": get["address_line"],
                "postcode": get["postcode"],
                "city": get["city"],
                "gp_id": gp_id,
            },
            today=today,
            mobile_digits=[p[1] for p in phones],
        )
        plain = [p and ok for p, ok in zip(plain, gp_ok, strict=True)]
        if all(plain):
            return PlainRows(table.lines, get["ipp"], columns, table.others)
        left = [k for k, p in enumerate(plain) if not p]
        return PlainRows(
            list(compress(table.lines, plain)),
            list(compress(get["ipp"], plain)),
            {name: list(compress(column, plain)) for name, column in columns.items()},
            table.others + [(table.lines[k], [column[k] for column in cells]) for k in left],
        )


@dataclass
class PlainRows:
    """What RowReader.plain_rows keeps of a batch: the plain rows' lines, IPPs and model values
    (field -> one value per row), and the other rows, for the full path."""

    lines: list[int]
    ipps: list[str]
    columns: dict[str, list[Any]]
    others: list[Row]
