"""The DPO's work on rights requests: the queue, the review and the decisions.

Every decision leaves a RequestEvent (the history shown to the user and the DPO) and a
hash-chained audit record with ids and codes only. The ID copy is destroyed at the decision;
its SHA-256 and "verified by X at T" remain.
"""
from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone

import sqlalchemy as sa
from flask import current_app
from flask_babel import format_date

from portal import audit
from portal.auth.models import AccountStatus, User
from portal.clock import STOCKHOLM, now
from portal.db import db
from portal.mail.services import queue_mail
from portal.requests import deadlines, signing
from portal.requests.models import (RequestEvent, RequestKind, RequestStatus, RequestUpload,
                                    RightsRequest)
from portal.storage import StoredBlob, delete_blob, read_blob

PAGE_SIZE = 50
OPEN_STATUSES = (RequestStatus.RECEIVED, RequestStatus.NEEDS_COMPLETION)
DUE_SOON_DAYS = 7


class DecisionRefused(Exception):
    """The decision cannot be taken now; `code` says why (the view words it)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class QueueRow:
    request: RightsRequest
    user_name: str
    days_left: int

    @property
    def overdue(self) -> bool:
        return self.days_left < 0

    @property
    def due_soon(self) -> bool:
        return 0 <= self.days_left <= DUE_SOON_DAYS


@dataclass(frozen=True)
class QueuePage:
    rows: list[QueueRow]
    total: int
    page: int
    pages: int


def effective_due(req: RightsRequest) -> date:
    """The due date including any extension (due_on is kept up to date at extension)."""
    return req.due_on


def list_queue(kind: RequestKind | None, status: RequestStatus | None, page: int) -> QueuePage:
    """Open requests, earliest due first, PAGE_SIZE per page (two SQL statements)."""
    statuses = (status,) if status else OPEN_STATUSES
    where = [RightsRequest.status.in_(statuses)]
    if kind:
        where.append(RightsRequest.kind == kind)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(RightsRequest).where(*where))
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(max(page, 1), pages)
    stmt = (sa.select(RightsRequest, User.name).join(User, User.id == RightsRequest.user_id)
            .where(*where).order_by(RightsRequest.due_on, RightsRequest.id)
            .limit(PAGE_SIZE).offset((page - 1) * PAGE_SIZE))
    today = deadlines.local_day(now())
    rows = [QueueRow(req, name, (req.due_on - today).days)
            for req, name in db.session.execute(stmt)]
    return QueuePage(rows=rows, total=total, page=page, pages=pages)


def receipt_verifies(req: RightsRequest) -> bool | None:
    """Whether the receipt's Ed25519 signature verifies (None: no receipt yet)."""
    if not req.receipt_payload or not req.receipt_signature:
        return None
    key = signing.load_private_key(current_app.config["SIGNING_KEY"]).public_key()
    return signing.verify(key, req.receipt_payload, req.receipt_signature)


def uploads_for(req: RightsRequest) -> list[RequestUpload]:
    return list(db.session.scalars(sa.select(RequestUpload)
                                   .where(RequestUpload.request_id == req.id)
                                   .order_by(RequestUpload.id)))


def events_for(req: RightsRequest) -> list[RequestEvent]:
    return list(db.session.scalars(sa.select(RequestEvent)
                                   .where(RequestEvent.request_id == req.id)
                                   .order_by(RequestEvent.at, RequestEvent.id)))


def split_pages(data: bytes) -> list[bytes]:
    """The stored images of one upload: an uncompressed ZIP of page-1.jpg, page-2.jpg, ...
    (as portal.requests.services stores them), or a bare JPEG. Only JPEG pages are served."""
    if data.startswith(b"\xff\xd8\xff"):
        return [data]
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n for n in archive.namelist() if re.fullmatch(r"page-\d{1,3}\.jpg", n)]
            names.sort(key=lambda n: int(n[5:-4]))
            pages = [archive.read(name) for name in names]
    except (zipfile.BadZipFile, KeyError):
        return []
    return [page for page in pages if page.startswith(b"\xff\xd8\xff")]


