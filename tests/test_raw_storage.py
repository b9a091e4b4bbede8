"""A stolen database is noise: neither a pg_dump nor the SQLite file holds patient data in clear."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from django.db import connection

from rempart.synth.generator import Group
from rempart.synth.population import generate_group
from tests.conftest import SEED, TODAY


def _needles(group: Group) -> set[str]:
    """Values that belong to patients only (names shared with a practitioner, an establishment or a
    service are professional data, stored in clear by design, so they are left out)."""
    clear_texts = [
        *(f"{p.family_name} {p.given_name} {p.city}" for p in group.practitioners),
        *(f"{e.name} {e.city}" for e in group.establishments),
        *(s.name for s in group.services),
    ]
    professional = {w.upper() for text in clear_texts for w in re.split(r"[\s'\-]+", text)}
    professional |= {w.upper() for text in clear_texts for w in text.split(" ")}
    professional |= {p.family_name.upper() for p in group.practitioners}
    needles: set[str] = set()
    for record in group.patients:
        d = record.data
        for name in (d.birth_name.upper(), d.usage_name.upper()):
            if len(name) >= 5 and name not in professional:
                needles.add(name)
        for given in d.given_names.split(" "):
            if len(given) >= 6 and given.upper() not in professional:
                needles.add(given)
        for value in (d.email, d.nir, d.phone_mobile, d.phone_home, d.address_line):
            if value:
                needles.add(value)
        for phone in (d.phone_mobile, d.phone_home):
            if phone:
                needles.add(phone.replace(" ", ""))
        if (TODAY - d.birth_date).days > 6 * 366:  # older than any stay date kept in clear
            needles.add(d.birth_date.isoformat())
            needles.add(d.birth_date.strftime("%d/%m/%Y"))
    return needles


def _leaks(blob: str, needles: set[str]) -> list[str]:
    """Needles found in the blob as whole words (a patient named COSTA is not leaked by a
    practitioner named DA COSTA) or, for values with spaces, as substrings."""
    words = set(re.split(r"[^\w@.'\-/]+", blob))
    return sorted(n for n in needles if (n in blob) if (" " in n or n in words))


def test_a_pg_dump_contains_no_patient_value_in_clear(group):
    db = connection.settings_dict
    env = dict(os.environ, PGPASSWORD=db.get("PASSWORD") or "")
    dump = subprocess.run(  # noqa: S603
        [
            shutil.which("pg_dump") or "/usr/bin/pg_dump",
            "-h",
            db["HOST"] or "127.0.0.1",
            "-p",
            str(db["PORT"] or 5432),
            "-U",
            db["USER"],
            "--data-only",
            db["NAME"],
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    needles = _needles(group)
    assert len(needles) > 3000
    assert "patients_patient" in dump  # the dump did include the patient table
    assert _leaks(dump, needles) == []


def test_the_sqlite_file_contains_no_patient_value_in_clear(tmp_path: Path, vault_dir: Path):
    env = dict(
        os.environ,
        REMPART_ENV="demo",
        REMPART_DATA_DIR=str(vault_dir),
        DATABASE_URL=f"sqlite:///{tmp_path / 'leak.sqlite3'}",
    )
    cli = [sys.executable, "-m", "rempart.cli"]
    subprocess.run([*cli, "migrate", "-v0"], check=True, env=env)  # noqa: S603
    subprocess.run(  # noqa: S603
        [*cli, "generate", "--patients", "400", "--seed", str(SEED), "--today", TODAY.isoformat()],
        check=True,
        env=env,
        capture_output=True,
    )
    blob = b"".join(p.read_bytes() for p in tmp_path.glob("leak.sqlite3*"))
    text = blob.decode("utf-8", errors="ignore")
    group = generate_group(seed=SEED, patients=400, today=TODAY)
    needles = _needles(group)
    assert len(needles) > 1000
    assert _leaks(text, needles) == []
