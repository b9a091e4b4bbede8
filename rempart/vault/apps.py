from django.apps import AppConfig


class VaultConfig(AppConfig):
    name = "rempart.vault"
    label = "vault"
    verbose_name = "Coffre (chiffrement)"
