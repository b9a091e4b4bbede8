"""The FHIR API's base, as an integrator meets it: the CapabilityStatement in FHIR JSON, and an
OperationOutcome (validated by fhir.resources) for every error: an unknown type, a method or a
format the server does not serve, a resource asked without a token."""

from __future__ import annotations

import pytest
from django.test import Client
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.operationoutcome import OperationOutcome


def test_the_capability_statement_says_r4_in_fhir_json(db):
    answer = Client().get("/fhir/metadata")
    assert answer.status_code == 200
    assert answer["Content-Type"].startswith("application/fhir+json")
    statement = CapabilityStatement.model_validate_json(answer.content)
    assert statement.fhirVersion == "4.0.1" and statement.kind == "instance"
    assert statement.format == ["application/fhir+json"]


@pytest.mark.parametrize(("method", "path", "headers", "status", "code"), [
    ("get", "/fhir/Nothing/1", {}, 404, "not-found"),
    ("get", "/fhir/Patient/1", {}, 401, "login"),
    ("post", "/fhir/Patient", {}, 401, "login"),
    ("delete", "/fhir/metadata", {}, 405, "not-supported"),
    ("get", "/fhir/metadata", {"HTTP_ACCEPT": "application/xml"}, 406, "not-supported"),
    ("get", "/fhir/metadata?_format=xml", {}, 406, "not-supported"),
])  # fmt: skip
def test_every_error_is_an_operation_outcome_in_french(db, method, path, headers, status, code):
    answer = getattr(Client(), method)(path, **headers)
    assert answer.status_code == status
    assert answer["Content-Type"].startswith("application/fhir+json")
    outcome = OperationOutcome.model_validate_json(answer.content)
    assert outcome.issue[0].code == code and outcome.issue[0].severity == "error"
    assert outcome.issue[0].diagnostics  # in French, for the integrator
    if status == 401:
        assert answer["WWW-Authenticate"].startswith("Bearer")
