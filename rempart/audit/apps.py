from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AuditConfig(AppConfig):
    name = "rempart.audit"
    label = "audit"
    verbose_name = "Journal d'audit"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_grant_app_role, sender=self)


def _grant_app_role(sender: Any, using: str = "default", **kwargs: Any) -> None:
    """After every migrate (the last app's tables included): least privilege for the role the
    application logs in as, when it is set (REMPART_DB_APP_ROLE)."""
    from django.conf import settings
    from django.db import connections

    from rempart.audit import protection

    connection = connections[using]
    if settings.REMPART_DB_APP_ROLE and connection.vendor == "postgresql":
        protection.grant_app_role(connection, settings.REMPART_DB_APP_ROLE)
