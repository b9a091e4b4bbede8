from django.apps import AppConfig


class FhirConfig(AppConfig):
    name = "rempart.fhir"
    label = "fhir"
    verbose_name = "API FHIR"
