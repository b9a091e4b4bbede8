from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "rempart.web"
    label = "web"
    verbose_name = "Interface web"

    def ready(self) -> None:
        from rempart.web import signals  # noqa: F401  # connects the login receivers
