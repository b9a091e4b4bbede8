"""Bad input, generated (hypothesis): the import's file reader and row parser, the leak
analyser's sample reader, and every form of the pages. Each bad input gets a clear error (the
module's own exception, or the form's errors), never a crash, never a value echoed in the
message, and writes nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from django import forms
from django.core.exceptions import ValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rempart.breach.readers import SampleError, read_sample
from rempart.imports import services as imports
from rempart.imports.sources import Mapping, SourceError, read_rows, sniff
from rempart.patients.models import Patient

SLOW = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])  # fmt: skip
HEADER = ["ipp", "nom", "nom_jeune_fille", "prenoms", "prenom", "sexe", "naissance", "matricule",
          "lieu_naissance", "tel", "tel2", "email", "adresse", "cp", "ville",
          "medecin_traitant_rpps", "statut_identite"]  # fmt: skip
text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=30)
plausible = st.one_of(text, st.sampled_from([
    "", " ", "DUPONT", "Jean", "M", "f", "2", "12/04/1961", "1961-04-12", "31/02/1990",
    "01/01/1800", "12/04/2999", "1 61 04 75 056 123 45", "2A", "2B12345678901", "06 12 34 56 78",
    "+33 (0)6 12", "lou.guér3@exemple.fr", "@", "75011", "7501", "Paris 11e", "10003456789",
    "QUAL", "RECUP", "VALI", "xx", "0" * 40, "é" * 3]))  # fmt: skip


@pytest.fixture
def context(db: None) -> Any:
    return imports._Context(Mapping.load(None), HEADER, {}, as_copy=True)


@SLOW
@given(rows=st.lists(st.lists(plausible, min_size=len(HEADER) - 2, max_size=len(HEADER) + 1),
                     min_size=1, max_size=6))  # fmt: skip
def test_import_rows_are_taken_or_refused_with_reasons_that_name_no_value(context, rows):
    """A row comes in (with a usable identity) or is refused, line by line, with reasons made of
    field names and rules: never a crash that would stop the file, never a value."""
    numbered = [(i + 2, values) for i, values in enumerate(rows)]
    batch = imports.process_batch(context, numbered)
    assert batch.count + len(batch.rejects) == len(rows)
    for line, reasons, values in batch.rejects:
        assert reasons and line >= 2
        for value in values.values():
            if len(value.strip()) >= 5 and not value.strip().isdigit():
                assert value.strip() not in reasons, (value, reasons)


@SLOW
@given(
    data=st.one_of(
        st.binary(max_size=400),
        text.map(lambda t: t.encode("utf-8")),
        st.lists(st.lists(plausible, max_size=5), max_size=5).map(
            lambda rows: "\n".join(";".join(r) for r in rows).encode("cp1252", "replace")
        ),
    )
)
def test_an_import_file_is_read_or_refused_as_a_whole(tmp_path_factory, data):
    path = Path(tmp_path_factory.mktemp("import")) / "export.csv"
    path.write_bytes(data)
    try:
        header, rows = read_rows(path, sniff(path))
        Mapping.load(None).check_header(header)
        for _ in rows:
            pass
    except SourceError as exc:
        assert str(exc)  # a clear reason, for the whole file: nothing is imported


@SLOW
@given(
    data=st.one_of(
        st.binary(max_size=600),
        text.map(lambda t: t.encode("utf-8")),
        st.recursive(
            st.one_of(st.none(), st.booleans(), st.integers(), text),
            lambda inner: st.one_of(
                st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)
            ),
            max_leaves=12,
        ).map(lambda v: __import__("orjson").dumps(v)),
    )
)
def test_a_leaked_sample_is_read_or_refused_clearly(data):
    try:
        sample = read_sample(data)
    except SampleError as exc:
        assert str(exc)
        return
    assert sample.rows and isinstance(sample.rows[0], list)
    if sample.header is not None:
        assert all(len(row) <= max(len(sample.header), 1) * 2 for row in sample.rows[:50])


def _forms() -> list[type[forms.Form]]:
    from rempart.web import breach_views, fhir_views, views, violation_views

    found = []
    for module in (views, breach_views, fhir_views, violation_views):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, forms.BaseForm) and (
                    value.__module__ == module.__name__):  # fmt: skip
                found.append(value)
    return found


def _form_data(form_class: type[forms.Form]) -> Any:
    """Values for each field of the form: its own kind of value, or garbage."""
    fields = form_class.base_fields
    values = st.one_of(
        plausible,
        st.sampled_from(
            ["0", "-1", "9" * 30, "2026-13-45", "on", str(uuid.uuid4()), "<script>", "' OR 1=1"]
        ),
    )
    return st.fixed_dictionaries({}, optional={name: values for name in fields})


FORMS = _forms()


@pytest.mark.parametrize("form_class", FORMS, ids=[f.__name__ for f in FORMS])
def test_every_form_answers_bad_input_with_its_errors(group, form_class):
    assert len(FORMS) >= 15  # the pages' forms were all found

    @settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
    @given(data=_form_data(form_class))
    def check(data: dict[str, str]) -> None:
        try:
            form = form_class(data=data)
        except TypeError:  # forms built with the request's context (choices): built empty
            form = form_class(data=data, **_extra(form_class))
        before = Patient.objects.count()
        valid = form.is_valid()
        if not valid:  # (a form shows its own user what they typed: that is not a leak)
            assert form.errors
        assert Patient.objects.count() == before  # a form validates, it never writes

    check()


def _extra(form_class: type[forms.Form]) -> dict[str, Any]:
    import inspect

    parameters = inspect.signature(form_class.__init__).parameters
    extra: dict[str, Any] = {}
    for name in parameters:
        if name in ("self", "data", "args", "kwargs", "files"):
            continue
        if name == "actor":
            from rempart.audit.context import Actor

            extra[name] = Actor.system("tests")
        else:
            extra[name] = []
    return extra


def test_the_registration_page_refuses_bad_input_and_writes_nothing(group):
    """Through HTTP, as a secretary's browser (or a forged request) would send it."""
    from rempart.directory.models import Establishment, Role
    from tests.test_breach_pages import _client

    here = Establishment.objects.order_by("finess").first()
    desk = _client("sec.garbage", Role.SECRETARY, here)

    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
    @given(data=st.fixed_dictionaries({}, optional={
        name: plausible for name in ("birth_name", "given_names", "sex", "birth_date",
                                     "nir", "email", "phone_mobile", "postcode",
                                     "identity_status", "establishment")}))  # fmt: skip
    def check(data: dict[str, str]) -> None:
        before = Patient.objects.count()
        answer = desk.post("/patients/nouveau/", data)
        assert answer.status_code in (200, 302, 400, 403)
        if answer.status_code != 302:
            assert Patient.objects.count() == before

    check()


def test_a_validation_error_names_fields_not_values():
    from rempart.patients.validation import PatientData, clean_patient

    secret = "ZYXWVUTSRQ"
    with pytest.raises(ValidationError) as caught:
        clean_patient(PatientData(birth_name=secret, given_names="", sex="X",
                                  birth_date=dt.date(1800, 1, 1), email=f"{secret}@",
                                  phone_mobile=secret, postcode=secret))  # fmt: skip
    assert secret not in str(caught.value.message_dict)
