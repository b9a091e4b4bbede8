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
from rempart.vault.fields import BlindIndexField, EncryptedField, IndexKeyField

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
    """Disable an old key, only once no ciphertext (or, for the index root, no row's blind
    indexes) still needs it."""
    disabled = crypto.keyset_disable(keystore.read_keyset(category), key_id)
    if category == crypto.INDEX_CATEGORY:
        counts = rows_by_index_key()
        remaining = counts.get(key_id, 0) + counts.get(None, 0)
        if remaining:
            raise crypto.VaultError(
                f"{remaining} rows are still indexed under key {key_id} or an unknown key: "
                "run `rempart keys reindex`"
            )
    else:
        remaining = ciphertexts_by_key(category).get(key_id, 0)
        if remaining:
            raise crypto.VaultError(
                f"{remaining} values are still sealed with key {key_id}: "
                "run `rempart keys reencrypt`"
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


# --- blind indexes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexedModel:
    model: type[models.Model]
    fields: list[BlindIndexField]


def indexed_models() -> list[IndexedModel]:
    """Every model with blind indexes (and the index key field saying which key made them)."""
    found = []
    for model in apps.get_models():
        fields = [f for f in model._meta.concrete_fields if isinstance(f, BlindIndexField)]
        if fields:
            if not any(isinstance(f, IndexKeyField) for f in model._meta.concrete_fields):
                raise RuntimeError(f"{model._meta.label} has blind indexes but no IndexKeyField")
            found.append(IndexedModel(model, fields))
    return found


def _stale(primary: int) -> models.Q:
    return models.Q(index_key_id__isnull=True) | ~models.Q(index_key_id=primary)


def index_key_models() -> list[type[models.Model]]:
    return [m for m in apps.get_models()
            if any(isinstance(f, IndexKeyField) for f in m._meta.concrete_fields)]  # fmt: skip


def rows_by_index_key(*, indexed_only: bool = False) -> Counter[int | None]:
    """How many rows (patients, canary marks...) carry values made under each index key;
    None: rows made before index keys were recorded, to re-index. `indexed_only` counts the rows
    with blind indexes only (what `keys list` shows: the number of canary marks is not told)."""
    counts: Counter[int | None] = Counter()
    chosen = [m.model for m in indexed_models()] if indexed_only else index_key_models()
    for model in chosen:
        for key_id, n in (
            model._base_manager.values_list("index_key_id")
            .annotate(n=models.Count("pk"))
            .order_by()
        ):
            counts[key_id] += n
    return counts


def count_to_reindex() -> int:
    primary = keystore.get_vault().indexer.primary_key_id
    return sum(m.model._base_manager.filter(_stale(primary)).count() for m in indexed_models())


BatchHook = Callable[[type[models.Model], list[Any]], object]


def reindex(
    *, batch_size: int = 2000, progress: Progress | None = None, on_batch: BatchHook | None = None
) -> int:
    """Recompute the blind indexes of every row not made under the primary index key, from its
    sealed values; returns how many rows changed.

    Batches of rows are locked, recomputed and written in one transaction each (with `on_batch`,
    which re-keys what else the caller derives from the index root, in the same transaction): a
    kill loses at most the batch in flight, and a new run goes on where the last one stopped,
    since finished rows carry the primary key's id. Pages keep serving meanwhile: look-ups ask
    for the digests of every enabled key.
    """
    keystore.reset_vault()
    primary = keystore.get_vault().indexer.primary_key_id
    changed = 0
    for indexed in indexed_models():
        model, fields = indexed.model, indexed.fields
        last = None
        while True:
            with transaction.atomic():
                query = model._base_manager.filter(_stale(primary)).order_by("pk")
                if last is not None:
                    query = query.filter(pk__gt=last)
                rows = list(query.select_for_update()[:batch_size])
                if not rows:
                    break
                values = [
                    [f.digest(*(getattr(row, s) for s in f.sources)) for f in fields]
                    for row in rows
                ]
                _write_indexes(model, fields, [r.pk for r in rows], values, primary)
                if on_batch is not None:
                    on_batch(model, [r.pk for r in rows])
            last = rows[-1].pk
            changed += len(rows)
            if progress is not None:
                progress(len(rows))
    return changed


def _write_indexes(
    model: type[models.Model],
    fields: list[BlindIndexField],
    ids: list[Any],
    values: list[list[int | None]],
    key_id: int,
) -> None:
    table = connection.ops.quote_name(model._meta.db_table)
    pk = connection.ops.quote_name(model._meta.pk.column)
    columns = [connection.ops.quote_name(f.column) for f in fields]
    db_ids = [pk_db(model, i) for i in ids]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # one statement a batch: the new values travel as arrays, joined on the id
            sets = ", ".join(f"{c} = v.c{i}" for i, c in enumerate(columns))
            unnest = ", ".join(["%s::uuid[]", *["%s::integer[]"] * len(columns)])
            names = ", ".join(["id", *(f"c{i}" for i in range(len(columns)))])
            cursor.execute(
                f"UPDATE {table} AS t SET {sets}, index_key_id = %s "  # noqa: S608  # identifiers from the model registry
                f"FROM unnest({unnest}) AS v({names}) WHERE t.{pk} = v.id",
                [key_id, db_ids, *([row[i] for row in values] for i in range(len(columns)))],
            )
        else:
            sets = ", ".join(f"{c} = %s" for c in columns)
            cursor.executemany(
                f"UPDATE {table} SET {sets}, index_key_id = %s WHERE {pk} = %s",  # noqa: S608  # identifiers from the model registry
                [(*row, key_id, i) for row, i in zip(values, db_ids, strict=True)],
            )
