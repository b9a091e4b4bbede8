"""A day's work in a real browser (Debian's Chromium driven by Playwright) against the demo as a
user starts it: `rempart demo` in a fresh data folder, then the server in its own process.

Logs in with the second factor, searches, opens a chart, prescribes and downloads the PDF, breaks
the glass, gets locked by scraping; saves screenshots of the main pages in docs/screenshots/.
"""

from __future__ import annotations

import os
import re
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
CLI = [sys.executable, "-m", "rempart.cli"]
USED_STEPS: dict[str, int] = {}  # username -> the TOTP time step its last login used

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (scripts/test does)"
)


@dataclass
class Demo:
    url: str
    env: dict[str, str]
    data: Path
    accounts: dict[str, str]  # username -> password

    def code(self, username: str) -> str:
        """The account's current code; a code is good once, so a second login of the same
        account in the same 30 s waits for the next one."""
        step = int(time.time() // 30)
        if USED_STEPS.get(username) == step:
            time.sleep((step + 1) * 30 - time.time() + 0.5)
            step += 1
        USED_STEPS[username] = step
        done = subprocess.run([*CLI, "totp_code", username], env=self.env, check=True,  # noqa: S603
                              capture_output=True, text=True)  # fmt: skip
        return done.stdout.strip()

    def sql(self, query: str, *params: object) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.data / "rempart.sqlite3") as conn:
            return conn.execute(query, params).fetchall()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    data = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("REMPART_")}
    env.pop("DATABASE_URL", None)
    env.update(REMPART_ENV="demo", REMPART_DATA_DIR=str(data))
    subprocess.run([*CLI, "demo", "--no-serve", "--patients", "600"], env=env, check=True,  # noqa: S603
                   capture_output=True)  # fmt: skip
    port = _free_port()
    serve = [*CLI, "runserver", f"127.0.0.1:{port}", "--noreload", "--insecure"]  # static files too
    server = subprocess.Popen(serve, env=env, stdout=subprocess.DEVNULL,  # noqa: S603
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        rows = (data / "demo-accounts.txt").read_text(encoding="utf-8").splitlines()
        accounts = {r.split("\t")[0]: r.split("\t")[1] for r in rows if r}
        yield Demo(f"http://127.0.0.1:{port}", env, data, accounts)
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                     args=["--no-sandbox", "--disable-dev-shm-usage"])  # fmt: skip
        yield launched
        launched.close()


def _page(browser: object) -> object:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="fr-FR",  # type: ignore[attr-defined]
                                  accept_downloads=True)  # fmt: skip
    return context.new_page()


