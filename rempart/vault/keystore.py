"""Where the keys live: the master key (env or 0600 file) and the wrapped keysets under keys/.

Neither is ever in the database: a stolen dump or backup holds only ciphertexts and blind indexes.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from django.conf import settings

from rempart.vault import crypto
from rempart.vault.crypto import MasterKeyError


@dataclass(frozen=True)
class Vault:
    cipher: crypto.FieldCipher
    indexer: crypto.BlindIndexer


def _keys_dir() -> Path:
    return Path(settings.REMPART_KEYS_DIR)


def _keyset_path(category: str) -> Path:
    return _keys_dir() / f"{category}.json"


def master_key_material() -> str:
    if settings.REMPART_MASTER_KEY:
        return str(settings.REMPART_MASTER_KEY)
    path = Path(settings.REMPART_MASTER_KEY_PATH)
    if not path.exists():
        raise MasterKeyError(
            "no master key: set REMPART_MASTER_KEY or REMPART_MASTER_KEY_FILE, "
            f"or run `rempart keys init` to create {path}"
        )
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise MasterKeyError(
            f"the master key file {path} must be readable by its owner only (0600)"
        )
    return path.read_text(encoding="utf-8")


def hsm_master(label: str | None = None) -> crypto.Pkcs11MasterKey | None:
    """The master key in the configured PKCS#11 token (None: no token configured)."""
    if not settings.REMPART_PKCS11_MODULE:
        return None
    return crypto.Pkcs11MasterKey(str(settings.REMPART_PKCS11_MODULE),
                                  str(settings.REMPART_PKCS11_TOKEN),
                                  str(settings.REMPART_PKCS11_PIN or ""),
                                  label or str(settings.REMPART_PKCS11_KEY))  # fmt: skip


def _master() -> Any:
    return hsm_master() or crypto.open_master_key(master_key_material())


def load_keysets() -> dict[str, Any]:
    master = _master()
    handles = {}
    for category in crypto.ALL_CATEGORIES:
        path = _keyset_path(category)
        if not path.exists():
            raise MasterKeyError(
                f"the {category} keyset is missing ({path}): run `rempart keys init`"
            )
        handles[category] = crypto.unwrap_keyset(path.read_text(encoding="utf-8"), master, category)
    return handles


def get_vault() -> Vault:
    """The loaded keys. Every few seconds a process looks whether the keyset files changed (a
    rotation run from the console while the service runs) and reloads them if so: new values
    are then sealed and indexed under the new primary keys, and searches look for the new
    index keys' digests too."""
    global _checked_at
    now = time.monotonic()
    if now - _checked_at >= settings.REMPART_KEYS_RECHECK_SECONDS:
        _checked_at = now
        if _vault.cache_info().currsize and _stamp() != _loaded_stamp:
            reset_vault()
    return _vault()


_checked_at = 0.0
_loaded_stamp: tuple[tuple[str, int, int], ...] = ()


def _stamp() -> tuple[tuple[str, int, int], ...]:
    found = []
    for category in crypto.ALL_CATEGORIES:
        try:
            info = _keyset_path(category).stat()
        except OSError:
            continue
        found.append((category, info.st_mtime_ns, info.st_size))
    return tuple(found)


_reloaded_at = 0.0


def _reloaded() -> crypto.FieldCipher:
    """The keys read again, at most once a second (a ciphertext under an unknown key is also
    what a value moved from another category looks like: that one stays refused)."""
    global _reloaded_at
    now = time.monotonic()
    if now - _reloaded_at >= 1.0:
        _reloaded_at = now
        reset_vault()
    return _vault().cipher


@lru_cache(maxsize=1)
def _vault() -> Vault:
    global _loaded_stamp
    stamp = _stamp()
    handles = load_keysets()
    _loaded_stamp = stamp
    return Vault(
        cipher=crypto.FieldCipher(handles, reload=_reloaded),
        indexer=crypto.BlindIndexer(handles[crypto.INDEX_CATEGORY]),
    )


_on_reset: list[Callable[[], None]] = []


def on_reset(callback: Callable[[], None]) -> None:
    """Call `callback` whenever the keys are reloaded (memoised digests depend on them)."""
    _on_reset.append(callback)


def reset_vault() -> None:
    """Forget the loaded keys (after a rotation, or between tests)."""
    _vault.cache_clear()
    get_signer.cache_clear()
    for callback in _on_reset:
        callback()


