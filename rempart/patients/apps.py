from django.apps import AppConfig


class PatientsConfig(AppConfig):
    name = "rempart.patients"
    label = "patients"
    verbose_name = "Patients"
