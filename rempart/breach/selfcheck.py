"""The patients' self-check: a public page where a person learns whether they are in a leak the
group analysed, without the group or an eavesdropper learning who asked.

The browser folds what the person types (family name, first given name, birth date) as the
server does, and computes PBKDF2-SHA256 over it with the publication's public salt. It sends
only the first `bits` bits of the result (a bucket that many identities share) and receives
every entry of that bucket, padded with random ones to a fixed count; it compares the entries
with its own hash. The data categories of an entry are masked with two more bytes of the hash:
only who knows the identity reads them. Only people found in the breach file's analyses are
published, so the page is no oracle of who else is a patient.

What it does not do: an attacker who downloads every bucket can still test identities they
already know (name, given name, birth date) offline, at the cost of PBKDF2 per guess; the
iterations make a broad enumeration slow, not impossible. Rate limits on the bucket requests
keep the page from being walked quickly."""

from __future__ import annotations

import math
import multiprocessing
import os
import secrets
import uuid
from collections import Counter
from typing import Any, cast

from django.conf import settings
from django.db import connection, connections, transaction

from rempart.access import policy
from rempart.audit.context import Actor
from rempart.breach.models import LeakedPatient, SelfCheckEntry, SelfCheckPublication
from rempart.breach.notify import HANDLERS, BreachRefused, _file, _step
from rempart.breach.traits import CATEGORY_BIT
from rempart.lib.normalise import fold_name
from rempart.lib.parallel import bounded_imap
from rempart.patients.models import Patient
from rempart.vault.crypto import public_identity_hash
from rempart.vault.fields import EncryptedField

MIN_PAD = 64
PER_BUCKET = 64  # leaked people per bucket, on average


def identity_key(family: str, given: str, born: str) -> bytes:
    """What is hashed: the folded family name, the folded given name, the ISO birth date (the
    browser's selfcheck.js does exactly this)."""
    return f"{fold_name(family)}|{fold_name(given)}|{born}".encode()


def digest(key: bytes, salt: bytes, iterations: int) -> bytes:
    return public_identity_hash(key, salt, iterations)


def bucket_of(hashed: bytes, bits: int) -> int:
    return int.from_bytes(hashed[:4], "big") >> (32 - bits)


def _keys(identity: dict[str, Any]) -> set[bytes]:
    """A person's identity as they may type it: birth or usage name; the first given name
    (as stored, and its first word: "Marie" for "Marie Anne")."""
    born = identity.get("birth_date") or ""
    first = identity.get("first_given_name") or (identity.get("given_names") or "").split(" ")[0]
    givens = {first, first.split(" ")[0], first.split("-")[0]} - {""}
    families = {identity.get("birth_name"), identity.get("usage_name")} - {None, ""}
    return {identity_key(str(f), g, born) for f in families for g in givens} if born else set()


_STATE: dict[str, Any] = {}


def _hash_slice(task: tuple[int, int]) -> list[tuple[bytes, int]]:
    """(hash, category mask) of every identity key of a run of leaked patients."""
    start, stop = task
    patients: list[tuple[bytes, int]] = _STATE["patients"][start:stop]
    salt, iterations = _STATE["salt"], _STATE["iterations"]
    masks = dict(patients)
    field = cast(EncryptedField, Patient._meta.get_field("identity"))
    out = []
    for raw, sealed in _identities([raw for raw, _ in patients]):
        identity = field.open_value(raw, sealed)
        for key in _keys(identity):
            out.append((digest(key, salt, iterations), masks[raw]))
    return out


def _identities(ids: list[bytes]) -> Any:
    table = Patient._meta.db_table
    if connection.vendor == "postgresql":
        import psycopg

        connection.ensure_connection()
        with psycopg.Cursor(connection.connection) as cursor:
            cursor.execute(f"SELECT uuid_send(id), identity FROM {table} "  # noqa: S608
                           "WHERE id = ANY(%s)", [[uuid.UUID(bytes=i) for i in ids]],
                           binary=True)  # fmt: skip
            yield from ((raw, bytes(sealed)) for raw, sealed in cursor if sealed)
        return
    for start in range(0, len(ids), 500):
        chunk = [uuid.UUID(bytes=i) for i in ids[start : start + 500]]
        for pid, sealed in Patient.objects.filter(pk__in=chunk).values_list("id", "identity"):
            if sealed:
                yield (pid.bytes, bytes(cast(Any, sealed)))


