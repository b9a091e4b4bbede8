"""`rempart demo` sets everything up from nothing, and a second run reuses it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_the_demo_sets_up_keys_database_group_and_accounts(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMPART_")}
    env.pop("DATABASE_URL", None)
    env["REMPART_DATA_DIR"] = str(tmp_path)
    cmd = [sys.executable, "-m", "rempart.cli", "demo", "--no-serve", "--patients", "200"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)  # noqa: S603
    assert "secretaire.lilas" in first.stdout and "dpo" in first.stdout
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "demo-accounts.txt").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "rempart.sqlite3").exists()
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)  # noqa: S603
    assert "Génération" not in second.stdout
    password = next(
        line.split()[1] for line in first.stdout.splitlines() if "medecin.lilas" in line
    )
    assert password in second.stdout
