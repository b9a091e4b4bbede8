"""Bad input gets a clear validation error that never repeats the value, and nothing is written."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st

from rempart.audit.context import Actor
from rempart.care.models import Prescription, PrescriptionLine, SignedPrescriptionError, Stay
from rempart.directory.models import Practitioner, Service
from rempart.lib.identifiers import luhn_complete, nir_check_digits
from rempart.patients.models import Patient
from rempart.patients.validation import PatientData, clean_patient
from rempart.records.services import care, directory
from rempart.records.services.patients import patient_create

ACTOR = Actor.system("tests")  # the console: access control is tested in test_access.py


def _nir(body: str) -> str:
    return body + nir_check_digits(body)


GOOD_NIR = _nir("2850375115042")


def _data(**changes) -> PatientData:
    base = dict(
        birth_name="Lefèvre",
        given_names="Anne Marie",
        sex="F",
        birth_date=dt.date(1985, 3, 14),
        birth_place_code="75115",
        nir=GOOD_NIR,
        identity_status="QUAL",
    )
    base.update(changes)
    return PatientData(**base)


def _refused(data: PatientData) -> dict[str, list[str]]:
    count = Patient.objects.count()
    with pytest.raises(ValidationError) as info:
        patient_create(actor=ACTOR, data=data)
    assert Patient.objects.count() == count
    return info.value.message_dict


def test_a_valid_patient_is_created(db):
    patient = patient_create(actor=ACTOR, data=_data())
    assert patient.first_given_name == "Anne"
    assert patient.birth_name == "LEFÈVRE"


def test_a_nir_with_a_wrong_key_is_refused(db):
    wrong = GOOD_NIR[:13] + f"{(int(GOOD_NIR[13:]) + 1) % 97:02d}"
    errors = _refused(_data(nir=wrong))
    assert errors == {"nir": ["La clé du NIR est fausse."]}
    assert wrong not in str(errors)


def test_a_nir_that_contradicts_the_sex_is_refused(db):
    assert _refused(_data(sex="M"))["nir"] == ["Le NIR ne correspond pas au sexe."]


def test_a_nir_that_contradicts_the_birth_place_is_refused(db):
    assert _refused(_data(birth_place_code="92012"))["nir"] == [
        "Le NIR ne correspond pas au lieu de naissance."
    ]


def test_a_birth_date_in_the_future_is_refused(db):
    tomorrow = timezone.localdate() + dt.timedelta(days=1)
    errors = _refused(_data(birth_date=tomorrow, nir=""))
    assert errors["birth_date"] == ["La date de naissance est dans le futur."]


def test_a_qualified_identity_needs_its_ins(db):
    assert "nir" in _refused(_data(nir=""))


def test_required_traits_and_malformed_contact_are_all_reported_at_once(db):
    errors = _refused(
        _data(
            birth_name=" ",
            given_names="",
            email="pas-une-adresse",
            postcode="7501",
            phone_mobile="12",
        )
    )
    assert set(errors) == {"birth_name", "given_names", "email", "postcode", "phone_mobile"}


def test_a_bad_finess_is_refused(db):
    with pytest.raises(ValidationError, match="clé du numéro FINESS"):
        directory.establishment_create(finess="750000001", name="X", kind="clinic")
    with pytest.raises(ValidationError, match="9 chiffres"):
        directory.establishment_create(finess="75000", name="X", kind="clinic")
    assert directory.establishment_create(
        finess=luhn_complete("75000000"), name="Clinique test", kind="clinic"
    ).pk


def test_a_bad_rpps_is_refused(db):
    with pytest.raises(ValidationError, match="clé du numéro RPPS"):
        directory.practitioner_create(
            rpps="10000000000", family_name="X", given_name="Y", specialty="MG", internal=False
        )


def test_a_discharge_before_admission_is_refused_by_the_service(group):
    patient = Patient.objects.get(pk=group.patients[0].id)
    service = Service.objects.first()
    now = timezone.now() - dt.timedelta(days=2)
    with pytest.raises(ValidationError) as info:
        care.stay_create(
            actor=ACTOR,
            patient=patient,
            service=service,
            kind="full",
            planned_admission=now,
            admitted_at=now,
            discharged_at=now - dt.timedelta(hours=1),
        )
    assert info.value.message_dict == {"discharged_at": ["La sortie précède l'entrée."]}


def test_a_discharge_before_admission_is_refused_by_the_database(group):
    stay = Stay.objects.exclude(discharged_at=None).first()
    with pytest.raises(IntegrityError), transaction.atomic():
        Stay.objects.filter(pk=stay.pk).update(
            discharged_at=stay.admitted_at - dt.timedelta(days=1)
        )


def test_a_stay_discharge_goes_through_its_checks(group):
    patient = Patient.objects.get(pk=group.patients[0].id)
    service = Service.objects.first()
    start = timezone.now() - dt.timedelta(days=1)
    stay = care.stay_create(
        actor=ACTOR,
        patient=patient,
        service=service,
        kind="full",
        planned_admission=start,
        admitted_at=start,
        reason="Bilan",
    )
    with pytest.raises(ValidationError, match="La sortie précède"):
        care.stay_discharge(actor=ACTOR, stay=stay, at=start - dt.timedelta(minutes=1))
    care.stay_discharge(actor=ACTOR, stay=stay)
    assert Stay.objects.get(pk=stay.pk).discharged_at is not None


def _draft(group) -> Prescription:
    patient = Patient.objects.get(pk=group.patients[0].id)
    prescriber = Practitioner.objects.filter(internal=True).first()
    return care.prescription_create(
        actor=ACTOR,
        patient=patient,
        prescriber=prescriber,
        lines=[
            care.LineData(
                drug="paracetamol-1g-cp",
                dose="1 comprimé",
                route="oral",
                frequency="3 fois par jour",
                duration_days=5,
            )
        ],
    )


def test_a_signed_prescription_cannot_be_edited(group):
    prescription = care.prescription_sign(actor=ACTOR, prescription=_draft(group))
    line = care.LineData(
        drug="ibuprofene-400-cp",
        dose="1 comprimé",
        route="oral",
        frequency="matin",
        duration_days=3,
    )
    with pytest.raises(SignedPrescriptionError):
        care.prescription_line_add(actor=ACTOR, prescription=prescription, line=line)
    with pytest.raises(SignedPrescriptionError):
        care.prescription_sign(actor=ACTOR, prescription=prescription)
    existing = PrescriptionLine.objects.get(prescription=prescription)
    existing.content = {**existing.content, "dose": "2 comprimés"}
    with pytest.raises(SignedPrescriptionError):
        existing.save()
    assert PrescriptionLine.objects.get(pk=existing.pk).content["dose"] == "1 comprimé"


def test_a_prescription_line_needs_a_catalogue_drug_and_a_sane_duration(group):
    prescription = _draft(group)
    bad = care.LineData(drug="inconnu", dose="", route="nasale", frequency="", duration_days=0)
    with pytest.raises(ValidationError) as info:
        care.prescription_line_add(actor=ACTOR, prescription=prescription, line=bad)
    assert set(info.value.message_dict) == {"drug", "dose", "route", "frequency", "duration_days"}
    assert prescription.lines.count() == 1


def test_errors_speak_the_users_language():
    from django.utils import translation

    bad = PatientData(birth_name="", given_names="Anne", sex="F", birth_date=dt.date(1980, 1, 1))
    with pytest.raises(ValidationError) as french:
        clean_patient(bad)
    assert french.value.message_dict["birth_name"] == ["Le nom de naissance est obligatoire."]
    with translation.override("en"):
        with pytest.raises(ValidationError) as english:
            clean_patient(bad)
        assert english.value.message_dict["birth_name"] == ["The birth name is required."]


# --- what a legacy import keeps ----------------------------------------------------------------


def test_accented_addresses_are_addresses():
    from rempart.patients.validation import email_is_valid

    assert email_is_valid("lou.guér3@exemple.fr") and email_is_valid("zoé@exemple.fr")
    assert email_is_valid("jean.dupont@exemple.fr")
    assert not email_is_valid("jean..dupont@@exemple") and not email_is_valid("é@")
    assert clean_patient(_data(email="Lou.Guér3@Exemple.fr")).email == "lou.guér3@exemple.fr"


_LOCAL = st.text(alphabet="az09_+-.!é", max_size=5)
_LABEL = st.one_of(st.text(alphabet="az09-_é", max_size=4),
                   st.integers(61, 64).map(lambda n: "a" * n))  # fmt: skip
_ADDRESS = st.builds(
    lambda local, labels, tld: f"{local}@{'.'.join([*labels, tld])}",
    _LOCAL, st.lists(_LABEL, max_size=3), st.text(alphabet="az0-", max_size=4),
)  # fmt: skip


@given(_ADDRESS)
@settings(max_examples=2000, deadline=None)
def test_the_plain_address_shortcut_accepts_nothing_django_refuses(email):
    """email_is_valid reads the plainest addresses with one regex, not Django's validator: all
    it accepts so, Django must accept too (a refused address must not slip in by the shortcut)."""
    from django.core.validators import validate_email

    from rempart.patients.validation import _PLAIN_EMAIL

    if _PLAIN_EMAIL.fullmatch(email):
        validate_email(email)  # raises on an address Django refuses


def test_an_import_keeps_the_patient_and_leaves_a_faulty_field_out():
    from rempart.patients.validation import clean_for_import

    kept, warnings = clean_for_import(_data(email="pas une adresse", postcode="9310",
                                            phone_home="06 12"))  # fmt: skip
    assert (kept.email, kept.postcode, kept.phone_home) == ("", "", "")
    assert [w.split(":")[0] for w in warnings] == ["email", "phone_home", "postcode"]
    assert all("pas une adresse" not in w for w in warnings)  # reasons, never values


@pytest.mark.parametrize(("postcode", "city", "fault"), [
    ("93200", "St-Denis", None), ("93200", "SAINT DENIS", None), ("75011", "Paris 11e", None),
    ("75011", "paris 11ème arrondissement", None), ("20000", "AJACCIO CEDEX 1", None),
    ("91000", "Évry-Courcouronnes", None), ("93200", "", None),
    ("93200", "Montreuil", "city"), ("99999", "Paris", "postcode"), ("75011", "Lyon", "city"),
])  # fmt: skip
def test_an_import_checks_postcode_and_town_against_the_insee_list(postcode, city, fault):
    """The way people write a town is its commune; a town the postcode does not serve, or a
    postcode INSEE does not know, warns and the address is kept for the desk to check."""
    from rempart.patients.validation import clean_for_import

    kept, warnings = clean_for_import(_data(postcode=postcode, city=city))
    assert (kept.postcode, kept.city) == (postcode, " ".join(city.split()).upper())
    assert [w.split(":")[0] for w in warnings] == ([fault] if fault else [])
    assert all(city not in w or not city for w in warnings)


def test_an_import_makes_an_identity_with_a_wrong_nir_provisional():
    from rempart.patients.validation import clean_for_import

    good = _data()
    wrong = good.nir[:13] + ("00" if good.nir[13:] != "00" else "01")
    kept, warnings = clean_for_import(_data(nir=wrong, identity_status="QUAL"))
    assert kept.nir == "" and kept.identity_status == "PROV"
    assert warnings[0].startswith("nir:") and warnings[-1].startswith("identity_status:")
    kept, _ = clean_for_import(_data(sex=""))
    assert kept.sex == "I"


FATAL = [{"birth_name": ""}, {"given_names": ""}, {"birth_date": None},
         {"birth_date": dt.date(2999, 1, 1)}]  # fmt: skip


@pytest.mark.parametrize("fault", FATAL)
def test_an_import_refuses_only_a_line_without_a_usable_identity(fault):
    from rempart.patients.validation import clean_for_import

    with pytest.raises(ValidationError) as refused:
        clean_for_import(_data(email="pas une adresse", **fault))
    assert set(refused.value.message_dict) == set(fault)  # the e-mail is not what refused it
