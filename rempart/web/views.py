"""Pages. Thin: each validates input, calls one selector or service, renders.

Refusals of the access policy (step-up, lock, not found, trail unavailable) are turned into pages
by rempart.web.middleware.AccessErrorsMiddleware.
"""

from __future__ import annotations

import uuid
from typing import Any

import segno
from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html_join
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods
from django_otp import login as otp_login

from rempart.access import services as access
from rempart.access.models import (
    AccountLock,
    Alert,
    BreakGlass,
    BreakGlassReason,
    Review,
    SealedTOTPDevice,
)
from rempart.access.policy import READERS, AccessDenied
from rempart.access.selectors import break_glass_queue
from rempart.audit.models import Action, Outcome, Purpose
from rempart.audit.selectors import accesses_by_day, trail_health
from rempart.audit.services import event_record
from rempart.care.models import Route, Stay, StayKind
from rempart.directory.models import Establishment, Practitioner, Role, Service
from rempart.lib.communes import address_warning
from rempart.patients.models import IdentityStatus, Patient, Sex
from rempart.patients.validation import PatientData, clean_patient
from rempart.records.actors import actor_for_request
from rempart.records.reports import access_report_pdf, ordonnance_pdf
from rempart.records.selectors import care as care_selectors
from rempart.records.selectors import patients as sel
from rempart.records.selectors.audit import patient_access_report
from rempart.records.services import care as care_services
from rempart.records.services import patients as patient_services
from rempart.vault import crypto, keystore, rotation
from rempart.web.charts import stacked_bars

LOGIN_OTP_FAILURES = 5


def _role(request: HttpRequest) -> str:
    staff = getattr(request.user, "staff", None)
    return staff.role if staff is not None else ""


def _require(request: HttpRequest, *roles: str) -> None:
    if _role(request) not in roles:
        raise AccessDenied()


def _next(request: HttpRequest, fallback: str = "/") -> str:
    target = request.POST.get("next") or request.GET.get("next") or fallback
    if url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return target
    return fallback


@login_required
def home(request: HttpRequest) -> HttpResponse:
    role = _role(request)
    rows = care_selectors.ward_stays(actor=actor_for_request(request)) if role in READERS else []
    return render(request, "web/home.html",
                  {"role": role, "readers": READERS, "ward": _ward_lines(rows)})  # fmt: skip


def _ward_lines(rows: list[care_selectors.WardRow]) -> str:
    """The ward list's rows as HTML, every value escaped: up to 200 of them, and the template
    engine resolving six lookups on each cost more than the list's query and decryption."""
    chart = reverse("patient-chart", args=[uuid.UUID(int=0)]).replace(str(uuid.UUID(int=0)), "{}")
    present, expected = str(_("présent")), str(_("attendu"))
    here = timezone.get_current_timezone()
    lines = []
    for row in rows:
        patient, stay = row.patient, row.stay
        when = (stay.admitted_at or stay.planned_admission).astimezone(here)
        lines.append((chart.format(patient.pk),
                      f"{patient.birth_name or ''} {patient.first_given_name or ''}",
                      patient.birth_date.strftime("%d/%m/%Y") if patient.birth_date else "",
                      stay.service.name, when.strftime("%d/%m/%Y %H:%M"),
                      present if stay.admitted_at else expected))  # fmt: skip
    return format_html_join(
        "\n",
        '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
        lines,
    )


# --- second factor --------------------------------------------------------------------------------


class CodeForm(forms.Form):
    code = forms.CharField(label=_("Code à 6 chiffres"), max_length=8, strip=True,
                           widget=forms.TextInput(attrs={"autocomplete": "one-time-code",
                                                         "inputmode": "numeric"}))  # fmt: skip


def _confirmed_device(user: Any) -> SealedTOTPDevice | None:
    device: SealedTOTPDevice | None = SealedTOTPDevice.objects.filter(
        user=user, confirmed=True
    ).first()
    return device


