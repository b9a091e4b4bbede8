"""The drafts a DPO sends after a breach, written from the file and its analyses, in French:

- the CNIL notification (GDPR Art. 33(3)): nature, categories and approximate numbers of people
  and records, DPO contact, likely consequences, measures taken and proposed;
- the health-sector report to the ARS and CERT Santé (public health code, art. L1111-8-2);
- the letter and the e-mail to each person concerned (Art. 34), whose repères [[DONNEES]] and
  [[CONSEILS]] become, for each patient, what leaked of theirs and the advice that fits it; the
  Art. 34(3) exemptions assessed;
- the public communication, when individual letters would be disproportionate (Art. 34(3)(c)).

Numbers and names of establishments only: no patient's value is written in a draft."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.utils import timezone

from rempart.breach.report import CATEGORY_LABELS

if TYPE_CHECKING:
    from rempart.breach.models import BreachFile
    from rempart.breach.notify import Figures

RECIPIENT, DATA, ADVICE = "[[DESTINATAIRE]]", "[[DONNEES]]", "[[CONSEILS]]"
PLACEHOLDERS = (DATA, ADVICE)

# What each category exposes a person to, in words a patient understands.
RISKS = {
    "identite": "des messages qui vous appellent par vos nom et prénom pour paraître crédibles",
    "date_naissance": "l'usurpation de votre identité (votre date de naissance sert souvent à "
                      "prouver qui vous êtes)",
    "ins": "l'utilisation de votre numéro de sécurité sociale pour rendre crédible un faux "
           "appel de l'Assurance Maladie ou tenter une fraude aux prestations",
    "adresse": "des courriers frauduleux à votre domicile",
    "telephone": "des appels ou SMS frauduleux (faux conseiller bancaire, faux agent de "
                 "l'Assurance Maladie, fausse clinique)",
    "email": "des courriels d'hameçonnage imitant la clinique, l'Assurance Maladie (ameli) ou "
             "votre banque",
    "medecin_traitant": "des messages citant votre médecin traitant pour paraître crédibles",
    "ipp": "rien de direct : ce numéro de dossier interne ne donne accès à aucun dossier",
    "clinique": "la divulgation d'informations sur votre santé (atteinte à la vie privée, "
                "tentative de chantage)",
}  # fmt: skip
ADVICE_BY_CATEGORY = {
    "telephone": "Si l'on vous appelle au nom de votre banque, de l'Assurance Maladie ou de la "
                 "clinique, raccrochez et rappelez le numéro officiel que vous connaissez. "
                 "Signalez les SMS frauduleux en les transférant au 33700.",
    "email": "Ne cliquez pas sur les liens des courriels inattendus ; allez vous-même sur le "
             "site officiel. Signalez les courriels frauduleux sur signal-spam.fr.",
    "date_naissance": "Surveillez vos relevés bancaires et votre courrier ; en cas d'ouverture "
                      "d'un compte ou d'un crédit à votre nom, portez plainte et prévenez votre "
                      "banque.",
    "ins": "Consultez régulièrement votre compte ameli.fr : un remboursement que vous ne "
           "reconnaissez pas doit être signalé à votre caisse.",
    "adresse": "Méfiez-vous des courriers vous demandant de payer ou de rappeler un numéro "
               "inconnu.",
    "clinique": "Si quelqu'un vous contacte en évoquant votre santé pour obtenir de l'argent, "
                "ne répondez pas et portez plainte.",
}  # fmt: skip
NEVER = (
    "La clinique, l'Assurance Maladie et votre banque ne vous demanderont jamais, ni par "
    "téléphone, ni par SMS, ni par courriel : vos mots de passe, vos codes reçus par SMS, "
    "votre numéro de carte bancaire, ni un paiement pour « débloquer » votre dossier."
)


def render(kind: str, breach: BreachFile, figures: Figures) -> str:
    notes = dict(breach.notes or {})
    return {"cnil": _cnil, "ars": _ars, "letter": _letter, "email": _email,
            "public": _public}[kind](breach, figures, notes)  # fmt: skip


def _categories(figures: Figures) -> list[str]:
    return [f"- {CATEGORY_LABELS.get(c, c)} : {n} personne(s)"
            for c, n in sorted(figures.per_category.items(), key=lambda kv: -kv[1])]  # fmt: skip


def _dpo(notes: dict[str, str]) -> str:
    return notes.get("dpo_contact") or "[coordonnées du délégué à la protection des données]"


def _when(value: object) -> str:
    return f"{timezone.localtime(value):%d/%m/%Y à %H:%M}"  # type: ignore[arg-type]


def _consequences(figures: Figures) -> list[str]:
    return [f"- {RISKS[c]}" for c in RISKS if figures.per_category.get(c)]


def _establishments(figures: Figures) -> list[str]:
    listed = [f"- {name} (FINESS {finess}) : {n} patient(s)"
              for name, finess, n in figures.establishments]  # fmt: skip
    return listed or ["- [établissements concernés]"]


def exemptions(figures: Figures) -> list[str]:
    """The Art. 34(3) exemptions, assessed from what the analyses found."""
    out = []
    if figures.plaintext:
        out.append("a) Données chiffrées rendues incompréhensibles : NE S'APPLIQUE PAS. Les "
                   "données de Rempart sont chiffrées au repos avec des clés conservées hors de "
                   "la base, mais l'échantillon analysé contient des valeurs en clair de "
                   f"{figures.people} patient(s) du groupe : les valeurs ont été obtenues "
                   "déchiffrées (export, compte, ou clés).")  # fmt: skip
    else:
        out.append("a) Données chiffrées rendues incompréhensibles : à examiner. Aucune valeur "
                   "en clair de patient du groupe n'a été retrouvée dans les échantillons "
                   "analysés ; si seules la base ou une sauvegarde chiffrées ont été prises, "
                   "sans les clés, l'exemption peut s'appliquer.")  # fmt: skip
    out.append("b) Mesures ultérieures rendant le risque élevé improbable : NE S'APPLIQUE PAS "
               "a priori. Des données d'identité et de contact publiées ne peuvent pas être "
               "reprises ; le risque d'hameçonnage ciblé demeure.")  # fmt: skip
    if figures.people > 100_000:
        out.append(f"c) Efforts disproportionnés : À ENVISAGER EN COMPLÉMENT. {figures.people} "
                   "personnes sont concernées : les lettres individuelles restent possibles "
                   "(publipostage), une communication publique les accompagne pour les "
                   "personnes dont l'adresse n'est plus valable.")  # fmt: skip
    else:
        out.append(f"c) Efforts disproportionnés : NE S'APPLIQUE PAS. {figures.people} "
                   "personne(s) : chacune est informée individuellement ; une communication "
                   "publique complète pour celles qu'aucun courrier n'atteint.")  # fmt: skip
    return out


def _cnil(breach: BreachFile, figures: Figures, notes: dict[str, str]) -> str:
    lines = [
        "NOTIFICATION D'UNE VIOLATION DE DONNÉES PERSONNELLES À LA CNIL",
        "(article 33 du RGPD ; à reporter dans le téléservice notifications.cnil.fr)",
        "",
        f"Dossier : {notes.get('title', '')}",
        f"Date et heure de la prise de connaissance : {_when(breach.aware_at)}",
        f"Délai de 72 heures : notification due avant le {_when(breach.deadline)}",
        "Notification : initiale (elle sera complétée par phases, article 33(4), au fil de "
        "l'enquête)",
        "",
        "1. NATURE DE LA VIOLATION",
        "Perte de confidentialité : des données de patients ont été copiées et publiées ou "
        "mises en vente.",
        notes.get("facts") or "[circonstances : comment, quand, par qui la violation a été "
                              "découverte]",
        "Échantillon(s) analysé(s) : " + ("; ".join(figures.samples) or "aucun"),
        "Origine établie par l'analyse : " + (" ".join(figures.sources) or "non déterminée"),
        f"Données les plus récentes de l'échantillon : {(figures.newest or '')[:10] or 'inconnu'}",
        "",
        "2. CATÉGORIES ET NOMBRE APPROXIMATIF DE PERSONNES CONCERNÉES",
        f"Patients du groupe retrouvés dans les échantillons : {figures.people} personne(s).",
        "Établissements :",
        *_establishments(figures),
        "",
        "3. CATÉGORIES ET NOMBRE APPROXIMATIF D'ENREGISTREMENTS",
        f"Enregistrements concernés : {figures.records} ligne(s) correspondant à un patient "
        f"({figures.exact} exactes, {figures.partial} partielles) sur {figures.rows} ligne(s) "
        "publiée(s).",
        "Catégories de données (personnes concernées par catégorie) :",
        *_categories(figures),
        "Données de santé concernées : " + ("oui" if figures.per_category.get("clinique")
                                            else "non (identité et coordonnées seulement)"),
        "",
        "4. DÉLÉGUÉ À LA PROTECTION DES DONNÉES",
        _dpo(notes),
        "",
        "5. CONSÉQUENCES PROBABLES",
        notes.get("consequences") or "Pour les personnes concernées :",
        *_consequences(figures),
        "",
        "6. MESURES PRISES",
        notes.get("measures_taken") or "[mesures prises pour mettre fin à la violation et en "
                                       "limiter les effets]",
        "",
        "7. MESURES PROPOSÉES",
        notes.get("measures_proposed") or "Information individuelle des personnes concernées "
                                          "(article 34) avec des conseils adaptés à ce qui a "
                                          "fuité pour chacune.",
        "",
        "8. INFORMATION DES PERSONNES (article 34)",
        *exemptions(figures),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def _ars(breach: BreachFile, figures: Figures, notes: dict[str, str]) -> str:
    lines = [
        "SIGNALEMENT D'UN INCIDENT DE SÉCURITÉ DES SYSTÈMES D'INFORMATION",
        "(article L1111-8-2 du code de la santé publique ; à l'ARS et au CERT Santé, portail "
        "signalement.social-sante.gouv.fr)",
        "",
        f"Dossier : {notes.get('title', '')}",
        f"Détection : {_when(breach.aware_at)}",
        "Type d'incident : atteinte à la confidentialité des données de patients "
        "(exfiltration, données publiées ou mises en vente)",
        "Système concerné : dossier patient (Rempart)",
        "Établissements de santé concernés :",
        *_establishments(figures),
        "",
        "Description :",
        notes.get("facts") or "[circonstances de l'incident]",
        "Origine établie par l'analyse : " + (" ".join(figures.sources) or "non déterminée"),
        "",
        "Impact :",
        f"- données de {figures.people} patient(s) ; catégories : "
        + ", ".join(CATEGORY_LABELS.get(c, c) for c in figures.per_category) + ".",
        "- continuité des soins : [à préciser ; aucune indisponibilité du dossier patient n'est "
        "liée à cette fuite à ce stade]",
        "",
        "Mesures prises :",
        notes.get("measures_taken") or "[mesures de confinement et de remédiation]",
        "",
        "Mesures envisagées :",
        notes.get("measures_proposed") or "[mesures envisagées]",
        "",
        "Notification CNIL : " + (f"faite le {_when(breach.cnil_notified_at)}"
                                  if breach.cnil_notified_at else "en cours (délai de 72 h)"),
        "Contact : " + _dpo(notes),
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def _letter(breach: BreachFile, figures: Figures, notes: dict[str, str]) -> str:
    lines = [
        RECIPIENT,
        "",
        "Objet : vos données personnelles ont été exposées",
        "",
        "Madame, Monsieur,",
        "",
        "Nous devons vous informer qu'une partie des données que nos établissements détiennent "
        "sur vous a été copiée sans autorisation et diffusée. Nous en avons eu connaissance le "
        f"{timezone.localtime(breach.aware_at):%d/%m/%Y}. Voici ce qui vous concerne :",
        "",
        DATA,
        "",
        "Ce que vous devez savoir :",
        NEVER,
        "",
        ADVICE,
        "",
        "Si vous pensez être victime d'une escroquerie, portez plainte au commissariat ou à la "
        "gendarmerie ; l'assistance cybermalveillance.gouv.fr peut vous aider.",
        "",
        "Pour toute question sur vos données, vous pouvez écrire à notre délégué à la "
        f"protection des données : {_dpo(notes)}. Vous pouvez aussi adresser une réclamation à "
        "la CNIL (www.cnil.fr).",
        "",
        "Nous vous prions de nous excuser pour cette atteinte à la confiance que vous nous "
        "accordez.",
        "",
        "La direction du groupe",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def _email(breach: BreachFile, figures: Figures, notes: dict[str, str]) -> str:
    lines = [
        "Objet : vos données personnelles ont été exposées",
        "",
        "Madame, Monsieur,",
        "",
        "Une partie des données que nos établissements détiennent sur vous a été copiée sans "
        "autorisation et diffusée. Voici ce qui vous concerne :",
        "",
        DATA,
        "",
        NEVER,
        "Ce courriel ne contient aucun lien et ne vous demande aucune information.",
        "",
        ADVICE,
        "",
        f"Contact : notre délégué à la protection des données, {_dpo(notes)}.",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def _public(breach: BreachFile, figures: Figures, notes: dict[str, str]) -> str:
    lines = [
        "COMMUNICATION PUBLIQUE : FUITE DE DONNÉES DE PATIENTS",
        "",
        f"Le {timezone.localtime(breach.aware_at):%d/%m/%Y}, notre groupe a appris que des "
        "données de patients de ses établissements avaient été copiées et diffusées.",
        f"Environ {figures.people} personnes sont concernées. Les données en cause sont : "
        + ", ".join(CATEGORY_LABELS.get(c, c).lower() for c in figures.per_category) + ".",
        "Établissements : " + ", ".join(name for name, _, _ in figures.establishments) + ".",
        "",
        "Chaque personne concernée reçoit un courrier. Vous pouvez aussi vérifier vous-même, "
        "sans vous identifier auprès de nous, si vos données figurent dans la fuite analysée, "
        "sur la page de vérification de notre site.",
        "",
        NEVER,
        "",
        "Soyez vigilants face aux appels, SMS et courriels qui vous parleraient de vos soins, de "
        "remboursements ou de vos comptes. En cas de doute, raccrochez et rappelez le numéro "
        "officiel que vous connaissez. Aide : cybermalveillance.gouv.fr ; SMS frauduleux : 33700.",
        "",
        f"Contact : {_dpo(notes)}.",
    ]  # fmt: skip
    return "\n".join(lines) + "\n"


def patient_parts(categories: list[str]) -> tuple[str, str]:
    """What replaces [[DONNEES]] and [[CONSEILS]] in one patient's letter: their own
    categories and the risks they carry, and the advice that fits them."""
    shown = [c for c in CATEGORY_LABELS if c in categories]
    data = "\n".join(f"- {CATEGORY_LABELS[c]} : risque {RISKS[c]}." for c in shown)
    advice = "\n".join(ADVICE_BY_CATEGORY[c] for c in shown if c in ADVICE_BY_CATEGORY)
    return data or "- [données concernées]", advice or NEVER


def merge(template: str, recipient: str, categories: list[str]) -> str:
    data, advice = patient_parts(categories)
    return template.replace(RECIPIENT, recipient).replace(DATA, data).replace(ADVICE, advice)
