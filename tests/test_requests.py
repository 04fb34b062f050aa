"""Rights requests, the user's side: filing a signed request with an ID copy, the signed
receipt, tracking, withdrawal, and hostile input that must store nothing."""
import io
from datetime import date, datetime, timezone

import pytest
import sqlalchemy as sa
import time_machine
from PIL import Image

from portal.audit import AuditEvent
from portal.db import db
from portal.requests import services
from portal.requests.models import (RequestEvent, RequestKind, RequestStatus, RequestUpload,
                                    RightsRequest)
from portal.storage import StoredBlob
from tests.conftest import csrf_from, links_in, login, make_user, run_jobs
from tests.test_uploads import jpeg_with_gps, pdf, polyglot

PASSWORD = "ett-bra-losenord-42"
ERASURE = "/mina-rattigheter/begaran/radering"
INDEX = "/mina-rattigheter/begaran"


def counts() -> tuple[int, int, int, int]:
    return tuple(db.session.scalar(sa.select(sa.func.count()).select_from(model))
                 for model in (RightsRequest, RequestUpload, RequestEvent, StoredBlob))


def submit(client, path=ERASURE, *, file=None, filename="korkort.jpg", **overrides):
    data = {"csrf_token": csrf_from(client, path), "signature_name": "Anna Andersson",
            "declaration": "y", "password": PASSWORD}
    if path != ERASURE:
        data["details"] = ("Min adress i texten från min handläggare är fel.\n"
                           "Rätt adress är Storgatan 1.")
    data.update(overrides)
    if file is not False:
        data["id_copy"] = (io.BytesIO(jpeg_with_gps() if file is None else file), filename)
    return client.post(path, data=data, content_type="multipart/form-data")


@pytest.fixture
def anna(client):
    user = make_user()
    login(client)
    return user


def test_index_explains_each_right_and_points_to_self_service(client, anna):
    html = client.get(INDEX).get_data(as_text=True)
    for text in ("Radering (artikel 17)", "Begränsning (artikel 18)", "Rättelse (artikel 16)",
                 "Invändning (artikel 21)", 'href="/mina-uppgifter/export"'):
        assert text in html
    assert "Du har inte skickat några begäranden." in html


def test_erasure_page_shows_consequences_before_the_form(client, anna):
    html = client.get(ERASURE).get_data(as_text=True)
    assert html.index("30 plus 30 dagar") < html.index(f'action="{ERASURE}"')
    assert 'enctype="multipart/form-data"' in html
    assert 'accept="image/jpeg,image/png,image/heic,application/pdf"' in html


def test_signed_erasure_request_happy_path(app, client, anna, outbox):
    response = submit(client)
    assert response.status_code == 302
    req = db.session.scalar(sa.select(RightsRequest))
    assert response.headers["Location"].endswith(f"/mina-rattigheter/begaran/{req.id}")
    year = req.received_at.year
    assert req.reference == f"DSR-{year}-{req.id:06d}"
    assert req.kind == RequestKind.ERASURE and req.status == RequestStatus.RECEIVED
    assert req.signature_name == "Anna Andersson" and req.declaration_at is not None
    upload = db.session.scalar(sa.select(RequestUpload))
    import hashlib
    assert upload.received_kind == "jpeg" and upload.pages == 1
    assert upload.sha256 == req.receipt_payload["upload_sha256"]
    # The stored blob is a ZIP of re-encoded JPEG pages without EXIF/GPS.
    blob = db.session.get(StoredBlob, upload.blob_id)
    assert b"KameraTillverkare" not in blob.data
    with app.app_context():
        (page,) = services.read_pages(upload)
    with Image.open(io.BytesIO(page)) as img:
        assert img.format == "JPEG" and not img.getexif()
    assert b"KameraTillverkare" not in page and b"hemlig" not in page
    assert hashlib.sha256(jpeg_with_gps()).hexdigest() != hashlib.sha256(page).hexdigest()
    # Receipt: signed payload, verifies; a changed payload does not.
    assert set(req.receipt_payload) == {"reference", "kind", "name", "signature_name",
                                        "declaration", "received_at", "upload_sha256", "due_on"}
    with app.app_context():
        assert services.receipt_verifies(req)
        req.receipt_payload = {**req.receipt_payload, "signature_name": "Någon Annan"}
        assert not services.receipt_verifies(req)
    db.session.rollback()
    # Event and audit (codes only).
    assert [e.action for e in services.events_for(req)] == ["received"]
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "request.received"))
    assert event.details["request_id"] == req.id and "Anna" not in str(event.details)
    # The page and the receipt.
    page_html = client.get(f"/mina-rattigheter/begaran/{req.id}").get_data(as_text=True)
    assert req.reference in page_html and "Mottagen" in page_html and upload.sha256 in page_html
    receipt = client.get(f"/mina-rattigheter/begaran/{req.id}/kvitto.pdf")
    assert receipt.status_code == 200 and receipt.data.startswith(b"%PDF")
    assert receipt.headers["Content-Disposition"].startswith("attachment")
    assert receipt.headers["Cache-Control"] == "no-store"
    # The mail.
    run_jobs()
    (message,) = outbox
    assert req.reference in message["Subject"] and "Vi har tagit emot" in message["Subject"]
    assert any(link.endswith(f"/mina-rattigheter/begaran/{req.id}") for link in links_in(message))
    (attached,) = list(message.iter_attachments())  # the signed receipt itself is mailed
    assert attached.get_filename() == f"{req.reference.lower()}-kvitto.pdf"
    assert attached.get_content() == receipt.data


