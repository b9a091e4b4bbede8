"""The security officer's page of the FHIR API's clients: register a system with its public keys
(a JWK Set) and scopes, see them, disable one (its tokens stop at once)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode, urlsplit

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from rempart.access.policy import AccessDenied
from rempart.directory.models import Establishment, Role
from rempart.exports.models import ExportPurpose
from rempart.fhir.models import ApiClient, ClientKind
from rempart.fhir.services import (
    TokenRefused,
    api_client_disable,
    api_client_register,
    authorisation_check,
    authorisation_grant,
)
from rempart.records.actors import actor_for_request
from rempart.web.views import _require

# What the API serves: reading every resource, creating and updating patients. The context
# (system/ or user/) comes from the kind of client.
_ACCESS = [
    ("Patient.rs", _("Patients : lire, chercher")),
    ("Patient.cu", _("Patients : créer, modifier")),
    ("Encounter.rs", _("Séjours : lire, chercher")),
    ("Encounter.cu", _("Séjours : prévoir, admettre, faire sortir, annuler")),
    ("MedicationRequest.rs", _("Prescriptions : lire, chercher")),
    ("MedicationRequest.c", _("Prescriptions : rédiger des lignes en brouillon (médecins)")),
    ("Practitioner.rs", _("Praticiens : lire, chercher")),
    ("Organization.rs", _("Établissements : lire, chercher")),
    ("AuditEvent.rs", _("Journal d'audit : lire, chercher")),
    ("Group.rs", _("Groupes par établissement : lire, demander un export en masse ($export)")),
]


class ClientForm(forms.Form):
    kind = forms.ChoiceField(label=_("Type de client"), widget=forms.RadioSelect,
                             choices=ClientKind.choices, initial=ClientKind.SYSTEM)  # fmt: skip
    client_id = forms.SlugField(label=_("Identifiant du client (client_id)"), max_length=100)
    name = forms.CharField(label=_("Nom"), max_length=200)
    establishments = forms.ModelMultipleChoiceField(
        label=_("Établissements servis (système)"),
        required=False,
        queryset=Establishment.objects.order_by("name"),
        widget=forms.CheckboxSelectMultiple,
    )
    jwks = forms.CharField(label=_("Clés publiques (JWK Set, JSON ; système)"), max_length=20_000,
                           required=False, widget=forms.Textarea(attrs={"rows": 6}))  # fmt: skip
    redirect_uris = forms.CharField(label=_("Adresses de retour, une par ligne (application)"),
                                    max_length=5_000, required=False,
                                    widget=forms.Textarea(attrs={"rows": 2}))  # fmt: skip
    scopes = forms.MultipleChoiceField(label=_("Portées"), widget=forms.CheckboxSelectMultiple,
                                       choices=_ACCESS)  # fmt: skip
    export_recipient = forms.CharField(label=_("Clé publique age des exports en masse "
                                               "(système, facultatif)"),
                                       max_length=100, required=False)  # fmt: skip
    export_purpose = forms.ChoiceField(label=_("Motif des exports en masse"), required=False,
                                       choices=[("", "—"), *ExportPurpose.choices])  # fmt: skip

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("kind") == ClientKind.SYSTEM:
            if not data.get("establishments"):
                self.add_error("establishments", _("Un système sert au moins un établissement."))
            if not data.get("jwks"):
                self.add_error("jwks", _("Un système enregistre ses clés publiques."))
        elif data.get("kind") == ClientKind.APP and not data.get("redirect_uris", "").split():
            self.add_error("redirect_uris", _("Une application enregistre son adresse de retour."))
        return data


@login_required
@require_http_methods(["GET", "POST"])
def fhir_clients_page(request: HttpRequest) -> HttpResponse:
    _require(request, Role.SECURITY_OFFICER)
    actor = actor_for_request(request)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    form = ClientForm(request.POST if action == "add" else None)
    try:
        if action == "add" and form.is_valid():
            data = form.cleaned_data
            if ApiClient.objects.filter(client_id=data["client_id"]).exists():
                form.add_error("client_id", _("Cet identifiant est déjà enregistré."))
            else:
                system = data["kind"] == ClientKind.SYSTEM
                context = "system/" if system else "user/"
                api_client_register(
                    actor=actor, client_id=data["client_id"], name=data["name"],
                    scopes=[context + s for s in data["scopes"]],
                    jwks=data["jwks"] if system else "",
                    establishments=list(data["establishments"]) if system else None,
                    redirect_uris=None if system else data["redirect_uris"].split(),
                    export_recipient=data["export_recipient"] if system else "",
                    export_purpose=data["export_purpose"] if system else "",
                )  # fmt: skip
                messages.success(request, _("Client enregistré."))
                return redirect("fhir-clients")
        if action == "disable":
            api_client_disable(actor=actor, client_id=request.POST.get("client_id", ""))
            return redirect("fhir-clients")
    except TokenRefused as exc:
        form.add_error(None, str(exc))
    return render(request, "web/fhir_clients.html", {
        "form": form, "clients": ApiClient.objects.order_by("client_id"),
    })  # fmt: skip


_SCOPE_WORDS = {"r": _("lire"), "s": _("chercher"), "c": _("créer"), "u": _("modifier"),
                "d": _("supprimer")}  # fmt: skip


@login_required
@require_http_methods(["GET", "POST"])
def fhir_authorize_page(request: HttpRequest) -> HttpResponse:
    """SMART App Launch: an application asks to act for the signed-in staff member. The
    request is checked before anything is shown; an unknown application or an unregistered
    return address is never redirected to. Approving gives a one-time code (60 s, PKCE)."""
    source = request.POST if request.method == "POST" else request.GET
    params = {k: str(source.get(k, "")) for k in source if k != "csrfmiddlewaretoken"}
    try:
        asked = authorisation_check(params)
    except TokenRefused as exc:
        return render(request, "web/fhir_authorize.html", {"refused": str(exc)}, status=400)
    actor = actor_for_request(request)
    back = asked.redirect_uri + ("&" if "?" in asked.redirect_uri else "?")
    if request.method == "POST":
        if request.POST.get("action") != "approve":
            return redirect(back + urlencode({"error": "access_denied", "state": asked.state}))
        try:
            code = authorisation_grant(actor=actor, user=request.user, request=asked)
        except AccessDenied:
            return render(request, "web/fhir_authorize.html",
                          {"refused": _("Votre fonction ne permet pas d'autoriser une "
                                        "application.")}, status=403)  # fmt: skip
        return redirect(back + urlencode({"code": code, "state": asked.state}))
    rights = []
    for scope in asked.scopes:
        kind, _dot, access = scope.partition("/")[2].partition(".")
        letters = {"read": "rs", "write": "cud", "*": "cruds"}.get(access, access)
        rights.append((kind, ", ".join(str(_SCOPE_WORDS[x]) for x in letters if x in _SCOPE_WORDS)))
    response = render(request, "web/fhir_authorize.html",
                      {"client": asked.client, "rights": rights, "params": params})  # fmt: skip
    # The approval's redirect goes to the application: the page's form-action allows its
    # registered origin, and only it (a browser applies form-action to the redirect too).
    origin = urlsplit(asked.redirect_uri)
    response._csp_update = {"form-action": [f"{origin.scheme}://{origin.netloc}"]}  # type: ignore[attr-defined]
    return response
