"""Filing, tracking and withdrawing rights requests (the user's side), and their receipts.

An ID copy is stored as ONE encrypted blob (kind "id_copy"): a ZIP holding the re-encoded
page images (page-1.jpg, page-2.jpg, ...), never the file that was received; only the
SHA-256 of what was received is kept of the original. The receipt is an Ed25519 signature
over a canonical JSON of the request's fields, and a PDF of the same, stored as a blob.
"""
from __future__ import annotations

import io
import secrets
import unicodedata
import zipfile
from dataclasses import dataclass

import sqlalchemy as sa
from flask import current_app, render_template
from flask_babel import force_locale, format_date

from portal import audit
from portal.auth.models import User
from portal.clock import STOCKHOLM, now
from portal.db import db
from portal.exports.render import render_pdf
from portal.i18n import lazy_gettext as _l
from portal.mail.services import queue_mail
from portal.requests import signing
from portal.requests.deadlines import due_date
from portal.requests.models import (RequestEvent, RequestKind, RequestStatus, RequestUpload,
                                    RightsRequest)
from portal.requests.uploads import ProcessedUpload
from portal.storage import StoredBlob, delete_blob, put_blob, read_blob
from portal.urls import external_url

OPEN_STATUSES = (RequestStatus.RECEIVED, RequestStatus.NEEDS_COMPLETION)
UNDECIDED_STATUSES = OPEN_STATUSES

KIND_LABELS = {
    RequestKind.ERASURE: _l("Erasure"),
    RequestKind.RESTRICTION: _l("Restriction of processing"),
    RequestKind.RECTIFICATION: _l("Rectification"),
    RequestKind.OBJECTION: _l("Objection"),
}
KIND_TITLES = {  # the receipt's title
    RequestKind.ERASURE: _l("Request for erasure"),
    RequestKind.RESTRICTION: _l("Request for restriction of processing"),
    RequestKind.RECTIFICATION: _l("Request for rectification"),
    RequestKind.OBJECTION: _l("Objection to processing"),
}
STATUS_LABELS = {
    RequestStatus.RECEIVED: _l("Received"),
    RequestStatus.NEEDS_COMPLETION: _l("Needs completion"),
    RequestStatus.APPROVED: _l("Granted"),
    RequestStatus.REJECTED: _l("Rejected"),
    RequestStatus.WITHDRAWN: _l("Withdrawn"),
}
EVENT_LABELS = {
    "received": _l("Request received"),
    "withdrawn": _l("Request withdrawn by you"),
    "upload_destroyed": _l("ID copy destroyed"),
    "extended": _l("Deadline extended"),
    "approved": _l("Request granted"),
    "rejected": _l("Request rejected"),
    "needs_completion": _l("Completion asked for"),
    "completed": _l("Completion received"),
    "restriction_lifted": _l("Restriction lifted"),
    "completion_requested": _l("Completion asked for"),
}
DECLARATION = _l("I declare that the information I have given is correct and that I am the "
                 "person named in this request.")


class RequestRefused(Exception):
    """The request cannot be filed or changed; `message` says why."""

    def __init__(self, message) -> None:
        super().__init__(str(message))
        self.message = message


@dataclass(frozen=True)
class FiledRequest:
    request: RightsRequest
    upload: RequestUpload


def normalise_name(value: str | None) -> str:
    """A name compared case- and whitespace-insensitively (NFC, case-folded, single spaces)."""
    return " ".join(unicodedata.normalize("NFC", value or "").casefold().split())


def names_match(typed: str | None, account_name: str | None) -> bool:
    """True if the typed signature is the account's name."""
    return bool(normalise_name(typed)) and normalise_name(typed) == normalise_name(account_name)


def list_requests(user_id: int) -> list[RightsRequest]:
    """The user's requests, newest first."""
    return list(db.session.scalars(
        sa.select(RightsRequest).where(RightsRequest.user_id == user_id)
        .order_by(RightsRequest.received_at.desc(), RightsRequest.id.desc())))


def open_requests_for(user_id: int) -> list[RightsRequest]:
    """The user's requests that are not yet decided or withdrawn, oldest first."""
    return list(db.session.scalars(
        sa.select(RightsRequest).where(RightsRequest.user_id == user_id,
                                       RightsRequest.status.in_(OPEN_STATUSES))
        .order_by(RightsRequest.received_at, RightsRequest.id)))


