"""The letters to the people concerned, mail-merged into one PDF for the post.

Each leaked patient with a postal address gets one letter: the DPO's letter draft, where
[[DESTINATAIRE]] is their name and address and [[DONNEES]] and [[CONSEILS]] what leaked of theirs
and the advice that fits it. The patients' identity and contact are opened for this purpose only
(one audit event: how many, the SHA-256 of the list of ids). A letter's text depends only on its
categories, so it is laid out once per combination of categories and written line by line on each
page (fpdf2's layout of a page costs 9 ms; writing laid-out lines, 0.2 ms). The files (one per
100,000 letters) are written 0600 under REMPART_DATA_DIR/letters/<file>/ and downloaded by the
DPO or the security officer."""

from __future__ import annotations

import hashlib
import multiprocessing
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from django.conf import settings
from django.db import connection, connections, transaction
from fpdf import FPDF

from rempart.audit.context import Actor
from rempart.audit.models import Action
from rempart.audit.services import event_record
from rempart.breach import drafts
from rempart.breach.models import BreachDraft, DraftKind, StepKind
from rempart.breach.notify import BreachRefused, _file, _step, leaked_categories
from rempart.lib.files import private_output
from rempart.patients.models import Patient
from rempart.records.reports import _latin1
from rempart.vault.fields import EncryptedField

LINE = 5.0  # mm between lines
TOP, BOTTOM, LEFT = 95.0, 277.0, 20.0  # the body's first line, the page's last, the margin
WINDOW = (110.0, 50.0)  # the recipient block, in a window envelope (DL, window on the right)


LOT = 100_000  # letters per PDF file


@dataclass
class Letters:
    paths: list[Path]  # one PDF per lot of LOT letters, in order
    letters: int
    without_address: int
    sha256: list[str]


def letters_dir(breach_id: uuid.UUID) -> Path:
    return Path(settings.REMPART_DATA_DIR) / "letters" / str(breach_id)


def letter_files(breach_id: uuid.UUID) -> list[Path]:
    folder = letters_dir(breach_id)
    return sorted(folder.glob("lettres-*.pdf")) if folder.exists() else []


_STATE: dict[str, Any] = {}


def letters_produce(*, actor: Actor, breach_id: uuid.UUID, workers: int = 2) -> Letters:
    """The letters, one PDF per lot of LOT letters (fpdf2 holds a whole document in memory:
    700,000 pages in one file took 8.3 GiB). Lots are written by forked workers on PostgreSQL."""
    with transaction.atomic():
        breach = _file(actor, breach_id)
        template = BreachDraft.objects.filter(breach=breach, kind=DraftKind.LETTER).first()
        if template is None:
            raise BreachRefused("générez d'abord le brouillon de la lettre")
        analyses = list(breach.analyses.values_list("pk", flat=True))
    shown = leaked_categories(analyses)
    ids = sorted(shown)
    folder = letters_dir(breach_id)
    for old in letter_files(breach_id):
        old.unlink()
    lots = [(n, ids[start : start + LOT]) for n, start in enumerate(range(0, len(ids), LOT), 1)]
    _STATE.update(shown=shown, template=template.text, folder=folder)
    try:
        if workers > 0 and connection.vendor == "postgresql" and len(lots) > 1:
            connections.close_all()  # forked workers open their own connections
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                made = pool.map(_lot, lots, chunksize=1)
        else:
            made = [_lot(lot) for lot in lots]
    finally:
        _STATE.clear()
    written = [raw for _, ids_written, _ in made for raw in ids_written]
    missing = len(ids) - len(written)  # no postal address (the e-mail or the public notice)
    paths = [path for path, _, _ in made]
    digests = [digest for _, _, digest in made]
    with transaction.atomic():
        breach = _file(actor, breach_id)
        listed = hashlib.sha256(b"".join(written)).hexdigest()
        event_record(actor, Action.EXPORT, resource_type="BreachLetters", resource_id=breach.pk,
                     detail={"purpose": "notification", "letters": len(written),
                             "without_address": missing, "files_sha256": digests,
                             "patients_sha256": listed})  # fmt: skip
        _step(actor, breach, StepKind.PATIENTS,
              f"lettres produites : {len(written)} en {len(paths)} fichier(s) (sans adresse "
              f"postale : {missing})")  # fmt: skip
    return Letters(paths, len(written), missing, digests)


