"""Exports: request with limits, the job (steps, files, storage, mail), download, expiry,
voiding, the JSON Schema, the PDF's text, and hostile text that must never be fetched."""
from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import time
import zipfile
from datetime import timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
import time_machine
from rq.job import Job

from portal import jobs
from portal.audit import AuditEvent
from portal.auth.models import LinkToken, LoginEvent, TokenPurpose, User
from portal.billing.models import Organisation, OrganisationKind, UsageEvent
from portal.clock import STOCKHOLM, now
from portal.coach.models import CoachLink, CoachRead, LinkStatus
from portal.consent.models import ConsentEvent, ConsentSource, Purpose
from portal.db import db
from portal.exports import render, services, tasks
from portal.exports.models import Export, ExportStatus
from portal.mail.models import MailMessage, MailStatus
from portal.processing import REGISTER
from portal.storage import StoredBlob, read_blob
from portal.texts.models import Text, TextKind
from tests.conftest import _APP, REDIS_TEST_URL, links_in, login, login_dpo, make_user, post_form, run_jobs

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "portal/exports/schema/export-v1.json").read_text("utf-8"))
PAGE = "/mina-uppgifter/export"
HOSTILE_IMG = '<img src="file:///etc/passwd">'
HOSTILE_LINK = '<link href="http://169.254.169.254/">'

TEXTS = [
    ("Brev till <Volvo> & Scania", TextKind.PERSONLIGT_BREV,
     f"Hej!\n\nJag söker tjänsten som lagerchef. {HOSTILE_IMG}\nMed vänliga hälsningar"),
    ("Mitt CV – 2026", TextKind.CV, f"Erfarenhet: truckkort, ”kvalitet” {HOSTILE_LINK}"),
    ("Övrigt om mig", TextKind.OVRIGT, "Jag gillar långa promenader i Örebro."),
]


# --- fixtures and helpers -------------------------------------------------------------------

def seed_everything(user: User) -> dict:
    """Something in every category of the register; returns the values to look for."""
    org = Organisation(name="Matchning & Co <AB>", org_number="5560160680",
                       kind=OrganisationKind.MATCHNINGSFORETAG)
    db.session.add(org)
    db.session.flush()
    user.phone, user.org_number, user.organisation_id = "+46701234567", "5560160680", org.id
    texts = [Text(user_id=user.id, title=title, kind=kind, body=body,
                  shared_with_coach=i == 0) for i, (title, kind, body) in enumerate(TEXTS)]
    db.session.add_all(texts)
    db.session.flush()
    link = CoachLink(user_id=user.id, organisation_id=org.id, coach_email="coach@matchning.se",
                     coach_name="Carl Coachsson", status=LinkStatus.ACTIVE,
                     invite_expires_at=now() + timedelta(days=14), accepted_at=now())
    db.session.add(link)
    db.session.flush()
    db.session.add_all([
        CoachRead(link_id=link.id, user_id=user.id, text_id=texts[0].id,
                  text_title=texts[0].title),
        ConsentEvent(user_id=user.id, purpose=Purpose.NEWSLETTER, granted=False,
                     source=ConsentSource.SETTINGS),
        ConsentEvent(user_id=user.id, purpose=Purpose.COOKIES_STATISTICS, granted=True,
                     source=ConsentSource.COOKIE_BANNER),
        LoginEvent(user_id=user.id, succeeded=False, ip_prefix="198.51.100.0/24",
                   browser="Firefox"),
        UsageEvent(user_id=user.id, organisation_id=org.id),
        LinkToken(user_id=user.id, purpose=TokenPurpose.CHANGE_EMAIL, token_hash="f" * 64,
                  expires_at=now() + timedelta(days=1), new_email="anna.ny@example.se"),
        MailMessage(user_id=user.id, template="verify_email", to_addr=user.email,
                    subject="Bekräfta din e-postadress", status=MailStatus.SENT, sent_at=now()),
    ])
    db.session.commit()
    return {"org": org.name, "coach_email": link.coach_email, "coach_name": link.coach_name}


