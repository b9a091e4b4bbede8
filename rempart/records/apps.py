from django.apps import AppConfig


class RecordsConfig(AppConfig):
    name = "rempart.records"
    label = "records"
    verbose_name = "Dossier patient"
