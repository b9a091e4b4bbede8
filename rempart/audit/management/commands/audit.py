"""`rempart audit seal|sealer|verify|patient-report|fhir`: the audit trail from the console."""

from __future__ import annotations

import json
import signal
import time
import uuid
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from rempart.audit.context import Actor
from rempart.audit.fhir import as_audit_event
from rempart.audit.models import Action, Event, Outcome, Purpose
from rempart.audit.services import AuditUnavailable, event_record, seal_all, seal_pending
from rempart.audit.verify import verify_trail
from rempart.lib.files import private_output


class Command(BaseCommand):
    help = "The audit trail: seal events, run the sealer, verify, patient access report, FHIR."

    def add_arguments(self, parser: CommandParser) -> None:
        sub = parser.add_subparsers(dest="action", required=True)
        sub.add_parser("seal", help="seal every pending event now, then stop")
        sealer = sub.add_parser("sealer", help="seal pending events every few seconds, forever")
        sealer.add_argument("--interval", type=float, default=settings.REMPART_AUDIT_SEAL_INTERVAL)
        verify = sub.add_parser("verify", help="check chain, signatures, gaps and truncation")
        verify.add_argument("--public-key", type=Path, help="audit-verify.json to trust")
        verify.add_argument("--checkpoints", type=Path, help="the external checkpoint file")
        report = sub.add_parser("patient-report", help="who accessed a patient's record")
        report.add_argument("patient", help="patient id (UUID), or an IPP with --establishment")
        report.add_argument("--establishment", help="FINESS, when PATIENT is an IPP")
        report.add_argument("--pdf", type=Path, help="also write the report as PDF here")
        fhir = sub.add_parser("fhir", help="events as FHIR AuditEvent (NDJSON)")
        fhir.add_argument("--patient", type=uuid.UUID)
        fhir.add_argument("--last", type=int, default=100)

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            getattr(self, "_" + options["action"].replace("-", "_"))(options)
        except AuditUnavailable as exc:
            raise CommandError(str(exc)) from None

    def _seal(self, options: dict[str, Any]) -> None:
        count = seal_all()
        self.stdout.write(f"{count} événements scellés.")

    def _sealer(self, options: dict[str, Any]) -> None:
        stop = []
        signal.signal(signal.SIGTERM, lambda *_: stop.append(True))
        self.stdout.write(f"Scelleur démarré (toutes les {options['interval']} s).")
        try:
            while not stop:
                sealed = seal_pending()
                if not sealed.events:
                    time.sleep(options["interval"])
        except KeyboardInterrupt:
            pass
        seal_all()

    def _verify(self, options: dict[str, Any]) -> None:
        report = verify_trail(public_key=options["public_key"],
                              checkpoint_file=options["checkpoints"])  # fmt: skip
        event_record(Actor.system("audit verify", Purpose.SECURITY), Action.AUDIT,
                     resource_type="AuditTrail",
                     outcome=Outcome.SUCCESS if report.ok else Outcome.FAILED,
                     detail={"links": report.links, "problems": len(report.problems)})  # fmt: skip
        for line in report.lines():
            self.stdout.write(line)
        if not report.ok:
            raise CommandError("le journal d'audit a été altéré (voir ci-dessus)")

    def _patient_report(self, options: dict[str, Any]) -> None:
        from rempart.records.reports import access_report_pdf, access_report_text
        from rempart.records.selectors.audit import patient_access_report
        from rempart.records.selectors.patients import PatientNotFound, patient_id_for_ipp

        actor = Actor.system("audit patient-report", Purpose.PATIENT_REQUEST)
        try:
            target: Any = options["patient"]
            if options["establishment"]:
                target = patient_id_for_ipp(
                    actor=actor, ipp=target, finess=options["establishment"]
                )
            report = patient_access_report(actor=actor, patient_id=target)
        except PatientNotFound:
            raise CommandError("aucun patient ne correspond") from None
        self.stdout.write(access_report_text(report))
        if options["pdf"]:
            with private_output(options["pdf"], binary=True) as handle:
                handle.write(access_report_pdf(report))
            self.stdout.write(f"PDF : {options['pdf']}")

    def _fhir(self, options: dict[str, Any]) -> None:
        events = Event.objects.order_by("-id")
        if options["patient"]:
            events = events.filter(patient_id=options["patient"])
        for event in reversed(list(events[: options["last"]])):
            resource = as_audit_event(event).model_dump(mode="json", exclude_none=True)
            self.stdout.write(json.dumps(resource, ensure_ascii=False))