def _shot(page: object, name: str) -> None:
    """A screenshot for the README, and the page checked by axe-core (WCAG 2.1 A and AA, the
    base of the RGAA): no serious or critical violation on any page people use."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]
    _accessible(page, name)


def _accessible(page: object, name: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    tags = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
    results = Axe().run(page, options={"runOnly": {"type": "tag", "values": tags},
                                       "resultTypes": ["violations"]})  # fmt: skip
    grave = [
        (v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3])
        for v in results.response["violations"]
        if v["impact"] in ("serious", "critical")
    ]
    assert grave == [], f"{name}: {grave}"


def _login(page: object, demo: Demo, username: str, shots: bool = False) -> None:
    page.goto(demo.url + "/")  # type: ignore[attr-defined]
    page.fill("#id_username", username)  # type: ignore[attr-defined]
    page.fill("#id_password", demo.accounts[username])  # type: ignore[attr-defined]
    if shots:
        _shot(page, "01-connexion")
    page.click("main button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(re.compile(r".*/connexion/second-facteur/"))  # type: ignore[attr-defined]
    page.fill("#id_code", demo.code(username))  # type: ignore[attr-defined]
    if shots:
        _shot(page, "02-second-facteur")
    page.click("main button[type=submit]")  # type: ignore[attr-defined]
    page.wait_for_url(demo.url + "/")  # type: ignore[attr-defined]


def _account(demo: Demo, prefix: str) -> str:
    return sorted(u for u in demo.accounts if u.startswith(prefix))[0]


def test_a_secretary_logs_in_searches_and_opens_a_chart(demo, browser):
    page = _page(browser)
    secretary = _account(demo, "secretaire.")
    _login(page, demo, secretary, shots=True)
    assert page.inner_text("h1") == f"Bonjour {secretary}"
    _shot(page, "03-accueil-sejours")
    page.click("table a")
    page.wait_for_url(re.compile(r".*/patients/[0-9a-f-]{36}/"))
    _shot(page, "04-dossier")
    name = page.inner_text("h1").split(" ")[0]
    born = re.search(r"Né\(e\) le (\d\d)/(\d\d)/(\d{4})", page.content())
    page.goto(demo.url + "/patients/")
    page.fill("#id_name", name)
    page.fill("#id_birth_date", f"{born.group(3)}-{born.group(2)}-{born.group(1)}")
    page.click("main form button[type=submit]")
    page.wait_for_selector("table")
    assert name in page.inner_text("table")
    _shot(page, "05-recherche")
    page.click("table a")
    # The desk sees identity, contact and its establishment's stays; prescriptions, other
    # establishments' stays and the access report wait for a clinician of the admitting service.
    assert "Le contenu clinique" in page.inner_text("main")
    assert page.get_by_role("link", name="Qui a consulté ce dossier").count() == 0
    # The same chart on a tablet held upright: nothing wider than the screen.
    page.go_back()
    page.set_viewport_size({"width": 768, "height": 1024})
    width = page.evaluate("() => [document.documentElement.scrollWidth, window.innerWidth]")
    assert width[0] <= width[1], width
    _shot(page, "14-dossier-tablette")


def test_a_physician_prescribes_signs_and_downloads_the_ordonnance(demo, browser):
    page = _page(browser)
    physician = _account(demo, "medecin.")
    _login(page, demo, physician)
    page.click("table a")
    # A patient expected in the physician's service (a consultation tomorrow, say) shows no
    # prescription until the entry is recorded: then the clinical content opens.
    if page.get_by_role("link", name="Nouvelle prescription").count() == 0:
        assert "Le contenu clinique" in page.inner_text("main")
        page.get_by_role("button", name="Enregistrer l'entrée").first.click()
    page.get_by_role("link", name="Nouvelle prescription").click()
    everything = page.locator("#id_drug option").count()
    page.fill("#q", "parac")  # htmx narrows the list as one types (no click, CSP intact)
    for _ in range(50):  # (the page's CSP forbids Playwright's wait_for_function: it uses eval)
        if 0 < page.locator("#id_drug option").count() < everything:
            break
        page.wait_for_timeout(100)
    assert 0 < page.locator("#id_drug option").count() < everything
    page.select_option("#id_drug", index=0)
    page.fill("#id_dose", "1 comprimé")
    page.select_option("#id_route", "oral")
    page.fill("#id_frequency", "3 fois par jour")
    page.fill("#id_duration_days", "5")
    page.get_by_role("button", name="Créer le brouillon").click()
    page.wait_for_url(re.compile(r".*/prescriptions/[0-9a-f-]{36}/"))
    page.get_by_role("button", name="Signer l'ordonnance").click()
    page.wait_for_selector("text=Signée")
    _shot(page, "07-prescription-signee")
    with page.expect_download() as download:
        page.get_by_role("link", name="Imprimer l'ordonnance (PDF)").click()
    assert Path(download.value.path()).read_bytes().startswith(b"%PDF-")
    signed = page.url.rstrip("/").rsplit("/", 1)[1].replace("-", "")
    patient = demo.sql("SELECT patient_id FROM care_prescription WHERE id = ?", signed)[0][0]
    patient = str(patient).replace("-", "")
    patient = f"{patient[:8]}-{patient[8:12]}-{patient[12:16]}-{patient[16:20]}-{patient[20:]}"
    page.goto(f"{demo.url}/patients/{patient}/")
    page.get_by_role("link", name="Qui a consulté ce dossier").click()
    assert "\tMédecin\t" in page.inner_text("table")  # the physician's own accesses, by name
    _shot(page, "06-qui-a-consulte")


def test_a_nurse_breaks_the_glass_for_a_patient_of_another_establishment(demo, browser):
    page = _page(browser)
    nurse = _account(demo, "infirmier.")
    place = demo.sql(
        "SELECT establishment_id FROM directory_staffmember_establishments s "
        "JOIN directory_staffmember m ON m.id = s.staffmember_id "
        "JOIN auth_user u ON u.id = m.user_id WHERE u.username = ?", nurse,
    )[0][0]  # fmt: skip
    elsewhere = demo.sql("SELECT patient_id FROM care_stay WHERE establishment_id <> ? "
                         "AND discharged_at IS NULL LIMIT 1", place)[0][0]  # fmt: skip
    patient = str(elsewhere)
    patient = f"{patient[:8]}-{patient[8:12]}-{patient[12:16]}-{patient[16:20]}-{patient[20:]}"
    _login(page, demo, nurse)
    page.goto(f"{demo.url}/patients/{patient}/")
    assert "Dossier introuvable" in page.inner_text("h1")
    _shot(page, "08-introuvable")
    page.get_by_role("link", name="Déclarer un accès d'urgence").click()
    page.select_option("#id_reason", "emergency")
    page.fill("#id_justification", "Malaise dans le hall, patiente inconsciente")
    _shot(page, "09-bris-de-glace")
    page.get_by_role("button", name="Déclarer l'accès d'urgence").click()
    page.wait_for_url(f"{demo.url}/patients/{patient}/")
    assert "Séjours" in page.content()
    dpo = _page(browser)
    _login(dpo, demo, "dpo")
    dpo.goto(demo.url + "/dpo/")
    assert "Malaise dans le hall" in dpo.inner_text("table")
    _shot(dpo, "10-dpo-revue")


def test_a_secretary_corrects_and_discards_refused_import_lines(demo, browser):
    """A legacy export with lines lacking a usable identity is imported at the secretary's
    establishment; in "Reprise des données" she corrects one refused line (the patient comes in)
    and discards another with a reason."""
    secretary = _account(demo, "secretaire.")
    finess = demo.sql(
        "SELECT e.finess FROM directory_establishment e JOIN directory_staffmember_establishments"
        " se ON se.establishment_id = e.id JOIN directory_staffmember s ON s.id = se.staffmember_id"
        " JOIN auth_user u ON u.id = s.user_id WHERE u.username = ? ORDER BY e.finess",
        secretary,
    )[0][0]
    export = demo.data / "reprise.csv"
    for args in (
        ["legacy_export", "--patients", "40", "--seed", "7", "--faults", "8", "--out", str(export)],
        ["import", str(export), "--establishment", finess],
    ):
        subprocess.run([*CLI, *args], env=demo.env, check=True, capture_output=True)  # noqa: S603
    before = demo.sql("SELECT count(*) FROM patients_patient")[0][0]
    page = _page(browser)
    _login(page, demo, secretary)
    page.click("text=Reprise des données")
    assert "reprise.csv" in page.inner_text("main")
    _shot(page, "15-reprise")
    page.click("main table a")
    page.wait_for_url(re.compile(r".*/reprise/[0-9a-f-]{36}/"))
    refused = page.locator("main table a", has_text="Corriger ou écarter")
    assert refused.count() == 4, page.inner_text("main")  # 8 faults: 4 refusing, 4 warning
    assert "email:" in page.inner_text("main") and "nir:" in page.inner_text("main")
    refused.first.click()
    page.wait_for_url(re.compile(r".*/reprise/ligne/[0-9a-f-]{36}/"))
    _shot(page, "16-ligne-refusee")
    reason = page.inner_text("[role=alert]")
    assert "birth_date" in reason or "birth_name" in reason
    if not page.input_value("#id_birth_name"):
        page.fill("#id_birth_name", "Reprise")
    page.fill("#id_birth_date", "1961-04-12")
    save = page.get_by_role("button", name="Enregistrer le patient")
    save.click()
    page.wait_for_load_state()
    if page.locator("#doublons").count():
        page.check("#id_confirm")
        save.click()
    page.wait_for_url(re.compile(r".*/sejour/"))
    assert "Ligne corrigée" in page.inner_text("main")
    assert demo.sql("SELECT count(*) FROM patients_patient")[0][0] == before + 1
    page.goto(demo.url + "/reprise/")
    page.click("main table a")
    page.locator("main table a", has_text="Corriger ou écarter").first.click()
    page.select_option("#id_reason", index=1)
    page.get_by_role("button", name="Écarter").click()
    assert "Ligne écartée" in page.inner_text("main")
    assert page.locator("main table a", has_text="Corriger ou écarter").count() == 2


def test_an_export_is_approved_leaks_and_is_traced_back_to_it(demo, browser, tmp_path):
    """The whole story in the browser: a secretary asks for a list, the DPO approves, the
    secretary produces it (the passphrase shown once) and downloads it; a part of it is posted
    for sale; the DPO drops the sample on the analyser, which names the export and the two."""
    import pyrage

    secretary = _account(demo, "secretaire.")
    desk = _page(browser)
    _login(desk, demo, secretary)
    desk.click("text=Exports de listes de patients")
    desk.select_option("#id_purpose", "recall")
    desk.fill("#id_detail", "Rappel vaccinal grippe")
    desk.select_option("#id_establishment", index=1)
    for group in ("ipp", "identite", "telephone", "email", "adresse"):
        desk.check(f"input[name=groups][value={group}]")
    desk.select_option("#id_format", "csv")
    desk.check("input[name=recipient_kind][value=passphrase]")
    desk.get_by_role("button", name="Demander l'export").click()
    desk.wait_for_url(re.compile(r".*/exports/[0-9a-f-]{36}/"))
    export_url = desk.url
    assert "En attente d'approbation" in desk.inner_text("main")
    dpo = _page(browser)
    _login(dpo, demo, "dpo")
    dpo.goto(export_url)
    dpo.fill("#id_note", "Campagne validée")
    dpo.get_by_role("button", name="Approuver").click()
    assert "Approuvé" in dpo.inner_text("main")
    desk.reload()
    desk.get_by_role("button", name="Produire le fichier chiffré").click()
    passphrase = desk.inner_text("#passphrase")
    _shot(desk, "17-export-produit")
    with desk.expect_download() as download:
        desk.click("text=Télécharger le fichier chiffré")
    sealed = Path(download.value.path()).read_bytes()
    rows = pyrage.passphrase.decrypt(sealed, passphrase).decode("utf-8-sig").splitlines()
    desk.reload()
    assert passphrase not in desk.content()  # shown once
    # A part of the file, posted for sale.
    sample = tmp_path / "a_vendre.csv"
    sample.write_text("\n".join(rows[:1] + rows[5:85]), encoding="utf-8")
    dpo.goto(demo.url + "/fuites/")
    dpo.set_input_files("#id_sample", str(sample))
    dpo.get_by_role("button", name="Analyser").click()
    dpo.wait_for_url(re.compile(r".*/fuites/[0-9a-f-]{36}/"))
    report = dpo.inner_text("main")
    _shot(dpo, "18-analyse-fuite")
    assert "Issu de l'export" in report and secretary in report and "dpo" in report
    assert "authentique" in report


def test_a_scraping_secretary_is_asked_again_then_locked(demo, browser):
    page = _page(browser)
    secretary = sorted(u for u in demo.accounts if u.startswith("secretaire."))[-1]
    _login(page, demo, secretary)
    ids = [str(r[0]) for r in demo.sql("SELECT id FROM patients_patient ORDER BY id")]
    seen_step_up = False
    for raw in ids:
        pid = f"{raw[:8]}-{raw[8:12]}-{raw[12:16]}-{raw[16:20]}-{raw[20:]}"
        page.goto(f"{demo.url}/patients/{pid}/")
        if "/confirmer/" in page.url and not seen_step_up:
            seen_step_up = True
            _shot(page, "11-confirmation")
        if "Compte verrouillé" in page.content():
            _shot(page, "12-compte-verrouille")
            break
    else:
        pytest.fail("the scraping account was never locked")
    rssi = _page(browser)
    _login(rssi, demo, "rssi")
    rssi.goto(demo.url + "/securite/")
    assert secretary in rssi.inner_text("main")
    _shot(rssi, "13-securite")


_LEAK = """
import json
from rempart.audit.context import Actor
from rempart.breach.models import LeakedPatient
from rempart.breach.services import breach_analyse
from rempart.patients.models import Patient
people = list(Patient.objects.order_by("id")[:60])
lines = ["nom;prenom;ddn"] + [f"{p.birth_name};{p.first_given_name};{p.birth_date:%d/%m/%Y}"
                              for p in people[:40]]
