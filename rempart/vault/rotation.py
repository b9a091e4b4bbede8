"""Key rotation: add a key, promote it, re-encrypt every ciphertext still under an older key.

Old keys stay in their keyset (and keep decrypting) until re-encryption is done and they are
disabled; `reencrypt` may be interrupted and run again: it only touches what is still old.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import connection, models, transaction

from rempart.vault import crypto, keystore
from rempart.vault.fields import EncryptedField

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Column:
    model: type[models.Model]
    field: EncryptedField


def encrypted_columns(category: str | None = None) -> list[Column]:
    """Every encrypted column of every installed model (optionally of one key category)."""
    return [
        Column(model, field)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedField) and (category is None or field.category == category)
    ]


def key_add(category: str) -> int:
    handle, key_id = crypto.keyset_add_key(keystore.read_keyset(category), category)
    keystore.write_keyset(category, handle)
    return key_id


def key_promote(category: str, key_id: int) -> None:
    keystore.write_keyset(category, crypto.keyset_promote(keystore.read_keyset(category), key_id))


def key_disable(category: str, key_id: int) -> None:
    """Disable an old key, only once no ciphertext still needs it."""
    disabled = crypto.keyset_disable(keystore.read_keyset(category), key_id)
    remaining = ciphertexts_by_key(category).get(key_id, 0)
    if remaining:
        raise crypto.VaultError(
            f"{remaining} values are still sealed with key {key_id}: run `rempart keys reencrypt`"
        )
    keystore.write_keyset(category, disabled)


def ciphertexts_by_key(category: str) -> Counter[int]:
    counts: Counter[int] = Counter()
    for column in encrypted_columns(category):
        values = column.model._base_manager.exclude(**{f"{column.field.attname}__isnull": True})
        for (value,) in values.values_list(column.field.attname).iterator(chunk_size=5000):
            counts[crypto.ciphertext_key_id(bytes(value))] += 1
    return counts


def count_to_reencrypt(category: str) -> int:
    primary = keystore.get_vault().cipher.primary_key_id(category)
    counts = ciphertexts_by_key(category)
    return sum(n for key_id, n in counts.items() if key_id != primary)


def _batches(model: type[models.Model], size: int) -> Iterator[list[object]]:
    last = None
    while True:
        query = model._base_manager.order_by("pk").values_list("pk", flat=True)
        if last is not None:
            query = query.filter(pk__gt=last)
        ids = list(query[:size])
        if not ids:
            return
        yield ids
        last = ids[-1]


def reencrypt(category: str, *, batch_size: int = 2000, progress: Progress | None = None) -> int:
    """Re-seal every value of `category` not under the primary key; returns how many changed.

    Rows are locked batch by batch, so a concurrent edit is never overwritten by a stale value.
    """
    keystore.reset_vault()
    cipher = keystore.get_vault().cipher
    primary = cipher.primary_key_id(category)
    changed = 0
    by_model: dict[type[models.Model], list[EncryptedField]] = {}
    for column in encrypted_columns(category):
        by_model.setdefault(column.model, []).append(column.field)
    for model, fields in by_model.items():
        table = connection.ops.quote_name(model._meta.db_table)
        pk_column = connection.ops.quote_name(model._meta.pk.column)
        for ids in _batches(model, batch_size):
            with transaction.atomic():
                rows = (
                    model._base_manager.select_for_update()
                    .filter(pk__in=ids)
                    .values_list("pk", *(f.attname for f in fields))
                )
                updates: dict[str, list[tuple[bytes, Any]]] = {}
                for pk, *values in rows:
                    for field, value in zip(fields, values, strict=True):
                        if value is None or crypto.ciphertext_key_id(value) == primary:
                            continue
                        ad = field.associated_data(pk)
                        fresh = cipher.seal(category, cipher.open(category, value, ad), ad)
                        updates.setdefault(field.column, []).append((fresh, pk))
                with connection.cursor() as cursor:
                    for column_name, params in updates.items():
                        column_sql = connection.ops.quote_name(column_name)
                        cursor.executemany(
                            f"UPDATE {table} SET {column_sql} = %s WHERE {pk_column} = %s",  # noqa: S608  # identifiers from the model registry
                            [(v, pk_db(model, pk)) for v, pk in params],
                        )
                        changed += len(params)
            if progress is not None:
                progress(len(ids))
    return changed


def pk_db(model: type[models.Model], pk: object) -> Any:
    return model._meta.pk.get_db_prep_value(pk, connection)


def rows_to_scan(category: str) -> int:
    return sum(c.model._base_manager.count() for c in encrypted_columns(category))