@pytest.fixture
def anna(client):
    user = make_user()
    seed_everything(user)
    login(client)
    return user


def export_of(user_id: int) -> Export:
    db.session.expire_all()
    return db.session.scalars(sa.select(Export).where(Export.user_id == user_id)
                              .order_by(Export.id.desc())).first()


def request_and_build(client) -> Export:
    response = post_form(client, PAGE, {}, form_path=PAGE)
    assert response.status_code == 302, response.get_data(as_text=True)
    run_jobs()
    return export_of(db.session.scalar(sa.select(User.id).where(User.email == "anna@example.se")))


def plaintext(export: Export) -> bytes:
    """The decrypted ZIP (decryption needs the app's keyring, so an app context)."""
    with _APP["app"].app_context():
        return read_blob(db.session.get(StoredBlob, export.blob_id))


def unzip(export: Export) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(plaintext(export))) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "export.pdf"
    path.write_bytes(pdf)
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], check=True,
                         capture_output=True).stdout.decode("utf-8")
    return " ".join(out.split())


def add_export(user_id: int, status: ExportStatus, *, ago: timedelta = timedelta(hours=1),
               **fields) -> Export:
    export = Export(user_id=user_id, status=status, requested_at=now() - ago, **fields)
    db.session.add(export)
    db.session.commit()
    return export


# --- the request, the page and the limits ---------------------------------------------------

def test_request_queues_a_row_and_a_job_and_the_page_says_queued_not_ready(app, client, anna):
    assert "Skapa en export" in client.get(PAGE).get_data(as_text=True)
    response = post_form(client, PAGE, {}, form_path=PAGE)
    assert response.status_code == 302 and response.headers["Location"].endswith(PAGE)
    export = export_of(anna.id)
    assert (export.status, export.progress) == (ExportStatus.QUEUED, 0)
    with app.app_context():
        assert jobs.job_is_alive(f"export-{export.id}")
    page = client.get(PAGE)
    html = page.get_data(as_text=True)
    assert page.headers["Cache-Control"] == "no-store"
    assert "Din export är köad" in html and "Köad" in html and "Klar" not in html
    assert f'<progress id="export-{export.id}-progress" max="100" value="0">' in html
    assert '<noscript><meta http-equiv="refresh" content="5"></noscript>' in html
    assert "js/export-progress.js" in html and "<script>" not in html
    assert f"EXP-{now().year}-{export.id:06d}" in html
    assert "Skapa en export" not in html  # one at a time: no second button


def test_redis_down_leaves_the_row_queued_for_the_reconciler(app, client, anna):
    app.config["REDIS_URL"], real = "redis://127.0.0.1:1/0", app.config["REDIS_URL"]
    app.extensions.pop("portal_redis", None)
    try:
        started = time.monotonic()
        response = post_form(client, PAGE, {}, form_path=PAGE)
        assert response.status_code == 302 and time.monotonic() - started < 2.0
    finally:
        app.config["REDIS_URL"] = real
        app.extensions.pop("portal_redis", None)
    export = export_of(anna.id)
    assert export.status == ExportStatus.QUEUED
    assert "Köad" in client.get(PAGE).get_data(as_text=True)
    with app.app_context():
        assert run_jobs() == 0
        assert jobs.reconcile()["exports"] == 0  # too fresh: may still be on its way
        with time_machine.travel(now() + timedelta(minutes=3)):
            assert jobs.reconcile()["exports"] == 1
            assert jobs.reconcile()["exports"] == 0  # the live job is not enqueued twice
        run_jobs()
    assert export_of(anna.id).status == ExportStatus.READY


