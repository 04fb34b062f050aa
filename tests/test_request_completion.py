"""After the DPO asks for completion, the user sends a new ID copy and the request is back in
the queue; the old copy is destroyed; bad files change nothing."""
import io

import sqlalchemy as sa
from PIL import Image

from portal.clock import now
from portal.db import db
from portal.requests.deadlines import due_date
from portal.requests.models import (RequestEvent, RequestKind, RequestStatus, RequestUpload,
                                    RightsRequest)
from portal.storage import StoredBlob, put_blob
from tests.conftest import csrf_from, login, make_user


def jpeg() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (300, 200), (9, 8, 7)).save(out, "JPEG")
    return out.getvalue()


def waiting_request(app, user, status=RequestStatus.NEEDS_COMPLETION):
    with app.app_context():
        return _waiting_request(user, status)


def _waiting_request(user, status):
    received = now()
    req = RightsRequest(reference="DSR-2026-000900", user_id=user.id, kind=RequestKind.ERASURE,
                        status=status, received_at=received, due_on=due_date(received))
    db.session.add(req)
    db.session.flush()
    blob = put_blob(b"old pages", "id_copy", user.id)
    db.session.add(RequestUpload(request_id=req.id, user_id=user.id, received_kind="jpeg",
                                 received_size=9, sha256="0" * 64, blob_id=blob.id))
    db.session.commit()
    return req, blob.id


def send(client, req, data: bytes, name="ny.jpg"):
    page = f"/mina-rattigheter/begaran/{req.id}"
    token = csrf_from(client, page)
    return client.post(f"{page}/komplettera", data={
        "csrf_token": token, "note": "Här är en tydligare bild.",
        "id_copy": (io.BytesIO(data), name)}, content_type="multipart/form-data")


def test_completion_replaces_the_id_copy_and_returns_the_request_to_the_queue(app):
    user = make_user()
    req, old_blob = waiting_request(app, user)
    client = app.test_client()
    login(client)
    assert "Skicka det som saknas" in client.get(
        f"/mina-rattigheter/begaran/{req.id}").get_data(as_text=True)
    response = send(client, req, jpeg())
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(RightsRequest, req.id).status == RequestStatus.RECEIVED
    uploads = db.session.scalars(sa.select(RequestUpload)
                                 .where(RequestUpload.request_id == req.id)
                                 .order_by(RequestUpload.id)).all()
    assert uploads[0].destroyed_at is not None and uploads[0].blob_id is None
    assert uploads[1].blob_id is not None and uploads[1].received_kind == "jpeg"
    with app.app_context():
        from portal.storage import read_blob

        blobs = db.session.scalars(sa.select(StoredBlob)).all()
        assert len(blobs) == 1 and read_blob(blobs[0]) != b"old pages"  # the old copy is gone
    actions = [e.action for e in db.session.scalars(sa.select(RequestEvent))]
    assert "completed" in actions


def test_a_bad_file_changes_nothing(app):
    user = make_user()
    req, old_blob = waiting_request(app, user)
    client = app.test_client()
    login(client)
    response = send(client, req, b"<svg xmlns='http://www.w3.org/2000/svg'/>", "bild.jpg")
    assert response.status_code == 400
    assert "JPEG, PNG eller HEIC" in response.get_data(as_text=True)
    db.session.expire_all()
    assert db.session.get(RightsRequest, req.id).status == RequestStatus.NEEDS_COMPLETION
    assert db.session.get(StoredBlob, old_blob) is not None


def test_only_when_asked_and_only_the_owner(app):
    user = make_user()
    req, _ = waiting_request(app, user, status=RequestStatus.RECEIVED)
    client = app.test_client()
    login(client)
    assert send(client, req, jpeg()).status_code == 302  # refused with a message
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RequestUpload)) == 1
    other = app.test_client()
    make_user(email="annan@example.se")
    login(other, email="annan@example.se")
    assert other.get(f"/mina-rattigheter/begaran/{req.id}").status_code == 404
    assert other.post(f"/mina-rattigheter/begaran/{req.id}/komplettera").status_code in (400, 404)
