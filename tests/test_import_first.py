"""A first import (the patient table empty: the move from the legacy system) finds its
potential duplicates from digests of each row's identity-vigilance keys taken while reading,
not by decrypting every shared blind-index bucket: it must find the very pairs the bucket
search finds."""

from __future__ import annotations

import datetime as dt
import re

import psycopg
from hypothesis import given, settings
from hypothesis import strategies as st

from rempart.records.services.vigilance import CHECKS, COLUMN_KEYS

COUNT_BY_REASON = "SELECT reason, count(*) FROM patients_duplicatecandidate GROUP BY 1 ORDER BY 1"
BUCKET_SEARCH = """
from rempart.audit.context import Actor
from rempart.patients.models import DuplicateCandidate
from rempart.records.services.vigilance import duplicates_find
DuplicateCandidate.objects.all().delete()
print("found", duplicates_find(actor=Actor.system("tests")))
"""


def test_a_first_import_finds_the_duplicates_the_bucket_search_finds(
    console, scratch_database, tmp_path
):
    run = console.run
    run("migrate", "-v0")
    run("generate", "--patients", "300", "--seed", "5", "--workers", "0")
    with psycopg.connect(scratch_database) as conn:
        conn.execute("TRUNCATE patients_patient CASCADE")
        finess = conn.execute("SELECT min(finess) FROM directory_establishment").fetchone()[0]
    export = tmp_path / "export.csv"
    run("legacy_export", "--patients", "6000", "--seed", "9", "--out", str(export),
        "--faults", "30", "--duplicates", "80")  # fmt: skip

    out = run("import", str(export), "--establishment", finess, "-v", "2").stdout
    assert "hash the identity-vigilance keys" in out  # the digest path was taken
    found = int(re.search(r"(\d+) doublons potentiels", out).group(1))
    with psycopg.connect(scratch_database) as conn:
        by_digests = conn.execute(COUNT_BY_REASON).fetchall()
        pairs = conn.execute(
            "SELECT patient_a_id, patient_b_id, reason FROM patients_duplicatecandidate"
        ).fetchall()
    assert {reason for reason, _ in by_digests} == {"same_ins", "same_traits"}
    assert found == len(pairs) >= 80

    # The same database searched bucket by bucket, decrypting every shared one.
    searched = run("shell", "-c", BUCKET_SEARCH).stdout
    assert f"found {found}" in searched
    with psycopg.connect(scratch_database) as conn:
        assert conn.execute(COUNT_BY_REASON).fetchall() == by_digests
        assert sorted(conn.execute(
            "SELECT patient_a_id, patient_b_id, reason FROM patients_duplicatecandidate"
        ).fetchall()) == sorted(pairs)  # fmt: skip


def test_suspects_are_the_rows_whose_digests_meet_and_are_dropped_past_their_bound(monkeypatch):
    import uuid

    import numpy as np

    from rempart.imports.services import Batch, _Suspects

    def batch(ids: list[uuid.UUID], ins: list[int], traits: list[int]) -> Batch:
        made = Batch(last_line=0)
        columns = [np.array(d, dtype=np.uint64).tobytes() for d in (ins, traits)]
        made.suspects = (b"".join(i.bytes for i in ids), columns)
        return made

    a, b, c, d = (uuid.uuid4() for _ in range(4))
    suspects = _Suspects()
    suspects.add(batch([a, b], [5, 0], [7, 9]))  # 0: no key (no NIR), never a suspect
    suspects.add(batch([c, d], [5, 0], [9, 11]))
    assert suspects.groups() == [[[a, c]], [[b, c]]]

    monkeypatch.setattr(_Suspects, "ROWS", 3)
    bounded = _Suspects()
    bounded.add(batch([a, b], [5, 0], [7, 9]))
    assert not bounded.dropped
    bounded.add(batch([c, d], [5, 0], [9, 11]))
    assert bounded.dropped  # past the bound: the import searches the buckets instead


def test_only_the_console_may_open_the_suspects(group):
    """duplicates_find_among decrypts identities: refused to any account, as the bucket search."""
    import pytest

    from rempart.access.policy import AccessDenied
    from rempart.audit.context import Actor
    from rempart.patients.models import Patient
    from rempart.records.services.vigilance import duplicates_find_among

    doctor = Actor(username="dr.curieux", role="doctor")
    some = list(Patient.objects.values_list("pk", flat=True)[:2])
    with pytest.raises(AccessDenied):
        duplicates_find_among(actor=doctor, suspects=[[some], []])


_names = st.sampled_from([None, "", "DUPONT", "LE GOFF", "LEFÈVRE", "N'DIAYE", "Œ", "A-B"])


@settings(max_examples=300, deadline=None, derandomize=True)
@given(
    st.lists(
        st.fixed_dictionaries(
            {
                "nir": st.sampled_from([None, "", "285037511504245", "2850375115042"]),
                "birth_name": _names,
                "first_given_name": _names,
                "birth_date": st.sampled_from([None, dt.date(1985, 3, 14), dt.date(1901, 1, 2)]),
                "sex": st.sampled_from([None, "", "M", "F", "I"]),
            }
        ),
        max_size=8,
    )
)
def test_the_column_keys_are_the_checks_keys_of_the_identity_record(rows):
    """A first import hashes the keys from its columns (vigilance.COLUMN_KEYS); the pairs are
    then confirmed with the checks' keys over the decrypted records (CHECKS): they must agree."""
    columns = {name: [row[name] for row in rows] for name in
               ("nir", "birth_name", "first_given_name", "birth_date", "sex")}  # fmt: skip
    identities = [  # as the identity record holds them: empty values left out, ISO dates
        {name: x.isoformat() if isinstance(x, dt.date) else x for name, x in row.items() if x}
        for row in rows
    ]
    for (_, _, key), keys in zip(CHECKS, COLUMN_KEYS, strict=True):
        assert keys(columns) == [key(identity) for identity in identities]
