"""Key rotation: add, promote, re-encrypt with old ciphertexts readable throughout."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from rempart.care.models import PrescriptionLine, Stay
from rempart.patients.models import Patient
from rempart.vault import crypto, keystore, rotation


def _snapshot():
    patients = {
        p.id: (p.birth_name, p.nir, p.email, p.birth_date, p.gp_id) for p in Patient.objects.all()
    }
    stays = {s.id: s.reason for s in Stay.objects.all()}
    lines = {line.id: line.content for line in PrescriptionLine.objects.all()}
    return patients, stays, lines


def test_rotation_keeps_every_value_readable(group, private_vault):
    before = _snapshot()
    old = {c: keystore.get_vault().cipher.primary_key_id(c) for c in crypto.AEAD_CATEGORIES}
    in_use = {c for c in crypto.AEAD_CATEGORIES if rotation.ciphertexts_by_key(c)}
    assert in_use >= {"identity", "contact", "clinical"}

    new = {c: rotation.key_add(c) for c in crypto.AEAD_CATEGORIES}
    for category, key_id in new.items():
        rotation.key_promote(category, key_id)
    keystore.reset_vault()
    # Promoted but not re-encrypted yet: old ciphertexts still open, new writes use the new key.
    assert _snapshot() == before
    assert rotation.count_to_reencrypt("identity") > 0

    call_command("keys", "reencrypt", "--batch-size", "300")

    assert _snapshot() == before
    for category in crypto.AEAD_CATEGORIES:
        counts = rotation.ciphertexts_by_key(category)
        assert set(counts) == ({new[category]} if category in in_use else set()), category
        rotation.key_disable(category, old[category])
    keystore.reset_vault()
    assert _snapshot() == before


def test_an_old_key_still_in_use_cannot_be_disabled(group, private_vault):
    old = keystore.get_vault().cipher.primary_key_id("contact")
    rotation.key_promote("contact", rotation.key_add("contact"))
    with pytest.raises(crypto.VaultError, match="still sealed with key"):
        rotation.key_disable("contact", old)


def test_the_primary_key_cannot_be_disabled(group, private_vault):
    primary = keystore.get_vault().cipher.primary_key_id("clinical")
    with pytest.raises(crypto.VaultError, match="primary key cannot be disabled"):
        rotation.key_disable("clinical", primary)


def test_reencrypt_twice_changes_nothing_the_second_time(group, private_vault):
    rotation.key_promote("clinical", rotation.key_add("clinical"))
    assert rotation.reencrypt("clinical") > 0
    assert rotation.reencrypt("clinical") == 0


class _Stale:
    """This process's cached keys as a worker started before the rotation holds them: the old
    vault until the keys are reloaded, then the real cache again."""

    def __init__(self, stale: keystore.Vault, real: object) -> None:
        self.stale, self.real, self.used = stale, real, True

    def __call__(self) -> keystore.Vault:
        return self.stale if self.used else self.real()  # type: ignore[operator]

    def cache_clear(self) -> None:
        self.used = False
        self.real.cache_clear()  # type: ignore[attr-defined]

    def cache_info(self) -> object:
        return self.real.cache_info()  # type: ignore[attr-defined]


def test_a_worker_started_before_a_rotation_reads_values_resealed_under_the_new_key(
    group, private_vault, monkeypatch, settings
):
    """The console adds and promotes a key and re-seals every value while the web workers run
    with the keys they loaded: a value under a key a worker does not know makes it reload the
    keysets, and no read fails; a few seconds later its new values use the new primary."""
    patient_id = Patient.objects.order_by("id").values_list("id", flat=True).first()
    expected = Patient.objects.get(pk=patient_id).birth_name
    stale = keystore.get_vault()  # what a running worker holds
    key_id = rotation.key_add("identity")
    rotation.key_promote("identity", key_id)
    assert rotation.reencrypt("identity") > 0  # the console, in "another process"
    settings.REMPART_KEYS_RECHECK_SECONDS = 3600  # the worker has not looked at the files yet
    monkeypatch.setattr(keystore, "_vault", _Stale(stale, keystore._vault))
    assert keystore.get_vault() is stale
    assert Patient.objects.get(pk=patient_id).birth_name == expected  # reloaded on the way
    assert keystore.get_vault() is not stale
    assert keystore.get_vault().cipher.primary_key_id("identity") == key_id


def test_a_worker_sees_new_keyset_files_within_its_recheck_period(group, private_vault, settings):
    settings.REMPART_KEYS_RECHECK_SECONDS = 0
    before = keystore.get_vault()
    handle, key_id = crypto.keyset_add_key(keystore.read_keyset("contact"), "contact")
    handle = crypto.keyset_promote(handle, key_id)
    path = private_vault / "keys" / "contact.json"
    # Written as another process would: the file changes, this process is not told.
    keystore._write_private(path, crypto.wrap_keyset(handle, keystore._master(), "contact"))
    after = keystore.get_vault()
    assert after is not before and after.cipher.primary_key_id("contact") == key_id