def test_an_export_whose_worker_died_is_marked_failed_and_can_be_retried(app, client, anna):
    fresh = add_export(anna.id, ExportStatus.RUNNING, started_at=now() - timedelta(minutes=5))
    with app.app_context():
        assert jobs.reconcile()["exports"] == 0
        assert export_of(anna.id).status == ExportStatus.RUNNING  # may still be working
        with time_machine.travel(now() + timedelta(minutes=11)):
            assert jobs.reconcile()["exports"] == 0
    lost = export_of(anna.id)
    assert (lost.id, lost.status, lost.error) == (fresh.id, ExportStatus.FAILED, "WorkerLost")
    assert "Försök igen" in client.get(PAGE).get_data(as_text=True)
    assert post_form(client, f"{PAGE}/{lost.id}/forsok-igen", {},
                     form_path=PAGE).status_code == 302
    run_jobs()
    assert export_of(anna.id).status == ExportStatus.READY


def test_second_export_while_one_is_in_progress_is_refused_in_swedish(client, anna):
    add_export(anna.id, ExportStatus.RUNNING)
    response = post_form(client, PAGE, {}, form_path=PAGE)
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    assert "Du har redan en export på gång" in html and 'role="alert"' in html
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Export)) == 1


def test_fourth_export_in_24_hours_is_refused_and_the_page_says_when(client, anna):
    for hours in (20, 5, 1):
        add_export(anna.id, ExportStatus.READY, ago=timedelta(hours=hours))
    page = client.get(PAGE).get_data(as_text=True)
    assert "Skapa en export" not in page and "högst 3 exporter per dygn" in page
    response = post_form(client, PAGE, {}, form_path=PAGE)
    assert response.status_code == 409
    html = response.get_data(as_text=True)
    first = db.session.scalar(sa.select(sa.func.min(Export.requested_at)))
    from flask_babel import force_locale

    from portal.exports.labels import when_long

    with client.application.test_request_context(), force_locale("sv"):
        expected = when_long(first + timedelta(hours=24))
    assert f"Du kan begära en ny tidigast {expected}." in html, html
    assert re.search(r"\d{1,2} \w+ \d{4} kl\. \d{2}\.\d{2}", expected)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Export)) == 3
    with time_machine.travel(now() + timedelta(hours=4, minutes=1)):
        login(client)  # the session itself timed out meanwhile
        assert post_form(client, PAGE, {}, form_path=PAGE).status_code == 302


def test_requesting_without_a_csrf_token_changes_nothing(client, anna):
    assert client.post(PAGE).status_code == 400
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Export)) == 0


@pytest.mark.parametrize("role", ["coach", "dpo"])
def test_only_users_have_export_pages(app, role):
    client = app.test_client()
    make_user(email=f"{role}@example.se", role=role)
    (login_dpo if role == "dpo" else login)(client, email=f"{role}@example.se")
    assert client.get(PAGE).status_code == 404
    assert client.get(f"{PAGE}/1/status").status_code == 404
    assert client.get(f"{PAGE}/1/ladda-ner").status_code == 404


def test_anonymous_visitors_are_sent_to_log_in(client):
    for path in (PAGE, f"{PAGE}/1/status", f"{PAGE}/1/ladda-ner"):
        response = client.get(path)
        assert response.status_code == 302 and "/logga-in" in response.headers["Location"]


# --- the job --------------------------------------------------------------------------------

