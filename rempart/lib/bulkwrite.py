"""Write many rows fast: COPY on PostgreSQL (from rows, or from COPY text made elsewhere, e.g. in
worker processes), executemany on SQLite. The caller owns the transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from django.db import connection, models

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


def _copy_value(value: Any) -> str:
    return _COPY_FORMAT[type(value)](value)


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
                with raw.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
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
