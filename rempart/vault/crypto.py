"""Every cryptographic primitive of Rempart, and the only module that imports Tink or hashlib.

Fields are sealed with Tink AEAD (AES256_GCM) under one keyset per data category; keysets are
wrapped by the master key (itself a Tink AEAD keyset kept outside the database). Blind indexes are
keyed BLAKE2b under one key per index, each derived from a Tink PRF keyset.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import json
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import tink
from tink import aead, jwt, prf, secret_key_access, signature
from tink.proto import tink_pb2

aead.register()
prf.register()
signature.register()

AEAD_CATEGORIES = ("identity", "contact", "clinical", "staff")  # staff: second-factor secrets
SIGNING_CATEGORY = "audit-signing"  # Ed25519, signs the audit trail's checkpoints
INDEX_CATEGORY = "index"
ALL_CATEGORIES = (*AEAD_CATEGORIES, INDEX_CATEGORY)

_AEAD_TEMPLATE = aead.aead_key_templates.AES256_GCM
_PRF_TEMPLATE = prf.prf_key_templates.HMAC_SHA256
_TINK_PREFIX_LEN = 5  # 0x01 then a 4-byte key id, on every Tink-format ciphertext


class VaultError(Exception):
    """A key or ciphertext problem. Messages never contain plaintext or key material."""


class MasterKeyError(VaultError):
    pass


class DecryptionError(VaultError):
    pass


@dataclass(frozen=True)
class KeyInfo:
    key_id: int
    status: str
    primary: bool


# --- master key ---------------------------------------------------------------------------------


def new_master_key() -> str:
    """A fresh master key, as the text to put in a 0600 file or an environment variable."""
    handle = tink.new_keyset_handle(_AEAD_TEMPLATE)
    return str(tink.json_proto_keyset_format.serialize(handle, secret_key_access.TOKEN))


def open_master_key(material: str) -> aead.Aead:
    """The master AEAD from its text: the Tink JSON keyset, or that JSON in base64."""
    text = material.strip()
    if not text.startswith("{"):
        try:
            text = base64.b64decode(text, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise MasterKeyError("the master key is neither a Tink keyset nor its base64") from None
    try:
        handle = tink.json_proto_keyset_format.parse(text, secret_key_access.TOKEN)
        return handle.primitive(aead.Aead)
    except (tink.TinkError, ValueError, json.JSONDecodeError):
        raise MasterKeyError("the master key is not a valid Tink AEAD keyset") from None


class Pkcs11MasterKey(aead.Aead):  # type: ignore[misc]  # tink ships no type hints
    """The master key inside a PKCS#11 token: AES-256-GCM computed by the token, with a key
    generated there as sensitive and not extractable, so that nothing outside the token ever
    holds it. A session is opened for each call: the master key is used only to wrap and unwrap
    the keysets, a few times per process, and a session must not cross a fork."""

    _FORMAT = b"\x01"  # the ciphertext's version: 1, then the 12-byte nonce, then GCM's output

    def __init__(self, module: str, token: str, pin: str, label: str) -> None:
        self.module, self.token, self.pin, self.label = module, token, pin, label

    def _session(self, rw: bool = False) -> Any:
        import pkcs11

        try:
            lib = pkcs11.lib(self.module)
            return lib.get_token(token_label=self.token).open(rw=rw, user_pin=self.pin)
        except (pkcs11.PKCS11Error, RuntimeError, OSError) as exc:
            raise MasterKeyError(f"the PKCS#11 token {self.token!r} cannot be opened "
                                 f"({type(exc).__name__})") from None  # fmt: skip

    def _key(self, session: Any) -> Any:
        import pkcs11

        try:
            return session.get_key(object_class=pkcs11.ObjectClass.SECRET_KEY, label=self.label)
        except pkcs11.NoSuchKey:
            raise MasterKeyError(f"no key {self.label!r} in the PKCS#11 token {self.token!r}: "
                                 "run `rempart keys init`") from None  # fmt: skip

    def exists(self) -> bool:
        import pkcs11

        with self._session() as session:
            try:
                session.get_key(object_class=pkcs11.ObjectClass.SECRET_KEY, label=self.label)
            except pkcs11.NoSuchKey:
                return False
        return True

    def generate(self) -> None:
        """Make the key inside the token: AES-256, sensitive, never extractable."""
        import pkcs11
        from pkcs11 import Attribute

        if self.exists():
            raise MasterKeyError(f"the PKCS#11 token already holds a key {self.label!r}")
        template = {Attribute.EXTRACTABLE: False, Attribute.SENSITIVE: True,
                    Attribute.ENCRYPT: True, Attribute.DECRYPT: True,
                    Attribute.WRAP: False, Attribute.UNWRAP: False}  # fmt: skip
        with self._session(rw=True) as session:
            session.generate_key(pkcs11.KeyType.AES, 256, label=self.label, store=True,
                                 template=template)  # fmt: skip

    def encrypt(self, plaintext: bytes, associated_data: bytes) -> bytes:
        import pkcs11
        from pkcs11.mechanisms import GCMParams

        nonce = secrets.token_bytes(12)
        with self._session() as session:
            sealed = self._key(session).encrypt(
                plaintext, mechanism=pkcs11.Mechanism.AES_GCM,
                mechanism_param=GCMParams(nonce, associated_data))  # fmt: skip
        return self._FORMAT + nonce + bytes(sealed)

    def decrypt(self, ciphertext: bytes, associated_data: bytes) -> bytes:
        import pkcs11
        from pkcs11.mechanisms import GCMParams

        if len(ciphertext) < 29 or ciphertext[:1] != self._FORMAT:
            raise tink.TinkError("not a ciphertext of the PKCS#11 master key")
        nonce, body = ciphertext[1:13], ciphertext[13:]
        with self._session() as session:
            key = self._key(session)
            try:
                return bytes(
                    key.decrypt(
                        body,
                        mechanism=pkcs11.Mechanism.AES_GCM,
                        mechanism_param=GCMParams(nonce, associated_data),
                    )
                )
            except pkcs11.PKCS11Error:
                raise tink.TinkError("the PKCS#11 master key does not open this") from None


# --- keysets ------------------------------------------------------------------------------------


def new_keyset(category: str) -> tink.KeysetHandle:
    if category == SIGNING_CATEGORY:
        return tink.new_keyset_handle(signature.signature_key_templates.ED25519)
    return tink.new_keyset_handle(_PRF_TEMPLATE if category == INDEX_CATEGORY else _AEAD_TEMPLATE)


def wrap_keyset(handle: tink.KeysetHandle, master: aead.Aead, category: str) -> str:
    return str(
        tink.json_proto_keyset_format.serialize_encrypted(handle, master, _keyset_ad(category))
    )


def unwrap_keyset(text: str, master: aead.Aead, category: str) -> tink.KeysetHandle:
    try:
        return tink.json_proto_keyset_format.parse_encrypted(text, master, _keyset_ad(category))
    except (tink.TinkError, ValueError, json.JSONDecodeError):
        raise MasterKeyError(
            f"the master key does not open the {category} keyset (wrong master key or damaged file)"
        ) from None


def _keyset_ad(category: str) -> bytes:
    return f"rempart-keyset:{category}".encode()


def describe_keyset(handle: tink.KeysetHandle) -> list[KeyInfo]:
    info = handle.keyset_info()
    return [
        KeyInfo(
            key_id=k.key_id,
            status=tink_pb2.KeyStatusType.Name(k.status),
            primary=k.key_id == info.primary_key_id,
        )
        for k in info.key_info
    ]


def keyset_add_key(handle: tink.KeysetHandle, category: str) -> tuple[tink.KeysetHandle, int]:
    """The keyset with one more enabled key (not primary yet), and that key's id."""
    keyset = _to_proto(handle)
    fresh = _to_proto(new_keyset(category))
    key = fresh.key[0]
    used = {k.key_id for k in keyset.key}
    while key.key_id in used:  # 32-bit ids: a clash is rare, but a fresh key must not shadow one
        fresh = _to_proto(new_keyset(category))
        key = fresh.key[0]
    keyset.key.append(key)
    return _from_proto(keyset), key.key_id