def test_job_builds_an_encrypted_zip_reports_its_steps_and_mails_the_owner(client, anna, outbox):
    export = request_and_build(client)
    assert export.status == ExportStatus.READY
    assert (export.progress, export.step, export.error) == (100, "done", None)
    assert export.expires_at == export.finished_at + timedelta(days=7)
    blob = db.session.get(StoredBlob, export.blob_id)
    plain = plaintext(export)
    assert (export.size, export.sha256) == (len(plain), hashlib.sha256(plain).hexdigest())
    assert (blob.kind, blob.user_id) == ("export", anna.id)
    assert plain[:2] == b"PK" and b"PK" not in blob.data[:8] and b"%PDF" not in blob.data
    files = unzip(export)
    assert set(files) == {"README.txt", "cowrite-export.pdf", "cowrite-export.json"}
    assert files["cowrite-export.pdf"].startswith(b"%PDF-1.7")
    readme = files["README.txt"].decode("utf-8")
    assert "Dina uppgifter hos Cowrite" in readme and export.sha256 not in readme
    assert f"EXP-{now().year}-{export.id:06d}" in readme and "export-v1.json" in readme
    meta = Job.fetch(f"export-{export.id}",
                     connection=redis.Redis.from_url(REDIS_TEST_URL)).meta
    assert meta == {"step": "done", "progress": 100}
    (mail,) = [m for m in outbox if m["Subject"] == "Din export är klar"]
    body = mail.get_body(("plain",)).get_content()
    assert "Hej Anna Andersson" in body and f"EXP-{now().year}-{export.id:06d}" in body
    assert links_in(mail)[0] == "http://portal.test/mina-uppgifter/export"
    assert "ladda-ner" not in mail.as_string() and not mail.get_payload()[0].is_attachment()
    audit = db.session.scalars(sa.select(AuditEvent.action)
                               .where(AuditEvent.subject_id == anna.id)).all()
    assert "export.requested" in audit


def test_the_page_offers_the_download_once_ready(client, anna):
    export = request_and_build(client)
    html = client.get(PAGE).get_data(as_text=True)
    assert "Klar" in html and "Finns kvar till" in html and "Köad" not in html
    assert f'href="{PAGE}/{export.id}/ladda-ner"' in html
    assert "<noscript>" not in html and "export-progress.js" not in html


def test_status_endpoint_is_owner_only_json_and_never_cached(app, client, anna):
    export = request_and_build(client)
    response = client.get(f"{PAGE}/{export.id}/status")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"
    assert response.json == {"id": export.id, "reference": f"EXP-{now().year}-{export.id:06d}",
                             "status": "ready", "status_label": "Klar", "step": "done",
                             "step_label": "Klar", "progress": 100, "done": True,
                             "progress_text": "100\u00a0%"}
    other = app.test_client()
    make_user(email="bo@example.se", name="Bo Berg")
    login(other, email="bo@example.se")
    assert other.get(f"{PAGE}/{export.id}/status").status_code == 404


def test_queued_status_reads_queued(client, anna):
    post_form(client, PAGE, {}, form_path=PAGE)
    export = export_of(anna.id)
    state = client.get(f"{PAGE}/{export.id}/status").json
    assert (state["status"], state["status_label"], state["progress"], state["done"]) == \
        ("queued", "Köad", 0, False)


def test_json_validates_against_the_schema_and_holds_every_fixture_value(client, anna):
    from jsonschema import Draft202012Validator

    export = request_and_build(client)
    raw = unzip(export)["cowrite-export.json"]
    document = json.loads(raw.decode("utf-8"))
    Draft202012Validator(SCHEMA).validate(document)
    assert raw == json.dumps(document, ensure_ascii=False, sort_keys=True, indent=2).encode()
    assert document["schema"] == "https://cowrite.se/schemas/export-v1.json"
    assert document["version"] == 1 and document["language"] == "sv"
    assert [c["key"] for c in document["categories"]] == [c.key for c in REGISTER]
    by_key = {c["key"]: c for c in document["categories"]}
    for category in REGISTER:  # the Art. 15 information comes from the register itself
        got = by_key[category.key]
        assert got["title"] and got["legal_basis"] and got["purposes"] and got["recipients"]
    text = raw.decode("utf-8")
    for value in ["Anna Andersson", "anna@example.se", "+46701234567", "5560160680",
                  "Matchning & Co <AB>", "coach@matchning.se", "Carl Coachsson",
                  "198.51.100.0/24", "Firefox", "anna.ny@example.se",
                  "Bekräfta din e-postadress", "stod_och_matchning", "export.requested",
                  "Integritetsskyddsmyndigheten (IMY)", "dataskyddsombud@cowrite.se"]:
        assert value in document_values(document), value
    for title, kind, body in TEXTS:
        (got,) = [t for t in by_key["texts"]["data"]["texts"] if t["title"] == title]
        assert (got["kind"], got["body"]) == (kind.value, body)
    assert by_key["marketing"]["data"]["current"] == {"newsletter": False, "offers": None}
    assert by_key["cookies"]["data"]["current"]["cookies_statistics"] is True
    assert by_key["coach"]["data"]["reads"][0]["text_title"] == TEXTS[0][0]
    assert by_key["requests"]["data"] == {"requests": []}
    assert re.search(r'"generated_at": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00"', text)
    assert "f" * 64 not in text and "$argon2" not in text  # no secrets, no hashes of them
    assert anna.password_hash.startswith("$argon2")


