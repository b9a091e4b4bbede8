"""Model fields that store ciphertexts and blind indexes; models read and write plaintext.

An encrypted attribute holds the ciphertext loaded from the database and decrypts it on first
read (so a listing that shows two columns opens two values, not twenty). Each ciphertext is bound
by its associated data to table, column and row id: copied to another row or column, it fails.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Generic, TypeVar, overload

import orjson
from django.core import checks
from django.db import models
from django.db.models.lookups import IsNull

from rempart.vault.keystore import get_vault, on_reset

AD_VERSION = b"rempart/v1"
_MISSING = object()
_CACHE_LIMIT = 50_000  # per index: memory stays flat (~10 MB) whatever the file


class Sealed(bytes):
    """A ciphertext as it came from the database (not yet opened)."""


class _Slot:
    __slots__ = ("has_plain", "plain", "sealed")

    def __init__(self, *, sealed: bytes | None = None, plain: Any = None, has_plain: bool = False):
        self.sealed = sealed
        self.plain = plain
        self.has_plain = has_plain


class _SealedAttribute:
    def __init__(self, field: EncryptedField) -> None:
        self.field = field

    def __get__(self, instance: models.Model | None, owner: type | None = None) -> Any:
        if instance is None:
            return self
        slot = instance.__dict__.get(self.field.attname)
        if slot is None:
            return None
        if not slot.has_plain:
            slot.plain = self.field.open_value(instance.pk, slot.sealed)
            slot.has_plain = True
        return slot.plain

    def __set__(self, instance: models.Model, value: Any) -> None:
        attname = self.field.attname
        if value is None:
            instance.__dict__[attname] = None
        elif isinstance(value, Sealed):
            instance.__dict__[attname] = _Slot(sealed=value)
        else:
            instance.__dict__[attname] = _Slot(plain=self.field.check_value(value), has_plain=True)


class EncryptedField(models.Field):  # type: ignore[type-arg]  # typed per subclass below
    """Base of the encrypted fields: a bytea/BLOB column of Tink ciphertext."""

    description = "Encrypted value"
    empty_strings_allowed = False
    python_type: type = object

    def __init__(self, *args: Any, category: str, **kwargs: Any) -> None:
        self.category = category
        kwargs.setdefault("null", True)
        kwargs.setdefault("blank", True)
        kwargs["editable"] = False
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs["category"] = self.category
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        errors = super().check(**kwargs)
        from rempart.vault.crypto import AEAD_CATEGORIES

        if self.category not in AEAD_CATEGORIES:
            errors.append(checks.Error(f"unknown key category {self.category!r}", obj=self))
        return errors

    def get_internal_type(self) -> str:
        return "BinaryField"

    def contribute_to_class(
        self, cls: type[models.Model], name: str, private_only: bool = False
    ) -> None:
        super().contribute_to_class(cls, name, private_only=private_only)
        setattr(cls, self.attname, _SealedAttribute(self))

    def get_lookup(self, lookup_name: str) -> Any:
        # Ciphertexts are randomised: equality on them means nothing. Search goes through blind
        # indexes; only IS NULL is meaningful here.
        return IsNull if lookup_name == "isnull" else None

    # --- codec: subclasses turn their Python type into bytes and back --------------------------

    def encode(self, value: Any) -> bytes:
        raise NotImplementedError

    def decode(self, data: bytes) -> Any:
        raise NotImplementedError

    def check_value(self, value: Any) -> Any:
        if not isinstance(value, self.python_type):
            raise TypeError(f"{self.label_lower()} takes {self.python_type.__name__}")
        return value

    def label_lower(self) -> str:
        return f"{self.model._meta.label_lower}.{self.name}"

    # --- sealing ----------------------------------------------------------------------------------

    def associated_data(self, row_id: uuid.UUID | bytes | int) -> bytes:
        """Binds a value to its table, column and row (a UUID or its 16 bytes, or an integer id
        made in the application before the INSERT)."""
        prefix = self._ad_prefix()
        if isinstance(row_id, uuid.UUID):
            return prefix + row_id.bytes
        if isinstance(row_id, bytes) and len(row_id) == 16:
            return prefix + row_id
        return prefix + int(row_id).to_bytes(8, "big", signed=True)

    def _ad_prefix(self) -> bytes:
        prefix: bytes | None = self.__dict__.get("_ad_prefix_bytes")
        if prefix is None:
            table_column = f"{self.model._meta.db_table}.{self.column}".encode()
            prefix = self.__dict__["_ad_prefix_bytes"] = b"|".join((AD_VERSION, table_column, b""))
        return prefix

    def seal_value(self, row_id: uuid.UUID | int, value: Any) -> bytes:
        return get_vault().cipher.seal(
            self.category, self.encode(value), self.associated_data(row_id)
        )

    def bulk_sealer(self) -> tuple[Callable[[bytes, bytes], bytes], bytes]:
        """For bulk loads that hold ids as bytes: `seal(payload, prefix + id's 16 bytes)` seals
        a value as `seal_value` does."""
        return get_vault().cipher.sealer(self.category), self._ad_prefix()

    def seal_payloads(
        self, row_ids: Sequence[uuid.UUID], payloads: Sequence[bytes | None]
    ) -> list[bytes | None]:
        """Bulk loads: encoded values (None: nothing to store) sealed to their rows, in order."""
        seal = get_vault().cipher.sealer(self.category)
        prefix = self._ad_prefix()  # + the row's UUID, as `associated_data` binds it
        return [
            None if payload is None else seal(payload, prefix + row_id.bytes)
            for row_id, payload in zip(row_ids, payloads, strict=True)
        ]

    def open_value(self, row_id: uuid.UUID | bytes | int, ciphertext: bytes) -> Any:
        return self.decode(
            get_vault().cipher.open(self.category, ciphertext, self.associated_data(row_id))
        )

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Sealed | None:
        return None if value is None else Sealed(bytes(value))

    def pre_save(self, model_instance: models.Model, add: bool) -> bytes | None:
        slot = model_instance.__dict__.get(self.attname)
        if slot is None:
            return None
        if slot.sealed is None:
            slot.sealed = Sealed(self.seal_value(model_instance.pk, slot.plain))
        return bytes(slot.sealed)

    def get_db_prep_value(self, value: Any, connection: Any, prepared: bool = False) -> Any:
        if value is None:
            return None
        if not isinstance(value, bytes):
            raise TypeError("encrypted fields are written only through model saves")
        return connection.Database.Binary(value)

    def value_to_string(self, obj: models.Model) -> str:
        raise TypeError("encrypted fields are never serialised in clear")

    def is_pending(self, instance: models.Model) -> bool:
        """True when the attribute holds a plaintext (set or already opened) on this instance."""
        slot = instance.__dict__.get(self.attname)
        return slot is not None and slot.has_plain


class EncryptedTextField(EncryptedField):
    _pyi_private_set_type: str | None
    _pyi_private_get_type: str | None
    python_type = str

    def encode(self, value: str) -> bytes:
        return value.encode("utf-8")

    def decode(self, data: bytes) -> str:
        return data.decode("utf-8")


class EncryptedDateField(EncryptedField):
    _pyi_private_set_type: dt.date | None
    _pyi_private_get_type: dt.date | None
    python_type = dt.date

    def encode(self, value: dt.date) -> bytes:
        return value.isoformat().encode("ascii")

    def decode(self, data: bytes) -> dt.date:
        return dt.date.fromisoformat(data.decode("ascii"))


class EncryptedUUIDField(EncryptedField):
    _pyi_private_set_type: uuid.UUID | None
    _pyi_private_get_type: uuid.UUID | None
    python_type = uuid.UUID

    def encode(self, value: uuid.UUID) -> bytes:
        return value.bytes

    def decode(self, data: bytes) -> uuid.UUID:
        return uuid.UUID(bytes=data)


class EncryptedBytesField(EncryptedField):
    _pyi_private_set_type: bytes | None
    _pyi_private_get_type: bytes | None
    python_type = bytes

    def encode(self, value: bytes) -> bytes:
        return bytes(value)

    def decode(self, data: bytes) -> bytes:
        return data


class EncryptedJSONField(EncryptedField):
    _pyi_private_set_type: dict[str, Any] | None
    _pyi_private_get_type: dict[str, Any] | None
    python_type = dict

    # orjson: the same JSON as the standard library (UTF-8, sorted keys, no spaces), ten times
    # faster each way; a chart opens two records, a bulk load seals two per patient. Padded with
    # spaces (JSON ignores them) to a multiple of PAD_TO bytes: a ciphertext's exact length would
    # tell the length of the names inside, enough for a thief with the source to guess common
    # family names above chance (bench/index_attack.py, "ciphertext lengths").
    PAD_TO = 64

    def encode(self, value: dict[str, Any]) -> bytes:
        data = orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
        return data + b" " * (-len(data) % self.PAD_TO)

    def decode(self, data: bytes) -> dict[str, Any]:
        result: dict[str, Any] = orjson.loads(data)
        return result


T = TypeVar("T")
_CODECS: dict[str, tuple[Callable[[Any], Any], Callable[[Any], Any]]] = {
    "text": (str, str),
    "date": (dt.date.isoformat, dt.date.fromisoformat),
    "uuid": (str, uuid.UUID),
}


class SealedAttribute(property, Generic[T]):
    """One value inside an encrypted JSON column (a "sealed record"): `patient.birth_name` reads
    and writes the key `birth_name` of the `identity` ciphertext. A row's identity is then one
    AEAD value, not eight: a third of the storage and time, and still bound to table, column and
    row. Empty values are not stored at all."""

    def __init__(self, blob: str, key: str, kind: str = "text") -> None:
        encode, decode = _CODECS[kind]
        self.blob = blob
        self.key = key
        self.kind = kind
        self.encode = encode

        def fget(instance: Any) -> Any:
            record = getattr(instance, blob)
            if record is None:
                return None
            raw = record.get(key)
            return None if raw is None else decode(raw)

        def fset(instance: Any, value: Any) -> None:
            record = dict(getattr(instance, blob) or {})
            if value is None or value == "":
                record.pop(key, None)
            else:
                record[key] = encode(value)
            setattr(instance, blob, record or None)

        super().__init__(fget, fset, doc=f"{blob}.{key} (encrypted)")

    if TYPE_CHECKING:

        @overload
        def __get__(self, instance: None, owner: type | None = None) -> SealedAttribute[T]: ...
        @overload
        def __get__(self, instance: object, owner: type | None = None) -> T | None: ...
        def __get__(self, instance: object, owner: type | None = None) -> Any: ...
        def __set__(self, instance: object, value: T | None) -> None: ...


def sealed_text(blob: str, key: str) -> SealedAttribute[str]:
    return SealedAttribute(blob, key, "text")


def sealed_date(blob: str, key: str) -> SealedAttribute[dt.date]:
    return SealedAttribute(blob, key, "date")


def sealed_uuid(blob: str, key: str) -> SealedAttribute[uuid.UUID]:
    return SealedAttribute(blob, key, "uuid")


Normaliser = Callable[..., str | None]


class BlindIndexField(models.IntegerField):  # type: ignore[type-arg]
    """A truncated keyed digest of one or more encrypted fields, kept up to date on save.

    `normalise` receives the plaintext of each source field and returns the string to index, or
    None when there is nothing to index (an empty usage name, say).
    """

    def __init__(
        self,
        *args: Any,
        index: str,
        bits: int,
        sources: tuple[str, ...] = (),
        normalise: Normaliser | None = None,
        normalise_column: Callable[..., list[str | None]] | None = None,
        cache: bool = False,
        **kwargs: Any,
    ) -> None:
        if not 1 <= bits <= 31:
            raise ValueError("a blind index keeps between 1 and 31 bits")
        self.index = index
        self.bits = bits
        self.sources = sources
        self.normalise = normalise
        # `normalise` over whole columns (None in a source: None), for bulk loads that gain by it
        self.normalise_column = normalise_column
        # Names and dates repeat across patients: their digests are memoised (bounded), unique
        # values (NIR, e-mail, phone) are not.
        self._cache: dict[tuple[Any, ...], int | None] | None = {} if cache else None
        on_reset(self.forget_cache)
        kwargs.setdefault("null", True)
        kwargs.setdefault("db_index", True)
        kwargs["editable"] = False
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        # sources and normalise are behaviour, not schema: migrations need neither.
        name, path, args, kwargs = super().deconstruct()
        kwargs.update(index=self.index, bits=self.bits)
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def digest(self, *plain: Any) -> int | None:
        """The stored value for these plaintexts, under the primary index key."""
        if self.normalise is None or None in plain:
            return None
        cache = self._cache
        key = plain[0] if len(plain) == 1 else plain
        if cache is not None:
            hit = cache.get(key, _MISSING)
            if hit is not _MISSING:
                return hit  # type: ignore[return-value]
        normalised = self.normalise(*plain)
        value = (
            get_vault().indexer.digest(self.index, normalised, self.bits) if normalised else None
        )
        if cache is not None:
            if len(cache) > _CACHE_LIMIT:
                cache.clear()
            cache[key] = value
        return value

    def lookup_digests(self, *plain: Any) -> list[int]:
        """What a look-up asks for: the digest under every enabled index key, the primary first
        (during a rotation, rows not yet re-indexed still carry the old key's digest)."""
        if self.normalise is None or None in plain:
            return []
        normalised = self.normalise(*plain)
        if not normalised:
            return []
        indexer = get_vault().indexer
        return [indexer.digest(self.index, normalised, self.bits, k) for k in indexer.key_ids]

    def digest_column(self, *sources: Sequence[Any]) -> list[int | None]:
        """Bulk loads: the digests of many rows at once, one list per source field (what
        `digest` gives row by row, without a function call and a cache probe per value)."""
        if self.normalise is None:
            return [None] * len(sources[0])
        if self.normalise_column is not None:
            return get_vault().indexer.digests(
                self.index, self.normalise_column(*sources), self.bits
            )
        keys: Sequence[Any] = sources[0] if len(sources) == 1 else list(zip(*sources, strict=True))
        cache = self._cache
        if cache is None:
            return self._digests(keys)
        if len(cache) > _CACHE_LIMIT:
            cache.clear()
        missing = list(set(keys).difference(cache))
        cache.update(zip(missing, self._digests(missing), strict=True))
        return [cache[k] for k in keys]

    def _digests(self, keys: Sequence[Any]) -> list[int | None]:
        normalise = self.normalise
        assert normalise is not None  # noqa: S101  # checked by the callers
        if len(self.sources) == 1:
            normalised = [None if k is None else normalise(k) for k in keys]
        else:
            normalised = [None if None in k else normalise(*k) for k in keys]
        return get_vault().indexer.digests(self.index, normalised, self.bits)

    def forget_cache(self) -> None:
        """Drop memoised digests (after the index key changes, and between tests)."""
        if self._cache is not None:
            self._cache.clear()

    def _source_fields(self, model: type[models.Model]) -> list[Any]:
        fields = []
        for name in self.sources:
            attribute = model.__dict__.get(name)
            if isinstance(attribute, SealedAttribute):
                fields.append(model._meta.get_field(attribute.blob))
            else:
                fields.append(model._meta.get_field(name))
        return fields

    def pre_save(self, model_instance: models.Model, add: bool) -> int | None:
        fields = self._source_fields(type(model_instance))
        stale_key = getattr(model_instance, INDEX_KEY_ATTNAME, None) != (
            get_vault().indexer.primary_key_id
        )
        if (
            add
            or stale_key
            or any(isinstance(f, EncryptedField) and f.is_pending(model_instance) for f in fields)
        ):
            value = self.digest(*(getattr(model_instance, name) for name in self.sources))
            setattr(model_instance, self.attname, value)
            return value
        current: int | None = getattr(model_instance, self.attname)
        return current


INDEX_KEY_ATTNAME = "index_key_id"


class IndexKeyField(models.BigIntegerField):  # type: ignore[type-arg]
    """The id of the index key a row's blind indexes were computed under (a Tink key id, clear:
    every row carries the same one once `rempart keys reindex` has run). Declared after the
    blind-index fields, which recompute themselves on save when it is not the primary key's."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("null", True)
        kwargs.setdefault("db_index", True)
        kwargs["editable"] = False
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> Any:
        name, path, args, kwargs = super().deconstruct()
        kwargs.pop("editable", None)
        return name, path, args, kwargs

    def contribute_to_class(
        self, cls: type[models.Model], name: str, private_only: bool = False
    ) -> None:
        if name != INDEX_KEY_ATTNAME:
            raise TypeError(f"the index key field must be named {INDEX_KEY_ATTNAME}")
        super().contribute_to_class(cls, name, private_only=private_only)

    def pre_save(self, model_instance: models.Model, add: bool) -> int:
        value = get_vault().indexer.primary_key_id
        setattr(model_instance, self.attname, value)
        return value
