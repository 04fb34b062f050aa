"""The DPO console: access, queue, review, ID images, decisions, and `audit verify`."""
from __future__ import annotations

import io
import re
import zipfile
from datetime import timedelta

import pytest
import sqlalchemy as sa
from PIL import Image

from portal.audit import AuditEvent
from portal.auth.models import AccountStatus, User
from portal.clock import now
from portal.db import db
from portal.mail.models import MailMessage
from portal.requests import deadlines, signing
from portal.requests.models import (RequestEvent, RequestKind, RequestStatus, RequestUpload,
                                    RightsRequest)
from portal.storage import StoredBlob, put_blob
from tests.conftest import csrf_from, login, login_dpo, make_user

DPO, ANNA, CARL = "dso@cowrite.se", "anna@example.se", "carl@coach.se"


def jpeg(color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), color).save(buffer, "JPEG")
    return buffer.getvalue()


def archive(*pages: bytes) -> bytes:
    """The format the user side stores: an uncompressed ZIP of page-N.jpg."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as zf:
        for number, page in enumerate(pages, 1):
            zf.writestr(f"page-{number}.jpg", page)
    return buffer.getvalue()


_SEQ = {"n": 0}


def make_request(app, user_id: int, *, kind=RequestKind.ERASURE, received_at=None,
                 status=RequestStatus.RECEIVED, pages=(b"",), details="") -> int:
    """A filed request straight in the models: signed receipt, ID copy as an encrypted blob."""
    with app.app_context():
        received_at = received_at or now()
        _SEQ["n"] += 1
        req = RightsRequest(reference=f"DSR-2026-{_SEQ['n']:06d}", user_id=user_id, kind=kind,
                            status=status, details=details, signature_name="Anna Andersson",
                            declaration_at=received_at, received_at=received_at,
                            due_on=deadlines.due_date(received_at))
        db.session.add(req)
        db.session.flush()
        images = [page or jpeg() for page in pages]
        blob = put_blob(archive(*images), "id_copy", user_id)
        db.session.add(RequestUpload(request_id=req.id, user_id=user_id, purpose="id_copy",
                                     received_kind="jpeg", received_size=1234, sha256="ab" * 32,
                                     pages=len(images), blob_id=blob.id))
        db.session.add(RequestEvent(request_id=req.id, actor_id=user_id, action="received",
                                    at=received_at))
        req.receipt_payload = {"reference": req.reference, "kind": kind.value,
                               "received_at": received_at.isoformat(),
                               "upload_sha256": "ab" * 32}
        key = signing.load_private_key(app.config["SIGNING_KEY"])
        req.receipt_signature = signing.sign(key, req.receipt_payload)
        db.session.commit()
        return req.id


@pytest.fixture
def people(app):
    with app.app_context():
        ids = {"dpo": make_user(DPO, name="Dag Dso", role="dpo").id,
               "anna": make_user(ANNA).id,
               "coach": make_user(CARL, name="Carl Coach", role="coach").id}
    return ids


@pytest.fixture
def dpo(app, people):
    client = app.test_client()
    assert login_dpo(client, DPO).status_code == 302
    return client


def req_row(app, request_id) -> RightsRequest:
    with app.app_context():
        row = db.session.get(RightsRequest, request_id)
        db.session.expunge(row)
        return row


def post(client, path, data=None, form_path="/konto/"):
    token = csrf_from(client, form_path)
    return client.post(path, data={"csrf_token": token, **(data or {})})


# --- the access matrix ----------------------------------------------------------------------

ROLES = ("dpo", "dpo_without_totp", "user", "coach", "anonymous")
L = "login"
ROUTES = {
    "queue": ("GET", "/dso/begaranden", None, 200),
    "overview": ("GET", "/dso/oversikt", None, 200),
    "review": ("GET", "/dso/begaranden/{id}", None, 200),
    "ID image": ("GET", "/dso/begaranden/{id}/id/1", None, 200),
    "approve": ("POST", "/dso/begaranden/{id}/bevilja", {}, 302),
    "reject": ("POST", "/dso/begaranden/{id}/avsla", {"reason": "Skäl"}, 302),
    "completion": ("POST", "/dso/begaranden/{id}/komplettering", {"note": "Id saknas"}, 302),
    "extend": ("POST", "/dso/begaranden/{id}/forlang",
               {"months": "1", "ext_reason": "Många begäranden"}, 302),
}
EXPECTED = {"dpo_without_totp": L, "user": 404, "coach": 404, "anonymous": L}
CASES = [pytest.param(route, role, id=f"{route} as {role}") for route in ROUTES for role in ROLES]


def client_as(app, role):
    client = app.test_client()
    if role == "dpo":
        assert login_dpo(client, DPO).status_code == 302
    elif role == "dpo_without_totp":
        assert login(client, DPO).headers["Location"].endswith("/logga-in/kod")
    elif role in ("user", "coach"):
        assert login(client, {"user": ANNA, "coach": CARL}[role]).status_code == 302
    return client


@pytest.mark.parametrize("route, role", CASES)
def test_access_matrix(app, people, route, role):
    method, template, data, ok = ROUTES[route]
    request_id = make_request(app, people["anna"])
    client = client_as(app, role)
    path = template.format(id=request_id)
    if method == "GET":
        response = client.get(path)
    else:
        logged_in = role in ("dpo", "user", "coach")
        response = post(client, path, data, form_path="/konto/" if logged_in else "/logga-in")
    expected = ok if role == "dpo" else EXPECTED[role]
    if expected == L:
        assert response.status_code == 302 and "/logga-in" in response.headers["Location"]
    else:
        assert response.status_code == expected, response.get_data(as_text=True)[:400]
    if role != "dpo":
        assert req_row(app, request_id).status == RequestStatus.RECEIVED


@pytest.mark.parametrize("path", ["/dso/begaranden/999999", "/dso/begaranden/999999/id/1",
                                  "/dso/begaranden/{id}/id/2", "/dso/begaranden/{id}/id/0"])
def test_unknown_requests_and_pages_are_404(app, people, dpo, path):
    request_id = make_request(app, people["anna"])
    assert dpo.get(path.format(id=request_id)).status_code == 404


def test_a_decision_without_csrf_is_400_and_changes_nothing(app, people, dpo):
    request_id = make_request(app, people["anna"])
    response = dpo.post(f"/dso/begaranden/{request_id}/bevilja")
    assert response.status_code == 400
    row = req_row(app, request_id)
    assert row.status == RequestStatus.RECEIVED and row.id_verified_at is None


# --- the queue ------------------------------------------------------------------------------

def references(html: str) -> list[str]:
    return re.findall(r">(DSR-\d{4}-\d{6})</a>", html)


def test_queue_is_sorted_by_due_date_and_marks_overdue_and_due_soon(app, people, dpo):
    today = now()
    late = make_request(app, people["anna"], received_at=today - timedelta(days=40))
    soon = make_request(app, people["anna"], received_at=today - timedelta(days=27))
    fresh = make_request(app, people["anna"], received_at=today - timedelta(days=1),
                         kind=RequestKind.RESTRICTION)
    extended = make_request(app, people["anna"], received_at=today - timedelta(days=29))
    make_request(app, people["anna"], status=RequestStatus.APPROVED)  # closed: not listed
    with app.app_context():
        row = db.session.get(RightsRequest, extended)
        row.extension_months, row.due_on = 2, deadlines.due_date(row.received_at, 2)
        db.session.commit()
    response = dpo.get("/dso/begaranden")
    html = response.get_data(as_text=True)
    assert response.status_code == 200 and "<h1>Begäranden om rättigheter</h1>" in html
    order = [req_row(app, i).reference for i in (late, soon, fresh, extended)]
    assert references(html) == order
    assert "4 öppna begäranden" in html
    assert "Försenad med" in html and "Ska besvaras inom" in html
    assert "(förlängd)" in html


def test_queue_filters_by_kind_and_status(app, people, dpo):
    erasure = make_request(app, people["anna"])
    restriction = make_request(app, people["anna"], kind=RequestKind.RESTRICTION)
    waiting = make_request(app, people["anna"], kind=RequestKind.OBJECTION,
                           status=RequestStatus.NEEDS_COMPLETION)
    html = dpo.get("/dso/begaranden?typ=restriction").get_data(as_text=True)
    assert references(html) == [req_row(app, restriction).reference]
    html = dpo.get("/dso/begaranden?status=needs_completion").get_data(as_text=True)
    assert references(html) == [req_row(app, waiting).reference]
    html = dpo.get("/dso/begaranden?typ=erasure&status=received").get_data(as_text=True)
    assert references(html) == [req_row(app, erasure).reference]


@pytest.mark.parametrize("query, message", [
    ("typ=hacker", "Välj en typ i listan."),
    ("status=approved", "Välj en status i listan."),
    ("sida=-1", "Sidnumret måste vara ett heltal från 1 och uppåt."),
    ("sida=" + "9" * 40, "Sidnumret måste vara ett heltal från 1 och uppåt."),
])
def test_bad_filters_get_a_swedish_error(app, people, dpo, query, message):
    make_request(app, people["anna"])
    response = dpo.get(f"/dso/begaranden?{query}")
    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def _bulk(app, user_id, count):
    with app.app_context():
        start = now() - timedelta(days=20)
        for i in range(count):
            received = start + timedelta(minutes=i)
            db.session.add(RightsRequest(
                reference=f"DSR-2025-{i:06d}", user_id=user_id, kind=RequestKind.OBJECTION,
                received_at=received, due_on=deadlines.due_date(received)))
        db.session.commit()


def test_queue_is_paginated_50_per_page_with_a_bounded_number_of_statements(app, people, dpo):
    _bulk(app, people["anna"], 120)
    statements = []

    def count(*args):
        statements.append(args[2])

    sa.event.listen(db.engine, "before_cursor_execute", count)
    try:
        first = dpo.get("/dso/begaranden").get_data(as_text=True)
        first_count = len(statements)
        statements.clear()
        third = dpo.get("/dso/begaranden?sida=3").get_data(as_text=True)
    finally:
        sa.event.remove(db.engine, "before_cursor_execute", count)
    assert len(references(first)) == 50 and len(references(third)) == 20
    assert references(first)[0] == "DSR-2025-000000"
    assert "Sida 1 av 3" in first and "Senare tidsfrister" in first
    assert first_count <= 12 and len(statements) <= 12


# --- the review -----------------------------------------------------------------------------

def test_review_shows_the_request_and_a_verified_signature(app, people, dpo):
    request_id = make_request(app, people["anna"], details="Radera allt om mig")
    html = dpo.get(f"/dso/begaranden/{request_id}").get_data(as_text=True)
    assert "Kvittots signatur" in html and "<strong>verifierad</strong>" in html
    assert "ab" * 32 in html and "Anna Andersson" in html and "Radera allt om mig" in html
    assert f"/dso/begaranden/{request_id}/id/1" in html
    assert "FEL" not in html


def test_review_shows_fel_when_the_receipt_payload_is_tampered(app, people, dpo):
    request_id = make_request(app, people["anna"])
    with app.app_context():
        row = db.session.get(RightsRequest, request_id)
        row.receipt_payload = {**row.receipt_payload, "kind": "restriction"}
        db.session.commit()
    html = dpo.get(f"/dso/begaranden/{request_id}").get_data(as_text=True)
    assert "FEL: kvittot stämmer inte med sin signatur" in html
    assert "<strong>verifierad</strong>" not in html


def test_id_image_is_served_no_store_and_every_view_is_audited(app, people, dpo):
    second = jpeg((10, 200, 10))
    request_id = make_request(app, people["anna"], pages=(b"", second))
    for page in (1, 2, 1):
        response = dpo.get(f"/dso/begaranden/{request_id}/id/{page}")
        assert response.status_code == 200 and response.mimetype == "image/jpeg"
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["Content-Disposition"] == "inline"
        assert response.data.startswith(b"\xff\xd8\xff")
    assert dpo.get(f"/dso/begaranden/{request_id}/id/2").data == second
    with app.app_context():
        views = db.session.scalars(sa.select(AuditEvent).where(
            AuditEvent.action == "request.id_viewed")).all()
        assert len(views) == 4
        assert all(v.actor_id == people["dpo"] and v.subject_id == people["anna"]
                   and v.details["request_id"] == request_id for v in views)


# --- decisions ------------------------------------------------------------------------------

def mails(app, template):
    with app.app_context():
        rows = db.session.scalars(sa.select(MailMessage).where(
            MailMessage.template == template)).all()
        for row in rows:
            db.session.expunge(row)
        return rows


def assert_id_destroyed(app, request_id, dpo_id):
    with app.app_context():
        upload = db.session.scalar(sa.select(RequestUpload).where(
            RequestUpload.request_id == request_id))
        assert upload.destroyed_at is not None and upload.blob_id is None
        assert upload.sha256 == "ab" * 32
        assert db.session.scalar(sa.select(sa.func.count(StoredBlob.id)).where(
            StoredBlob.kind == "id_copy")) == 0
        row = db.session.get(RightsRequest, request_id)
        assert row.id_verified_by == dpo_id and row.id_verified_at is not None


def audit_actions(app, request_id):
    with app.app_context():
        return [e.action for e in db.session.scalars(sa.select(AuditEvent).order_by(
            AuditEvent.id)) if e.details.get("request_id") == request_id]


def test_approving_an_erasure_hands_it_to_the_pipeline_and_destroys_the_id(app, people, dpo):
    from portal.retention.models import ErasureCase, ErasureReason

    request_id = make_request(app, people["anna"])
    response = post(dpo, f"/dso/begaranden/{request_id}/bevilja")
    assert response.status_code == 302
    html = dpo.get(response.headers["Location"]).get_data(as_text=True)
    assert ("Begäran är beviljad och id-kopian förstörd. Raderingen är köad och kontot "
            "avidentifieras inom en minut.") in html and "Beviljad" in html
    assert "Godkänd, väntar på avidentifiering (köad)" in html.replace("<strong>", "") \
        .replace("</strong>", "")  # the erasure section: its step and that it waits in the queue
    assert "Id-handlingen kontrollerades av Dag Dso" in html and "Förstörd" in html
    assert "/id/1" not in html and "Bevilja begäran" not in html
    row = req_row(app, request_id)
    assert row.status == RequestStatus.APPROVED and row.decided_by == people["dpo"]
    assert_id_destroyed(app, request_id, people["dpo"])
    with app.app_context():
        case = db.session.scalar(sa.select(ErasureCase).where(
            ErasureCase.user_id == people["anna"]))
        assert case is not None and case.reason == ErasureReason.REQUEST
    assert "request.approved" in audit_actions(app, request_id)
    assert dpo.get(f"/dso/begaranden/{request_id}/id/1").status_code == 404
    again = post(dpo, f"/dso/begaranden/{request_id}/avsla", {"reason": "x"})
    assert "redan beslutad" in dpo.get(again.headers["Location"]).get_data(as_text=True)
    assert req_row(app, request_id).status == RequestStatus.APPROVED


def test_approving_a_restriction_restricts_the_account_and_tells_the_user(app, people, dpo):
    request_id = make_request(app, people["anna"], kind=RequestKind.RESTRICTION)
    assert post(dpo, f"/dso/begaranden/{request_id}/bevilja").status_code == 302
    with app.app_context():
        assert db.session.get(User, people["anna"]).status == AccountStatus.RESTRICTED
    [mail] = mails(app, "request_decided")
    assert mail.to_addr == ANNA and "beviljat" in mail.body_text
    assert "begränsat" in mail.body_text
    assert_id_destroyed(app, request_id, people["dpo"])


def test_approving_an_objection_is_recorded(app, people, dpo):
    request_id = make_request(app, people["anna"], kind=RequestKind.OBJECTION)
    assert post(dpo, f"/dso/begaranden/{request_id}/bevilja").status_code == 302
    assert req_row(app, request_id).status == RequestStatus.APPROVED
    with app.app_context():
        assert db.session.get(User, people["anna"]).status == AccountStatus.ACTIVE
        events = db.session.scalars(sa.select(RequestEvent.action).where(
            RequestEvent.request_id == request_id)).all()
    assert events == ["received", "approved"]


def test_rejecting_needs_a_reason_and_tells_the_user_about_imy(app, people, dpo):
    request_id = make_request(app, people["anna"])
    empty = post(dpo, f"/dso/begaranden/{request_id}/avsla", {"reason": "  "})
    assert empty.status_code == 400
    assert "Skriv skälet till att begäran avslås." in empty.get_data(as_text=True)
    assert req_row(app, request_id).status == RequestStatus.RECEIVED
    too_long = post(dpo, f"/dso/begaranden/{request_id}/avsla", {"reason": "å" * 2001})
    assert too_long.status_code == 400
    response = post(dpo, f"/dso/begaranden/{request_id}/avsla",
                    {"reason": "Id-handlingen gäller inte längre."})
    assert response.status_code == 302
    row = req_row(app, request_id)
    assert row.status == RequestStatus.REJECTED
    assert row.decision_reason == "Id-handlingen gäller inte längre."
    [mail] = mails(app, "request_decided")
    assert "Id-handlingen gäller inte längre." in mail.body_text
    assert "Integritetsskyddsmyndigheten (IMY)" in mail.body_text
    assert "avslagen" in mail.subject
    assert_id_destroyed(app, request_id, people["dpo"])
    assert "request.rejected" in audit_actions(app, request_id)
    with app.app_context():  # no free text in the audit log
        for event in db.session.scalars(sa.select(AuditEvent)):
            assert "Id-handlingen" not in str(event.details)


def test_asking_for_completion_keeps_the_id_and_tells_the_user(app, people, dpo):
    request_id = make_request(app, people["anna"])
    response = post(dpo, f"/dso/begaranden/{request_id}/komplettering",
                    {"note": "Bilden är suddig."})
    assert response.status_code == 302
    assert req_row(app, request_id).status == RequestStatus.NEEDS_COMPLETION
    [mail] = mails(app, "request_completion")
    assert "Bilden är suddig." in mail.body_text and "kompletteras" in mail.subject
    with app.app_context():
        upload = db.session.scalar(sa.select(RequestUpload).where(
            RequestUpload.request_id == request_id))
        assert upload.destroyed_at is None and upload.blob_id is not None
    assert "request.completion_requested" in audit_actions(app, request_id)


def test_extension_within_the_first_month_moves_the_due_date_and_tells_the_user(app, people,
                                                                                dpo):
    received = now() - timedelta(days=10)
    request_id = make_request(app, people["anna"], received_at=received)
    response = post(dpo, f"/dso/begaranden/{request_id}/forlang",
                    {"months": "2", "ext_reason": "Många begäranden just nu."})
    assert response.status_code == 302
    row = req_row(app, request_id)
    assert row.extension_months == 2 and row.extension_reason == "Många begäranden just nu."
    assert row.due_on == deadlines.due_date(received, 2)
    [mail] = mails(app, "request_extended")
    assert "Många begäranden just nu." in mail.body_text and "mer tid" in mail.subject
    assert "request.extended" in audit_actions(app, request_id)
    again = post(dpo, f"/dso/begaranden/{request_id}/forlang",
                 {"months": "1", "ext_reason": "Igen"})
    assert "redan förlängts en gång" in dpo.get(again.headers["Location"]).get_data(
        as_text=True)
    assert req_row(app, request_id).extension_months == 2


def test_extension_after_the_first_month_is_refused(app, people, dpo):
    request_id = make_request(app, people["anna"], received_at=now() - timedelta(days=33))
    response = post(dpo, f"/dso/begaranden/{request_id}/forlang",
                    {"months": "1", "ext_reason": "Sent"})
    html = dpo.get(response.headers["Location"]).get_data(as_text=True)
    assert "kan bara förlängas under den första månaden" in html
    row = req_row(app, request_id)
    assert row.extension_months == 0 and row.due_on == deadlines.due_date(row.received_at)
    assert mails(app, "request_extended") == []


@pytest.mark.parametrize("months", ["3", "0", "-1", "", "två"])
def test_extension_beyond_two_months_or_garbage_is_refused(app, people, dpo, months):
    request_id = make_request(app, people["anna"])
    response = post(dpo, f"/dso/begaranden/{request_id}/forlang",
                    {"months": months, "ext_reason": "Skäl"})
    assert response.status_code == 400
    assert "Välj 1 eller 2 månader." in response.get_data(as_text=True)
    assert req_row(app, request_id).extension_months == 0


def test_an_extension_needs_a_reason(app, people, dpo):
    request_id = make_request(app, people["anna"])
    response = post(dpo, f"/dso/begaranden/{request_id}/forlang", {"months": "1"})
    assert response.status_code == 400
    assert "Skriv skälet till förlängningen." in response.get_data(as_text=True)


# --- the overview ---------------------------------------------------------------------------

def test_overview_counts_median_chart_and_record_of_processing(app, people, dpo):
    today = now()
    a = make_request(app, people["anna"], received_at=today - timedelta(days=10))
    b = make_request(app, people["anna"], received_at=today - timedelta(days=3),
                     kind=RequestKind.RESTRICTION)
    make_request(app, people["anna"], received_at=today - timedelta(days=1))
    make_request(app, people["anna"], received_at=today - timedelta(days=400))  # not charted
    with app.app_context():
        for request_id, days in ((a, 4), (b, 2)):
            row = db.session.get(RightsRequest, request_id)
            row.status, row.decided_at = RequestStatus.APPROVED, row.received_at + timedelta(
                days=days)
        db.session.commit()
    response = dpo.get("/dso/oversikt")
    html = response.get_data(as_text=True)
    assert response.status_code == 200
    assert "<h1>Översikt över begäranden</h1>" in html
    assert "<dt>Beviljad</dt><dd>2</dd>" in html and "<dt>Mottagen</dt><dd>2</dd>" in html
    assert "<dt>Radering</dt><dd>3</dd>" in html and "<dt>Begränsning</dt><dd>1</dd>" in html
    assert ("Mediantid från mottagande till beslut de senaste tolv månaderna: 3.0 dagar."
            in html) or ("Mediantid från mottagande till beslut de senaste tolv månaderna: "
                         "3,0 dagar.") in html
    assert html.count("<rect ") == 12 and 'role="img"' in html
    counts = [int(n) for n in re.findall(r'<td>(\d+)</td>', html)]
    assert sum(counts) == 3 and len(counts) == 12
    assert "Register över behandlingar (artikel 30 i dataskyddsförordningen)" in html
    from portal.processing import REGISTER

    art30 = html.split("artikel 30")[1]
    assert art30.count("<h3>") == len(REGISTER) and art30.count("Rättslig grund") == len(REGISTER)


def test_the_week_chart_scales_bars_to_the_busiest_week():
    from datetime import date

    from portal.requests.dpo_views import CHART_HEIGHT, chart_bars

    bars = chart_bars([(date(2026, 11, 2), 0), (date(2026, 11, 9), 4),
                       (date(2026, 11, 16), 2)])
    assert bars[0]["height"] == 0 and bars[2]["height"] == bars[1]["height"] / 2
    assert all(0 <= bar["y"] <= CHART_HEIGHT for bar in bars)
    assert chart_bars([]) == []


# --- the audit verification command ---------------------------------------------------------

def test_audit_verify_passes_and_finds_the_first_changed_event(app, people):
    from portal import audit
    from portal.requests.dpo_cli import audit_cli

    runner = app.test_cli_runner()
    with app.app_context():
        first = audit.record("request.approved", actor_id=1, subject_id=2, request_id=3)
        audit.record("request.id_viewed", actor_id=1, subject_id=2, request_id=3)
        db.session.commit()
        first_id = first.id
    ok = runner.invoke(audit_cli, ["verify"])
    assert ok.exit_code == 0, ok.output
    with app.app_context():
        db.session.execute(sa.update(AuditEvent).where(AuditEvent.id == first_id)
                           .values(details={"request_id": 4}))
        db.session.commit()
    broken = runner.invoke(audit_cli, ["verify"])
    assert broken.exit_code == 1 and str(first_id) in broken.output


def test_audit_verify_detects_a_removed_event(app, people):
    from portal import audit
    from portal.requests.dpo_cli import audit_cli

    with app.app_context():
        audit.record("request.approved", actor_id=1, subject_id=2, request_id=3)
        middle = audit.record("request.rejected", actor_id=1, subject_id=2, request_id=3)
        last = audit.record("request.extended", actor_id=1, subject_id=2, request_id=3)
        db.session.delete(middle)
        db.session.commit()
        last_id = last.id
    result = app.test_cli_runner().invoke(audit_cli, ["verify"])
    assert result.exit_code == 1 and str(last_id) in result.output
