"""URL map."""

from django.urls import include, path

urlpatterns = [path("", include("rempart.web.urls"))]
