"""The breach response at group scale: from a posted sample to the drafts and the letters PDF.

Runs on the group and the sample that `bench/leak.py` made (760,000 patients; 1,000,000 rows of
which 700,000 real): `rempart breach analyse`, then, as the DPO would from the pages, a breach
file with the analysis attached, the CNIL, ARS and letter drafts, the letters PDF for the post,
and the public self-check. Each step is timed; the total from the sample to the drafts and the
letters is what the DPO waits for. Next to it, in the same run, the plaintext path of the letters:
the same PDF written from values already in clear (what an unencrypted system would do).

Usage: .venv/bin/python bench/notify.py --reuse DATA_DIR   (the data folder bench/leak.py printed)
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE = "postgres://postgres@127.0.0.1:5432"
DB = "rempart_bench_leak"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--reuse", type=Path, required=True, help="bench/leak.py's data folder")
    args = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMPART_")}
    env.update(REMPART_ENV="demo", REMPART_DATA_DIR=str(args.reuse),
               DATABASE_URL=f"{BASE}/{DB}")  # fmt: skip
    subprocess.run([str(ROOT / ".venv/bin/rempart"), "migrate", "-v0"], env=env, check=True)  # noqa: S603
    os.environ.update(env)
    sys.path.insert(0, str(ROOT))
    import django

    os.environ["DJANGO_SETTINGS_MODULE"] = "rempart.settings"
    django.setup()
    from django.utils import timezone

    from rempart.audit.context import Actor
    from rempart.breach import letters, notify
    from rempart.breach.models import BreachAnalysis
    from rempart.breach.selfcheck import selfcheck_publish

    sample = args.reuse / "fuite.csv"
    times: dict[str, float] = {}
    started = time.perf_counter()
    subprocess.run([str(ROOT / ".venv/bin/rempart"), "breach", "analyse", str(sample)],  # noqa: S603
                   env=env, check=True, capture_output=True)  # fmt: skip
    times["rempart breach analyse (the command)"] = time.perf_counter() - started
    analysis = BreachAnalysis.objects.order_by("-created_at").first()
    actor = Actor.system("bench")
    step = time.perf_counter()
    breach = notify.breach_open(actor=actor, aware_at=timezone.now(), title="bench",
                                analysis_ids=(analysis.pk,))  # fmt: skip
    notify.breach_notes(actor=actor, breach_id=breach.pk, dpo_contact="dpo@groupe.example")
    for kind in ("cnil", "ars", "letter"):
        notify.draft_generate(actor=actor, breach_id=breach.pk, kind=kind)
    times["breach file and the three drafts"] = time.perf_counter() - step
    step = time.perf_counter()
    made = letters.letters_produce(actor=actor, breach_id=breach.pk)
    times["letters PDF"] = time.perf_counter() - step
    total = time.perf_counter() - started
    step = time.perf_counter()
    published = selfcheck_publish(actor=actor, breach_id=breach.pk)
    times["self-check published"] = time.perf_counter() - step

    # Plaintext path, on the first lot of 100,000 letters in one process: the same PDF from
    # values already in clear, against the encrypted path (open the identities and contacts,
    # then the same PDF).
    from rempart.breach.models import BreachDraft

    shown = notify.leaked_categories([analysis.pk])
    lot = sorted(shown)[: letters.LOT]
    template = BreachDraft.objects.get(breach=breach, kind="letter").text
    step = time.perf_counter()
    clear = list(letters._people(lot))
    decrypt = time.perf_counter() - step

    def write(people: list[tuple[bytes, dict[str, str], dict[str, str]]]) -> None:
        pdf = letters._Letterhead(template)
        for raw, identity, contact in people:
            address = [contact.get("address_line", ""),
                       f"{contact.get('postcode', '')} {contact.get('city', '')}".strip()]  # fmt: skip
            if address[0] and address[1]:
                pdf.letter(letters._recipient(identity), address, frozenset(shown[raw]))
        pdf.output()

    step = time.perf_counter()
    write(clear)
    plain = time.perf_counter() - step
    encrypted = decrypt + plain

    for name, took in times.items():
        print(f"{name}: {took:.1f} s")
    print(f"letters: {made.letters:,} ({made.without_address:,} without a postal address), "
          f"{sum(p.stat().st_size for p in made.paths) / 2**20:.0f} MiB in {len(made.paths)} "
          f"files; self-check: {published.people:,} "
          f"people, buckets of {published.bits} bits, answers of {published.pad} entries")  # fmt: skip
    print(f"from the sample to the drafts and the letters PDF: {total:.1f} s "
          f"({total / 60:.1f} min of machine time)")  # fmt: skip
    print(f"one lot of {len(lot):,} letters in one process: plaintext path (the PDF from values "
          f"in clear) {plain:.1f} s; encrypted path (opening the identities and contacts "
          f"{decrypt:.1f} s, then the same PDF) {encrypted:.1f} s; encrypted / plaintext = "
          f"{encrypted / plain:.2f}x")  # fmt: skip
    print(
        f"peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
