"""The FHIR API's clients and tokens. A system (lab, pharmacy, regional platform) is registered by
the security officer with the public keys it signs its assertions with (SMART Backend Services)
and the scopes it may ask; a token is random, kept as its SHA-256 only, short-lived."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from rempart.lib.ids import new_id


class ClientKind(models.TextChoices):
    SYSTEM = "system", "Système (SMART Backend Services)"
    APP = "app", "Application d'un utilisateur (SMART App Launch)"


class ApiClient(models.Model):
    """A system signs its assertions with its registered keys and acts as its own account (its
    establishments, budget and lock); an application acts for the staff member who approved it,
    within that person's care relationships, and proves it by PKCE."""

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    client_id = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=ClientKind.choices, default=ClientKind.SYSTEM)
    jwks = models.JSONField(default=dict)  # a system's public keys only (checked when registered)
    redirect_uris = models.JSONField(default=list)  # an application's, compared exactly
    scopes = models.JSONField(default=list)  # what it may ask, e.g. "system/Patient.read"
    # Bulk $export: the age public key its files are encrypted to, and the purpose its exports
    # are asked for; both vetted at registration, and again by the second person who approves.
    export_recipient = models.CharField(max_length=100, blank=True)
    export_purpose = models.CharField(max_length=20, blank=True)
    account = models.OneToOneField(settings.AUTH_USER_MODEL, null=True, blank=True,
                                   on_delete=models.PROTECT, related_name="api_client")  # fmt: skip
    active = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Client FHIR {self.client_id}"


class ApiToken(models.Model):
    id = models.BigAutoField(primary_key=True)
    digest = models.BinaryField(unique=True)  # SHA-256 of the token: a dump holds no token
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="tokens")
    # The staff member an application's token acts for (None: a system acting as itself).
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True,
                             on_delete=models.CASCADE, related_name="+")  # fmt: skip
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Jeton de {self.client_id}"


class AuthorisationCode(models.Model):
    """The one-time code a staff member's approval gives an application (SMART App Launch),
    kept as its SHA-256 with the PKCE challenge it must be redeemed with, for 60 seconds."""

    id = models.BigAutoField(primary_key=True)
    digest = models.BinaryField(unique=True)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    scopes = models.JSONField(default=list)
    redirect_uri = models.CharField(max_length=500)
    challenge = models.CharField(max_length=128)  # S256 of the application's verifier
    expires_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"Code d'autorisation {self.pk}"


class AssertionSeen(models.Model):
    """An assertion's id, kept until it expires: the same signed JWT is accepted once."""

    id = models.BigAutoField(primary_key=True)
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="+")
    jwt_id = models.CharField(max_length=200)
    expires_at = models.DateTimeField()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["client", "jwt_id"],
                                               name="assertion_used_once")]  # fmt: skip

    def __str__(self) -> str:
        return f"Assertion {self.jwt_id}"
