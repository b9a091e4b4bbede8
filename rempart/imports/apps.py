from django.apps import AppConfig


class ImportsConfig(AppConfig):
    name = "rempart.imports"
    label = "imports"
    verbose_name = "Reprise de données"