def test_receipt_pdf_holds_the_fields(app, client, anna):
    submit(client)
    req = db.session.scalar(sa.select(RightsRequest))
    import pypdfium2 as pdfium

    data = client.get(f"/mina-rattigheter/begaran/{req.id}/kvitto.pdf").data
    text = "".join(page.get_textpage().get_text_range() for page in pdfium.PdfDocument(data))
    compact = "".join(text.split())
    assert "Begäranomradering" in compact
    assert req.reference in compact and req.receipt_payload["upload_sha256"] in compact
    with app.app_context():
        public_key = services.public_key_b64()
    assert req.receipt_signature in compact and public_key in compact


@pytest.mark.parametrize("slug,kind", [("begransning", RequestKind.RESTRICTION),
                                       ("rattelse", RequestKind.RECTIFICATION),
                                       ("invandning", RequestKind.OBJECTION)])
def test_other_request_kinds(app, client, anna, slug, kind):
    path = f"/mina-rattigheter/begaran/{slug}"
    assert "30 dagar" not in client.get(path).get_data(as_text=True)
    response = submit(client, path)
    assert response.status_code == 302
    req = db.session.scalar(sa.select(RightsRequest))
    assert req.kind == kind and "\n" in req.details
    with app.app_context():
        assert services.receipt_verifies(req)


def test_other_request_needs_a_description(client, anna):
    before = counts()
    response = submit(client, "/mina-rattigheter/begaran/invandning", details="  ")
    assert response.status_code == 400
    assert "Beskriv vad din begäran gäller." in response.get_data(as_text=True)
    assert counts() == before


def test_unknown_kind_is_404(client, anna):
    assert client.get("/mina-rattigheter/begaran/nagot-annat").status_code == 404


def big_png() -> bytes:
    out = io.BytesIO()
    Image.new("1", (8000, 6000)).save(out, "PNG")
    return out.getvalue()


BAD = {
    "over-sized": (dict(file=b"\xff\xd8\xff" + b"0" * (10 * 1024 * 1024)), "större än 10 MB"),
    "too-many-pixels": (dict(file=big_png(), filename="bild.png"), "40 megapixlar"),
    "script-as-jpg": (dict(file=b"#!/bin/sh\nrm -rf /\n"), "JPEG, PNG eller HEIC"),
    "svg": (dict(file=b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
                 filename="id.svg"), "JPEG, PNG eller HEIC"),
    "polyglot": (dict(file=polyglot()), "något annat än bilden"),
    "pdf-javascript": (dict(file=pdf(b" /OpenAction << /S /JavaScript /JS (app.alert(1)) >>"),
                            filename="id.pdf"), "skript eller bifogade filer"),
    "pdf-embedded-file": (dict(file=pdf(b" /Names << /EmbeddedFiles << /Names [] >> >>"),
                               filename="id.pdf"), "skript eller bifogade filer"),
    "path-traversal": (dict(filename="../../etc/passwd.jpg"), "tecken som inte går att använda"),
    "long-name": (dict(filename="a" * 300 + ".jpg"), "för långt"),
    "no-file": (dict(file=False), "Välj ett foto"),
    "missing-signature": (dict(signature_name=""), "Skriv ditt fullständiga namn"),
    "wrong-signature": (dict(signature_name="Bertil Berg"), "inte namnet på ditt konto"),
    "missing-declaration": (dict(declaration=""), "Kryssa i rutan"),
    "wrong-password": (dict(password="fel-losenord-123"), "Lösenordet är fel"),
    "missing-password": (dict(password=""), "Skriv ditt lösenord"),
}


@pytest.mark.parametrize("name", BAD)
def test_bad_input_gives_a_swedish_error_and_stores_nothing(client, anna, name):
    overrides, swedish = BAD[name]
    before = counts()
    response = submit(client, **overrides)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert swedish in html, html[html.find("error-summary"):][:800]
    assert "Det finns ett problem" in html
    assert counts() == before
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
        AuditEvent.action == "request.received")) == 0