def live_uploads_with_blobs(req: RightsRequest) -> list[tuple[RequestUpload, StoredBlob]]:
    """The request's undestroyed uploads with their stored blobs, oldest first (one query,
    not one per upload)."""
    rows = db.session.execute(
        sa.select(RequestUpload, StoredBlob)
        .join(StoredBlob, StoredBlob.id == RequestUpload.blob_id)
        .where(RequestUpload.request_id == req.id, RequestUpload.destroyed_at.is_(None))
        .order_by(RequestUpload.id))
    return [(upload, blob) for upload, blob in rows]


def id_page(req: RightsRequest, number: int, dpo: User) -> bytes | None:
    """Page `number` (1-based, across the request's live uploads) as JPEG; audit-logged."""
    seen = 0
    for upload, blob in live_uploads_with_blobs(req):
        images = split_pages(read_blob(blob))
        if number <= seen + len(images):
            audit.record("request.id_viewed", actor_id=dpo.id, subject_id=req.user_id,
                         request_id=req.id, upload_id=upload.id, page=number)
            return images[number - seen - 1]
        seen += len(images)
    return None


def live_page_count(req: RightsRequest, uploads: list[RequestUpload] | None = None) -> int:
    """Pages of ID copy still held; `uploads` when the caller has loaded them already."""
    uploads = uploads_for(req) if uploads is None else uploads
    return sum(u.pages for u in uploads if u.destroyed_at is None and u.blob_id)


def _event(req: RightsRequest, dpo: User, action: str, note: str | None = None) -> None:
    db.session.add(RequestEvent(request_id=req.id, actor_id=dpo.id, action=action, note=note,
                                at=now()))
    audit.record(f"request.{action}", actor_id=dpo.id, subject_id=req.user_id,
                 request_id=req.id, kind=req.kind.value)


def _require_open(req: RightsRequest) -> None:
    if req.status not in OPEN_STATUSES:
        raise DecisionRefused("closed")


def _destroy_id_copies(req: RightsRequest, dpo: User) -> None:
    stamp = now()
    for upload in uploads_for(req):
        if upload.destroyed_at is None:
            delete_blob(upload.blob_id)
            upload.blob_id = None
            upload.destroyed_at = stamp
    req.id_verified_by, req.id_verified_at = dpo.id, stamp


def _decide(req: RightsRequest, dpo: User, status: RequestStatus, reason: str | None) -> None:
    _destroy_id_copies(req, dpo)
    req.status, req.decided_at, req.decided_by = status, now(), dpo.id
    req.decision_reason = reason


def _tell(req: RightsRequest, user: User, template: str, **context) -> None:
    if user.email and user.status != AccountStatus.PSEUDONYMISED:
        queue_mail(template, to_addr=user.email, to_name=user.name, locale=user.locale,
                   user_id=user.id, name=user.name, reference=req.reference,
                   kind=req.kind.value, format_date=format_date, **context)


def approve(req: RightsRequest, dpo: User) -> None:
    """Grant the request: erasure goes to the erasure pipeline, restriction restricts."""
    from portal.retention.models import ErasureReason
    from portal.retention.services import start_erasure

    _require_open(req)
    user = db.session.get(User, req.user_id)
    _decide(req, dpo, RequestStatus.APPROVED, None)
    _event(req, dpo, "approved")
    if req.kind == RequestKind.ERASURE:
        db.session.flush()
        start_erasure(req.user_id, ErasureReason.REQUEST, actor_id=dpo.id)
    else:
        if req.kind == RequestKind.RESTRICTION:
            user.status = AccountStatus.RESTRICTED
            audit.record("account.restricted", actor_id=dpo.id, subject_id=user.id,
                         request_id=req.id)
        _tell(req, user, "request_decided", approved=True, reason=None)
    db.session.flush()


