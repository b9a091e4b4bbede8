from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "rempart.audit"
    label = "audit"
    verbose_name = "Journal d'audit"
    default_auto_field = "django.db.models.BigAutoField"
