from django.contrib.auth import views as auth_views
from django.urls import path

from rempart.web import breach_views, fhir_views, views, violation_views

urlpatterns = [
    path("", views.home, name="home"),
    path("connexion/", auth_views.LoginView.as_view(template_name="web/login.html"), name="login"),
    path("connexion/second-facteur/", views.otp_verify, name="otp-verify"),
    path("connexion/enrolement/", views.otp_enrol, name="otp-enrol"),
    path("deconnexion/", auth_views.LogoutView.as_view(), name="logout"),
    path("confirmer/", views.step_up, name="step-up"),
    path("patients/", views.patient_search, name="patient-search"),
    path("patients/nouveau/", views.patient_new, name="patient-new"),
    path("patients/<uuid:patient_id>/", views.patient_chart, name="patient-chart"),
    path("patients/<uuid:patient_id>/modifier/", views.patient_edit, name="patient-edit"),
    path("patients/<uuid:patient_id>/sejour/", views.stay_new, name="stay-new"),
    path("patients/<uuid:patient_id>/bris-de-glace/", views.break_glass, name="break-glass"),
    path("patients/<uuid:patient_id>/acces/", views.access_report, name="access-report"),
    path(
        "patients/<uuid:patient_id>/prescriptions/nouvelle/",
        views.prescription_new,
        name="prescription-new",
    ),
    path("prescriptions/<uuid:prescription_id>/", views.prescription_page, name="prescription"),
    path(
        "prescriptions/<uuid:prescription_id>/ordonnance.pdf", views.ordonnance, name="ordonnance"
    ),
    path("sejours/<uuid:stay_id>/<str:move>/", views.stay_move, name="stay-move"),
    path("dpo/", views.dpo_queue, name="dpo-queue"),
    path("securite/", views.security_page, name="security"),
    path("reprise/", views.imports_page, name="imports"),
    path("reprise/<uuid:job_id>/", views.import_job_page, name="import-job"),
    path("reprise/ligne/<uuid:line_id>/", views.import_line_page, name="import-line"),
    path("exports/", breach_views.exports_page, name="exports"),
    path("exports/<uuid:export_id>/", breach_views.export_page, name="export"),
    path("exports/<uuid:export_id>/fichier/", breach_views.export_file, name="export-file"),
    path("fuites/", breach_views.breach_page, name="breach"),
    path("violations/", violation_views.violations_page, name="violations"),
    path("securite/api-fhir/", fhir_views.fhir_clients_page, name="fhir-clients"),
    path("verifier-mes-donnees/", violation_views.selfcheck_page, name="selfcheck"),
    path("verifier-mes-donnees/seau/", violation_views.selfcheck_bucket, name="selfcheck-bucket"),
    path("violations/<uuid:breach_id>/", violation_views.violation_page, name="violation"),
    path(
        "violations/<uuid:breach_id>/courriels/",
        violation_views.violation_outbox,
        name="violation-outbox",
    ),
    path(
        "violations/<uuid:breach_id>/lettres/<str:name>",
        violation_views.violation_letters,
        name="violation-letters",
    ),
    path(
        "violations/<uuid:breach_id>/brouillon/<str:kind>/",
        violation_views.violation_draft,
        name="violation-draft",
    ),
    path(
        "violations/<uuid:breach_id>/brouillon/<str:kind>.<str:fmt>",
        violation_views.violation_draft_file,
        name="violation-draft-file",
    ),
    path("fuites/<uuid:analysis_id>/", breach_views.breach_report, name="breach-report"),
    path(
        "fuites/<uuid:analysis_id>/rapport.<str:kind>",
        breach_views.breach_report_file,
        name="breach-report-file",
    ),
]
