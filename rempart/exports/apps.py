from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "rempart.exports"
    label = "exports"
    verbose_name = "Exports contrôlés"
