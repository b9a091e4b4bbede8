"""A backup restores onto an empty machine: the database, the wrapped keysets and the audit
checkpoint file come back from one age-encrypted file; the trail verifies, a patient is found
and decrypted; the master key was never in the file. A wrong identity, a damaged file or a
machine that is not empty restores nothing."""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path

import psycopg
import pyrage

from tests.conftest import Console

FIND = ("from rempart.patients.models import PatientIdentifier as I; "
        "i = I.objects.order_by('ipp').first(); print(i.ipp, i.patient.birth_name)")  # fmt: skip


def _fresh_database(url: str) -> str:
    admin = url.rsplit("/", 1)[0] + "/postgres"
    name = f"rempart_restore_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return url.rsplit("/", 1)[0] + f"/{name}"


def _drop(url: str) -> None:
    admin, name = url.rsplit("/", 1)
    with psycopg.connect(admin + "/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_a_backup_restores_on_an_empty_machine_and_verifies(console: Console, tmp_path: Path):
    console.run("migrate", "-v0")
    console.run("generate", "--patients", "300", "--establishments", "3", "--seed", "9")
    console.run("audit", "seal")
    before = console.run("shell", "-c", FIND).stdout.split()[-2:]
    custodian = pyrage.x25519.Identity.generate()
    identity = tmp_path / "custodian.key"
    identity.write_text(str(custodian))
    backup = tmp_path / "rempart.backup.age"
    written = console.run("backup", "--out", str(backup), "--recipient",
                          str(custodian.to_public()))  # fmt: skip
    assert "Sauvegarde écrite" in written.stdout and oct(backup.stat().st_mode)[-3:] == "600"
    raw = backup.read_bytes()
    assert raw.startswith(b"age-encryption.org/v1") and before[1].encode() not in raw
    master = (console.data_dir / "master.key").read_text()
    assert master.encode() not in raw  # the master key is never in a backup

    # The empty machine: a new database, a data folder holding only the master key.
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "master.key").write_text(master)
    (empty / "master.key").chmod(0o600)
    target = _fresh_database(console.env["DATABASE_URL"])
    other = Console({**console.env, "DATABASE_URL": target, "REMPART_DATA_DIR": str(empty)},
                    empty)  # fmt: skip
    try:
        wrong = tmp_path / "wrong.key"
        wrong.write_text(str(pyrage.x25519.Identity.generate()))
        refused = subprocess.run(other.command("restore", str(backup), "--identity-file",  # noqa: S603
                                               str(wrong)), env=other.env, capture_output=True,
                                 text=True, check=False)  # fmt: skip
        assert refused.returncode != 0 and "illisible" in refused.stderr
        assert not (empty / "keys").exists() or not any((empty / "keys").glob("*.json"))
        damaged = tmp_path / "damaged.age"
        damaged.write_bytes(raw[:-100])
        refused = subprocess.run(other.command("restore", str(damaged), "--identity-file",  # noqa: S603
                                               str(identity)), env=other.env, capture_output=True,
                                 text=True, check=False)  # fmt: skip
        assert refused.returncode != 0
        restored = other.run("restore", str(backup), "--identity-file", str(identity))
        assert "Restauré" in restored.stdout
        verified = other.run("audit", "verify")
        assert verified.returncode == 0
        assert other.run("shell", "-c", FIND).stdout.split()[-2:] == before
        # Restoring again onto the machine now holding data is refused.
        again = subprocess.run(other.command("restore", str(backup), "--identity-file",  # noqa: S603
                                             str(identity)), env=other.env, capture_output=True,
                               text=True, check=False)  # fmt: skip
        assert again.returncode != 0 and "machine vide" in again.stderr
    finally:
        _drop(target)
        shutil.rmtree(empty, ignore_errors=True)


def test_a_backup_without_its_master_key_restores_nothing(console: Console, tmp_path: Path):
    console.run("migrate", "-v0")
    custodian = pyrage.x25519.Identity.generate()
    (tmp_path / "id.key").write_text(str(custodian))
    backup = tmp_path / "b.age"
    console.run("backup", "--out", str(backup), "--recipient", str(custodian.to_public()))
    empty = tmp_path / "empty"
    empty.mkdir()
    target = _fresh_database(console.env["DATABASE_URL"])
    other = Console({**console.env, "DATABASE_URL": target, "REMPART_DATA_DIR": str(empty)},
                    empty)  # fmt: skip
    try:
        other.run("keys", "init")  # another master key: it cannot open the saved keysets
        for keyset in (empty / "keys").glob("*.json"):
            keyset.unlink()
        done = subprocess.run(other.command("restore", str(backup), "--identity-file",  # noqa: S603
                                            str(tmp_path / "id.key")), env=other.env,
                              capture_output=True, text=True, check=False)  # fmt: skip
        assert done.returncode != 0 and "clé maîtresse" in done.stderr
        with psycopg.connect(target) as conn:  # nothing restored in the database
            tables = conn.execute("SELECT count(*) FROM information_schema.tables WHERE "
                                  "table_schema = 'public'").fetchone()  # fmt: skip
        assert tables == (0,)
    finally:
        _drop(target)