def swedish_titles() -> list[str]:
    """The register's category titles as the Swedish PDF shows them."""
    from flask_babel import force_locale

    with _APP["app"].test_request_context(), force_locale("sv"):
        return [" ".join(str(category.title).split()) for category in REGISTER]


def document_values(node) -> set:
    """Every string and number anywhere in the document."""
    if isinstance(node, dict):
        return set().union(*(document_values(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(document_values(v) for v in node)) if node else set()
    return {node} if isinstance(node, str) else set()


def test_pdf_has_every_heading_every_text_and_hostile_markup_only_as_text(
        client, anna, tmp_path, monkeypatch):
    fetchers = []

    def recording_fetcher(*args, **kwargs):
        fetcher = real_fetcher(*args, **kwargs)
        fetchers.append(fetcher)
        return fetcher

    real_fetcher = render.safe_url_fetcher
    monkeypatch.setattr(render, "safe_url_fetcher", recording_fetcher)
    export = request_and_build(client)
    pdf = unzip(export)["cowrite-export.pdf"]
    text = pdf_text(pdf, tmp_path)
    for heading in ["Dina uppgifter hos Cowrite", "Innehåll",
                    "Om dina uppgifter och dina rättigheter", "Automatiserade beslut",
                    "Integritetsskyddsmyndigheten", "Anna Andersson",
                    f"EXP-{now().year}-{export.id:06d}"]:
        assert heading in text, heading
    for title in swedish_titles():
        assert text.count(title) >= 2, title  # contents and the section itself
    for title, _kind, body in TEXTS:
        assert title in text, title
    assert HOSTILE_IMG in text and HOSTILE_LINK in text  # shown as text, not markup
    assert "Carl Coachsson" in text and "198.51.100.0/24" in text
    assert "Du har inte gjort några begäranden om dina rättigheter." in text
    (fetcher,) = fetchers
    assert [Path(u.removeprefix("file://")).name for u in fetcher.requested] == ["pdf.css"]
    assert fetcher.refused == []
    assert not any("passwd" in u or "169.254" in u for u in fetcher.requested)
    info = subprocess.run(["pdfinfo", str(tmp_path / "export.pdf")], capture_output=True,
                          check=True, text=True).stdout
    assert re.search(r"Tagged:\s+yes", info) and re.search(r"PDF version:\s+1.7", info)
    assert re.search(r"Pages:\s+([5-9]|\d\d)", info)


def test_english_users_get_their_export_and_mail_in_english(client, anna, outbox, tmp_path):
    db.session.execute(sa.update(User).where(User.id == anna.id).values(locale="en"))
    db.session.commit()
    export = request_and_build(client)
    files = unzip(export)
    assert json.loads(files["cowrite-export.json"])["language"] == "en"
    text = pdf_text(files["cowrite-export.pdf"], tmp_path)
    assert "Your data at Cowrite" in text and "Your texts" in text
    assert "Your data at Cowrite" in files["README.txt"].decode()
    assert [m["Subject"] for m in outbox] == ["Your export is ready"]


def test_build_is_idempotent_and_builds_only_queued_exports(app, client, anna,
                                                                         outbox):
    export = request_and_build(client)
    blobs = db.session.scalar(sa.select(sa.func.count()).select_from(StoredBlob))
    with app.app_context():
        assert tasks.build_export(export.id) == "skipped"
        for status in (ExportStatus.VOIDED, ExportStatus.EXPIRED, ExportStatus.RUNNING,
                       ExportStatus.FAILED):
            other = add_export(anna.id, status)
            assert tasks.build_export(other.id) == "skipped"
        assert tasks.build_export(999_999) == "skipped"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StoredBlob)) == blobs
    run_jobs()
    assert len([m for m in outbox if m["Subject"] == "Din export är klar"]) == 1


