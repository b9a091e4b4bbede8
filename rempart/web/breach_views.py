"""Pages of the breach response: controlled exports (ask, decide, produce, download) and the
leak analyser (upload a sample, read the report, take it as PDF or JSON)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.files.uploadhandler import MemoryFileUploadHandler
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods

from rempart.access.policy import AccessDenied
from rempart.breach.models import BreachAnalysis
from rempart.breach.readers import SampleError
from rempart.breach.report import report_context, report_pdf
from rempart.breach.services import ANALYSTS, MAX_BYTES, breach_analyse
from rempart.directory.models import Establishment, Service
from rempart.exports import services as exports
from rempart.exports.formats import GROUP_LABELS
from rempart.exports.models import ExportFormat, ExportPurpose, ExportRequest, RecipientKind
from rempart.records.actors import actor_for_request
from rempart.web.views import _role

# --- exports --------------------------------------------------------------------------------------


class ExportForm(forms.Form):
    purpose = forms.ChoiceField(label=_("Finalité"), choices=ExportPurpose.choices)
    detail = forms.CharField(label=_("Précisions (sans donnée de patient)"), max_length=1000,
                             widget=forms.Textarea(attrs={"rows": 3}))  # fmt: skip
    establishment = forms.ModelChoiceField(label=_("Établissement"),
                                           queryset=Establishment.objects.none())  # fmt: skip
    service = forms.ModelChoiceField(label=_("Service (facultatif : patients y ayant séjourné)"),
                                     queryset=Service.objects.none(), required=False)  # fmt: skip
    stays_since = forms.DateField(label=_("Séjours depuis le (facultatif)"), required=False,
                                  widget=forms.DateInput(attrs={"type": "date"}))  # fmt: skip
    groups = forms.MultipleChoiceField(label=_("Données à exporter"),
                                       choices=list(GROUP_LABELS.items()),
                                       widget=forms.CheckboxSelectMultiple)  # fmt: skip
    format = forms.ChoiceField(label=_("Format"), choices=ExportFormat.choices)
    recipient_kind = forms.ChoiceField(label=_("Chiffrement"), choices=RecipientKind.choices,
                                       widget=forms.RadioSelect)  # fmt: skip
    recipient = forms.CharField(label=_("Clé publique age du destinataire (age1…)"),
                                max_length=100, required=False)  # fmt: skip

    def __init__(self, *args: Any, actor: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        places = Establishment.objects.order_by("name")
        if actor.role not in exports.GROUP_WIDE:
            places = places.filter(pk__in=actor.establishments)
        self.fields["establishment"].queryset = places  # type: ignore[attr-defined]
        self.fields["service"].queryset = Service.objects.filter(  # type: ignore[attr-defined]
            establishment__in=places).select_related("establishment")  # fmt: skip


@login_required
@require_http_methods(["GET", "POST"])
def exports_page(request: HttpRequest) -> HttpResponse:
    role = _role(request)
    if role not in exports.REQUESTERS:
        raise AccessDenied()
    actor = actor_for_request(request)
    form = ExportForm(request.POST or None, actor=actor)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        service = data["service"]
        ask = exports.ExportAsk(
            purpose=data["purpose"], detail=data["detail"],
            establishment_id=data["establishment"].pk, fields=tuple(data["groups"]),
            format=data["format"], recipient_kind=data["recipient_kind"],
            recipient=data["recipient"], service_id=service.pk if service else None,
            stays_since=data["stays_since"],
        )  # fmt: skip
        try:
            export = exports.export_request(actor=actor, ask=ask)
        except exports.ExportRefused as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Demande enregistrée : elle attend l'approbation du "
                                        "DPO ou du responsable sécurité."))  # fmt: skip
            return redirect("export", export_id=export.pk)
    mine = ExportRequest.objects.filter(requested_by_id=request.user.pk)
    to_decide = ExportRequest.objects.none()
    if role in exports.APPROVERS:
        to_decide = ExportRequest.objects.filter(status="requested").exclude(
            requested_by_id=request.user.pk)  # fmt: skip
    related = ("establishment", "requested_by", "decided_by")
    return render(request, "web/exports.html", {
        "form": form, "role": role,
        "mine": mine.select_related(*related).order_by("-requested_at")[:100],
        "to_decide": to_decide.select_related(*related).order_by("requested_at")[:100],
        "recent": ExportRequest.objects.select_related(*related).order_by("-requested_at")[:100]
        if role in exports.APPROVERS else [],
    })  # fmt: skip


class DecisionForm(forms.Form):
    note = forms.CharField(label=_("Motif de la décision (sans donnée de patient)"),
                           max_length=1000, required=False)  # fmt: skip


@login_required
@require_http_methods(["GET", "POST"])
def export_page(request: HttpRequest, export_id: uuid.UUID) -> HttpResponse:
    role = _role(request)
    if role not in exports.REQUESTERS:
        raise AccessDenied()
    export = get_object_or_404(ExportRequest.objects.select_related(
        "establishment", "service", "requested_by", "decided_by"), pk=export_id)  # fmt: skip
    mine = export.requested_by_id == request.user.pk
    if not mine and role not in exports.APPROVERS:
        raise AccessDenied()
    actor = actor_for_request(request)
    decision = DecisionForm(request.POST or None)
    passphrase = None
    action = request.POST.get("action", "") if request.method == "POST" else ""
    try:
        if action in ("approve", "refuse") and decision.is_valid():
            exports.export_decide(actor=actor, export_id=export.pk, approve=action == "approve",
                                  note=decision.cleaned_data["note"])  # fmt: skip
            return redirect("export", export_id=export.pk)
        if action == "produce":
            produced = exports.export_produce(actor=actor, export_id=export.pk)
            passphrase = produced.passphrase
            export.refresh_from_db()
    except exports.ExportRefused as exc:
        messages.error(request, str(exc))
        return redirect("export", export_id=export.pk)
    return render(request, "web/export.html", {
        "export": export, "mine": mine, "passphrase": passphrase, "decision": decision,
        "can_decide": role in exports.APPROVERS and not mine and export.status == "requested",
        "labels": [GROUP_LABELS.get(f, f) for f in export.fields],
        "detail": (export.notes or {}).get("detail", ""),
        "decision_note": (export.notes or {}).get("decision_note", ""),
    })  # fmt: skip


@login_required
@require_http_methods(["GET"])
def export_file(request: HttpRequest, export_id: uuid.UUID) -> HttpResponseBase:
    try:
        path = exports.export_download(actor=actor_for_request(request), export_id=export_id)
    except exports.ExportRefused as exc:
        messages.error(request, str(exc))
        return redirect("export", export_id=export_id)
    except ExportRequest.DoesNotExist:
        raise AccessDenied() from None
    return FileResponse(path.open("rb"), as_attachment=True, filename=f"export-{export_id}.age",
                        content_type="application/octet-stream")  # fmt: skip


# --- the leak analyser ----------------------------------------------------------------------------


class _MemoryOnly(MemoryFileUploadHandler):
    """A sample is stolen patient data: held in memory, never in a temporary file on disk."""

    def handle_raw_input(
        self, input_data: Any, META: Any, content_length: int, boundary: Any, encoding: Any = None
    ) -> None:
        self.activated = content_length <= MAX_BYTES


class SampleForm(forms.Form):
    sample = forms.FileField(label=_("Échantillon publié (CSV, JSON, XLSX ou texte)"))


def _analyst(request: HttpRequest) -> None:
    if _role(request) not in ANALYSTS:
        raise AccessDenied()


@csrf_exempt  # the upload handlers are set before the CSRF check reads the body (below)
@login_required
def breach_page(request: HttpRequest) -> HttpResponse:
    _analyst(request)
    request.upload_handlers = [_MemoryOnly(request)]
    return _breach_page(request)


@csrf_protect
@require_http_methods(["GET", "POST"])
def _breach_page(request: HttpRequest) -> HttpResponse:
    form = SampleForm(request.POST or None, request.FILES or None)
    if request.method == "POST":
        if form.is_valid():
            upload = form.cleaned_data["sample"]
            try:
                analysis = breach_analyse(actor=actor_for_request(request), data=upload.read(),
                                          file_name=upload.name or "échantillon")  # fmt: skip
            except SampleError as exc:
                form.add_error("sample", _("Fichier illisible, rien n'a été enregistré : %(why)s")
                               % {"why": exc})  # fmt: skip
            else:
                return redirect("breach-report", analysis_id=analysis.pk)
        elif not request.FILES:
            form.add_error("sample", _("Fichier absent ou trop volumineux (512 Mio au plus)."))
    analyses = BreachAnalysis.objects.order_by("-created_at")[:100]
    return render(request, "web/breach.html", {"form": form, "analyses": analyses})


@login_required
@require_http_methods(["GET"])
def breach_report(request: HttpRequest, analysis_id: uuid.UUID) -> HttpResponse:
    _analyst(request)
    analysis = get_object_or_404(BreachAnalysis, pk=analysis_id)
    return render(request, "web/breach_report.html",
                  {"analysis": analysis, **report_context(analysis.report)})  # fmt: skip


@login_required
@require_http_methods(["GET"])
def breach_report_file(request: HttpRequest, analysis_id: uuid.UUID, kind: str) -> HttpResponse:
    _analyst(request)
    analysis = get_object_or_404(BreachAnalysis, pk=analysis_id)
    if kind == "pdf":
        body, content_type = report_pdf(analysis.report), "application/pdf"
    elif kind == "json":
        body = orjson.dumps(analysis.report, option=orjson.OPT_INDENT_2)
        content_type = "application/json"
    else:
        raise AccessDenied()
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="analyse-{analysis.pk}.{kind}"'
    return response
