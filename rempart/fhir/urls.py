"""The FHIR API's routes, under /fhir/."""

from django.urls import path

from rempart.fhir import views
from rempart.web import fhir_views

urlpatterns = [
    path("metadata", views.metadata, name="fhir-metadata"),
    path("auth/token", views.token, name="fhir-token"),
    path("auth/authorize", fhir_views.fhir_authorize_page, name="fhir-authorize"),
    path(".well-known/smart-configuration", views.smart_configuration, name="fhir-smart"),
    path("", views.resource, {"rest": ""}, name="fhir-base"),
    path("<path:rest>", views.resource, name="fhir-resource"),
]