def test_a_failure_is_recorded_by_class_only_and_can_be_retried(client, anna, monkeypatch):
    def broken(*args, **kwargs):
        raise ValueError("could not render for anna@example.se, Anna Andersson")

    monkeypatch.setattr(render, "render_pdf", broken)
    export = request_and_build(client)
    assert (export.status, export.error, export.blob_id) == (ExportStatus.FAILED, "ValueError",
                                                             None)
    conn = redis.Redis.from_url(REDIS_TEST_URL)
    dump = b"".join(v for k in conn.scan_iter() if conn.type(k) == b"hash"
                    for v in conn.hgetall(k).values())
    assert b"anna@example.se" not in dump and b"Anna Andersson" not in dump
    html = client.get(PAGE).get_data(as_text=True)
    assert "Misslyckades" in html and "Något gick fel hos oss" in html
    assert "Försök igen" in html
    monkeypatch.undo()
    response = post_form(client, f"{PAGE}/{export.id}/forsok-igen", {}, form_path=PAGE)
    assert response.status_code == 302
    assert export_of(anna.id).status == ExportStatus.QUEUED
    run_jobs()
    retried = export_of(anna.id)
    assert (retried.id, retried.status, retried.error) == (export.id, ExportStatus.READY, None)


def test_a_database_restart_mid_build_puts_the_export_back_in_the_queue(app, client, anna,
                                                                        monkeypatch):
    """The connection drops while the PDF is built: not a failure of the export. It is
    queued again, the reconciler enqueues it, and it is built; the user sees no error."""
    def dropped(*args, **kwargs):
        raise sa.exc.OperationalError("SELECT 1", {}, ConnectionError("server closed"))

    monkeypatch.setattr(render, "render_pdf", dropped)
    export = request_and_build(client)
    assert (export.status, export.error, export.started_at) == (ExportStatus.QUEUED, None,
                                                                None)
    assert "Misslyckades" not in client.get(PAGE).get_data(as_text=True)
    monkeypatch.undo()
    with app.app_context(), time_machine.travel(now() + timedelta(minutes=3)):
        assert jobs.reconcile()["exports"] == 1  # queued for over two minutes, no live job
    run_jobs()
    assert export_of(anna.id).status == ExportStatus.READY


def test_only_failed_exports_of_ones_own_can_be_retried(app, client, anna):
    ready = add_export(anna.id, ExportStatus.READY)
    response = post_form(client, f"{PAGE}/{ready.id}/forsok-igen", {}, form_path=PAGE)
    assert response.status_code == 409 and "går inte att försöka med igen" in \
        response.get_data(as_text=True)
    bo = make_user(email="bo@example.se", name="Bo Berg")
    failed = add_export(bo.id, ExportStatus.FAILED)
    assert post_form(client, f"{PAGE}/{failed.id}/forsok-igen", {},
                     form_path=PAGE).status_code == 404
    db.session.expire_all()
    assert db.session.get(Export, failed.id).status == ExportStatus.FAILED


# --- download ---------------------------------------------------------------------------------

def test_owner_downloads_an_attachment_that_is_never_cached(client, anna):
    export = request_and_build(client)
    response = client.get(f"{PAGE}/{export.id}/ladda-ner")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    stamp = export.finished_at.astimezone(STOCKHOLM)
    assert response.headers["Content-Disposition"] == \
        f'attachment; filename="cowrite-export-{stamp:%Y-%m-%d}.zip"'
    assert response.headers["Cache-Control"] == "no-store"
    assert response.data[:2] == b"PK"
    assert hashlib.sha256(response.data).hexdigest() == export.sha256
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "export.downloaded", AuditEvent.actor_id == anna.id)) == 1


