"""The security officer's page of the FHIR API's clients: register a system with its public keys
(a JWK Set) and scopes, see them, disable one (its tokens stop at once)."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods

from rempart.directory.models import Role
from rempart.fhir.models import ApiClient
from rempart.fhir.services import SCOPES, TokenRefused, api_client_disable, api_client_register
from rempart.records.actors import actor_for_request
from rempart.web.views import _require

# Reading only, for now: writing through the API comes with the resources that allow it.
_READ_SCOPES = [(s, s) for s in sorted(SCOPES) if s.endswith((".read", ".rs"))]


class ClientForm(forms.Form):
    client_id = forms.SlugField(label=_("Identifiant du client (client_id)"), max_length=100)
    name = forms.CharField(label=_("Nom du système"), max_length=200)
    jwks = forms.CharField(label=_("Clés publiques (JWK Set, JSON)"), max_length=20_000,
                           widget=forms.Textarea(attrs={"rows": 6}))  # fmt: skip
    scopes = forms.MultipleChoiceField(label=_("Portées"), widget=forms.CheckboxSelectMultiple,
                                       choices=_READ_SCOPES)  # fmt: skip


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
                api_client_register(actor=actor, client_id=data["client_id"], name=data["name"],
                                    jwks=data["jwks"], scopes=list(data["scopes"]))  # fmt: skip
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
