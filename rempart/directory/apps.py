from django.apps import AppConfig


class DirectoryConfig(AppConfig):
    name = "rempart.directory"
    label = "directory"
    verbose_name = "Annuaire"