def lift_restriction(req: RightsRequest, dpo: User) -> None:
    """End a granted restriction: the account is active again (marketing, statistics and
    coach sharing resume as the user has chosen them)."""
    user = db.session.get(User, req.user_id)
    if (req.kind != RequestKind.RESTRICTION or req.status != RequestStatus.APPROVED
            or user is None or user.status != AccountStatus.RESTRICTED):
        raise DecisionRefused("not_restricted")
    user.status = AccountStatus.ACTIVE
    _event(req, dpo, "restriction_lifted")
    audit.record("account.restriction_lifted", actor_id=dpo.id, subject_id=user.id,
                 request_id=req.id)
    db.session.flush()


def reject(req: RightsRequest, dpo: User, reason: str) -> None:
    """Refuse the request with a reason; the user is told it and the right to complain."""
    _require_open(req)
    _decide(req, dpo, RequestStatus.REJECTED, reason)
    _event(req, dpo, "rejected", reason)
    _tell(req, db.session.get(User, req.user_id), "request_decided", approved=False,
          reason=reason)
    db.session.flush()


def ask_completion(req: RightsRequest, dpo: User, note: str) -> None:
    """Ask the user to complete the request (they can upload again)."""
    if req.status != RequestStatus.RECEIVED:
        raise DecisionRefused("closed")
    req.status = RequestStatus.NEEDS_COMPLETION
    _event(req, dpo, "completion_requested", note)
    _tell(req, db.session.get(User, req.user_id), "request_completion", note=note)
    db.session.flush()


def extend(req: RightsRequest, dpo: User, months: int, reason: str) -> None:
    """Extend the deadline once by 1 or 2 months, only while the first month runs."""
    _require_open(req)
    if months not in (1, 2):
        raise DecisionRefused("months")
    if not deadlines.can_extend(req.received_at, now(), req.extension_months > 0):
        raise DecisionRefused("too_late" if req.extension_months == 0 else "already")
    req.extension_months, req.extension_reason = months, reason
    req.due_on = deadlines.due_date(req.received_at, months)
    _event(req, dpo, "extended", reason)
    _tell(req, db.session.get(User, req.user_id), "request_extended", months=months,
          reason=reason, due_on=req.due_on)
    db.session.flush()


# --- overview ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Overview:
    by_status: dict
    by_kind: dict
    median_days: float | None
    weeks: list[tuple[date, int]]  # (Monday, requests received that week), oldest first


def overview(weeks: int = 12) -> Overview:
    """Counts by status and kind, the median handling time over the last twelve months, and
    requests per week."""
    from statistics import median

    by_status = {status: 0 for status in RequestStatus}
    by_kind = {kind: 0 for kind in RequestKind}
    grouped = db.session.execute(sa.select(RightsRequest.status, RightsRequest.kind,
                                           sa.func.count()).group_by(RightsRequest.status,
                                                                     RightsRequest.kind))
    for status, kind, count in grouped:
        by_status[status] += count
        by_kind[kind] += count
    handled = db.session.execute(  # the last twelve months: what handling is like now
        sa.select(RightsRequest.received_at, RightsRequest.decided_at)
        .where(RightsRequest.decided_at >= now() - timedelta(days=365)))
    durations = [(decided - received).total_seconds() / 86400 for received, decided in handled]
    today = deadlines.local_day(now())
    monday = today - timedelta(days=today.weekday())
    mondays = [monday - timedelta(weeks=weeks - 1 - i) for i in range(weeks + 1)]
    # Each week from Monday 00:00 Stockholm time, counted in SQL (one pass over the
    # window, no row to Python however many requests arrive).
    starts = [datetime.combine(day, time(0), tzinfo=STOCKHOLM).astimezone(timezone.utc)
              for day in mondays]
    received = RightsRequest.received_at
    week_counts = db.session.execute(sa.select(*(
        sa.func.count(sa.case((sa.and_(received >= start, received < end), 1)))
        for start, end in zip(starts, starts[1:], strict=False)))
        .where(received >= starts[0])).one()
    return Overview(by_status=by_status, by_kind=by_kind,
                    median_days=round(median(durations), 1) if durations else None,
                    weeks=list(zip(mondays[:weeks], week_counts, strict=True)))