@require_http_methods(["GET", "POST"])
def otp_verify(request: HttpRequest) -> HttpResponse:
    if not request.user.is_authenticated:
        return redirect("login")
    device = _confirmed_device(request.user)
    if device is None:
        return redirect("otp-enrol")
    form = CodeForm(request.POST or None)
    error: Any = ""
    if request.method == "POST" and form.is_valid():
        actor = actor_for_request(request).for_purpose(Purpose.SECURITY)
        if device.verify_token(form.cleaned_data["code"]):
            otp_login(request, device)
            event_record(actor, Action.MFA, resource_type="User", resource_id=str(request.user.pk),
                         detail={"step": "login"})  # fmt: skip
            return redirect(_next(request))
        event_record(actor, Action.MFA, resource_type="User", resource_id=str(request.user.pk),
                     outcome=Outcome.DENIED, detail={"step": "login"})  # fmt: skip
        device.refresh_from_db()
        if device.throttling_failure_count >= LOGIN_OTP_FAILURES:
            from rempart.access.models import AlertKind, Severity
            from rempart.access.policy import account_lock

            account_lock(actor, reason="codes du second facteur refusés à répétition",
                         kind=AlertKind.LOGIN, severity=Severity.WARNING)  # fmt: skip
        error = _("Code refusé (déjà utilisé, expiré ou erroné). Attendez le suivant.")
    return render(request, "web/otp_verify.html", {"form": form, "error": error})


class ActivationForm(forms.Form):
    activation = forms.CharField(label=_("Code d'activation remis par le responsable sécurité"),
                                 max_length=20, strip=True,
                                 widget=forms.TextInput(attrs={"autocomplete": "off"}))  # fmt: skip


_ACTIVATION = "rempart_activation"  # session key: the activation code this enrolment spends


@require_http_methods(["GET", "POST"])
def otp_enrol(request: HttpRequest) -> HttpResponse:
    """First login (or a replaced phone): the activation code the security officer handed over,
    then the authenticator app scans a QR code and gives its first code. The password alone
    never binds a second factor to the account."""
    from rempart.access.models import ActivationCode

    if not request.user.is_authenticated:
        return redirect("login")
    if _confirmed_device(request.user) is not None:
        return redirect("otp-verify")
    actor = actor_for_request(request)
    pending = request.session.get(_ACTIVATION)
    activation = (
        ActivationCode.objects.filter(pk=int(pending), user=request.user, used_at=None).first()
        if pending
        else None
    )
    if activation is None:
        gate = ActivationForm(request.POST or None)
        error: Any = ""
        if request.method == "POST" and gate.is_valid():
            found = access.activation_code_check(actor=actor, user_id=request.user.pk,
                                                 code=gate.cleaned_data["activation"])  # fmt: skip
            if found is not None:
                request.session[_ACTIVATION] = found.pk
                return redirect("otp-enrol")
            from rempart.access.policy import is_locked

            if is_locked(request.user.pk):
                from django.contrib.auth import logout

                logout(request)
                return render(request, "web/locked.html", status=403)
            error = _("Code d'activation refusé (erroné, expiré ou déjà utilisé).")
        return render(request, "web/otp_activation.html", {"form": gate, "error": error})
    device = SealedTOTPDevice.objects.filter(user=request.user, confirmed=False).first()
    if device is None:
        device = access.totp_device_create(actor=actor, user_id=request.user.pk)
    form = CodeForm(request.POST or None)
    error = ""
    if request.method == "POST" and form.is_valid():
        try:
            confirmed = access.totp_device_confirm(actor=actor, device=device,
                                                   code=form.cleaned_data["code"],
                                                   activation=activation)  # fmt: skip
        except ValidationError as exc:
            request.session.pop(_ACTIVATION, None)
            error = " ".join(exc.messages)
            confirmed = False
        if confirmed:
            request.session.pop(_ACTIVATION, None)
            otp_login(request, device)
            return redirect("home")
        error = error or _(
            "Code refusé : vérifiez l'heure du téléphone et saisissez le code affiché."
        )
    qr = segno.make(device.config_url, error="m").svg_inline(scale=4)
    return render(request, "web/otp_enrol.html", {"form": form, "qr": qr, "error": error})


