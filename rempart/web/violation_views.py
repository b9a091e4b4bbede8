"""Pages of the breach file ("dossier de violation"): open one, watch the 72-hour clock,
complete the facts in phases, attach analyses, record decisions and notifications, generate and
edit the drafts, take them as text or PDF. DPO and security officer only."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods
from fpdf import FPDF

from rempart.access.policy import AccessDenied
from rempart.breach import notify
from rempart.breach.models import BreachAnalysis, BreachDraft, BreachFile, DraftKind
from rempart.records.actors import actor_for_request
from rempart.records.reports import _latin1
from rempart.web.views import _role

NOTE_LABELS = {
    "title": _("Intitulé du dossier"),
    "facts": _("Faits : comment, quand, par qui la violation a été découverte"),
    "consequences": _("Conséquences probables pour les personnes"),
    "measures_taken": _("Mesures prises"),
    "measures_proposed": _("Mesures proposées"),
    "dpo_contact": _("Contact du délégué à la protection des données"),
}


def _handler(request: HttpRequest) -> None:
    if _role(request) not in notify.HANDLERS:
        raise AccessDenied()


class OpenForm(forms.Form):
    aware_at = forms.DateTimeField(
        label=_("Date et heure où le groupe en a eu connaissance"),
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        input_formats=["%Y-%m-%dT%H:%M"],
    )
    title = forms.CharField(label=NOTE_LABELS["title"], max_length=200, required=False)
    facts = forms.CharField(label=NOTE_LABELS["facts"], required=False,
                            widget=forms.Textarea(attrs={"rows": 3}))  # fmt: skip
    analysis = forms.ModelChoiceField(label=_("Analyse de fuite à rattacher (facultatif)"),
                                      queryset=BreachAnalysis.objects.none(),
                                      required=False)  # fmt: skip

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["analysis"].queryset = BreachAnalysis.objects.order_by(  # type: ignore[attr-defined]
            "-created_at")  # fmt: skip
        self.fields["analysis"].label_from_instance = _analysis_label  # type: ignore[attr-defined]


def _analysis_label(analysis: BreachAnalysis) -> str:
    return (f"{analysis.file_name} — {timezone.localtime(analysis.created_at):%d/%m/%Y %H:%M} — "
            f"{analysis.report.get('matches', {}).get('patients', 0)} patients")  # fmt: skip


@login_required
@require_http_methods(["GET", "POST"])
def violations_page(request: HttpRequest) -> HttpResponse:
    _handler(request)
    form = OpenForm(request.POST or None, initial={"aware_at": timezone.localtime()})
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            breach = notify.breach_open(
                actor=actor_for_request(request), aware_at=data["aware_at"], title=data["title"],
                facts=data["facts"],
                analysis_ids=(data["analysis"].pk,) if data["analysis"] else (),
            )  # fmt: skip
        except notify.BreachRefused as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("violation", breach_id=breach.pk)
    files = [(f, notify.clock(f), (f.notes or {}).get("title", ""))
             for f in BreachFile.objects.order_by("-aware_at")[:100]]  # fmt: skip
    return render(request, "web/violations.html", {"form": form, "files": files})


class NotesForm(forms.Form):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name, label in NOTE_LABELS.items():
            widget = (forms.TextInput() if name in ("title", "dpo_contact")
                      else forms.Textarea(attrs={"rows": 3}))  # fmt: skip
            size = 200 if name == "title" else 5000
            self.fields[name] = forms.CharField(label=label, required=False, widget=widget,
                                                max_length=size)  # fmt: skip


class DecisionForm(forms.Form):
    wording = forms.CharField(label=_("Décision prise (elle est signée de votre nom)"),
                              max_length=3000,
                              widget=forms.Textarea(attrs={"rows": 2}))  # fmt: skip


class AttachForm(forms.Form):
    analysis = forms.ModelChoiceField(label=_("Analyse"), queryset=BreachAnalysis.objects.none())

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["analysis"].queryset = BreachAnalysis.objects.order_by(  # type: ignore[attr-defined]
            "-created_at")  # fmt: skip
        self.fields["analysis"].label_from_instance = _analysis_label  # type: ignore[attr-defined]


@login_required
@require_http_methods(["GET", "POST"])
def violation_page(request: HttpRequest, breach_id: uuid.UUID) -> HttpResponse:
    _handler(request)
    breach = get_object_or_404(BreachFile, pk=breach_id)
    actor = actor_for_request(request)
    action = request.POST.get("action", "") if request.method == "POST" else ""
    notes_form = NotesForm(request.POST if action == "notes" else None,
                           initial=dict(breach.notes or {}))  # fmt: skip
    decision = DecisionForm(request.POST if action == "decision" else None)
    attach = AttachForm(request.POST if action == "attach" else None)
    try:
        if action == "notes" and notes_form.is_valid():
            notify.breach_notes(actor=actor, breach_id=breach.pk, **notes_form.cleaned_data)
            messages.success(request, _("Rubriques enregistrées."))
            return redirect("violation", breach_id=breach.pk)
        if action == "decision" and decision.is_valid():
            notify.breach_decide(actor=actor, breach_id=breach.pk,
                                 wording=decision.cleaned_data["wording"])  # fmt: skip
            return redirect("violation", breach_id=breach.pk)
        if action == "attach" and attach.is_valid():
            notify.breach_attach(actor=actor, breach_id=breach.pk,
                                 analysis_id=attach.cleaned_data["analysis"].pk)  # fmt: skip
            return redirect("violation", breach_id=breach.pk)
        if action in notify.MARKS:
            notify.breach_mark(actor=actor, breach_id=breach.pk, what=action)
            return redirect("violation", breach_id=breach.pk)
        if action == "selfcheck":
            from rempart.breach.selfcheck import selfcheck_publish

            published = selfcheck_publish(actor=actor, breach_id=breach.pk)
            messages.success(request, _("Vérification publique ouverte pour %(n)s personnes.")
                             % {"n": published.people})  # fmt: skip
            return redirect("violation", breach_id=breach.pk)
        if action == "letters":
            from rempart.breach.letters import letters_produce

            made = letters_produce(actor=actor, breach_id=breach.pk)
            counts = {"n": made.letters, "m": made.without_address}
            messages.success(request, _("%(n)s lettres produites ; %(m)s personnes sans adresse "
                                        "postale.") % counts)  # fmt: skip
            return redirect("violation", breach_id=breach.pk)
        if action == "outbox":
            from rempart.breach.outbox import outbox_fill

            queued = outbox_fill(actor=actor, breach_id=breach.pk)
            messages.success(request, _("%(n)s courriels mis en file.") % {"n": queued})
            return redirect("violation", breach_id=breach.pk)
        if action == "withdraw":
            from rempart.breach.selfcheck import selfcheck_withdraw

            selfcheck_withdraw(actor=actor, breach_id=breach.pk)
            return redirect("violation", breach_id=breach.pk)
        if action == "generate" and request.POST.get("kind") in DraftKind.values:
            kind = request.POST["kind"]
            notify.draft_generate(actor=actor, breach_id=breach.pk, kind=kind)
            return redirect("violation-draft", breach_id=breach.pk, kind=kind)
    except notify.BreachRefused as exc:
        messages.error(request, str(exc))
        return redirect("violation", breach_id=breach.pk)
    drafts = {d.kind: d for d in breach.drafts.all()}
    steps = [(s, s.wording if s.kind == "decision" else "") for s in breach.steps.all()]
    return render(request, "web/violation.html", {
        "breach": breach, "title": (breach.notes or {}).get("title", ""),
        "clock": notify.clock(breach), "notes_form": notes_form, "decision": decision,
        "attach": attach, "analyses": breach.analyses.order_by("created_at"), "steps": steps,
        "draft_kinds": [(k, label, drafts.get(k)) for k, label in DraftKind.choices],
        "figures": notify.figures(breach),
        "selfcheck": getattr(breach, "selfcheck", None),
        "letters": _letters_ready(breach),
        "outbox": _outbox(breach),
    })  # fmt: skip


class DraftForm(forms.Form):
    text = forms.CharField(label=_("Texte"), max_length=100_000,
                           widget=forms.Textarea(attrs={"rows": 30}))  # fmt: skip


@login_required
@require_http_methods(["GET", "POST"])
def violation_draft(request: HttpRequest, breach_id: uuid.UUID, kind: str) -> HttpResponse:
    _handler(request)
    draft = get_object_or_404(BreachDraft.objects.select_related("breach"), breach_id=breach_id,
                              kind=kind)  # fmt: skip
    form = DraftForm(request.POST or None, initial={"text": draft.text})
    if request.method == "POST" and form.is_valid():
        try:
            notify.draft_edit(actor=actor_for_request(request), breach_id=breach_id, kind=kind,
                              text=form.cleaned_data["text"].replace("\r\n", "\n"))  # fmt: skip
        except notify.BreachRefused as exc:
            form.add_error("text", str(exc))
        else:
            messages.success(request, _("Brouillon enregistré."))
            return redirect("violation-draft", breach_id=breach_id, kind=kind)
    return render(request, "web/violation_draft.html", {
        "draft": draft, "form": form, "label": DraftKind(kind).label,
        "clock": notify.clock(draft.breach),
    })  # fmt: skip


@login_required
@require_http_methods(["GET"])
def violation_draft_file(request: HttpRequest, breach_id: uuid.UUID, kind: str,
                         fmt: str) -> HttpResponse:  # fmt: skip
    _handler(request)
    draft = get_object_or_404(BreachDraft, breach_id=breach_id, kind=kind)
    if fmt == "txt":
        body, content_type = draft.text.encode(), "text/plain; charset=utf-8"
    elif fmt == "pdf":
        body, content_type = draft_pdf(DraftKind(kind).label, draft.text), "application/pdf"
    else:
        raise AccessDenied()
    response = HttpResponse(body, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="brouillon-{kind}.{fmt}"'
    return response


def draft_pdf(title: str, text: str) -> bytes:
    pdf = FPDF(format="A4")
    pdf.set_title(_latin1(title))
    pdf.set_creator("Rempart")
    pdf.add_page()
    pdf.set_font("helvetica", "B", 12)
    pdf.multi_cell(0, 6, _latin1(title), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)
    pdf.set_font("helvetica", "", 10)
    for line in text.splitlines():
        pdf.multi_cell(0, 5, _latin1(line) or " ", new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


# --- the patients' self-check (public) ------------------------------------------------------------


@require_http_methods(["GET"])
def selfcheck_page(request: HttpRequest) -> HttpResponse:
    """Public: no account. The identity typed stays in the browser."""
    from rempart.breach.models import SelfCheckPublication
    from rempart.breach.report import CATEGORY_LABELS
    from rempart.breach.traits import CATEGORY_BIT

    publications = [{"id": str(p.pk), "salt": bytes(p.salt).hex(), "iterations": p.iterations,
                     "bits": p.bits}
                    for p in SelfCheckPublication.objects.filter(active=True)]  # fmt: skip
    from rempart.breach.drafts import ADVICE_BY_CATEGORY, NEVER, RISKS

    categories = [{"bit": CATEGORY_BIT[c], "label": CATEGORY_LABELS[c], "risk": RISKS[c],
                   "advice": ADVICE_BY_CATEGORY.get(c, "")} for c in CATEGORY_LABELS]  # fmt: skip
    config = {
        "publications": publications, "categories": categories,
        "bucketUrl": reverse("selfcheck-bucket"),
        "texts": {
            "found": str(_("Vos données figurent dans la fuite que nous avons analysée. Voici "
                           "ce qui vous concerne et ce que nous vous conseillons :")),
            "absent": str(_("Aucune donnée correspondant à cette identité ne figure dans la "
                            "fuite que nous avons analysée. Vérifiez l'orthographe, ou essayez "
                            "votre autre nom (de naissance ou d'usage).")),
            "incomplete": str(_("Indiquez votre nom, votre premier prénom et votre date de "
                                "naissance.")),
            "working": str(_("Vérification en cours…")),
        },
    }  # fmt: skip
    return render(request, "web/selfcheck.html", {"publications": publications,
                                                  "config": config, "never": NEVER})  # fmt: skip


@csrf_exempt  # anonymous and read-only: no session to protect
@require_http_methods(["POST"])
def selfcheck_bucket(request: HttpRequest) -> HttpResponse:
    """One bucket of a publication, padded. The request names only the bucket: the identity
    never leaves the browser. Rate-limited per address."""
    from django.core.cache import cache

    from rempart.breach.models import SelfCheckPublication
    from rempart.breach.selfcheck import bucket_answer
    from rempart.web.middleware import client_address

    key = f"rempart:selfcheck:{client_address(request)}:{timezone.now():%Y%m%d%H}"
    if cache.add(key, 1, timeout=3700):
        count = 1
    else:
        try:
            count = cache.incr(key)
        except ValueError:  # expired between the two calls
            cache.add(key, 1, timeout=3700)
            count = 1
    if count > settings.REMPART_SELFCHECK_PER_HOUR:
        refused = JsonResponse({"error": "trop de vérifications depuis cette adresse : "
                                         "réessayez dans une heure"}, status=429)  # fmt: skip
        refused["Retry-After"] = "3600"
        return refused
    try:
        asked = orjson.loads(request.body)
        publication = SelfCheckPublication.objects.get(pk=uuid.UUID(str(asked["p"])),
                                                       active=True)  # fmt: skip
        bucket = int(asked["b"])
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError,
            SelfCheckPublication.DoesNotExist):  # fmt: skip
        return JsonResponse({"error": "demande invalide"}, status=400)
    if not 0 <= bucket < 1 << publication.bits:
        return JsonResponse({"error": "demande invalide"}, status=400)
    response = JsonResponse({"entries": bucket_answer(publication, bucket)})
    response["Cache-Control"] = "no-store"
    return response


def _letters_ready(breach: BreachFile) -> list[str]:
    from rempart.breach.letters import letter_files

    return [path.name for path in letter_files(breach.pk)]


@login_required
@require_http_methods(["GET"])
def violation_letters(request: HttpRequest, breach_id: uuid.UUID, name: str) -> HttpResponseBase:
    """A letters PDF (names and addresses): to the DPO or the security officer, audited."""
    _handler(request)
    from rempart.audit.models import Action
    from rempart.audit.services import event_record
    from rempart.breach.letters import letter_files

    breach = get_object_or_404(BreachFile, pk=breach_id)
    path = next((p for p in letter_files(breach.pk) if p.name == name), None)
    if path is None:
        raise AccessDenied()
    event_record(actor_for_request(request), Action.EXPORT, resource_type="BreachLetters",
                 resource_id=breach.pk, detail={"download": name})  # fmt: skip
    return FileResponse(path.open("rb"), as_attachment=True, filename=name,
                        content_type="application/pdf")  # fmt: skip


def _outbox(breach: BreachFile) -> list[tuple[str, int]]:
    from django.db.models import Count

    from rempart.breach.models import OutboxStatus

    counts = dict(breach.outbox.values_list("status").annotate(n=Count("id")))
    return [(label, counts.get(value, 0)) for value, label in OutboxStatus.choices]


@login_required
@require_http_methods(["GET"])
def violation_outbox(request: HttpRequest, breach_id: uuid.UUID) -> HttpResponse:
    """The outbox of a breach file: how many e-mails wait, went, bounced or failed, and the
    latest that did not go (the server's code; no address shown)."""
    _handler(request)
    from rempart.breach.models import OutboxStatus

    breach = get_object_or_404(BreachFile, pk=breach_id)
    undelivered = (OutboxStatus.BOUNCED, OutboxStatus.FAILED)
    problems = breach.outbox.filter(status__in=undelivered).order_by("-created_at")[:100]
    waiting = breach.outbox.filter(status=OutboxStatus.QUEUED, attempts__gt=0).count()
    return render(request, "web/violation_outbox.html", {
        "breach": breach, "title": (breach.notes or {}).get("title", ""),
        "counts": _outbox(breach), "problems": problems, "retrying": waiting,
    })  # fmt: skip