analysis = breach_analyse(actor=Actor.system("test"), data="\\n".join(lines).encode(),
                          file_name="forum.csv")
leaked = set(LeakedPatient.objects.filter(analysis=analysis).values_list("patient_id", flat=True))
def who(p):
    return [p.usage_name or p.birth_name, p.first_given_name, p.birth_date.isoformat()]
inside = next(p for p in people[:40] if p.pk in leaked)
print(json.dumps({"file": analysis.file_name, "inside": who(inside), "outside": who(people[50])}))
"""


def test_the_dpo_opens_a_breach_file_and_a_patient_checks_their_data(demo, browser):
    """The DPO opens a file from an analysis, generates the CNIL notification, opens the public
    self-check; a person checks, without an account, a leaked identity (typed in lower case,
    the usage name if any) and one that is not in the leak. What goes over the wire: the
    bucket only, never the name or the birth date."""
    import json

    done = subprocess.run([*CLI, "shell", "-c", _LEAK], env=demo.env, check=True,  # noqa: S603
                          capture_output=True, text=True)  # fmt: skip
    leak = json.loads(done.stdout.strip().splitlines()[-1])
    dpo = _page(browser)
    _login(dpo, demo, "dpo")
    dpo.click("text=Dossiers de violation")
    dpo.fill("#id_title", "Fichier mis en vente sur un forum")
    dpo.select_option("#id_analysis", index=1)
    dpo.get_by_role("button", name="Ouvrir le dossier").click()
    dpo.wait_for_url(re.compile(r".*/violations/[0-9a-f-]{36}/"))
    assert "notification CNIL due dans 7" in dpo.inner_text("body")  # on every page
    dpo.locator("tr", has_text="Notification à la CNIL").get_by_role("button").click()
    dpo.wait_for_url(re.compile(r".*/brouillon/cnil/"))
    assert "NOTIFICATION D'UNE VIOLATION" in dpo.input_value("#id_text")
    dpo.click("text=Retour au dossier")
    dpo.get_by_role("button", name="Ouvrir la vérification publique").click()
    assert "Vérification publique ouverte" in dpo.inner_text("main")
    _shot(dpo, "19-dossier-violation")

    patient = _page(browser)  # no account
    sent: list[tuple[str, str]] = []
    patient.on("request", lambda r: sent.append((r.url, r.post_data or "")))
    patient.goto(demo.url + "/verifier-mes-donnees/")
    family, given, born = leak["inside"]
    patient.fill("#family", family.lower())
    patient.fill("#given", given)
    patient.fill("#born", born)
    patient.get_by_role("button", name="Vérifier").click()
    patient.wait_for_selector(".selfcheck-found")
    found = patient.inner_text("#selfcheck-result")
    assert "Identité" in found and "Date de naissance" in found
    _shot(patient, "20-verification-patient")
    family, given, born = leak["outside"]
    patient.fill("#family", family)
    patient.fill("#given", given)
    patient.fill("#born", born)
    patient.get_by_role("button", name="Vérifier").click()
    patient.wait_for_selector(".selfcheck-absent")
    buckets = [(url, body) for url, body in sent if "/seau/" in url]
    assert len(buckets) == 2
    for url, body in sent:
        for person in (leak["inside"], leak["outside"]):
            for value in (person[0], person[0].lower(), person[0].upper(), person[2]):
                assert value not in url and value not in body
    assert all(set(json.loads(body)) == {"p", "b"} for _, body in buckets)


def test_every_page_each_role_reaches_passes_axe(demo, browser):
    """Every page linked from each role's home page (and the chart of a patient in care), as
    that role sees it, checked by axe-core: no serious or critical WCAG 2.1 A/AA violation."""
    checked: set[str] = set()
    roles: list[str] = []
    for prefix in ("secretaire.", "medecin.", "infirmier.", "pharmacien.", "dpo", "rssi",
                   "auditeur", "admin"):  # fmt: skip
        if not any(u.startswith(prefix) for u in demo.accounts):
            continue
        page = _page(browser)
        account = _account(demo, prefix)
        roles.append(prefix)
        _login(page, demo, account)
        links = page.eval_on_selector_all(
            "main a[href^='/'], nav a[href^='/'], header a[href^='/']",
            "els => els.map(e => e.getAttribute('href'))")  # fmt: skip
        paths = [
            "/",
            *sorted(
                {
                    link.split("#")[0]
                    for link in links
                    if "deconnexion" not in link
                    and "/static/" not in link
                    and not link.endswith(".pdf")
                }
            ),
        ]
        for path in paths[:25]:
            answer = page.goto(demo.url + path)
            if answer is None or answer.status >= 400 or "pdf" in (
                    answer.headers.get("content-type", "")):  # fmt: skip
                continue
            _accessible(page, f"{account} {path}")
            checked.add(path.split("?")[0])
        page.context.close()
    assert len(roles) >= 6 and len(checked) >= 15, (roles, sorted(checked))
