"""Every error of the FHIR API is an OperationOutcome (fhir.resources validates it), with its
diagnostics in French and never a patient's value."""

from __future__ import annotations

from django.http import HttpResponse
from fhir.resources.R4B.operationoutcome import OperationOutcome

FHIR_JSON = "application/fhir+json"


class FhirError(Exception):
    """An error to answer as an OperationOutcome: HTTP status, FHIR issue code, diagnostics."""

    def __init__(self, status: int, code: str, diagnostics: str) -> None:
        super().__init__(diagnostics)
        self.status, self.code, self.diagnostics = status, code, diagnostics


def outcome_response(status: int, code: str, diagnostics: str,
                     severity: str = "error") -> HttpResponse:  # fmt: skip
    outcome = OperationOutcome.model_validate({"issue": [
        {"severity": severity, "code": code, "diagnostics": diagnostics}]})  # fmt: skip
    return fhir_response(outcome.model_dump_json(exclude_none=True), status=status)


def fhir_response(body: str, status: int = 200) -> HttpResponse:
    response = HttpResponse(body, status=status, content_type=f"{FHIR_JSON}; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response