@login_required
@require_http_methods(["GET", "POST"])
def step_up(request: HttpRequest) -> HttpResponse:
    device = _confirmed_device(request.user)
    if device is None:
        return redirect("otp-enrol")
    form = CodeForm(request.POST or None)
    error: Any = ""
    if request.method == "POST" and form.is_valid():
        actor = actor_for_request(request)
        if access.step_up(actor=actor, device=device, code=form.cleaned_data["code"]):
            return redirect(_next(request))
        error = _("Code refusé. Après trois refus, le compte est verrouillé.")
    return render(request, "web/step_up.html", {"form": form, "error": error,
                                                "next": _next(request)})  # fmt: skip


# --- patients -----------------------------------------------------------------------------------


class SearchForm(forms.Form):
    name = forms.CharField(label=_("Nom (de naissance ou d'usage)"), required=False, max_length=100)
    birth_date = forms.DateField(label=_("Date de naissance"), required=False,
                                 widget=forms.DateInput(attrs={"type": "date"}))  # fmt: skip
    nir = forms.CharField(label=_("Matricule INS (NIR)"), required=False, max_length=25)
    phonetic = forms.BooleanField(
        label=_("Nom approchant (qui se prononce pareil)"), required=False
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not data.get("nir") and not (data.get("name") and data.get("birth_date")):
            raise ValidationError(
                _("Saisissez le nom et la date de naissance, ou le matricule INS.")
            )
        return data


@login_required
@require_http_methods(["GET", "POST"])
def patient_search(request: HttpRequest) -> HttpResponse:
    """Criteria travel in the body of a POST, never in the URL: URLs end up in access logs and
    browser history."""
    form = SearchForm(request.POST or None)
    found = None
    if request.method == "POST" and form.is_valid():
        actor = actor_for_request(request)
        data = form.cleaned_data
        try:
            if data.get("nir"):
                found = sel.patients_find_by_nir(actor=actor, nir=data["nir"])
            elif data.get("phonetic"):
                found = sel.patients_find_by_phonetic_name(
                    actor=actor, name=data["name"], birth_date=data["birth_date"]
                )
            else:
                found = sel.patients_find_by_name_and_birth_date(
                    actor=actor, name=data["name"], birth_date=data["birth_date"]
                )
        except ValidationError as exc:
            form.add_error(None, exc)
    return render(request, "web/search.html", {"form": form, "found": found})


@login_required
def patient_chart(request: HttpRequest, patient_id: uuid.UUID) -> HttpResponse:
    chart = care_selectors.patient_chart(actor=actor_for_request(request), patient_id=patient_id)
    services = Service.objects.filter(
        establishment_id__in=[s.establishment_id for s in chart.stays]
    ).order_by("name")
    gp = (
        Practitioner.objects.filter(pk=chart.patient.gp_id).first() if chart.patient.gp_id else None
    )
    context = {"patient": chart.patient, "stays": chart.stays, "role": _role(request),
               "prescriptions": chart.prescriptions, "clinical": chart.clinical,
               "services": services, "gp": gp}  # fmt: skip
    return render(request, "web/chart.html", context)


class BreakGlassForm(forms.Form):
    reason = forms.ChoiceField(label=_("Motif"), choices=BreakGlassReason.choices)
    justification = forms.CharField(label=_("Situation (au moins 15 caractères)"), max_length=1000,
                                    widget=forms.Textarea(attrs={"rows": 3}))  # fmt: skip


@login_required
@require_http_methods(["GET", "POST"])
def break_glass(request: HttpRequest, patient_id: uuid.UUID) -> HttpResponse:
    form = BreakGlassForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            access.break_glass_declare(
                actor=actor_for_request(request), patient_id=patient_id,
                reason=form.cleaned_data["reason"],
                justification=form.cleaned_data["justification"],
            )  # fmt: skip
        except ValidationError as exc:
            form.add_error(None, exc)
        except AccessDenied:
            raise sel.PatientNotFound() from None
        else:
            return redirect("patient-chart", patient_id=patient_id)
    return render(request, "web/break_glass.html", {"form": form, "patient_id": patient_id})


@login_required
def access_report(request: HttpRequest, patient_id: uuid.UUID) -> HttpResponse:
    report = patient_access_report(actor=actor_for_request(request), patient_id=patient_id)
    if request.GET.get("format") == "pdf":
        response = HttpResponse(access_report_pdf(report), content_type="application/pdf")
        response["Content-Disposition"] = 'attachment; filename="releve-des-acces.pdf"'
        return response
    return render(request, "web/access_report.html", {"report": report, "patient_id": patient_id})


# --- patient identity: create (with identity vigilance) and edit ---------------------------------


class IdentityForm(forms.Form):
    birth_name = forms.CharField(label=_("Nom de naissance"), max_length=100)
    usage_name = forms.CharField(label=_("Nom d'usage"), max_length=100, required=False)
    given_names = forms.CharField(label=_("Prénoms (tous, dans l'ordre)"), max_length=200)
    first_given_name = forms.CharField(label=_("Premier prénom (si différent)"), max_length=100,
                                       required=False)  # fmt: skip
    sex = forms.ChoiceField(label=_("Sexe"), choices=Sex.choices)
    birth_date = forms.DateField(label=_("Date de naissance"),
                                 widget=forms.DateInput(attrs={"type": "date"}))  # fmt: skip
    birth_place_code = forms.CharField(label=_("Lieu de naissance (code INSEE)"), max_length=5,
                                       required=False)  # fmt: skip
    nir = forms.CharField(label=_("Matricule INS (NIR)"), max_length=25, required=False)
    identity_status = forms.ChoiceField(label=_("Statut de l'identité"),
                                        choices=IdentityStatus.choices)  # fmt: skip
    phone_mobile = forms.CharField(label=_("Téléphone portable"), max_length=25, required=False)
    phone_home = forms.CharField(label=_("Téléphone fixe"), max_length=25, required=False)
    email = forms.EmailField(label=_("Adresse électronique"), required=False)
    address_line = forms.CharField(label=_("Adresse"), max_length=200, required=False)
    postcode = forms.CharField(label=_("Code postal"), max_length=5, required=False)
    city = forms.CharField(label=_("Ville"), max_length=100, required=False)
    gp_rpps = forms.CharField(label=_("Médecin traitant (n° RPPS)"), max_length=11,
                              required=False)  # fmt: skip

    def clean_gp_rpps(self) -> str:
        from rempart.lib.identifiers import validate_rpps

        raw = "".join(str(self.cleaned_data.get("gp_rpps") or "").split())
        return validate_rpps(raw) if raw else ""

    def data_for(self, gp_id: Any = None) -> PatientData:
        """The form's patient; the médecin traitant from the directory by RPPS (one absent from
        it is added "to complete", as an import does), else `gp_id` as it was."""
        values: dict[str, Any] = {
            k: (v or "") for k, v in self.cleaned_data.items() if k not in ("confirm", "gp_rpps")
        }
        rpps = self.cleaned_data.get("gp_rpps")
        if rpps:
            from rempart.records.services.directory import practitioner_for_rpps

            gp_id = practitioner_for_rpps(rpps=rpps).pk
        return PatientData(**values, gp_id=gp_id)


class NewPatientForm(IdentityForm):
    confirm = forms.BooleanField(
        label=_("J'ai vérifié : ce n'est aucun des patients proposés"), required=False
    )


def _add_errors(form: forms.Form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc)


@login_required
@require_http_methods(["GET", "POST"])
def patient_new(request: HttpRequest) -> HttpResponse:
    """Registration at the admission desk. Before anything is written, identity vigilance shows
    the patients who already have this name and birth date (or this INS)."""
    if _role(request) not in READERS:
        raise AccessDenied()
    actor = actor_for_request(request)
    form = NewPatientForm(request.POST or None)
    candidates: list[Any] = []
    if request.method == "POST" and form.is_valid():
        data = form.data_for()
        try:
            candidates = _vigilance(actor, data)
            if not candidates or form.cleaned_data["confirm"]:
                place = Establishment.objects.filter(pk__in=actor.establishments).order_by(
                    "finess").first()  # fmt: skip
                patient = patient_services.patient_create(actor=actor, data=data,
                                                          establishment=place)  # fmt: skip
                _address_notice(request, data)
                return redirect("stay-new", patient_id=patient.pk)
        except ValidationError as exc:
            _add_errors(form, exc)
    return render(request, "web/patient_new.html", {"form": form, "candidates": candidates})


def _address_notice(request: HttpRequest, data: PatientData) -> None:
    """Postcode and town against INSEE's communes: told to the desk after saving, never a
    refusal (a CEDEX, a commune just merged)."""
    fault = address_warning(data.postcode, data.city)
    if fault:
        notice = _("Adresse enregistrée, à vérifier : %(why)s") % {"why": fault[1]}
        messages.warning(request, notice)


def _vigilance(actor: Any, data: PatientData) -> list[Any]:
    """Identity vigilance before a registration: the data validated, then the patients already
    known under this name and birth date, or this INS (the searches are charged and recorded)."""
    clean_patient(data)
    found = {p.pk: p for p in sel.patients_find_by_name_and_birth_date(
        actor=actor, name=data.birth_name, birth_date=data.birth_date)}  # fmt: skip
    if data.nir.strip():
        found.update({p.pk: p for p in sel.patients_find_by_nir(actor=actor, nir=data.nir)})
    return list(found.values())


@login_required
@require_http_methods(["GET", "POST"])
def patient_edit(request: HttpRequest, patient_id: uuid.UUID) -> HttpResponse:
    actor = actor_for_request(request)
    patient = sel.patient_get(actor=actor, patient_id=patient_id)
    initial = {name: getattr(patient, name, "") or "" for name in IdentityForm.base_fields}
    gp = Practitioner.objects.filter(pk=patient.gp_id).first() if patient.gp_id else None
    initial["gp_rpps"] = gp.rpps if gp else ""
    form = IdentityForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            patient_services.patient_update(actor=actor, patient=patient,
                                            data=form.data_for(gp_id=patient.gp_id))  # fmt: skip
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            messages.success(request, _("Identité enregistrée."))
            _address_notice(request, form.data_for())
            return redirect("patient-chart", patient_id=patient.pk)
    return render(request, "web/patient_edit.html", {"form": form, "patient": patient})


class StayForm(forms.Form):
    service = forms.ModelChoiceField(label=_("Service"), queryset=Service.objects.none())
    kind = forms.ChoiceField(label=_("Type de séjour"), choices=StayKind.choices)
    planned_admission = forms.DateTimeField(
        label=_("Entrée prévue"), widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    admit_now = forms.BooleanField(label=_("Le patient est présent : enregistrer l'entrée"),
                                   required=False)  # fmt: skip

    def __init__(self, *args: Any, establishments: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["service"]
        assert isinstance(field, forms.ModelChoiceField)  # noqa: S101  # declared above
        field.queryset = Service.objects.filter(establishment_id__in=establishments).order_by(
            "establishment__name", "name")  # fmt: skip


@login_required
@require_http_methods(["GET", "POST"])
def stay_new(request: HttpRequest, patient_id: uuid.UUID) -> HttpResponse:
    """A stay planned (or an admission now) in one of the user's establishments: how a patient
    comes into their care."""
    from django.utils import timezone

    actor = actor_for_request(request)
    now = timezone.localtime().replace(second=0, microsecond=0)
    form = StayForm(request.POST or None, establishments=actor.establishments,
                    initial={"planned_admission": now})  # fmt: skip
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        patient = Patient.objects.filter(pk=patient_id).first()  # the form shows no patient data
        if patient is None:
            raise sel.PatientNotFound()
        try:
            care_services.stay_create(
                actor=actor, patient=patient, service=data["service"], kind=data["kind"],
                planned_admission=data["planned_admission"],
                admitted_at=timezone.now() if data["admit_now"] else None,
            )  # fmt: skip
        except AccessDenied:
            raise sel.PatientNotFound() from None
        except ValidationError as exc:
            _add_errors(form, exc)
        else:
            return redirect("patient-chart", patient_id=patient.pk)
    return render(request, "web/stay_new.html", {"form": form})


# --- stays and prescriptions ---------------------------------------------------------------------


@login_required
@require_http_methods(["POST"])
def stay_move(request: HttpRequest, stay_id: uuid.UUID, move: str) -> HttpResponse:
    """Admission, discharge, transfer or cancellation now, from the chart."""
    stay = Stay.objects.filter(pk=stay_id).first()
    if stay is None:
        raise sel.PatientNotFound()
    actor = actor_for_request(request)
    try:
        if move == "entree":
            care_services.stay_admit(actor=actor, stay=stay)
        elif move == "annulation":
            care_services.stay_cancel(actor=actor, stay=stay)
        elif move == "transfert":
            try:
                target = Service.objects.filter(
                    pk=uuid.UUID(request.POST.get("service", ""))
                ).first()
            except ValueError:
                target = None
            if target is None:
                raise ValidationError(_("Choisissez le service d'accueil."))
            care_services.stay_transfer(actor=actor, stay=stay, service=target)
        elif move == "sortie":
            care_services.stay_discharge(actor=actor, stay=stay)
        else:
            raise sel.PatientNotFound()
    except AccessDenied:
        raise sel.PatientNotFound() from None
    except ValidationError as exc:
        messages.error(request, " ".join(exc.messages))
    return redirect("patient-chart", patient_id=stay.patient_id)


class LineForm(forms.Form):
    drug = forms.ChoiceField(label=_("Médicament"))
    dose = forms.CharField(label=_("Dose"), max_length=100)
    route = forms.ChoiceField(label=_("Voie"), choices=Route.choices)
    frequency = forms.CharField(label=_("Fréquence"), max_length=100)
    duration_days = forms.IntegerField(label=_("Durée (jours)"), min_value=1, max_value=365)
    instructions = forms.CharField(label=_("Consignes"), max_length=300, required=False)

    def __init__(self, *args: Any, drugs: list[Any], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        field = self.fields["drug"]
        assert isinstance(field, forms.ChoiceField)  # noqa: S101  # declared above
        field.choices = [(d.code, str(d)) for d in drugs]

    def line(self) -> care_services.LineData:
        return care_services.LineData(**self.cleaned_data)


def _prescriber(request: HttpRequest) -> Any:
    staff = getattr(request.user, "staff", None)
    if staff is None or staff.role != Role.PHYSICIAN or staff.practitioner is None:
        raise AccessDenied()
    return staff.practitioner


@login_required
@require_http_methods(["GET", "POST"])
def prescription_new(request: HttpRequest, patient_id: uuid.UUID) -> HttpResponse:
    prescriber = _prescriber(request)
    actor = actor_for_request(request)
    patient = sel.patient_get(actor=actor, patient_id=patient_id)
    drugs = care_selectors.drugs_search(query=request.GET.get("q", ""))
    form = LineForm(request.POST or None, drugs=care_selectors.drugs_search(limit=1000)
                    if request.method == "POST" else drugs)  # fmt: skip
    if request.method == "POST" and form.is_valid():
        try:
            prescription = care_services.prescription_create(
                actor=actor, patient=patient, prescriber=prescriber, lines=[form.line()]
            )
        except ValidationError as exc:
            form.add_error(None, exc)
        else:
            return redirect("prescription", prescription_id=prescription.pk)
    return render(request, "web/prescription_new.html",
                  {"patient": patient, "form": form, "q": request.GET.get("q", "")})  # fmt: skip


@login_required
@require_http_methods(["GET", "POST"])
def prescription_page(request: HttpRequest, prescription_id: uuid.UUID) -> HttpResponse:
    actor = actor_for_request(request)
    prescription = care_selectors.prescription_get(actor=actor, prescription_id=prescription_id)
    form = LineForm(request.POST or None, drugs=care_selectors.drugs_search(limit=1000))
    if request.method == "POST":
        try:
            if request.POST.get("action") == "sign":
                care_services.prescription_sign(actor=actor, prescription=prescription)
                return redirect("prescription", prescription_id=prescription.pk)
            if form.is_valid():
                care_services.prescription_line_add(actor=actor, prescription=prescription,
                                                     line=form.line())  # fmt: skip
                return redirect("prescription", prescription_id=prescription.pk)
        except AccessDenied:
            raise sel.PatientNotFound() from None
        except ValidationError as exc:
            form.add_error(None, exc)
    drugs = {d.code: str(d) for d in care_selectors.drugs_search(limit=1000)}
    lines = [
        (drugs.get(line.content["drug"], line.content["drug"]), line.content,
         Route(line.content["route"]).label)
        for line in prescription.lines.order_by("position")
    ]  # fmt: skip
    return render(request, "web/prescription.html",
                  {"prescription": prescription, "lines": lines, "form": form})  # fmt: skip


@login_required
def ordonnance(request: HttpRequest, prescription_id: uuid.UUID) -> HttpResponse:
    prescription = care_selectors.prescription_get(actor=actor_for_request(request),
                                                   prescription_id=prescription_id)  # fmt: skip
    response = HttpResponse(ordonnance_pdf(prescription), content_type="application/pdf")
    response["Content-Disposition"] = 'attachment; filename="ordonnance.pdf"'
    return response


# --- officers -----------------------------------------------------------------------------------


class ReviewForm(forms.Form):
    verdict = forms.ChoiceField(choices=[(Review.JUSTIFIED, _("Justifié")),
                                         (Review.UNJUSTIFIED, _("Injustifié"))])  # fmt: skip
    note = forms.CharField(label=_("Note"), max_length=500)
    lock = forms.BooleanField(required=False)


@login_required
@require_http_methods(["GET", "POST"])
def dpo_queue(request: HttpRequest) -> HttpResponse:
    _require(request, Role.DPO)
    if request.method == "POST":
        form = ReviewForm(request.POST)
        try:
            declared = BreakGlass.objects.filter(pk=uuid.UUID(request.POST.get("id", ""))).first()
        except ValueError:
            declared = None
        if form.is_valid() and declared is not None:
            access.break_glass_review(actor=actor_for_request(request), declared=declared,
                                      verdict=form.cleaned_data["verdict"],
                                      note=form.cleaned_data["note"],
                                      lock=form.cleaned_data["lock"])  # fmt: skip
        return redirect("dpo-queue")
    pending = break_glass_queue(actor=actor_for_request(request))
    unrealised = care_selectors.stays_never_realised(actor=actor_for_request(request))
    alerts = Alert.objects.filter(audience=Role.DPO).order_by("-created_at")[:50]
    daily = accesses_by_day(days=14)
    roles = dict(Role.choices) | {"system": "Système"}
    by_role = {str(roles.get(role, role)): counts for role, counts in sorted(daily.by_role.items())}
    places = {str(e.pk): e.name for e in Establishment.objects.all()}
    by_place = sorted(((places.get(key, str(_("Hors établissement"))), counts, sum(counts))
                       for key, counts in daily.by_establishment.items()),
                      key=lambda row: -row[2])  # fmt: skip
    title = str(_("Accès aux données patients par jour et par fonction"))
    chart = stacked_bars(daily.days, by_role, title=title)
    return render(request, "web/dpo_queue.html", {
        "pending": pending, "alerts": alerts, "form": ReviewForm(), "chart": chart,
        "unrealised": unrealised,
        "days": daily.days, "by_role": by_role, "by_place": by_place,
    })  # fmt: skip


class UnlockForm(forms.Form):
    user_id = forms.IntegerField(widget=forms.HiddenInput)
    reason = forms.CharField(label=_("Motif du déverrouillage"), max_length=200)


class AccountForm(forms.Form):
    username = forms.CharField(label=_("Compte"), max_length=150)
    reason = forms.CharField(label=_("Motif"), max_length=200, required=False)


@login_required
@require_http_methods(["GET", "POST"])
def security_page(request: HttpRequest) -> HttpResponse:
    """The security officer's page: the trail's health, keys, locks (lift, or lock an account),
    alerts, and second-factor activation codes (shown once)."""
    from django.contrib.auth import get_user_model

    _require(request, Role.SECURITY_OFFICER)
    error, issued = "", ""
    actor = actor_for_request(request)
    if request.method == "POST":
        action = request.POST.get("action", "unlock")
        try:
            if action == "unlock":
                form: forms.Form = UnlockForm(request.POST)
                if form.is_valid():
                    access.account_unlock(actor=actor, user_id=form.cleaned_data["user_id"],
                                          reason=form.cleaned_data["reason"])  # fmt: skip
                    return redirect("security")
            else:
                form = AccountForm(request.POST)
                if form.is_valid():
                    user = get_user_model().objects.filter(
                        username=form.cleaned_data["username"]).first()  # fmt: skip
                    if user is None:
                        raise ValidationError(_("Compte inconnu."))
                    if action == "lock":
                        access.account_lock_decided(actor=actor, user_id=user.pk,
                                                    reason=form.cleaned_data["reason"])  # fmt: skip
                        return redirect("security")
                    issued = f"{user.get_username()} : " + access.activation_code_issue(
                        actor=actor, user_id=user.pk)  # fmt: skip
            if not form.is_valid():
                error = " ".join(str(m) for errs in form.errors.values() for m in errs)
        except ValidationError as exc:
            error = " ".join(exc.messages)
    locks = AccountLock.objects.filter(lifted_at=None).select_related("user")
    alerts = Alert.objects.filter(audience=Role.SECURITY_OFFICER).order_by("-created_at")[:50]
    keys = []
    for category in (*crypto.AEAD_CATEGORIES, crypto.INDEX_CATEGORY):
        handle = keystore.read_keyset(category)
        counts = sorted(rotation.ciphertexts_by_key(category).items()) if (
            request.GET.get("compter") and category != crypto.INDEX_CATEGORY) else None  # fmt: skip
        keys.append((category, crypto.describe_keyset(handle), counts))
    response = render(request, "web/security.html", {
        "locks": locks, "alerts": alerts, "error": error, "health": trail_health(),
        "keys": keys, "counted": bool(request.GET.get("compter")), "issued": issued,
    })  # fmt: skip
    response["Cache-Control"] = "no-store"  # an activation code is shown once
    return response


# --- legacy data: "Reprise des données" ----------------------------------------------------------


@login_required
def imports_page(request: HttpRequest) -> HttpResponse:
    from rempart.imports import corrections

    jobs = corrections.import_jobs(actor=actor_for_request(request))
    return render(request, "web/imports.html", {"jobs": jobs})


@login_required
def import_job_page(request: HttpRequest, job_id: uuid.UUID) -> HttpResponse:
    from rempart.imports import corrections

    try:
        lines = corrections.import_job_lines(actor=actor_for_request(request), job_id=job_id)
    except corrections.LineNotFound:
        raise sel.PatientNotFound() from None
    return render(request, "web/import_job.html", {"lines": lines, "role": _role(request)})


class DiscardForm(forms.Form):
    reason = forms.ChoiceField(label=_("Motif"), choices=[])

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from rempart.imports.corrections import DISCARD_REASONS

        super().__init__(*args, **kwargs)
        field = self.fields["reason"]
        assert isinstance(field, forms.ChoiceField)  # noqa: S101  # declared above
        field.choices = list(DISCARD_REASONS.items())


@login_required
@require_http_methods(["GET", "POST"])
def import_line_page(request: HttpRequest, line_id: uuid.UUID) -> HttpResponse:
    """A refused line: its values read back into the registration form (same validation, same
    identity vigilance), registered as a patient once corrected, or discarded."""
    from rempart.imports import corrections

    actor = actor_for_request(request)
    try:
        line, prefilled = corrections.import_line_open(actor=actor, line_id=line_id)
    except corrections.LineNotFound:
        raise sel.PatientNotFound() from None
    posted = request.POST.get("action", "") if request.method == "POST" else ""
    form = NewPatientForm(request.POST if posted == "correct" else None,
                          initial=corrections.prefill_initial(prefilled, line.content))  # fmt: skip
    discard = DiscardForm(request.POST if posted == "discard" else None)
    candidates: list[Any] = []
    if posted == "discard" and discard.is_valid():
        corrections.import_line_discard(actor=actor, line=line,
                                        reason=discard.cleaned_data["reason"])  # fmt: skip
        messages.success(request, _("Ligne écartée."))
        return redirect("import-job", job_id=line.job_id)
    if posted == "correct" and form.is_valid():
        data = form.data_for()
        try:
            candidates = _vigilance(actor, data)
            if not candidates or form.cleaned_data["confirm"]:
                patient = corrections.import_line_correct(actor=actor, line=line, data=data)
                messages.success(request, _("Ligne corrigée : le patient est enregistré."))
                _address_notice(request, data)
                return redirect("stay-new", patient_id=patient.pk)
        except ValidationError as exc:
            _add_errors(form, exc)
    return render(request, "web/import_line.html", {
        "line": line, "form": form, "discard": discard, "candidates": candidates,
        "can_correct": _role(request) in corrections.CORRECTORS,
    })  # fmt: skip
