"""The FHIR API's clients and tokens. A system (lab, pharmacy, regional platform) is registered by
the security officer with the public keys it signs its assertions with (SMART Backend Services)
and the scopes it may ask; a token is random, kept as its SHA-256 only, short-lived."""

from __future__ import annotations

from django.db import models

from rempart.lib.ids import new_id


class ApiClient(models.Model):
    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    client_id = models.SlugField(max_length=100, unique=True)
    name = models.CharField(max_length=200)
    jwks = models.JSONField()  # public keys only (checked when registered)
    scopes = models.JSONField(default=list)  # what it may ask, e.g. "system/Patient.read"
    active = models.BooleanField(default=True)
    created_by = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Client FHIR {self.client_id}"


class ApiToken(models.Model):
    id = models.BigAutoField(primary_key=True)
    digest = models.BinaryField(unique=True)  # SHA-256 of the token: a dump holds no token
    client = models.ForeignKey(ApiClient, on_delete=models.CASCADE, related_name="tokens")
    scopes = models.JSONField(default=list)
    expires_at = models.DateTimeField()
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Jeton de {self.client_id}"


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
