"""A missing or wrong master key gives a clear error and changes nothing."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rempart.audit.context import Actor
from rempart.patients.models import Patient
from rempart.patients.validation import PatientData
from rempart.records.services.patients import patient_create
from rempart.vault import crypto, keystore
from rempart.vault.crypto import MasterKeyError

ACTOR = Actor.system("tests")  # the console: access control is tested in test_access.py

CLI = [sys.executable, "-m", "rempart.cli"]


def _run(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("REMPART_")}
    base.pop("DATABASE_URL", None)
    return subprocess.run([*CLI, *args], env={**base, **env}, capture_output=True, text=True)  # noqa: S603


def test_production_refuses_to_start_without_a_master_key(tmp_path: Path):
    result = _run(
        ["check"],
        REMPART_DATA_DIR=str(tmp_path),
        SECRET_KEY="x" * 50,
        DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3",
    )
    assert result.returncode == 2
    assert "REMPART_MASTER_KEY / REMPART_MASTER_KEY_FILE must be set in production" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_a_master_key_file_that_others_can_read_is_refused(tmp_path: Path):
    (tmp_path / "master.key").write_text(crypto.new_master_key())
    (tmp_path / "master.key").chmod(0o644)
    result = _run(["keys", "init"], REMPART_ENV="demo", REMPART_DATA_DIR=str(tmp_path))
    assert result.returncode == 1
    assert "readable by its owner only (0600)" in result.stderr
    assert not (tmp_path / "keys").exists()


def test_keysets_without_their_master_key_are_not_given_a_new_one(tmp_path: Path):
    assert (
        _run(["keys", "init"], REMPART_ENV="demo", REMPART_DATA_DIR=str(tmp_path)).returncode == 0
    )
    (tmp_path / "master.key").unlink()
    result = _run(["keys", "init"], REMPART_ENV="demo", REMPART_DATA_DIR=str(tmp_path))
    assert result.returncode == 1
    assert "refusing to create a new one" in result.stderr
    assert not (tmp_path / "master.key").exists()


def test_a_wrong_master_key_is_named_as_such(tmp_path: Path):
    assert (
        _run(["keys", "init"], REMPART_ENV="demo", REMPART_DATA_DIR=str(tmp_path)).returncode == 0
    )
    keysets = {p.name: p.read_bytes() for p in (tmp_path / "keys").iterdir()}
    result = _run(
        ["keys", "list"],
        REMPART_ENV="demo",
        REMPART_DATA_DIR=str(tmp_path),
        REMPART_MASTER_KEY=crypto.new_master_key(),
    )
    assert result.returncode == 1
    assert "does not open the identity keyset (wrong master key or damaged file)" in result.stderr
    assert {p.name: p.read_bytes() for p in (tmp_path / "keys").iterdir()} == keysets


def test_a_master_key_that_is_not_a_keyset_is_refused():
    with pytest.raises(MasterKeyError, match="neither a Tink keyset nor its base64"):
        crypto.open_master_key("not a key")


def test_a_write_with_a_wrong_master_key_fails_and_writes_nothing(group, private_vault, settings):
    count = Patient.objects.count()
    settings.REMPART_MASTER_KEY = crypto.new_master_key()
    keystore.reset_vault()
    with pytest.raises(MasterKeyError, match="wrong master key"):
        patient_create(
            actor=ACTOR,
            data=PatientData(
                birth_name="Essai", given_names="Lou", sex="F", birth_date=dt.date(2000, 5, 6)
            ),
        )
    assert Patient.objects.count() == count
    settings.REMPART_MASTER_KEY = None
    keystore.reset_vault()