def keyset_promote(handle: tink.KeysetHandle, key_id: int) -> tink.KeysetHandle:
    keyset = _to_proto(handle)
    if key_id not in {k.key_id for k in keyset.key if k.status == tink_pb2.ENABLED}:
        raise VaultError(f"no enabled key {key_id} in this keyset")
    keyset.primary_key_id = key_id
    return _from_proto(keyset)


def keyset_disable(handle: tink.KeysetHandle, key_id: int) -> tink.KeysetHandle:
    keyset = _to_proto(handle)
    if key_id == keyset.primary_key_id:
        raise VaultError("the primary key cannot be disabled: promote another key first")
    for key in keyset.key:
        if key.key_id == key_id:
            key.status = tink_pb2.DISABLED
            return _from_proto(keyset)
    raise VaultError(f"no key {key_id} in this keyset")


def _to_proto(handle: tink.KeysetHandle) -> Any:
    keyset = tink_pb2.Keyset()
    keyset.ParseFromString(tink.proto_keyset_format.serialize(handle, secret_key_access.TOKEN))
    return keyset


def _from_proto(keyset: Any) -> tink.KeysetHandle:
    return tink.proto_keyset_format.parse(keyset.SerializeToString(), secret_key_access.TOKEN)


# --- fields -------------------------------------------------------------------------------------