def test_a_valid_file_must_be_chosen_again_after_another_error(client, anna):
    html = submit(client, password="fel-losenord-123").get_data(as_text=True)
    assert "Välj filen igen." in html and 'aria-describedby="id_copy-hint id_copy-again"' in html


def test_signature_name_is_compared_case_and_space_insensitively(client, anna):
    assert submit(client, signature_name="  anna   ANDERSSON ").status_code == 302


def test_second_open_erasure_request_is_refused(client, anna):
    assert submit(client).status_code == 302
    before = counts()
    response = submit(client)
    assert response.status_code == 400
    assert "redan en begäran om radering" in response.get_data(as_text=True)
    assert counts() == before
    # Another kind is still possible, and after withdrawal a new erasure request is too.
    req = db.session.scalar(sa.select(RightsRequest))
    client.post(f"/mina-rattigheter/begaran/{req.id}/aterkalla",
                data={"csrf_token": csrf_from(client, INDEX)})
    assert submit(client).status_code == 302


def test_post_without_csrf_is_400_and_stores_nothing(client, anna):
    before = counts()
    response = client.post(ERASURE, data={
        "signature_name": "Anna Andersson", "declaration": "y", "password": PASSWORD,
        "id_copy": (io.BytesIO(jpeg_with_gps()), "id.jpg")}, content_type="multipart/form-data")
    assert response.status_code == 400
    assert counts() == before
    submit(client)
    req = db.session.scalar(sa.select(RightsRequest))
    assert client.post(f"/mina-rattigheter/begaran/{req.id}/aterkalla").status_code == 400
    assert db.session.get(RightsRequest, req.id).status == RequestStatus.RECEIVED


def test_withdraw_destroys_the_upload(client, anna):
    submit(client)
    req = db.session.scalar(sa.select(RightsRequest))
    upload = db.session.scalar(sa.select(RequestUpload))
    blob_id = upload.blob_id
    response = client.post(f"/mina-rattigheter/begaran/{req.id}/aterkalla",
                           data={"csrf_token": csrf_from(client, INDEX)})
    assert response.status_code == 302
    req = db.session.get(RightsRequest, req.id)
    upload = db.session.get(RequestUpload, upload.id)
    assert req.status == RequestStatus.WITHDRAWN
    assert upload.destroyed_at is not None and upload.blob_id is None
    assert db.session.get(StoredBlob, blob_id) is None
    assert upload.sha256  # the hash stays
    assert [e.action for e in services.events_for(req)] == ["received", "withdrawn",
                                                           "upload_destroyed"]
    assert db.session.scalar(sa.select(AuditEvent).where(
        AuditEvent.action == "request.withdrawn")) is not None
    html = client.get(f"/mina-rattigheter/begaran/{req.id}").get_data(as_text=True)
    assert "Återkallad" in html and "aterkalla" not in html
    # A second withdrawal changes nothing.
    again = client.post(f"/mina-rattigheter/begaran/{req.id}/aterkalla",
                        data={"csrf_token": csrf_from(client, INDEX)}, follow_redirects=True)
    assert "kan inte längre återkallas" in again.get_data(as_text=True)


def test_destroy_uploads_service(app, client, anna):
    submit(client)
    req = db.session.scalar(sa.select(RightsRequest))
    with app.app_context():
        _destroy_checks(req, anna)


def _destroy_checks(req, anna):
    assert services.destroy_uploads(req, actor_id=None) == 1
    assert services.destroy_uploads(req) == 0
    assert services.read_pages(db.session.scalar(sa.select(RequestUpload))) == []
    assert services.open_requests_for(anna.id) == [req]


def test_another_users_request_is_404_everywhere(app, client, anna):
    submit(client)
    req = db.session.scalar(sa.select(RightsRequest))
    make_user(email="bertil@example.se", name="Bertil Berg")
    other = app.test_client()
    login(other, "bertil@example.se")
    base = f"/mina-rattigheter/begaran/{req.id}"
    assert other.get(base).status_code == 404
    assert other.get(base + "/kvitto.pdf").status_code == 404
    token = csrf_from(other, INDEX)
    assert other.post(base + "/aterkalla", data={"csrf_token": token}).status_code == 404
    assert other.get("/mina-rattigheter/begaran/999999").status_code == 404
    assert db.session.get(RightsRequest, req.id).status == RequestStatus.RECEIVED


@pytest.mark.parametrize("role", ["coach", "dpo"])
def test_coach_and_dpo_get_404(app, role):
    make_user(email="staff@example.se", role=role)
    client = app.test_client()
    login(client, "staff@example.se")
    for path in (INDEX, ERASURE, "/mina-rattigheter/begaran/begransning",
                 "/mina-rattigheter/begaran/1", "/mina-rattigheter/begaran/1/kvitto.pdf"):
        response = client.get(path)
        assert response.status_code in (404, 302), path
        if response.status_code == 302:  # e.g. a DPO sent to TOTP enrolment first
            assert "/mina-rattigheter" not in response.headers["Location"]


