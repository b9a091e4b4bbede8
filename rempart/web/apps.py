from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "rempart.web"
    label = "web"
    verbose_name = "Interface web"
