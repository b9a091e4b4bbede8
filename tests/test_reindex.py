"""Rotating the blind-index root: add, promote, `keys reindex` (with searches working throughout,
canary marks following), disable; a re-index killed mid-way finishes on a rerun."""

from __future__ import annotations

import io
import os
import signal
import time
from pathlib import Path

import psycopg
import pytest
from django.core.management import call_command

from rempart.access import policy
from rempart.access.canaries import canaries_plant
from rempart.access.models import CanaryMark
from rempart.audit.context import Actor
from rempart.audit.models import Action, Event
from rempart.patients.models import Patient
from rempart.records.selectors import patients as sel
from rempart.vault import crypto, keystore, rotation
from rempart.vault.fields import BlindIndexField
from tests.conftest import point_vault_at

ACTOR = Actor.system("tests")
INDEXES = [f for f in Patient._meta.concrete_fields if isinstance(f, BlindIndexField)]


def _digests() -> dict[object, tuple[object, ...]]:
    return {
        row[0]: row[1:] for row in Patient.objects.values_list("pk", *(f.attname for f in INDEXES))
    }


def _findable(patient: Patient) -> bool:
    by_name = sel.patients_find_by_name_and_birth_date(
        actor=ACTOR, name=patient.birth_name, birth_date=patient.birth_date
    )
    return patient.pk in {p.pk for p in by_name}


def test_the_index_root_rotates_with_searches_and_canaries_working_throughout(group, private_vault):
    planted = canaries_plant(actor=ACTOR, per_establishment=1)
    canary = planted[0].patient_ids[0]
    sample = list(Patient.objects.exclude(bidx_nir=None).order_by("id")[:40])
    before = _digests()
    old = keystore.get_vault().indexer.primary_key_id

    new = rotation.key_add(crypto.INDEX_CATEGORY)
    rotation.key_promote(crypto.INDEX_CATEGORY, new)
    keystore.reset_vault()
    # Promoted, nothing re-indexed yet: look-ups ask for both keys' digests.
    assert rotation.count_to_reindex() == Patient.objects.count()
    assert all(_findable(p) for p in sample)
    assert all(
        p.pk in {f.pk for f in sel.patients_find_by_nir(actor=ACTOR, nir=p.nir)} for p in sample
    )
    assert policy.is_canary(canary)
    with pytest.raises(crypto.VaultError, match="still indexed under key"):
        rotation.key_disable(crypto.INDEX_CATEGORY, old)

    call_command("keys", "reindex", "--batch-size", "300")

    assert rotation.count_to_reindex() == 0
    assert rotation.rows_by_index_key() == {
        new: Patient.objects.count() + CanaryMark.objects.count()
    }
    after = _digests()
    changed = sum(before[pk] != after[pk] for pk in before)
    assert changed == len(before)  # every row under the new key (16 to 18 bits: no tie by chance)
    event = Event.objects.filter(action=Action.KEY).latest("id")
    assert event.detail["operation"] == "reindex" and event.detail["rows"] == len(before)

    rotation.key_disable(crypto.INDEX_CATEGORY, old)
    keystore.reset_vault()
    assert keystore.get_vault().indexer.key_ids == (new,)
    assert all(_findable(p) for p in sample)
    assert policy.is_canary(canary)  # its mark was re-tagged under the new key
    assert not policy.is_canary(sample[0].pk)
    # `keys list` counts the patients under each index key, not the canary marks (their number
    # would tell how many canaries there are)
    listing = io.StringIO()
    call_command("keys", "list", stdout=listing)
    line = next(
        x for x in listing.getvalue().splitlines() if x.startswith("index") and "primaire" in x
    )
    assert line.endswith(f" {Patient.objects.count()} valeurs")
    # an edited patient is indexed under the new key, its digests as the bulk re-index made them
    patient = sample[1]
    patient.email = "nouvelle.adresse@exemple.test"
    patient.save()
    patient.refresh_from_db()
    assert patient.index_key_id == new
    assert patient.bidx_name_birth == after[patient.pk][0]


