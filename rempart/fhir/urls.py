"""The FHIR API's routes, under /fhir/."""

from django.urls import path

from rempart.fhir import views

urlpatterns = [
    path("metadata", views.metadata, name="fhir-metadata"),
    path("auth/token", views.token, name="fhir-token"),
    path("<path:rest>", views.resource, name="fhir-resource"),
]
