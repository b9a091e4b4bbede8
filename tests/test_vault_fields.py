"""Encrypted fields: every value round-trips; a ciphertext moved elsewhere does not open."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import FieldError
from django.db import connection

from rempart.audit.context import Actor
from rempart.care.models import PrescriptionLine, Stay
from rempart.patients.models import Patient
from rempart.patients.validation import PatientData
from rempart.records.services.patients import patient_create
from rempart.vault.crypto import DecryptionError
from rempart.vault.fields import EncryptedField, SealedAttribute

ACTOR = Actor.system("tests")  # the console: access control is tested in test_access.py

PATIENT_FIELDS = [n for n, a in vars(Patient).items() if isinstance(a, SealedAttribute)]
SEALED_COLUMNS = [f.name for f in Patient._meta.concrete_fields if isinstance(f, EncryptedField)]


def _raw(table: str, column: str, row_id: object) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {column} FROM {table} WHERE id = %s", [row_id])  # noqa: S608
        return bytes(cursor.fetchone()[0])


def test_every_patient_field_round_trips_through_the_database(group):
    for record in group.patients[:200]:
        stored = Patient.objects.get(pk=record.id)
        expected = record.data.as_model_values()
        for name in PATIENT_FIELDS:
            value = expected[name]
            if isinstance(value, str):
                value = {
                    "birth_name": value.upper(),
                    "usage_name": value.upper(),
                    "city": value.upper(),
                }.get(name, value)
            assert getattr(stored, name) == value, name


def test_the_patient_model_encrypts_every_identity_and_contact_field():
    assert SEALED_COLUMNS == ["identity", "contact"]
    text_columns = [
        f.name
        for f in Patient._meta.concrete_fields
        if f.get_internal_type() in ("CharField", "TextField") and f.name != "identity_status"
    ]
    assert text_columns == []
    assert set(PATIENT_FIELDS) == {
        "birth_name",
        "usage_name",
        "given_names",
        "first_given_name",
        "sex",
        "birth_date",
        "birth_place_code",
        "nir",
        "email",
        "phone_mobile",
        "phone_home",
        "address_line",
        "postcode",
        "city",
        "gp_id",
    }


def test_stay_reasons_and_prescription_lines_round_trip(group):
    stay = group.stays[0]
    assert Stay.objects.get(pk=stay.id).reason == stay.reason
    prescription = group.prescriptions[0]
    lines = PrescriptionLine.objects.filter(prescription_id=prescription.id).order_by("position")
    assert [line.content for line in lines] == [line.content for line in prescription.lines]


def test_the_column_holds_a_tink_ciphertext_not_the_value(group):
    record = group.patients[0]
    raw = _raw("patients_patient", "identity", record.id)
    assert raw[0] == 1  # Tink prefix: a key id follows
    assert record.data.birth_name.upper().encode() not in raw
    assert record.data.birth_date.isoformat().encode() not in raw


def test_a_ciphertext_copied_to_another_row_does_not_decrypt(group):
    a, b = group.patients[0].id, group.patients[1].id
    stolen = _raw("patients_patient", "identity", a)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE patients_patient SET identity = %s WHERE id = %s", [stolen, b])
    with pytest.raises(DecryptionError):
        _ = Patient.objects.get(pk=b).birth_name


def test_a_ciphertext_copied_to_another_column_does_not_decrypt(group):
    a = group.patients[0].id
    stolen = _raw("patients_patient", "identity", a)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE patients_patient SET contact = %s WHERE id = %s", [stolen, a])
    with pytest.raises(DecryptionError):
        _ = Patient.objects.get(pk=a).email


def test_an_update_reseals_only_the_changed_record_and_refreshes_its_index(group):
    patient = Patient.objects.get(pk=group.patients[0].id)
    before_identity = _raw("patients_patient", "identity", patient.id)
    old_index = patient.bidx_email
    patient.email = "nouvelle.adresse@orange.test"
    patient.save()
    assert _raw("patients_patient", "identity", patient.id) == before_identity
    reloaded = Patient.objects.get(pk=patient.id)
    assert reloaded.email == "nouvelle.adresse@orange.test"
    assert reloaded.bidx_email != old_index or old_index is None


def test_encrypted_fields_refuse_lookups_on_ciphertext(db):
    with pytest.raises(FieldError, match="Unsupported lookup 'exact' for EncryptedJSONField"):
        list(Patient.objects.filter(identity={"birth_name": "MARTIN"}))
    with pytest.raises(FieldError, match="Cannot resolve keyword 'birth_name'"):
        list(Patient.objects.filter(birth_name="MARTIN"))


def test_a_new_patient_is_sealed_on_create(db):
    patient = patient_create(
        actor=ACTOR,
        data=PatientData(
            birth_name="Nouveau", given_names="Alix", sex="F", birth_date=dt.date(1990, 1, 2)
        ),
    )
    assert Patient.objects.get(pk=patient.pk).birth_date == dt.date(1990, 1, 2)
    assert b"NOUVEAU" not in _raw("patients_patient", "identity", patient.pk)


def test_the_bulk_sealer_stores_what_a_model_save_stores(group):
    """The loaders' column-by-column sealer against the model's own save, value by value: same
    records once opened, same blind indexes, and each ciphertext bound to its own row."""
    from django.utils import timezone

    from rempart.lib.bulkwrite import BulkWriter, binary_block
    from rempart.lib.ids import new_id
    from rempart.patients.sealing import PatientSealer

    sealer = PatientSealer()
    # married names, no usage name, no NIR, no e-mail, no GP: the sample covers the empty cases
    values = [record.data.as_model_values() for record in group.patients[:300]]
    assert any(v["usage_name"] for v in values) and any(v["usage_name"] is None for v in values)
    assert any(v["email"] is None for v in values) and any(v["nir"] is None for v in values)
    bulk_ids = [new_id() for _ in values]
    now = timezone.now()
    batch = list(zip(bulk_ids, values, strict=True))
    BulkWriter().write(Patient, binary_block(sealer.binary_rows(batch, now)))
    tuple_rows = sealer.rows(batch, now)
    for field in sealer.indexes:
        field.forget_cache()  # the model's save computes its own digests
    saved_ids = []
    for v in values:
        patient = Patient(identity_status=v["identity_status"])
        for name in PATIENT_FIELDS:
            setattr(patient, name, v[name])
        patient.save()
        saved_ids.append(patient.id)
    index_columns = [f.column for f in sealer.indexes]
    bulk = {p.id: p for p in Patient.objects.filter(id__in=bulk_ids)}
    saved = {p.id: p for p in Patient.objects.filter(id__in=saved_ids)}
    for bulk_id, saved_id, row in zip(bulk_ids, saved_ids, tuple_rows, strict=True):
        a, b = bulk[bulk_id], saved[saved_id]
        assert a.identity == b.identity and a.contact == b.contact
        for name in PATIENT_FIELDS:
            assert getattr(a, name) == getattr(b, name), name
        assert [getattr(a, c) for c in index_columns] == [getattr(b, c) for c in index_columns]
        assert dict(zip(sealer.columns, row, strict=True))["bidx_nir"] == a.bidx_nir
    # a bulk ciphertext opens only on its own row
    stolen = _raw("patients_patient", "identity", bulk_ids[0])
    with connection.cursor() as cursor:
        cursor.execute("UPDATE patients_patient SET identity = %s WHERE id = %s",
                       [stolen, bulk_ids[1]])  # fmt: skip
    with pytest.raises(DecryptionError):
        _ = Patient.objects.get(pk=bulk_ids[1]).birth_name
