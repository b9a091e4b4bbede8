from django.apps import AppConfig


class BreachConfig(AppConfig):
    name = "rempart.breach"
    label = "breach"
    verbose_name = "Violations de données"
