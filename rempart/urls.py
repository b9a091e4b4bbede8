"""URL map."""

from django.urls import include, path

urlpatterns = [
    path("i18n/", include("django.conf.urls.i18n")),  # set_language: French first, English
    path("fhir/", include("rempart.fhir.urls")),
    path("", include("rempart.web.urls")),
]
