from django.apps import AppConfig


class CareConfig(AppConfig):
    name = "rempart.care"
    label = "care"
    verbose_name = "Soins"