def has_open_erasure(user_id: int) -> bool:
    """True if the user already has an erasure request waiting for a decision."""
    return any(r.kind == RequestKind.ERASURE for r in open_requests_for(user_id))


def get_own_request(user_id: int, request_id: int) -> RightsRequest | None:
    """The request if it belongs to the user, else None."""
    req = db.session.get(RightsRequest, request_id)
    return req if req is not None and req.user_id == user_id else None


def events_for(request: RightsRequest) -> list[RequestEvent]:
    """The request's history, oldest first."""
    return list(db.session.scalars(
        sa.select(RequestEvent).where(RequestEvent.request_id == request.id)
        .order_by(RequestEvent.at, RequestEvent.id)))


def uploads_for(request: RightsRequest) -> list[RequestUpload]:
    """The request's uploads, oldest first."""
    return list(db.session.scalars(
        sa.select(RequestUpload).where(RequestUpload.request_id == request.id)
        .order_by(RequestUpload.id)))


def pages_archive(pages: tuple[bytes, ...]) -> bytes:
    """The re-encoded pages as one uncompressed ZIP (page-1.jpg, page-2.jpg, ...)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for number, page in enumerate(pages, 1):
            info = zipfile.ZipInfo(f"page-{number}.jpg", date_time=(1980, 1, 1, 0, 0, 0))
            archive.writestr(info, page)
    return buffer.getvalue()


def read_pages(upload: RequestUpload) -> list[bytes]:
    """The stored page images of an upload (empty once destroyed)."""
    blob = db.session.get(StoredBlob, upload.blob_id) if upload.blob_id else None
    if blob is None:
        return []
    with zipfile.ZipFile(io.BytesIO(read_blob(blob))) as archive:
        return [archive.read(name) for name in sorted(archive.namelist(),
                                                      key=lambda n: int(n[5:-4]))]


def _private_key():
    return signing.load_private_key(current_app.config["SIGNING_KEY"])


def public_key_b64() -> str:
    """The portal's Ed25519 public key (base64), printed on every receipt."""
    return signing.public_key_b64(_private_key())


def _store_upload(req: RightsRequest, user: User, processed: ProcessedUpload, purpose: str,
                  at) -> RequestUpload:
    blob = put_blob(pages_archive(processed.pages), purpose, user.id)
    stored = RequestUpload(request_id=req.id, user_id=user.id, purpose=purpose,
                           received_kind=processed.kind, received_size=processed.received_size,
                           sha256=processed.sha256, pages=len(processed.pages), blob_id=blob.id,
                           created_at=at)
    db.session.add(stored)
    return stored


def file_request(user: User, kind: RequestKind, *, signature_name: str, upload: ProcessedUpload,
                 details: str = "", signed_form: ProcessedUpload | None = None) -> FiledRequest:
    """File a signed request with its ID copy (and, if signed by hand, the scanned form), sign
    and store the receipt, queue the mail."""
    if kind == RequestKind.ERASURE and has_open_erasure(user.id):
        raise RequestRefused(_l("You already have a request for erasure that we are handling. "
                                "You can follow it under your requests."))
    received_at = now()
    req = RightsRequest(reference="tmp-" + secrets.token_hex(8), user_id=user.id, kind=kind,
                        status=RequestStatus.RECEIVED, details=details,
                        signature_name=signature_name, declaration_at=received_at,
                        received_at=received_at, due_on=due_date(received_at))
    db.session.add(req)
    db.session.flush()
    req.reference = f"DSR-{received_at.astimezone(STOCKHOLM).year}-{req.id:06d}"
    stored = _store_upload(req, user, upload, "id_copy", received_at)
    form_upload = (_store_upload(req, user, signed_form, "signed_form", received_at)
                   if signed_form is not None else None)
    db.session.add(RequestEvent(request_id=req.id, at=received_at, actor_id=user.id,
                                action="received"))
    with force_locale(user.locale or current_app.config["BABEL_DEFAULT_LOCALE"]):
        req.receipt_payload = {
            "reference": req.reference, "kind": kind.value, "name": user.name,
            "signature_name": signature_name, "declaration": str(DECLARATION),
            "received_at": received_at.isoformat(), "upload_sha256": upload.sha256,
            "due_on": req.due_on.isoformat(),
        }
        if form_upload is not None:
            req.receipt_payload["signed_form_sha256"] = form_upload.sha256
        req.receipt_signature = signing.sign(_private_key(), req.receipt_payload)
        pdf = render_pdf(render_template(
            "pdf/request_receipt.html", req=req, payload=req.receipt_payload, user=user,
            title=KIND_TITLES[kind], kind_label=KIND_LABELS[kind], details=details,
            received_at=received_at, public_key=public_key_b64(), upload=stored,
            form_upload=form_upload, due_on_text=format_date(req.due_on, "long")))
    req.receipt_blob_id = put_blob(pdf, "request_receipt", user.id).id
    receipt_name = f"{req.reference.lower()}-kvitto.pdf"
    db.session.flush()
    audit.record("request.received", actor_id=user.id, subject_id=user.id,
                 request_id=req.id, kind=kind.value, upload_kind=upload.kind,
                 signed_by_hand=form_upload is not None)
    queue_mail("request_received", to_addr=user.email, to_name=user.name, locale=user.locale,
               user_id=user.id, name=user.name, reference=req.reference,
               kind_title=KIND_TITLES[kind], due_on=req.due_on, format_date=format_date,
               link=external_url("requests.show", request_id=req.id),
               attachment=(req.receipt_blob_id, receipt_name))
    return FiledRequest(req, stored)


