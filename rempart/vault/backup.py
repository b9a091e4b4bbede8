"""Backups that restore: the database (pg_dump, or SQLite's own backup), the wrapped keysets and
the audit checkpoint file, in one tar encrypted with age to the backup custodians' keys.

The master key is never in a backup: it stays in the HSM (or its own secret), so a stolen
backup is ciphertext wrapped in ciphertext. Nothing is written in clear on the disk but inside a
0700 working folder of the process, removed whatever happens. Restore goes onto an empty
machine only (no table, no keyset), checks every part against the manifest's SHA-256, and
checks that the configured master key opens the restored keysets before it says done.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyrage
from django.conf import settings
from django.db import connection
from django.utils import timezone

from rempart.audit.context import Actor
from rempart.audit.models import Action
from rempart.audit.services import event_record
from rempart.lib.files import private_output
from rempart.vault import keystore
from rempart.vault.crypto import VaultError

FORMAT = 1
# The tools' own output is not passed on: pg_restore quotes the rows it could not load, and an
# IPP or a stay's dates would reach the operator's terminal and the logs.
_RERUN = " : relancez-le à la main pour le détail (sa sortie peut citer des lignes de la base)"


class BackupError(VaultError):
    """A backup or a restore that cannot go on (message for the operator, no data)."""


@contextmanager
def _workdir() -> Iterator[Path]:
    folder = Path(tempfile.mkdtemp(prefix="rempart-backup-"))  # mode 0700
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _pg_url() -> str:
    conf = connection.settings_dict
    user = conf.get("USER") or "postgres"
    auth = f"{user}:{conf['PASSWORD']}" if conf.get("PASSWORD") else user
    host, port = conf.get("HOST") or "127.0.0.1", conf.get("PORT") or 5432
    return f"postgresql://{auth}@{host}:{port}/{conf['NAME']}"


def _dump(target: Path) -> str:
    if connection.vendor == "postgresql":
        command = ["pg_dump", "--format=custom", "--no-owner", "--file", str(target),
                   "--dbname", _pg_url()]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode != 0:
            raise BackupError(f"pg_dump a échoué (code {done.returncode}){_RERUN}")
        return "pg_dump"
    source = sqlite3.connect(str(connection.settings_dict["NAME"]))
    with sqlite3.connect(str(target)) as copy:
        source.backup(copy)
    source.close()
    return "sqlite"


def _recipients(recipients: list[str]) -> list[Any]:
    try:
        return [pyrage.x25519.Recipient.from_str(r.strip()) for r in recipients]
    except pyrage.RecipientError:
        raise BackupError("clé publique age invalide (age1...)") from None


def backup_create(*, actor: Actor, out: Path, recipients: list[str]) -> dict[str, Any]:
    """Write the encrypted backup at `out` (0600, atomically); returns its manifest."""
    if not recipients:
        raise BackupError("au moins un destinataire age (la clé publique d'un dépositaire)")
    keys = _recipients(recipients)
    keystore.load_keysets()  # a backup of keysets nobody can open is no backup
    event_record(actor, Action.EXPORT, resource_type="Backup",
                 detail={"step": "started", "recipients": len(keys)})  # fmt: skip
    with _workdir() as work:
        parts: dict[str, Path] = {"database": work / "database.dump"}
        kind = _dump(parts["database"])
        keys_dir = Path(settings.REMPART_KEYS_DIR)
        for path in sorted(keys_dir.glob("*.json")):
            parts[f"keys/{path.name}"] = path
        checkpoints = Path(settings.REMPART_AUDIT_CHECKPOINT_FILE)
        if checkpoints.exists():
            parts["audit/checkpoints.jsonl"] = checkpoints
        manifest: dict[str, Any] = {
            "format": FORMAT, "created_at": timezone.now().isoformat(), "database": kind,
            "parts": {name: {"sha256": _sha256(p), "bytes": p.stat().st_size}
                      for name, p in parts.items()},
        }  # fmt: skip
        plain = work / "backup.tar"
        with tarfile.open(plain, "w") as archive:
            body = json.dumps(manifest, indent=1).encode()
            info = tarfile.TarInfo("manifest.json")
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
            for name, path in parts.items():
                archive.add(path, arcname=name, recursive=False)
        sealed = work / "backup.tar.age"
        pyrage.encrypt_file(str(plain), str(sealed), keys)
        plain.unlink()
        with private_output(out, binary=True) as handle, sealed.open("rb") as source:
            shutil.copyfileobj(source, handle, 1 << 20)
    event_record(actor, Action.EXPORT, resource_type="Backup",
                 detail={"step": "written", "sha256": _sha256(out),
                         "parts": sorted(manifest["parts"])})  # fmt: skip
    return manifest


def _database_empty() -> bool:
    return "django_migrations" not in connection.introspection.table_names()


def backup_restore(*, actor: Actor, source: Path, identity: str) -> dict[str, Any]:
    """Restore `source` onto this empty machine: database, keysets, checkpoint file."""
    try:
        secret = pyrage.x25519.Identity.from_str(identity.strip())
    except pyrage.IdentityError:
        raise BackupError("identité age invalide (AGE-SECRET-KEY-1...)") from None
    keys_dir = Path(settings.REMPART_KEYS_DIR)
    if any(keys_dir.glob("*.json")):
        raise BackupError(f"{keys_dir} contient déjà des clés : la restauration se fait sur une "
                          "machine vide")  # fmt: skip
    if not _database_empty():
        raise BackupError("la base de données n'est pas vide : la restauration se fait sur une "
                          "base vide")  # fmt: skip
    with _workdir() as work:
        plain = work / "backup.tar"
        try:
            pyrage.decrypt_file(str(source), str(plain), [secret])
        except (pyrage.DecryptError, OSError):
            raise BackupError(
                "sauvegarde illisible avec cette identité (ou fichier abîmé)"
            ) from None
        out = work / "parts"
        with tarfile.open(plain) as archive:
            archive.extractall(out, filter="data")
        plain.unlink()
        manifest = json.loads((out / "manifest.json").read_text())
        if manifest.get("format") != FORMAT:
            raise BackupError("format de sauvegarde inconnu")
        for name, part in manifest["parts"].items():
            path = out / name
            if not path.is_file() or _sha256(path) != part["sha256"]:
                raise BackupError(f"partie {name} absente ou altérée : rien n'est restauré")
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for name in manifest["parts"]:
            if name.startswith("keys/"):
                with private_output(keys_dir / Path(name).name) as handle:
                    handle.write((out / name).read_text(encoding="utf-8"))
        keystore.reset_vault()
        try:
            keystore.load_keysets()
        except VaultError:
            for name in manifest["parts"]:
                if name.startswith("keys/"):
                    (keys_dir / Path(name).name).unlink(missing_ok=True)
            raise BackupError(
                "la clé maîtresse configurée n'ouvre pas les clés sauvegardées "
                "(HSM ou fichier de la clé maîtresse d'origine attendu)"
            ) from None
        _load_database(manifest["database"], out / "database")
        if "audit/checkpoints.jsonl" in manifest["parts"]:
            target = Path(settings.REMPART_AUDIT_CHECKPOINT_FILE)
            with private_output(target) as handle:
                handle.write((out / "audit/checkpoints.jsonl").read_text(encoding="utf-8"))
    connection.close()
    event_record(actor, Action.IMPORT, resource_type="Backup",
                 detail={"step": "restored", "created_at": manifest["created_at"],
                         "sha256": _sha256(source)})  # fmt: skip
    return dict(manifest)


def _load_database(kind: str, dump: Path) -> None:
    if kind == "pg_dump":
        if connection.vendor != "postgresql":
            raise BackupError("une sauvegarde PostgreSQL se restaure dans PostgreSQL")
        connection.close()
        done = subprocess.run(["pg_restore", "--no-owner", "--exit-on-error", "--jobs", "2",  # noqa: S603, S607
                               "--dbname", _pg_url(), str(dump)],
                              capture_output=True, text=True, check=False)  # fmt: skip
        if done.returncode != 0:
            raise BackupError(f"pg_restore a échoué (code {done.returncode}){_RERUN}")
        return
    if connection.vendor != "sqlite":
        raise BackupError("une sauvegarde SQLite se restaure dans SQLite")
    connection.close()
    shutil.copyfile(dump, str(connection.settings_dict["NAME"]))