class FieldCipher:
    """Seals and opens field values, each bound to its associated data (table, column, row id)."""

    def __init__(self, keysets: dict[str, tink.KeysetHandle],
                 reload: Callable[[], FieldCipher] | None = None) -> None:  # fmt: skip
        self._aeads = {c: keysets[c].primitive(aead.Aead) for c in AEAD_CATEGORIES}
        self._primary = {c: keysets[c].keyset_info().primary_key_id for c in AEAD_CATEGORIES}
        self._known = {c: {k.key_id for k in keysets[c].keyset_info().key_info}
                       for c in AEAD_CATEGORIES}  # fmt: skip
        # Another process may have added a key and re-sealed values with it (a rotation under
        # load): a ciphertext under a key this process does not know reloads the keysets once.
        self._reload = reload

    def seal(self, category: str, plaintext: bytes, associated_data: bytes) -> bytes:
        return bytes(self._aeads[category].encrypt(plaintext, associated_data))

    def sealer(self, category: str) -> Callable[[bytes, bytes], bytes]:
        """`seal` for one category, for loops over many values (bulk loads)."""
        return self._aeads[category].encrypt  # type: ignore[no-any-return]

    def open(self, category: str, ciphertext: bytes, associated_data: bytes,
             reload: bool = True) -> bytes:  # fmt: skip
        try:
            return bytes(self._aeads[category].decrypt(ciphertext, associated_data))
        except tink.TinkError:
            unknown = ciphertext_key_id(ciphertext) not in self._known[category]
            if reload and self._reload is not None and unknown:
                fresh = self._reload()
                if fresh is not self:
                    return fresh.open(category, ciphertext, associated_data, reload=False)
            raise DecryptionError(
                "a value does not decrypt: wrong key, or ciphertext moved to another row or column"
            ) from None

    def primary_key_id(self, category: str) -> int:
        return int(self._primary[category])


def ciphertext_key_id(ciphertext: bytes) -> int:
    """The id of the key that sealed a Tink ciphertext (read from its 5-byte prefix)."""
    return int.from_bytes(ciphertext[1:_TINK_PREFIX_LEN], "big")


# --- blind indexes ------------------------------------------------------------------------------


class BlindIndexer:
    """Keyed, truncated digests for equality search; one key per index, derived from a PRF root.

    The root is a Tink PRF keyset and may hold several enabled keys during a rotation: new
    digests are made under the primary one, look-ups ask for every enabled key's digest (a row
    not yet re-indexed is still found), `rempart keys reindex` moves every row to the primary.
    """

    def __init__(self, root: tink.KeysetHandle) -> None:
        prf_set = root.primitive(prf.PrfSet)
        self.primary_key_id = int(prf_set.primary_id())
        self._prfs = {int(k): v for k, v in prf_set.all().items()}
        # the primary first: a look-up's first digest is the one new rows carry
        self.key_ids = (self.primary_key_id,
                        *sorted(k for k in self._prfs if k != self.primary_key_id))  # fmt: skip
        self._keyed: dict[tuple[str, int], Any] = {}

    def _keyed_hash(self, label: str, key_id: int | None, size: int) -> Any:
        """A keyed BLAKE2b ready to copy: copying skips the key schedule on every value."""
        key_id = self.primary_key_id if key_id is None else key_id
        hasher = self._keyed.get((label, key_id))
        if hasher is None:
            if key_id not in self._prfs:
                raise VaultError(f"no enabled index key {key_id}")
            key = bytes(self._prfs[key_id].compute(label.encode(), 32))
            hasher = self._keyed[(label, key_id)] = hashlib.blake2b(key=key, digest_size=size)
        return hasher

    def _hasher(self, index_name: str, key_id: int | None) -> Any:
        return self._keyed_hash(f"rempart/blind-index/v1/{index_name}", key_id, 8)

    def tag(self, purpose: str, value: bytes, key_id: int | None = None) -> bytes:
        """A full-length keyed tag (16 bytes) for membership tests that must never collide by
        chance (canary patients), unlike the truncated blind indexes."""
        mac = self._keyed_hash(f"rempart/tag/v1/{purpose}", key_id, 16).copy()
        mac.update(value)
        return bytes(mac.digest())

    def digest(self, index_name: str, normalised: str, bits: int, key_id: int | None = None) -> int:
        """The index value: the first `bits` bits of BLAKE2b(key, value), as a signed-safe int
        (under the primary key unless `key_id` names another enabled one)."""
        mac = self._hasher(index_name, key_id).copy()
        mac.update(normalised.encode())
        return int.from_bytes(mac.digest(), "big") >> (64 - bits)

    def digests(
        self,
        index_name: str,
        normalised: Sequence[str | None],
        bits: int,
        key_id: int | None = None,
    ) -> list[int | None]:
        """`digest` over many values (None or empty: no index value), for bulk loads."""
        keyed, shift = self._hasher(index_name, key_id), 64 - bits
        out: list[int | None] = []
        for value in normalised:
            if value:
                mac = keyed.copy()
                mac.update(value.encode())
                out.append(int.from_bytes(mac.digest(), "big") >> shift)
            else:
                out.append(None)
        return out