def request_form_pdf(user: User, kind: RequestKind) -> bytes:
    """A pre-filled request form to print, sign by hand and upload as a scan."""
    with force_locale(user.locale or current_app.config["BABEL_DEFAULT_LOCALE"]):
        return render_pdf(render_template(
            "requests/form_pdf.html", user=user, title=KIND_TITLES[kind],
            kind_label=KIND_LABELS[kind], declaration=DECLARATION, created_at=now()))


def receipt_pdf(request: RightsRequest) -> bytes | None:
    """The stored receipt PDF, or None if there is none."""
    blob = db.session.get(StoredBlob, request.receipt_blob_id) if request.receipt_blob_id else None
    return read_blob(blob) if blob is not None else None


def receipt_verifies(request: RightsRequest) -> bool:
    """True if the receipt's signature verifies with the portal's key over its payload."""
    if not request.receipt_payload or not request.receipt_signature:
        return False
    return signing.verify(_private_key().public_key(), request.receipt_payload,
                          request.receipt_signature)


def destroy_uploads(request: RightsRequest, actor_id: int | None = None) -> int:
    """Delete the stored ID copies of a request (the hash stays); returns how many."""
    count = 0
    for upload in uploads_for(request):
        if upload.destroyed_at is not None:
            continue
        delete_blob(upload.blob_id)
        upload.blob_id = None
        upload.destroyed_at = now()
        count += 1
    if count:
        db.session.add(RequestEvent(request_id=request.id, actor_id=actor_id,
                                    action="upload_destroyed"))
        db.session.flush()
        audit.record("request.upload_destroyed", actor_id=actor_id, subject_id=request.user_id,
                     request_id=request.id, uploads=count)
    return count


def complete_request(request: RightsRequest, user: User, upload: ProcessedUpload,
                     note: str = "") -> RequestUpload:
    """Answer the DPO's request for completion with a new ID copy: the old copy is destroyed,
    the new one stored, and the request goes back into the DPO's queue."""
    if request.status != RequestStatus.NEEDS_COMPLETION:
        raise RequestRefused(_l("This request is not waiting for anything from you."))
    destroy_uploads(request, actor_id=user.id)
    at = now()
    stored = _store_upload(request, user, upload, "id_copy", at)
    request.status = RequestStatus.RECEIVED
    db.session.add(RequestEvent(request_id=request.id, actor_id=user.id, action="completed",
                                note=note or None, at=at))
    audit.record("request.completed", actor_id=user.id, subject_id=user.id,
                 request_id=request.id)
    db.session.flush()
    return stored


def withdraw_request(request: RightsRequest, user: User) -> None:
    """Withdraw an undecided request and destroy its ID copy at once."""
    if request.status not in UNDECIDED_STATUSES:
        raise RequestRefused(_l("This request has already been decided or withdrawn and can "
                                "no longer be withdrawn."))
    request.status = RequestStatus.WITHDRAWN
    db.session.add(RequestEvent(request_id=request.id, actor_id=user.id, action="withdrawn"))
    db.session.flush()
    audit.record("request.withdrawn", actor_id=user.id, subject_id=user.id,
                 request_id=request.id, kind=request.kind.value)
    destroy_uploads(request, actor_id=user.id)

