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
