"""Files that hold patient data or keys: created 0600 without following a link left at the path;
a master key file others may read is refused wherever it lies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rempart.lib.files import private_output
from rempart.vault import crypto

CLI = [sys.executable, "-m", "rempart.cli"]


def test_an_output_replaces_a_link_instead_of_writing_through_it(tmp_path: Path):
    victim = tmp_path / "victim.txt"
    victim.write_text("do not touch")
    victim.chmod(0o644)
    target = tmp_path / "out" / "rejets.csv"
    target.parent.mkdir()
    target.symlink_to(victim)
    with private_output(target) as handle:
        handle.write("ligne;motif\n")
    assert victim.read_text() == "do not touch"
    assert not target.is_symlink()
    assert target.read_text() == "ligne;motif\n"
    assert target.stat().st_mode & 0o777 == 0o600


def test_an_existing_output_does_not_keep_its_looser_mode(tmp_path: Path):
    target = tmp_path / "rapport.pdf"
    target.write_bytes(b"old")
    target.chmod(0o644)
    with private_output(target, binary=True) as handle:
        handle.write(b"%PDF-")
    assert target.read_bytes() == b"%PDF-"
    assert target.stat().st_mode & 0o777 == 0o600


def test_a_failed_output_leaves_the_old_file_and_no_temporary_one(tmp_path: Path):
    target = tmp_path / "rejets.csv"
    target.write_text("previous")
    with pytest.raises(RuntimeError), private_output(target) as handle:
        handle.write("half")
        raise RuntimeError("disk full")
    assert target.read_text() == "previous"
    assert os.listdir(tmp_path) == ["rejets.csv"]


@pytest.mark.parametrize(("mode", "refused"), [(0o644, True), (0o640, True), (0o600, False)])
def test_a_master_key_file_named_by_the_environment_must_be_the_owners_only(
    tmp_path: Path, mode: int, refused: bool
):
    key = tmp_path / "elsewhere" / "rempart-master.key"
    key.parent.mkdir()
    key.write_text(crypto.new_master_key())
    key.chmod(mode)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMPART_")}
    env.update(REMPART_DATA_DIR=str(tmp_path / "data"), REMPART_MASTER_KEY_FILE=str(key),
               SECRET_KEY="x" * 50, DATABASE_URL=f"sqlite:///{tmp_path}/db.sqlite3")  # fmt: skip
    result = subprocess.run([*CLI, "check"], env=env, capture_output=True, text=True)  # noqa: S603
    message = "REMPART_MASTER_KEY_FILE="
    assert (message in result.stderr and "owner only (0600)" in result.stderr) is refused
    assert (result.returncode != 0) is refused