def selfcheck_publish(*, actor: Actor, breach_id: uuid.UUID,
                      workers: int = 2) -> SelfCheckPublication:  # fmt: skip
    """Publish (or publish again) the self-check of a breach file from its analyses."""
    policy.authorise_role(actor, HANDLERS)
    with transaction.atomic():
        breach = _file(actor, breach_id)
        analyses = list(breach.analyses.values_list("pk", flat=True))
    if not analyses:
        raise BreachRefused("aucune analyse rattachée : rien à publier")
    masks: dict[bytes, int] = {}
    for patient_id, shown in LeakedPatient.objects.filter(analysis_id__in=analyses).values_list(
        "patient_id", "categories"
    ).iterator(chunk_size=20_000):  # fmt: skip
        raw = patient_id.bytes
        masks[raw] = masks.get(raw, 0) | sum(CATEGORY_BIT.get(c, 0) for c in shown)
    salt = secrets.token_bytes(16)
    iterations = settings.REMPART_SELFCHECK_ITERATIONS
    patients = sorted(masks.items())
    _STATE.update(patients=patients, salt=salt, iterations=iterations)
    step = 5_000
    tasks = [(s, min(s + step, len(patients))) for s in range(0, len(patients), step)]
    try:
        if workers > 0 and connection.vendor == "postgresql" and len(tasks) > 1:
            connections.close_all()
            with multiprocessing.get_context("fork").Pool(workers) as pool:
                parts = list(bounded_imap(pool, _hash_slice, tasks, ahead=2 * workers))
        else:
            parts = [_hash_slice(task) for task in tasks]
    finally:
        _STATE.clear()
    merged: dict[bytes, int] = {}
    for part in parts:
        for hashed, mask in part:
            merged[hashed] = merged.get(hashed, 0) | mask  # two people, one identity
    bits = max(4, math.ceil(math.log2(max(len(merged), 1) / PER_BUCKET))) if merged else 4
    buckets = Counter(bucket_of(h, bits) for h in merged)
    largest = max(buckets.values(), default=0)
    pad = max(MIN_PAD, 1 << math.ceil(math.log2(max(largest, 1) * 1.25)))
    with transaction.atomic():
        breach = _file(actor, breach_id)
        SelfCheckPublication.objects.filter(breach=breach).delete()
        publication = SelfCheckPublication.objects.create(
            breach=breach, created_by=actor.username, salt=salt, iterations=iterations,
            bits=bits, pad=pad, people=len(patients),
        )  # fmt: skip
        rows = [(bucket_of(h, bits), h[:16], mask ^ int.from_bytes(h[16:18], "big"))
                for h, mask in merged.items()]  # fmt: skip
        _write_entries(publication, rows)
        _step(actor, breach, "decision",
              f"vérification publique ouverte : {len(patients)} personnes, {len(rows)} "
              f"identités, seaux de {bits} bits, réponses de {pad} entrées")  # fmt: skip
    return publication


def _write_entries(publication: SelfCheckPublication, rows: list[tuple[int, bytes, int]]) -> None:
    if connection.vendor != "postgresql":
        SelfCheckEntry.objects.bulk_create(
            [SelfCheckEntry(publication=publication, bucket=b, tag=t, masked=m)
             for b, t, m in rows],
            batch_size=2000,
        )  # fmt: skip
        return
    table = SelfCheckEntry._meta.db_table
    with connection.cursor() as cursor, cursor.cursor.copy(
        f"COPY {table} (publication_id, bucket, tag, masked) FROM STDIN"
    ) as copy:  # fmt: skip
        for bucket, tag, masked in sorted(rows):
            copy.write_row((publication.pk, bucket, tag, masked))


def selfcheck_withdraw(*, actor: Actor, breach_id: uuid.UUID) -> None:
    with transaction.atomic():
        breach = _file(actor, breach_id)
        SelfCheckPublication.objects.filter(breach=breach).update(active=False)
        _step(actor, breach, "decision", "vérification publique retirée")


def bucket_answer(publication: SelfCheckPublication, bucket: int) -> list[list[Any]]:
    """Every entry of the bucket and random ones, `pad` in all, shuffled: the answer's size
    says nothing of how many people the bucket holds."""
    real = [[bytes(t).hex(), m] for t, m in SelfCheckEntry.objects.filter(
        publication=publication, bucket=bucket).values_list("tag", "masked")]  # fmt: skip
    fake = [[os.urandom(16).hex(), secrets.randbelow(1 << 16)]
            for _ in range(max(publication.pad - len(real), 0))]  # fmt: skip
    answer = real[: publication.pad] + fake
    secrets.SystemRandom().shuffle(answer)
    return answer
