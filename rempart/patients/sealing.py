"""Seal patient rows outside the ORM, for bulk loads (generator, legacy import).

Gives exactly what Patient.save() stores (same records, same associated data, same blind
indexes: tested), without building model instances.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.db import models

from rempart.patients.models import Patient
from rempart.vault.fields import BlindIndexField, EncryptedField, SealedAttribute


class PatientSealer:
    """Turns the model values of one patient into the stored columns, in `columns` order."""

    def __init__(self) -> None:
        meta = Patient._meta
        self.records = [f for f in meta.concrete_fields if isinstance(f, EncryptedField)]
        self.attributes = [a for a in vars(Patient).values() if isinstance(a, SealedAttribute)]
        self.indexes = [f for f in meta.concrete_fields if isinstance(f, BlindIndexField)]
        self.columns = [
            "id", "identity_status", "created_at", "updated_at",
            *(f.column for f in self.records), *(f.column for f in self.indexes),
        ]  # fmt: skip
        meta_fields = {f.column for f in meta.concrete_fields}
        missing = meta_fields - set(self.columns)
        if missing:
            raise RuntimeError(f"PatientSealer does not fill {sorted(missing)}")

    def row(self, row_id: uuid.UUID, values: Mapping[str, Any], now: Any) -> tuple[Any, ...]:
        records: dict[str, dict[str, Any]] = {f.name: {} for f in self.records}
        for attribute in self.attributes:
            value = values.get(attribute.key)
            if value is not None and value != "":
                records[attribute.blob][attribute.key] = attribute.encode(value)
        sealed = [
            field.seal_value(row_id, records[field.name]) if records[field.name] else None
            for field in self.records
        ]
        digests = [f.digest(*(values.get(src) for src in f.sources)) for f in self.indexes]
        return (row_id, values["identity_status"], now, now, *sealed, *digests)


def model_columns(model: type[models.Model]) -> list[str]:
    return [f.column for f in model._meta.concrete_fields]