# --- the patients' self-check ---------------------------------------------------------------------


def public_identity_hash(identity: bytes, salt: bytes, iterations: int) -> bytes:
    """PBKDF2-HMAC-SHA256 of an identity under a public salt, 32 bytes: what a person's browser
    computes with WebCrypto for the self-check (no secret key: the browser must compute it;
    the iterations slow down guessing)."""
    return hashlib.pbkdf2_hmac("sha256", identity, salt, iterations, 32)


# --- API clients' signed assertions ----------------------------------------------------------


@dataclass(frozen=True)
class Assertion:
    subject: str
    jwt_id: str
    expires_at: dt.datetime


def jwt_assertion_verify(jwks: str, token: str, *, issuer: str, audience: str) -> Assertion:
    """A client's signed JWT (SMART Backend Services) checked against the public keys it
    registered (a JWK set: ES256/384/512, RS256/384/512): signature, issuer, audience and
    expiry. Raises VaultError, saying nothing of why to the caller's caller."""
    try:
        jwt.register_jwt_signature()
        verify = jwt.jwk_set_to_public_keyset_handle(jwks).primitive(jwt.JwtPublicKeyVerify)
        checked = verify.verify_and_decode(
            token, jwt.new_validator(expected_issuer=issuer, expected_audience=audience)
        )
        subject = checked.subject() if checked.has_subject() else ""
        jwt_id = checked.jwt_id() if checked.has_jwt_id() else ""
        expires = checked.expiration() if checked.has_expiration() else None
    except (tink.TinkError, ValueError) as exc:
        raise VaultError("assertion refused") from exc
    if expires is None:
        raise VaultError("assertion without expiry")
    return Assertion(subject, jwt_id, expires)


def jwk_set_check(jwks: str) -> None:
    """A JWK set a client registers: public keys Tink can verify with, and nothing private."""
    try:
        jwt.register_jwt_signature()
        jwt.jwk_set_to_public_keyset_handle(jwks)
    except (tink.TinkError, ValueError) as exc:
        raise VaultError("not a public JWK set of signature keys") from exc
    keys = json.loads(jwks).get("keys", [])
    if any(part in key for key in keys for part in ("d", "p", "q", "dp", "dq", "qi")):
        raise VaultError("a private key was sent")


# --- audit trail: chain digests and checkpoint signatures ---------------------------------------

CHAIN_GENESIS = hashlib.sha256(b"rempart/audit-chain/v1/genesis").digest()


def chain_digest(previous: bytes, payload: bytes) -> bytes:
    """The next link of a hash chain: SHA-256 over the previous digest and this payload."""
    return hashlib.sha256(previous + payload).digest()


class CheckpointSigner:
    """Signs checkpoints with the Ed25519 key (Tink, key id in the signature's prefix)."""

    def __init__(self, handle: tink.KeysetHandle) -> None:
        self._sign = handle.primitive(signature.PublicKeySign)
        self.public_keyset = str(
            tink.json_proto_keyset_format.serialize_without_secret(handle.public_keyset_handle())
        )

    def sign(self, data: bytes) -> bytes:
        return bytes(self._sign.sign(data))


class CheckpointVerifier:
    """Checks checkpoint signatures with the public keyset alone (no master key needed)."""

    def __init__(self, public_keyset: str) -> None:
        try:
            handle = tink.json_proto_keyset_format.parse_without_secret(public_keyset)
            self._verify = handle.primitive(signature.PublicKeyVerify)
        except (tink.TinkError, ValueError, json.JSONDecodeError):
            raise VaultError("the audit verification key is not a Tink public keyset") from None

    def verify(self, signature_bytes: bytes, data: bytes) -> bool:
        try:
            self._verify.verify(signature_bytes, data)
        except tink.TinkError:
            return False
        return True