def test_user_a_cannot_download_user_bs_export_and_the_attempt_is_logged(app, client, anna):
    export = request_and_build(client)
    mallory = app.test_client()
    make_user(email="mallory@example.se", name="Mallory Mallorysson")
    login(mallory, email="mallory@example.se")
    response = mallory.get(f"{PAGE}/{export.id}/ladda-ner")
    assert response.status_code == 404 and b"PK" not in response.data[:2]
    assert "Sidan finns inte" in response.get_data(as_text=True)
    assert mallory.get(f"{PAGE}/{export.id + 1000}/ladda-ner").status_code == 404
    denied = db.session.scalars(sa.select(AuditEvent).where(
        AuditEvent.action == "export.download_denied").order_by(AuditEvent.id)).all()
    mallory_id = db.session.scalar(sa.select(User.id).where(User.email == "mallory@example.se"))
    assert [(e.actor_id, e.details["export_id"]) for e in denied] == \
        [(mallory_id, export.id), (mallory_id, export.id + 1000)]


def test_download_without_recent_authentication_asks_for_the_password(client, anna):
    export = request_and_build(client)
    with time_machine.travel(now() + timedelta(minutes=11)):
        response = client.get(f"{PAGE}/{export.id}/ladda-ner")
        assert response.status_code == 302
        location = response.headers["Location"]
        assert "/bekrafta-losenord" in location and f"{export.id}/ladda-ner" in location
        page = client.get(location).get_data(as_text=True)
        assert "Bekräfta att det är du" in page
        again = post_form(client, location, {"password": "ett-bra-losenord-42"})
        assert again.status_code == 302
        assert client.get(again.headers["Location"]).data[:2] == b"PK"


def test_an_export_not_ready_yet_cannot_be_downloaded(client, anna):
    post_form(client, PAGE, {}, form_path=PAGE)
    export = export_of(anna.id)
    response = client.get(f"{PAGE}/{export.id}/ladda-ner")
    assert response.status_code == 409
    assert "Exporten är inte klar än" in response.get_data(as_text=True)


def test_an_expired_export_is_deleted_from_storage_and_cannot_be_downloaded(app, client, anna):
    export = request_and_build(client)
    blob_id = export.blob_id
    with time_machine.travel(now() + timedelta(days=7, minutes=1)):
        login(client)  # the session itself timed out meanwhile
        # Past its time but before the cron ran: never the file.
        late = client.get(f"{PAGE}/{export.id}/ladda-ner")
        assert late.status_code == 410 and late.data[:2] != b"PK"
        with app.app_context():
            assert tasks.expire_exports() == 1
            assert tasks.expire_exports() == 0
        response = client.get(f"{PAGE}/{export.id}/ladda-ner")
        assert response.status_code == 410
        assert "Exporten finns inte längre" in response.get_data(as_text=True)
        assert "Har gått ut och tagits bort" in client.get(PAGE).get_data(as_text=True)
    db.session.expire_all()
    gone = db.session.get(Export, export.id)
    assert (gone.status, gone.blob_id) == (ExportStatus.EXPIRED, None)
    assert db.session.get(StoredBlob, blob_id) is None


def test_expire_leaves_fresh_exports_alone(app, client, anna):
    export = request_and_build(client)
    with time_machine.travel(now() + timedelta(days=6, hours=23)), app.app_context():
        assert tasks.expire_exports() == 0
    assert export_of(anna.id).status == ExportStatus.READY and export.blob_id


# --- voiding (erasure) ------------------------------------------------------------------------