def _lot(lot: tuple[int, list[bytes]]) -> tuple[Path, list[bytes], str]:
    number, ids = lot
    shown: dict[bytes, set[str]] = _STATE["shown"]
    pdf = _Letterhead(_STATE["template"])
    written = []
    for raw, identity, contact in _people(ids):
        address = [contact.get("address_line", ""),
                   f"{contact.get('postcode', '')} {contact.get('city', '')}".strip()]  # fmt: skip
        if address[0] and address[1]:
            pdf.letter(_recipient(identity), address, frozenset(shown[raw]))
            written.append(raw)
    body = bytes(pdf.output())
    path = Path(_STATE["folder"]) / f"lettres-{number:03d}.pdf"
    with private_output(path, binary=True) as handle:
        handle.write(body)
    return path, written, hashlib.sha256(body).hexdigest()


def _recipient(identity: dict[str, Any]) -> str:
    civility = {"F": "Madame", "M": "Monsieur"}.get(identity.get("sex", ""), "Madame, Monsieur")
    family = identity.get("usage_name") or identity.get("birth_name") or ""
    return f"{civility} {identity.get('first_given_name', '')} {family.upper()}".replace("  ", " ")


def _people(ids: list[bytes]) -> Any:
    """(id, identity, contact) of these patients, opened for the letters."""
    identity = cast(EncryptedField, Patient._meta.get_field("identity"))
    contact = cast(EncryptedField, Patient._meta.get_field("contact"))
    table = Patient._meta.db_table
    for start in range(0, len(ids), 10_000):
        chunk = [uuid.UUID(bytes=i) for i in ids[start : start + 10_000]]
        if connection.vendor == "postgresql":
            import psycopg

            connection.ensure_connection()
            with psycopg.Cursor(connection.connection) as cursor:
                cursor.execute(f"SELECT uuid_send(id), identity, contact FROM {table} "  # noqa: S608
                               "WHERE id = ANY(%s) ORDER BY id", [chunk], binary=True)  # fmt: skip
                rows = cursor.fetchall()
        else:
            rows = [(pid.bytes, i, c) for pid, i, c in Patient.objects.filter(pk__in=chunk)
                    .order_by("id").values_list("id", "identity", "contact")]  # fmt: skip
        for raw, sealed_i, sealed_c in rows:
            yield (raw, identity.open_value(raw, bytes(sealed_i)) if sealed_i else {},
                   contact.open_value(raw, bytes(sealed_c)) if sealed_c else {})  # fmt: skip


class _Letterhead(FPDF):
    """One letter per call; each combination of categories laid out once."""

    def __init__(self, template: str) -> None:
        super().__init__(format="A4")
        self.set_title("Information des personnes concernées")
        self.set_creator("Rempart")
        self.set_auto_page_break(False)
        self.set_font("helvetica", size=10)
        # Names and addresses in a Unicode font when there is one (Łucja, Nguyễn...); the body
        # in the core font: French fits Latin-1, and a TrueType page costs three times more.
        font = Path(str(settings.REMPART_LETTER_FONT or ""))
        self.unicode = font.is_file()
        if self.unicode:
            self.add_font("recipient", "", str(font))
        self.template = template
        self.laid_out: dict[frozenset[str], list[tuple[str, bool]]] = {}

    def _lines(self, categories: frozenset[str]) -> list[tuple[str, bool]]:
        lines = self.laid_out.get(categories)
        if lines is None:
            text = drafts.merge(self.template, "", sorted(categories)).lstrip("\n")
            lines = []
            for paragraph in text.split("\n"):
                bold = paragraph.startswith("Objet")
                if not paragraph.strip():
                    lines.append(("", False))
                    continue
                broken = cast(list[str], self.multi_cell(170, LINE, _latin1(paragraph),
                                                         dry_run=True, output="LINES"))  # fmt: skip
                lines.extend((line, bold) for line in broken)
            self.laid_out[categories] = lines
        return lines

    def letter(self, recipient: str, address: list[str], categories: frozenset[str]) -> None:
        self.add_page()
        x, y = WINDOW
        if self.unicode:
            self.set_font("recipient", size=10)
        for line in (recipient, *address):
            self.text(x, y, line if self.unicode else _latin1(line))
            y += LINE
        if self.unicode:
            self.set_font("helvetica", size=10)
        y = TOP
        bold = False
        for line, strong in self._lines(categories):
            if y > BOTTOM:
                self.add_page()
                y = 25.0
            if strong != bold:
                self.set_font("helvetica", "B" if strong else "", 10)
                bold = strong
            if line:
                self.text(LEFT, y, line)
            y += LINE
        if bold:
            self.set_font("helvetica", "", 10)