def _write_private(path: Path, text: str) -> None:
    """Write atomically, mode 0600: a crash leaves the old file or the new one, never half."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def init_keys(*, create_master: bool) -> list[str]:
    """Create what is missing: the master key file (when asked) and each keyset. Returns what was
    made. Existing keysets must open with the master key, or nothing is written."""
    made: list[str] = []
    master_path = Path(settings.REMPART_MASTER_KEY_PATH)
    token = hsm_master()
    if token is not None:
        if not token.exists():
            if any(_keyset_path(c).exists() for c in crypto.ALL_CATEGORIES):
                raise MasterKeyError(
                    "keysets exist but the token holds no master key: refusing to create one "
                    "that could not open them (`rempart keys rewrap` moves them into the token)"
                )
            token.generate()
            made.append(f"pkcs11:{token.token}/{token.label}")
    elif not settings.REMPART_MASTER_KEY and not master_path.exists():
        if not create_master:
            raise MasterKeyError("no master key: set REMPART_MASTER_KEY or REMPART_MASTER_KEY_FILE")
        if any(_keyset_path(c).exists() for c in crypto.ALL_CATEGORIES):
            raise MasterKeyError(
                "keysets exist but their master key is missing: refusing to create a new one "
                "that could not open them"
            )
        _write_private(master_path, crypto.new_master_key())
        made.append(str(master_path))
    master = _master()
    for category in crypto.ALL_CATEGORIES:
        path = _keyset_path(category)
        if path.exists():
            crypto.unwrap_keyset(path.read_text(encoding="utf-8"), master, category)
    for category in crypto.ALL_CATEGORIES:
        path = _keyset_path(category)
        if not path.exists():
            _write_private(path, crypto.wrap_keyset(crypto.new_keyset(category), master, category))
            made.append(str(path))
    made.extend(init_signing_key())
    reset_vault()
    return made


def rewrap_keysets(old: Any) -> list[str]:
    """Unwrap every keyset with the `old` master key and wrap it with the configured one (a
    file key moved into an HSM, or the HSM key rotated). All keysets are opened before any is
    written: a wrong old key changes nothing."""
    categories = [*crypto.ALL_CATEGORIES, crypto.SIGNING_CATEGORY]
    opened = {}
    for category in categories:
        path = _keyset_path(category)
        if path.exists():
            opened[category] = crypto.unwrap_keyset(path.read_text(encoding="utf-8"), old, category)
    new = _master()
    for category, handle in opened.items():
        _write_private(_keyset_path(category), crypto.wrap_keyset(handle, new, category))
    reset_vault()
    return sorted(opened)


def read_keyset(category: str) -> Any:
    if category not in crypto.ALL_CATEGORIES:
        raise crypto.VaultError(f"unknown key category {category!r}")
    path = _keyset_path(category)
    return crypto.unwrap_keyset(path.read_text(encoding="utf-8"), _master(), category)


def write_keyset(category: str, handle: Any) -> None:
    _write_private(_keyset_path(category), crypto.wrap_keyset(handle, _master(), category))
    reset_vault()


# --- the audit trail's signing key --------------------------------------------------------------


def verify_key_path() -> Path:
    """The public half of the checkpoint signing key, readable without the master key."""
    return _keys_dir() / "audit-verify.json"


def init_signing_key() -> list[str]:
    """Create the Ed25519 checkpoint key (wrapped by the master key) and its public file."""
    made = []
    path = _keyset_path(crypto.SIGNING_CATEGORY)
    master = _master()
    if path.exists():
        handle = crypto.unwrap_keyset(path.read_text(encoding="utf-8"), master,
                                      crypto.SIGNING_CATEGORY)  # fmt: skip
    else:
        handle = crypto.new_keyset(crypto.SIGNING_CATEGORY)
        _write_private(path, crypto.wrap_keyset(handle, master, crypto.SIGNING_CATEGORY))
        made.append(str(path))
    public = verify_key_path()
    if not public.exists():
        _write_private(public, crypto.CheckpointSigner(handle).public_keyset)
        made.append(str(public))
    get_signer.cache_clear()
    return made


@lru_cache(maxsize=1)
def get_signer() -> crypto.CheckpointSigner:
    path = _keyset_path(crypto.SIGNING_CATEGORY)
    if not path.exists():
        raise MasterKeyError(f"the audit signing key is missing ({path}): run `rempart keys init`")
    return crypto.CheckpointSigner(
        crypto.unwrap_keyset(path.read_text(encoding="utf-8"), _master(), crypto.SIGNING_CATEGORY)
    )


def get_verifier(public_keyset: Path | None = None) -> crypto.CheckpointVerifier:
    path = public_keyset or verify_key_path()
    if not path.exists():
        raise MasterKeyError(f"the audit verification key is missing ({path})")
    return crypto.CheckpointVerifier(path.read_text(encoding="utf-8"))