def test_void_exports_deletes_every_file_of_the_user_at_once(app, client, anna):
    ready = request_and_build(client)
    queued = add_export(anna.id, ExportStatus.QUEUED, ago=timedelta(minutes=1))
    bo = make_user(email="bo@example.se", name="Bo Berg")
    bos = add_export(bo.id, ExportStatus.QUEUED)
    with app.app_context():
        assert services.void_exports(anna.id) == 2
        db.session.commit()
    db.session.expire_all()
    assert db.session.get(Export, ready.id).status == ExportStatus.VOIDED
    assert db.session.get(Export, queued.id).status == ExportStatus.VOIDED
    assert db.session.get(Export, bos.id).status == ExportStatus.QUEUED
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StoredBlob)
                             .where(StoredBlob.user_id == anna.id)) == 0
    assert client.get(f"{PAGE}/{ready.id}/ladda-ner").status_code == 410


def test_a_job_finishing_after_the_void_keeps_nothing(app, client, anna, monkeypatch):
    real_zip = render.build_zip

    def void_meanwhile(*args, **kwargs):
        services.void_exports(anna.id)
        db.session.commit()
        return real_zip(*args, **kwargs)

    monkeypatch.setattr(render, "build_zip", void_meanwhile)
    export = request_and_build(client)
    assert (export.status, export.blob_id) == (ExportStatus.VOIDED, None)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StoredBlob)) == 0


# --- the URL fetcher ----------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "file:///etc/passwd",
    "http://169.254.169.254/latest/meta-data/",
    "https://example.com/x.css",
    f"file://{ROOT}/static/../portal/config.py",
    f"file://{ROOT}/instance/secret_key",
    f"file://evil.example{ROOT}/static/css/pdf.css",
    "data:text/css,body{}",
    "ftp://example.com/x",
])
def test_safe_url_fetcher_refuses_everything_outside_static(url):
    fetcher = render.safe_url_fetcher()
    with pytest.raises(ValueError):
        fetcher.fetch(url)
    assert fetcher.refused == [url]


def test_safe_url_fetcher_serves_files_under_static():
    fetcher = render.safe_url_fetcher()
    response = fetcher.fetch(f"file://{ROOT}/static/css/pdf.css")
    assert b"DejaVu Sans" in response.read() and response.content_type == "text/css"
    assert fetcher.refused == []


def test_markup_that_escaped_escaping_still_fetches_nothing(app):
    """Defence in depth: raw tags reaching WeasyPrint are refused by the fetcher."""
    fetcher = render.safe_url_fetcher()
    html = (f'<html lang="sv"><head><title>x</title>{HOSTILE_LINK.replace("<link", "<link rel=stylesheet")}'
            f'</head><body><p>x</p>{HOSTILE_IMG}</body></html>')
    pdf = render.render_pdf(html, fetcher=fetcher)
    assert pdf.startswith(b"%PDF")
    assert set(fetcher.refused) == {"file:///etc/passwd", "http://169.254.169.254/"}


def test_pdf_html_escapes_every_user_value(app):
    with app.test_request_context():
        user = make_user()
        seed_everything(user)
        from portal.exports.collect import collect
        from portal.exports.document import build_document

        export = add_export(user.id, ExportStatus.RUNNING)
        document = build_document(collect(user.id), export, now(), "sv")
        html = render.export_html(document, name="<b>Anna</b>", generated_at=now())
    assert "<img" not in html and "169.254" in html and "&lt;img src=&#34;file:///etc/passwd" \
        in html
    assert "<b>Anna</b>" not in html and "&lt;b&gt;Anna&lt;/b&gt;" in html
    assert "Matchning &amp; Co &lt;AB&gt;" in html


def test_a_failing_pdf_ua_render_falls_back_to_an_untagged_pdf(app, monkeypatch, caplog):
    real = render._render

    def tagging_breaks(html, fetcher, after_layout, variant):
        if variant:
            raise AssertionError("tagging failed")
        return real(html, fetcher, after_layout, variant)

    monkeypatch.setattr(render, "_render", tagging_breaks)
    pdf = render.render_pdf('<html lang="sv"><head><title>x</title></head><body><p>x</p>'
                            '</body></html>')
    assert pdf.startswith(b"%PDF") and "rendering an untagged PDF instead" in caplog.text