def test_rows_from_before_the_index_change_are_reindexed_from_their_sealed_values(
    group, private_vault
):
    # what `migrate` leaves on an existing database: new columns empty, no key recorded
    sample = list(Patient.objects.order_by("id")[:25])
    expected = _digests()
    Patient.objects.filter(pk__in=[p.pk for p in sample]).update(
        index_key_id=None, **{f.attname: None for f in INDEXES}
    )
    assert not any(_findable(p) for p in sample[:5])
    assert rotation.count_to_reindex() == 25
    with pytest.raises(crypto.VaultError, match="unknown key"):
        rotation.key_disable(crypto.INDEX_CATEGORY, rotation.key_add(crypto.INDEX_CATEGORY))

    assert rotation.reindex(batch_size=10) == 25

    assert _digests() == expected
    assert all(_findable(p) for p in sample[:5])
    assert rotation.reindex() == 0  # nothing left: a second run touches nothing


def test_an_edit_during_a_rotation_reindexes_the_whole_row(group, private_vault):
    patient = Patient.objects.exclude(bidx_email=None).exclude(bidx_nir=None).first()
    rotation.key_promote(crypto.INDEX_CATEGORY, rotation.key_add(crypto.INDEX_CATEGORY))
    keystore.reset_vault()
    new = keystore.get_vault().indexer.primary_key_id
    patient = Patient.objects.get(pk=patient.pk)
    patient.city = "Melun"  # a contact change: the identity's indexes must move to the key too
    patient.save()
    patient.refresh_from_db()
    assert patient.index_key_id == new
    assert patient.bidx_nir == Patient._meta.get_field("bidx_nir").digest(patient.nir)
    assert rotation.count_to_reindex() == Patient.objects.count() - 1


def _count(url: str, sql: str, params: list[object] | None = None) -> int:
    with psycopg.connect(url) as conn:
        return int(conn.execute(sql, params or []).fetchone()[0])


def test_a_reindex_killed_mid_way_finishes_on_rerun(console, scratch_database: str, vault_dir):
    run, data_dir = console.run, console.data_dir
    run("migrate", "-v0")
    run("generate", "--patients", "12000", "--seed", "4", "--workers", "0")
    run("canaries", "plant", "--per-establishment", "2")
    total = _count(scratch_database, "SELECT count(*) FROM patients_patient")
    added = run("keys", "add", "index").stdout
    new = int(added.split("clé ")[1].split()[0])
    run("keys", "promote", "index", str(new))

    done_sql = "SELECT count(*) FROM patients_patient WHERE index_key_id = %s"
    reindexing = console.start("keys", "reindex", "--batch-size", "200")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and _count(scratch_database, done_sql, [new]) < 1000:
        time.sleep(0.02)
    os.killpg(reindexing.pid, signal.SIGKILL)
    reindexing.wait()
    done = _count(scratch_database, done_sql, [new])
    assert 1000 <= done < total, "the kill must land mid-way"
    assert done % 200 == 0  # whole batches only: the one in flight was rolled back

    rerun = run("keys", "reindex", "--batch-size", "200")
    assert f"index : {total - done} lignes réindexées sous la clé {new}" in rerun.stdout
    assert _count(scratch_database, done_sql, [new]) == total
    marks = "SELECT count(*) FROM access_canarymark WHERE index_key_id = %s"
    assert _count(scratch_database, marks, [new]) == _count(
        scratch_database, "SELECT count(*) FROM access_canarymark"
    )

    # every digest is the one the new key gives for the row's sealed values
    point_vault_at(data_dir)
    try:
        columns = ", ".join(f.column for f in INDEXES)
        with psycopg.connect(scratch_database) as conn:
            rows = conn.execute(
                f"SELECT id, identity, contact, {columns} FROM patients_patient "  # noqa: S608
                "ORDER BY random() LIMIT 300"
            ).fetchall()
        for row_id, identity, contact, *stored in rows:
            patient = Patient(id=row_id)
            patient.identity = Patient._meta.get_field("identity").open_value(row_id, identity)
            if contact is not None:
                patient.contact = Patient._meta.get_field("contact").open_value(row_id, contact)
            assert stored == [f.digest(*(getattr(patient, s) for s in f.sources)) for f in INDEXES]
        assert "désactivée" in run("keys", "disable", "index", str(_old_key(data_dir, new))).stdout
    finally:
        point_vault_at(vault_dir)


def _old_key(data_dir: Path, new: int) -> int:
    handle = keystore.read_keyset(crypto.INDEX_CATEGORY)
    return next(k.key_id for k in crypto.describe_keyset(handle) if k.key_id != new)
