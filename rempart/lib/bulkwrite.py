"""Write many rows fast: COPY on PostgreSQL (from rows, or from COPY text made elsewhere, e.g. in
worker processes), executemany on SQLite. The caller owns the transaction."""

from __future__ import annotations

import datetime as dt
import struct
import uuid
from collections.abc import Callable, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from itertools import repeat
from typing import Any

from django.db import connection, models

from rempart.lib.timings import Timings

Rows = list[tuple[Any, ...]]


def _columns(model: type[models.Model]) -> list[str]:
    return [f.column for f in model._meta.concrete_fields]


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


_COPY_FORMAT: dict[type, Callable[[Any], str]] = {
    type(None): lambda v: "\\N",
    bytes: lambda v: "\\\\x" + v.hex(),
    str: lambda v: v.translate(_COPY_ESCAPES),
    dt.datetime: dt.datetime.isoformat,
    uuid.UUID: str,
    int: str,
}


def copy_text(rows: Rows) -> bytes:
    """Rows in PostgreSQL's COPY text format (made in the workers, so the writer only streams)."""
    fmt = _COPY_FORMAT
    return "".join("\t".join([fmt[type(v)](v) for v in row]) + "\n" for row in rows).encode()


class BulkWriter:
    """COPY on PostgreSQL, executemany on SQLite, same rows."""

    def __init__(self) -> None:
        self.postgres = connection.vendor == "postgresql"

    def write(self, model: type[models.Model], rows: Sequence[tuple[Any, ...]] | bytes) -> None:
        if not rows:
            return
        table = connection.ops.quote_name(model._meta.db_table)
        columns = ", ".join(connection.ops.quote_name(c) for c in _columns(model))
        with connection.cursor() as cursor:
            if self.postgres:
                raw = cursor.cursor
                binary = isinstance(rows, bytes) and rows.startswith(_SIGNATURE)
                options = " WITH (FORMAT binary)" if binary else ""
                with raw.copy(f"COPY {table} ({columns}) FROM STDIN{options}") as copy:
                    if isinstance(rows, bytes):
                        copy.write(rows)
                    else:
                        for row in rows:
                            copy.write_row(row)
            else:
                if isinstance(rows, bytes):
                    raise TypeError("COPY text is for PostgreSQL only")
                marks = ", ".join(["%s"] * len(rows[0]))
                cursor.executemany(
                    f"INSERT INTO {table} ({columns}) VALUES ({marks})",  # noqa: S608  # model names
                    [tuple(_sqlite(v) for v in row) for row in rows],
                )


