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
    assert "second facteur (TOTP)" in first.stdout and "rempart totp_code" in first.stdout
    assert "dossiers leurres" in first.stdout
    assert (tmp_path / "master.key").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "demo-accounts.txt").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "rempart.sqlite3").exists()
    # The town GPs come from a synthetic extract of the ANS directory, loaded on SQLite.
    assert "Annuaire des professionnels de santé" in first.stdout
    import sqlite3

    with sqlite3.connect(tmp_path / "rempart.sqlite3") as db:
        external = db.execute("SELECT count(*), sum(profession != ''), sum(to_complete) FROM "
                              "directory_practitioner WHERE NOT internal").fetchone()  # fmt: skip
    assert external[0] >= 900 and external[1] == external[0] and external[2] == 0
    second = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)  # noqa: S603
    assert "Génération" not in second.stdout
    password = next(
        line.split()[1] for line in first.stdout.splitlines() if "medecin.lilas" in line
    )
    assert password in second.stdout
    # The printed second factor works: `rempart totp_code` gives the account's current code.
    env["REMPART_ENV"] = "demo"
    totp = [sys.executable, "-m", "rempart.cli", "totp_code", "secretaire.lilas"]
    code = subprocess.run(totp, env=env, capture_output=True, text=True, check=True)  # noqa: S603
    assert code.stdout.strip().isdigit() and len(code.stdout.strip()) == 6
    # The demo's trail is sealed and verifies on SQLite too (triggers included).
    check = [sys.executable, "-m", "rempart.cli", "audit", "verify"]
    env["REMPART_ENV"] = "demo"
    verified = subprocess.run(check, env=env, capture_output=True, text=True, check=True)  # noqa: S603
    assert "Journal intègre" in verified.stdout
    assert (tmp_path / "audit" / "checkpoints.jsonl").stat().st_mode & 0o777 == 0o600
    script = (
        "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute('UPDATE audit_event SET ip=1')"
    )
    tamper = [sys.executable, "-c", script, str(tmp_path / "rempart.sqlite3")]
    refused = subprocess.run(tamper, capture_output=True, text=True)  # noqa: S603
    assert "append-only" in refused.stderr