def test_anonymous_is_sent_to_login(client):
    response = client.get(INDEX)
    assert response.status_code == 302 and "/logga-in" in response.headers["Location"]


def test_due_date_across_a_month_end(client):
    received = datetime(2027, 1, 31, 10, 0, tzinfo=timezone.utc)
    with time_machine.travel(received, tick=False):
        make_user()
        login(client)
        assert submit(client).status_code == 302
        html = client.get(INDEX).get_data(as_text=True)
    req = db.session.scalar(sa.select(RightsRequest))
    assert req.due_on == date(2027, 2, 28)
    assert req.reference.startswith("DSR-2027-")
    assert req.receipt_payload["due_on"] == "2027-02-28"
    assert "28 februari 2027" in html


def test_due_date_in_a_leap_year_and_stockholm_midnight(client):
    # 23:30 UTC on 30 January is 00:30 on 31 January in Stockholm.
    with time_machine.travel(datetime(2028, 1, 30, 23, 30, tzinfo=timezone.utc), tick=False):
        make_user()
        login(client)
        assert submit(client).status_code == 302
    req = db.session.scalar(sa.select(RightsRequest))
    assert req.due_on == date(2028, 2, 29)


def test_extension_is_shown_to_the_user(client, anna):
    submit(client)
    req = db.session.scalar(sa.select(RightsRequest))
    req.extension_months = 2
    req.extension_reason = "Begäran är omfattande."
    db.session.commit()
    html = client.get(INDEX).get_data(as_text=True)
    assert "Begäran är omfattande." in html
    assert "Förlängd med 2 månader" in client.get(
        f"/mina-rattigheter/begaran/{req.id}").get_data(as_text=True)


def test_rejection_shows_reason_and_imy(client, anna):
    submit(client)
    req = db.session.scalar(sa.select(RightsRequest))
    req.status = RequestStatus.REJECTED
    req.decided_at = req.received_at
    req.decision_reason = "Vi behöver uppgifterna för bokföringen."
    db.session.commit()
    html = client.get(f"/mina-rattigheter/begaran/{req.id}").get_data(as_text=True)
    assert "Vi behöver uppgifterna för bokföringen." in html and "imy.se" in html
    assert "aterkalla" not in html


def test_prefilled_form_pdf_can_be_downloaded(client, anna):
    response = client.get("/mina-rattigheter/begaran/radering/blankett.pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    assert response.headers["Content-Disposition"].startswith("attachment")
    assert response.headers["Cache-Control"] == "no-store"
    import pypdfium2 as pdfium

    text = "".join(p.get_textpage().get_text_range() for p in pdfium.PdfDocument(response.data))
    assert "Anna Andersson" in text and "Namnförtydligande" in text


def test_erasure_signed_by_hand_on_the_printed_form(app, client, anna):
    from tests.test_uploads import png

    response = submit(client, signature_name="", declaration="",
                      signed_form=(io.BytesIO(png()), "blankett.png"))
    assert response.status_code == 302, response.get_data(as_text=True)[:3000]
    req = db.session.scalar(sa.select(RightsRequest))
    uploads = db.session.scalars(sa.select(RequestUpload).order_by(RequestUpload.id)).all()
    assert [u.purpose for u in uploads] == ["id_copy", "signed_form"]
    assert req.receipt_payload["signed_form_sha256"] == uploads[1].sha256
    with app.app_context():
        assert services.receipt_verifies(req)
    html = client.get(f"/mina-rattigheter/begaran/{req.id}").get_data(as_text=True)
    assert "För hand, på den uppladdade blanketten" in html
    # Withdrawal destroys both.
    client.post(f"/mina-rattigheter/begaran/{req.id}/aterkalla",
                data={"csrf_token": csrf_from(client, INDEX)})
    assert all(u.destroyed_at for u in db.session.scalars(sa.select(RequestUpload)))
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StoredBlob).where(
        StoredBlob.kind.in_(["id_copy", "signed_form"]))) == 0


def test_hostile_signed_form_stores_nothing(client, anna):
    before = counts()
    response = submit(client, signed_form=(io.BytesIO(polyglot()), "blankett.jpg"))
    assert response.status_code == 400
    assert "något annat än bilden" in response.get_data(as_text=True)
    assert counts() == before


def test_without_signed_form_the_typed_signature_is_still_required(client, anna):
    before = counts()
    response = submit(client, signature_name="", declaration="")
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "Skriv ditt fullständiga namn" in html
    assert "Kryssa i rutan" in html and counts() == before
