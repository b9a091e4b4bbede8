"""Seal patient rows outside the ORM, for bulk loads (generator, legacy import).

Gives exactly what Patient.save() stores (same records, same associated data, same blind
indexes: tested), without building model instances.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from typing import Any

from rempart.patients.models import Patient
from rempart.vault.fields import BlindIndexField, EncryptedField, SealedAttribute
from rempart.vault.keystore import get_vault


class PatientSealer:
    """Turns the model values of one patient into the stored columns, in `columns` order."""

    def __init__(self) -> None:
        meta = Patient._meta
        self.records = [f for f in meta.concrete_fields if isinstance(f, EncryptedField)]
        attributes = [a for a in vars(Patient).values() if isinstance(a, SealedAttribute)]
        position = {f.name: i for i, f in enumerate(self.records)}
        # (key, record position, encoder or None when the value is stored as it is)
        self._plan = [
            (a.key, position[a.blob], None if a.kind == "text" else a.encode) for a in attributes
        ]
        self.indexes = [f for f in meta.concrete_fields if isinstance(f, BlindIndexField)]
        self._index_plan = [(f.digest, tuple(f.sources)) for f in self.indexes]
        self.columns = [
            "id", "identity_status", "created_at", "updated_at",
            *(f.column for f in self.records), *(f.column for f in self.indexes),
        ]  # fmt: skip
        missing = {f.column for f in meta.concrete_fields} - set(self.columns)
        if missing:
            raise RuntimeError(f"PatientSealer does not fill {sorted(missing)}")
        self._encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

    def row(self, row_id: uuid.UUID, values: Mapping[str, Any], now: Any) -> tuple[Any, ...]:
        records: list[dict[str, Any]] = [{} for _ in self.records]
        for key, position, encode in self._plan:
            value = values.get(key)
            if value is not None and value != "":
                records[position][key] = value if encode is None else encode(value)
        cipher = get_vault().cipher
        sealed = [
            cipher.seal(field.category, self._encode(record).encode(),
                        field.associated_data(row_id)) if record else None
            for field, record in zip(self.records, records, strict=True)
        ]  # fmt: skip
        digests = [
            digest(*[values.get(src) for src in sources]) for digest, sources in self._index_plan
        ]
        return (row_id, values["identity_status"], now, now, *sealed, *digests)
