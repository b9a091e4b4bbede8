"""Seal patient rows outside the ORM, for bulk loads (generator, legacy import).

Gives exactly what Patient.save() stores (same records, same associated data, same blind
indexes: tested), without building model instances. A batch is sealed column by column: each
record kind, each blind index and each binary COPY column in one loop over the batch, which is
what makes an encrypted load run near the plaintext one (bench/scale.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from rempart.lib.bulkwrite import Same, binary_encoders, binary_rows_from_columns
from rempart.lib.timings import Timings
from rempart.patients.models import Patient
from rempart.vault.fields import BlindIndexField, EncryptedField, SealedAttribute
from rempart.vault.keystore import get_vault

# (patient id, model values: every attribute's key, None when empty, as `as_model_values` gives)
Batch = Sequence[tuple[uuid.UUID, Mapping[str, Any]]]
# The same, column by column: each attribute's values, one per row
Columns = Mapping[str, Sequence[Any]]


class PatientSealer:
    """Turns the model values of patients into the stored columns, in `columns` order."""

    def __init__(self) -> None:
        meta = Patient._meta
        self.records = [f for f in meta.concrete_fields if isinstance(f, EncryptedField)]
        attributes = [a for a in vars(Patient).values() if isinstance(a, SealedAttribute)]
        # The keys of each record. Dates and UUIDs go in as they are: orjson writes them as
        # `isoformat()` and `str()` do, which is what the model's attributes store (tested).
        self._keys = [tuple(a.key for a in attributes if a.blob == f.name) for f in self.records]
        self.indexes = [f for f in meta.concrete_fields if isinstance(f, BlindIndexField)]
        self.columns = [
            "id", "identity_status", "created_at", "updated_at", "version",
            *(f.column for f in self.records), *(f.column for f in self.indexes), "index_key_id",
        ]  # fmt: skip
        if [f.column for f in meta.concrete_fields] != self.columns:
            raise RuntimeError("the patient table's columns changed: update PatientSealer")
        self._encoders = binary_encoders(Patient)

    def _columns(
        self,
        ids: Sequence[uuid.UUID],
        values: Columns,
        now: dt.datetime,
        timings: Timings | None = None,
    ) -> list[Sequence[Any] | Same]:
        timings = timings or Timings()
        columns: list[Sequence[Any] | Same] = [
            ids, values["identity_status"], Same(now), Same(now), Same(1)
        ]  # fmt: skip
        for field, keys in zip(self.records, self._keys, strict=True):
            # empty values are not stored: for str, date and UUID, falsy means None or ""
            with timings.phase("seal patients: encode records"):
                encode = field.encode
                payloads = [
                    encode(record)
                    if (record := {k: x for k, x in zip(keys, row, strict=True) if x})
                    else None
                    for row in zip(*(values[key] for key in keys), strict=True)
                ]
            with timings.phase("seal patients: AEAD"):
                columns.append(field.seal_payloads(ids, payloads))
        with timings.phase("seal patients: blind indexes"):
            for index in self.indexes:
                columns.append(index.digest_column(*[values[src] for src in index.sources]))
        columns.append(Same(get_vault().indexer.primary_key_id))
        return columns

    def _transposed(self, batch: Batch) -> tuple[list[uuid.UUID], dict[str, list[Any]]]:
        names = ("identity_status", *(key for keys in self._keys for key in keys))
        return [i for i, _ in batch], {name: [v[name] for _, v in batch] for name in names}

    def rows(self, batch: Batch, now: dt.datetime) -> list[tuple[Any, ...]]:
        """The stored rows, as tuples (SQLite's executemany)."""
        return self.rows_of_columns(*self._transposed(batch), now)

    def rows_of_columns(
        self, ids: Sequence[uuid.UUID], values: Columns, now: dt.datetime
    ) -> list[tuple[Any, ...]]:
        """`rows`, of patients given column by column (attribute -> one value per row)."""
        if not ids:
            return []
        columns = [[c.value] * len(ids) if isinstance(c, Same) else c
                   for c in self._columns(ids, values, now)]  # fmt: skip
        return list(zip(*columns, strict=True))

    def binary_rows(
        self, batch: Batch, now: dt.datetime, timings: Timings | None = None
    ) -> list[bytes]:
        """Each stored row in PostgreSQL's binary COPY format (see rempart.lib.bulkwrite)."""
        return self.binary_columns(*self._transposed(batch), now, timings)

    def binary_columns(
        self,
        ids: Sequence[uuid.UUID],
        values: Columns,
        now: dt.datetime,
        timings: Timings | None = None,
    ) -> list[bytes]:
        """`binary_rows`, of patients given column by column (attribute -> one value per row)."""
        if not ids:
            return []
        timings = timings or Timings()
        columns = self._columns(ids, values, now, timings)
        with timings.phase("COPY encoding"):
            return binary_rows_from_columns(columns, self._encoders)