def _sqlite(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return value.hex
    if hasattr(value, "isoformat") and hasattr(value, "tzinfo"):
        return connection.ops.adapt_datetimefield_value(value)
    return value


# --- binary COPY ----------------------------------------------------------------------------------

_SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
_TRAILER = struct.pack(">h", -1)
_PG_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
_PG_EPOCH_DAY = dt.date(2000, 1, 1).toordinal()
_NULL = struct.pack(">i", -1)
_LEN = struct.Struct(">i")


def _text(v: str) -> bytes:
    data = v.encode()
    return _LEN.pack(len(data)) + data


def _bytea(v: bytes) -> bytes:
    return _LEN.pack(len(v)) + v


def uuid_field(v: uuid.UUID) -> bytes:
    """A uuid column's binary COPY value."""
    return b"\x00\x00\x00\x10" + v.bytes


def uuid_bytes(v: bytes) -> bytes:
    """A uuid column's binary COPY value from the id's 16 bytes (see lib.ids.new_ids_bytes)."""
    return b"\x00\x00\x00\x10" + v


def _timestamptz(v: dt.datetime) -> bytes:
    delta = v - _PG_EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return b"\x00\x00\x00\x08" + struct.pack(">q", micros)


def _date(v: dt.date) -> bytes:
    return b"\x00\x00\x00\x04" + struct.pack(">i", v.toordinal() - _PG_EPOCH_DAY)


_INT = {2: struct.Struct(">h"), 4: struct.Struct(">i"), 8: struct.Struct(">q")}


def _integer(size: int) -> Callable[[int], bytes]:
    packer = _INT[size]
    prefix = _LEN.pack(size)
    return lambda v: prefix + packer.pack(v)


_int4 = _integer(4)

_BY_TYPE: dict[str, Callable[[Any], bytes]] = {
    "UUIDField": uuid_field, "CharField": _text, "TextField": _text, "SlugField": _text,
    "BinaryField": _bytea, "DateTimeField": _timestamptz, "DateField": _date,
    "IntegerField": _int4, "PositiveIntegerField": _int4,
    "SmallIntegerField": _integer(2), "PositiveSmallIntegerField": _integer(2),
    "BigIntegerField": _integer(8), "PositiveBigIntegerField": _integer(8),
}  # fmt: skip


def binary_encoder(internal_type: str) -> Callable[[Any], bytes]:
    """The binary COPY encoder for a Django field type ("TextField", "DateField", ...)."""
    if internal_type not in _BY_TYPE:
        raise TypeError(f"no binary COPY encoder for {internal_type}")
    return _BY_TYPE[internal_type]


def binary_encoders(model: type[models.Model]) -> list[Callable[[Any], bytes]]:
    """One encoder per concrete column of `model`, in table order."""
    encoders = []
    for f in model._meta.concrete_fields:
        target = getattr(f, "target_field", f) if f.is_relation else f
        kind = target.get_internal_type()
        if kind not in _BY_TYPE:
            raise TypeError(f"no binary COPY encoder for {kind} ({f.name})")
        encoders.append(_BY_TYPE[kind])
    return encoders


class Same:
    """A column holding one value on every row (a load's timestamps): encoded once."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value


def binary_rows_from_columns(
    columns: Sequence[Sequence[Any] | Same], encoders: list[Callable[[Any], bytes]]
) -> list[bytes]:
    """Each row in PostgreSQL's binary COPY format (kept apart so rows can still be dropped), from
    data held column by column: each column encoded in one loop, then each row joined once (a
    third of the per-value work of going row by row)."""
    if len(columns) != len(encoders):
        raise ValueError(f"{len(columns)} columns for {len(encoders)} encoders")
    lengths = {len(column) for column in columns if not isinstance(column, Same)}
    if len(lengths) != 1:
        raise ValueError("the columns are not all as long, or none holds one value per row")
    encoded: list[Any] = [repeat(struct.pack(">h", len(encoders)))]
    for enc, column in zip(encoders, columns, strict=True):
        if isinstance(column, Same):
            encoded.append(repeat(_NULL if column.value is None else enc(column.value)))
        else:
            encoded.append([_NULL if v is None else enc(v) for v in column])
    # not strict: the Same columns repeat without end, the others were checked to be as long
    return [b"".join(cells) for cells in zip(*encoded, strict=False)]


def binary_block(rows: list[bytes]) -> bytes:
    """Encoded rows as one binary COPY stream: no hex, no text parsing, half the bytes."""
    return b"".join([_SIGNATURE, *rows, _TRAILER])


def roomy_index_builds(cursor: Any) -> None:
    """For the rest of the transaction, let PostgreSQL sort each index build in memory (the
    default 64 MB spills a million-row sort to disk: about a fifth slower). Bulk loads only."""
    cursor.execute("SET LOCAL maintenance_work_mem = '256MB'")


# --- loading into empty tables as pg_restore does ------------------------------------------------

KEY, INDEX, FOREIGN_KEY = "key", "index", "foreign key"
_RESTORE_PHASES = {
    KEY: "add {} primary keys and unique constraints",
    INDEX: "rebuild {} secondary indexes",
    FOREIGN_KEY: "add and validate {} foreign keys",
}


@dataclass(frozen=True)
class Dropped:
    """A primary key, unique constraint, index or foreign key taken off for a bulk load, and
    what puts it back (a constraint's definition, an index's CREATE statement)."""

    kind: str
    table: str
    name: str
    definition: str

    def as_list(self) -> list[str]:  # stored in a JSON column by a resumable import
        return [self.kind, self.table, self.name, self.definition]


def keys_drop(
    cursor: Any, tables: Sequence[str], keep: frozenset[str] = frozenset()
) -> list[Dropped]:
    """Drop the primary keys, unique constraints, indexes and foreign keys of `tables` (and the
    foreign keys of other tables that point at them), except the constraints named in `keep`;
    return them in the order that puts them back: keys, indexes, foreign keys. PostgreSQL only;
    the caller owns the transaction (DDL is transactional: a failure drops nothing)."""
    quote = connection.ops.quote_name
    constraints = """
        SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)
        FROM pg_constraint c WHERE c.contype = ANY(%s) AND (c.conrelid::regclass::text = ANY(%s)
          OR c.confrelid <> 0 AND c.confrelid::regclass::text = ANY(%s))
        ORDER BY 1, 2
    """
    cursor.execute(constraints, [["f"], list(tables), list(tables)])
    foreign_keys = [Dropped(FOREIGN_KEY, *row) for row in cursor.fetchall() if row[1] not in keep]
    cursor.execute(constraints, [["p", "u"], list(tables), []])
    keys = [Dropped(KEY, *row) for row in cursor.fetchall() if row[1] not in keep]
    for dropped in foreign_keys + keys:
        cursor.execute(f"ALTER TABLE {quote(dropped.table)} DROP CONSTRAINT {quote(dropped.name)}")
    cursor.execute(
        """
        SELECT i.tablename, i.indexname, i.indexdef FROM pg_indexes i
        WHERE i.schemaname = current_schema() AND i.tablename = ANY(%s)
          AND i.indexname NOT IN (SELECT conname FROM pg_constraint
                                  WHERE conrelid::regclass::text = i.tablename)
        ORDER BY 1, 2
        """,
        [list(tables)],
    )
    indexes = [Dropped(INDEX, *row) for row in cursor.fetchall()]  # those that back no constraint
    for dropped in indexes:
        cursor.execute(f"DROP INDEX {quote(dropped.name)}")
    return keys + indexes + foreign_keys


def keys_restore(cursor: Any, dropped: Sequence[Dropped], timings: Timings | None = None) -> None:
    """Put back what `keys_drop` took off, one sort per key and index, one join per foreign key
    (every row checked), each skipped if already there. `timings`, when given, gets a phase per
    kind."""
    quote = connection.ops.quote_name
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    roomy_index_builds(cursor)
    # (table, name): two tables may each have a foreign key of one name
    cursor.execute(
        "SELECT tablename, indexname FROM pg_indexes WHERE schemaname = current_schema() "
        "UNION SELECT conrelid::regclass::text, conname FROM pg_constraint "
        "WHERE connamespace = current_schema()::regnamespace"
    )
    present = set(cursor.fetchall())
    for kind, label in _RESTORE_PHASES.items():
        todo = [d for d in dropped if d.kind == kind and (d.table, d.name) not in present]
        if not todo:
            continue
        with timings.phase(label.format(len(todo))) if timings else nullcontext():
            for d in todo:
                if kind == INDEX:
                    cursor.execute(d.definition)
                else:
                    table, name = quote(d.table), quote(d.name)
                    cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {d.definition}")
