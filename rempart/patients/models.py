"""The patient: INS identity traits, contact, médecin traitant; every value encrypted.

What stays clear: the row id, the identity status, timestamps and the blind indexes.
"""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from rempart.directory.models import Establishment
from rempart.lib.ids import new_id
from rempart.patients import indexes as ix
from rempart.vault.fields import (
    BlindIndexField,
    EncryptedJSONField,
    IndexKeyField,
    sealed_date,
    sealed_text,
    sealed_uuid,
)

IDENTITY = "identity"
CONTACT = "contact"


class IdentityStatus(models.TextChoices):
    """INS identity statuses (référentiel national d'identitovigilance)."""

    PROVISIONAL = "PROV", _("Identité provisoire")
    RETRIEVED = "RECUP", _("Identité récupérée")
    VALIDATED = "VALI", _("Identité validée")
    QUALIFIED = "QUAL", _("Identité qualifiée")


class Sex(models.TextChoices):
    MALE = "M", _("Masculin")
    FEMALE = "F", _("Féminin")
    UNDETERMINED = "I", _("Indéterminé")


class Patient(models.Model):
    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    identity_status = models.CharField(
        "statut de l'identité",
        max_length=5,
        choices=IdentityStatus.choices,
        default=IdentityStatus.PROVISIONAL,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Counts the writes of identity and contact: the FHIR API's meta.versionId and ETag, so that
    # a system updating from a stale copy is refused (If-Match) instead of erasing a correction.
    version = models.PositiveIntegerField(default=1, db_default=1)

    # Two sealed records, one AEAD ciphertext each, bound to table, column and row id.
    identity = EncryptedJSONField("identité (chiffrée)", category=IDENTITY)
    contact = EncryptedJSONField("coordonnées (chiffrées)", category=CONTACT)

    # INS traits, inside `identity`
    birth_name = sealed_text("identity", "birth_name")
    usage_name = sealed_text("identity", "usage_name")
    given_names = sealed_text("identity", "given_names")
    first_given_name = sealed_text("identity", "first_given_name")
    sex = sealed_text("identity", "sex")
    birth_date = sealed_date("identity", "birth_date")
    birth_place_code = sealed_text("identity", "birth_place_code")
    nir = sealed_text("identity", "nir")

    # Contact, inside `contact`. The médecin traitant link says who treats whom: sealed too.
    email = sealed_text("contact", "email")
    phone_mobile = sealed_text("contact", "phone_mobile")
    phone_home = sealed_text("contact", "phone_home")
    address_line = sealed_text("contact", "address_line")
    postcode = sealed_text("contact", "postcode")
    city = sealed_text("contact", "city")
    gp_id = sealed_uuid("contact", "gp_id")

    # Blind indexes (budget in docs/ARCHITECTURE.md, attack in bench/index_attack.py). No index
    # on a low-entropy trait alone: a name goes in only with the birth date. C = expected
    # coincidences at R = 760,000. Birth and usage names share one key, so a typed name is looked
    # up in both columns at once.
    bidx_name_birth = BlindIndexField(  # L = 18, C = 3.3 over both columns
        index="name_date",
        bits=18,
        sources=("birth_name", "birth_date"),
        normalise=ix.name_date_key,
        normalise_column=ix.name_date_keys,
    )
    bidx_name_usage = BlindIndexField(  # L = 18, set for ~15 % of patients
        index="name_date",
        bits=18,
        sources=("usage_name", "birth_date", "birth_name"),
        normalise=ix.usage_date_key,
        normalise_column=ix.usage_date_keys,
    )
    bidx_nir = BlindIndexField(  # L = 18, C = 2.5 (about 650,000 NIRs)
        index="nir", bits=18, sources=("nir",), normalise=ix.nir_key
    )
    bidx_email = BlindIndexField(  # L = 17, C = 3.3 (about 430,000 addresses)
        index="email", bits=17, sources=("email",), normalise=ix.email_key
    )
    bidx_phone_mobile = BlindIndexField(  # L = 18, C = 3.5 (mobile + home, one key)
        index="phone", bits=18, sources=("phone_mobile",), normalise=ix.phone_key
    )
    bidx_phone_home = BlindIndexField(  # L = 18
        index="phone", bits=18, sources=("phone_home",), normalise=ix.phone_key
    )
    # The index key the digests above were made under (after them: they read it on save).
    index_key_id = IndexKeyField()

    class Meta:
        verbose_name = "patient"

    def __str__(self) -> str:
        # Never the name: __str__ ends up in logs and admin pages.
        return f"Patient {self.id}"

    @property
    def display_name(self) -> str:
        family = self.usage_name or self.birth_name or ""
        return f"{family} {self.first_given_name or ''}".strip()


class PatientIdentifier(models.Model):
    """The IPP (identifiant permanent du patient) an establishment gives a patient.

    Kept in clear like the row id: it is an internal surrogate that names no one, and the admission
    desk looks it up from a wristband barcode.
    """

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    # No index of their own: the two unique constraints below lead with one each and serve
    # every look-up by either.
    patient = models.ForeignKey(
        Patient, on_delete=models.CASCADE, related_name="identifiers", db_index=False
    )
    establishment = models.ForeignKey(
        Establishment, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    ipp = models.CharField("IPP", max_length=20)

    class Meta:
        verbose_name = "IPP"
        constraints = [
            models.UniqueConstraint(
                fields=["establishment", "ipp"], name="ipp_unique_in_establishment"
            ),
            models.UniqueConstraint(
                fields=["patient", "establishment"], name="one_ipp_per_patient_and_establishment"
            ),
        ]

    def __str__(self) -> str:
        return f"IPP {self.ipp}"


class IppCounter(models.Model):
    """The last IPP number an establishment handed out (locked row, so two desks never clash)."""

    establishment = models.OneToOneField(
        Establishment, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    last_value = models.PositiveBigIntegerField(default=0)

    def __str__(self) -> str:
        return f"IPP counter {self.establishment_id}"


class DuplicateCandidate(models.Model):
    """Two records that may be one person (identity vigilance). Never merged automatically: a
    human compares them and decides."""

    class Reason(models.TextChoices):
        SAME_INS = "same_ins", "Même matricule INS"
        SAME_TRAITS = "same_traits", "Mêmes traits d'identité"

    class Status(models.TextChoices):
        OPEN = "open", "À examiner"
        DISTINCT = "distinct", "Personnes distinctes"
        SAME_PERSON = "same_person", "Même personne (à fusionner)"

    id = models.UUIDField(primary_key=True, default=new_id, editable=False)
    patient_a = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    patient_b = models.ForeignKey(Patient, on_delete=models.CASCADE, related_name="+")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "doublon potentiel"
        constraints = [
            models.UniqueConstraint(
                fields=["patient_a", "patient_b", "reason"], name="duplicate_pair_unique"
            ),
            models.CheckConstraint(
                condition=models.Q(patient_a__lt=models.F("patient_b")),
                name="duplicate_pair_ordered",
            ),
        ]

    def __str__(self) -> str:
        return f"Doublon potentiel {self.id}"
