from django.apps import AppConfig


class SynthConfig(AppConfig):
    name = "rempart.synth"
    label = "synth"
    verbose_name = "Données synthétiques"
