"""Test base: keys in a temporary folder, one synthetic group loaded once into PostgreSQL.

Tests run inside transactions rolled back after each one, so the group is shared read-only.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from django.conf import settings
from django.db import connection

from rempart.synth.bulk import bulk_load
from rempart.synth.generator import Group
from rempart.synth.population import build_directory, generate_group
from rempart.vault import keystore

TODAY = dt.date(2026, 11, 28)
SEED = 7
PATIENTS = 1500


def point_vault_at(data_dir: Path) -> None:
    settings.REMPART_DATA_DIR = data_dir
    settings.REMPART_KEYS_DIR = data_dir / "keys"
    settings.REMPART_MASTER_KEY_PATH = data_dir / "master.key"
    settings.REMPART_MASTER_KEY = None
    settings.REMPART_AUDIT_CHECKPOINT_FILE = data_dir / "audit" / "checkpoints.jsonl"
    keystore.reset_vault()


@pytest.fixture(scope="session")
def vault_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert settings.REMPART_ENV == "test", "run the suite with REMPART_ENV=test (scripts/test)"
    data_dir = tmp_path_factory.mktemp("vault")
    point_vault_at(data_dir)
    keystore.init_keys(create_master=True)
    return data_dir


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup: None, django_db_blocker, vault_dir: Path) -> Group:  # type: ignore[no-untyped-def]
    with django_db_blocker.unblock():
        # Loaded through the bulk path (the one `rempart generate` uses); the same seed gives
        # the same records in memory, for the tests to compare with.
        bulk_load(
            build_directory(
                seed=SEED,
                patients=PATIENTS,
                today=TODAY,
                clinics=3,
                health_centres=1,
                nursing_homes=1,
            ),
            workers=0,
        )
        group = generate_group(seed=SEED, patients=PATIENTS, today=TODAY)
    return group


@pytest.fixture
def group(django_db_setup: Group, db: None) -> Group:
    return django_db_setup


@pytest.fixture
def private_vault(vault_dir: Path, tmp_path: Path) -> Iterator[Path]:
    """A copy of the keys this test may rotate or break; the shared keys come back afterwards."""
    copy = tmp_path / "vault"
    shutil.copytree(vault_dir, copy)
    point_vault_at(copy)
    yield copy
    point_vault_at(vault_dir)


@pytest.fixture
def scratch_database(db: None) -> Iterator[str]:
    """A PostgreSQL database of its own: the import commits batch by batch, outside the test's
    transaction."""
    conf = connection.settings_dict
    name = f"rempart_scratch_{uuid.uuid4().hex[:8]}"
    host, port = conf["HOST"] or "127.0.0.1", conf["PORT"] or 5432
    admin = f"postgresql://{conf['USER']}@{host}:{port}/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    yield admin.rsplit("/", 1)[0] + f"/{name}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


@dataclass
class Console:
    """The `rempart` command run as an operator would, in the demo posture, against a scratch
    database and a copy of the test keys (`data_dir`)."""

    env: dict[str, str]
    data_dir: Path

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "rempart.cli", *args]

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args), env=self.env, capture_output=True, text=True,  # noqa: S603
                              check=True)  # fmt: skip

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        """In the background, in its own process group (for a kill -9 of the whole command)."""
        return subprocess.Popen(self.command(*args), env=self.env, stdout=subprocess.DEVNULL,  # noqa: S603
                                stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip


@pytest.fixture
def console(scratch_database: str, vault_dir: Path, tmp_path: Path) -> Console:
    data_dir = tmp_path / "data"
    shutil.copytree(vault_dir, data_dir)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMPART_")}
    env.update(REMPART_ENV="demo", REMPART_DATA_DIR=str(data_dir), DATABASE_URL=scratch_database)
    return Console(env, data_dir)


@pytest.fixture(autouse=True)
def _french_by_default() -> Iterator[None]:
    """Each test starts in the default language: a request in English (LocaleMiddleware) must
    not leave the thread translating the next test."""
    from django.utils import translation

    translation.activate(settings.LANGUAGE_CODE)
    yield
    translation.activate(settings.LANGUAGE_CODE)


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """Counters kept in the cache (unknown sessions per address) start at zero in each test."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def one_clock_hour() -> None:
    """For a test that counts reads through the pages, where the clock is the real one: read
    budgets restart at every hour and day, so a test run across the turn of an hour would see its
    count start again halfway. Close to the turn, wait it out (at most a minute and a half)."""
    import time

    from django.utils import timezone

    now = timezone.localtime()
    left = 3600 - (now.minute * 60 + now.second)
    if left < 90:
        time.sleep(left + 1)
