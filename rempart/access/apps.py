from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "rempart.access"
    label = "access"
    verbose_name = "Contrôle d'accès"
    default_auto_field = "django.db.models.BigAutoField"
