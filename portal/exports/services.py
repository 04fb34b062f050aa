"""Exports: requesting (with limits), retrying, downloading, expiring and voiding.

The database row is the record (DESIGN §9): a request commits a queued row and enqueues the
job after the commit; if Redis is down, the reconciler in portal.exports.tasks enqueues it
later. Functions flush and audit (ids and codes only); the caller commits.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa

from portal import audit, jobs
from portal.auth.models import User
from portal.clock import STOCKHOLM, now
from portal.db import db
from portal.exports.document import reference
from portal.exports.labels import STATUS_LABELS
from portal.exports.models import Export, ExportStatus
from portal.i18n import lazy_gettext as _l
from portal.storage import StoredBlob, delete_blob, read_blob

MAX_PER_WINDOW = 3
WINDOW = timedelta(hours=24)
LIFETIME = timedelta(days=7)
IN_PROGRESS = (ExportStatus.QUEUED, ExportStatus.RUNNING)
BLOB_KIND = "export"
JOB = "portal.exports.tasks.build_export"

# The job's steps, in order, with the share of the work done when each one starts.
STEPS = {
    "": (0, _l("Waiting to start")),
    "collect": (5, _l("Collecting your data")),
    "json": (15, _l("Writing the JSON file")),
    "pdf": (25, _l("Laying out the PDF")),
    "pdf_write": (75, _l("Writing the PDF")),
    "zip": (90, _l("Packing the ZIP file")),
    "store": (95, _l("Storing the export encrypted")),
    "done": (100, _l("Ready")),
}


def job_id(export_id: int) -> str:
    return f"export-{export_id}"


@dataclass(frozen=True)
class Allowance:
    """Whether the user may request an export now; if not, why and from when."""

    allowed: bool
    reason: str | None = None  # "in_progress" or "limit"
    next_at: datetime | None = None


class ExportRefused(Exception):
    """A request or retry that the limits do not allow (carries the Allowance)."""

    def __init__(self, allowance: Allowance) -> None:
        super().__init__(allowance.reason)
        self.allowance = allowance


def list_exports(user_id: int, limit: int = 50) -> list[Export]:
    """The user's exports, newest first."""
    return list(db.session.scalars(
        sa.select(Export).where(Export.user_id == user_id)
        .order_by(Export.requested_at.desc(), Export.id.desc()).limit(limit)))


def get_own_export(user_id: int, export_id: int) -> Export | None:
    """The export if it belongs to the user; None otherwise (the view's 404)."""
    return db.session.scalar(sa.select(Export).where(Export.id == export_id,
                                                     Export.user_id == user_id))


def allowance(user_id: int) -> Allowance:
    """One export in progress at a time, at most three per 24 hours."""
    busy = db.session.scalar(sa.select(sa.func.count()).select_from(Export).where(
        Export.user_id == user_id, Export.status.in_(IN_PROGRESS)))
    if busy:
        return Allowance(False, "in_progress")
    recent = list(db.session.scalars(
        sa.select(Export.requested_at).where(Export.user_id == user_id,
                                             Export.requested_at > now() - WINDOW)
        .order_by(Export.requested_at.desc()).limit(MAX_PER_WINDOW)))
    if len(recent) >= MAX_PER_WINDOW:
        return Allowance(False, "limit", recent[-1] + WINDOW)
    return Allowance(True)


def _lock_user(user_id: int) -> None:
    """Serialise requests by one user (PostgreSQL row lock; SQLite's BEGIN IMMEDIATE does it)."""
    db.session.execute(sa.select(User.id).where(User.id == user_id).with_for_update())


def request_export(user: User) -> Export:
    """Create a queued export and enqueue its job after commit; ExportRefused if not allowed."""
    _lock_user(user.id)
    verdict = allowance(user.id)
    if not verdict.allowed:
        raise ExportRefused(verdict)
    export = Export(user_id=user.id, status=ExportStatus.QUEUED, progress=0, step="",
                    requested_at=now())
    db.session.add(export)
    db.session.flush()
    audit.record("export.requested", actor_id=user.id, subject_id=user.id, export_id=export.id)
    jobs.enqueue_after_commit(db.session, JOB, export.id, job_id=job_id(export.id))
    return export


def retry_export(user: User, export: Export) -> Export:
    """Queue a failed export again (it keeps its place in the daily limit)."""
    _lock_user(user.id)
    if export.user_id != user.id or export.status != ExportStatus.FAILED:
        raise ValueError("only the owner's failed export can be retried")
    verdict = allowance(user.id)
    if verdict.reason == "in_progress":
        raise ExportRefused(verdict)
    export.status, export.progress, export.step, export.error = ExportStatus.QUEUED, 0, "", None
    export.started_at = export.finished_at = None
    db.session.flush()
    audit.record("export.retried", actor_id=user.id, subject_id=user.id, export_id=export.id)
    jobs.enqueue_after_commit(db.session, JOB, export.id, job_id=job_id(export.id))
    return export


def is_downloadable(export: Export) -> bool:
    return (export.status == ExportStatus.READY and export.blob_id is not None
            and export.expires_at is not None and export.expires_at > now())


def open_download(user: User, export: Export) -> bytes:
    """The decrypted ZIP for its owner (audited); ValueError if it is not downloadable."""
    if export.user_id != user.id or not is_downloadable(export):
        raise ValueError("export not downloadable")
    blob = db.session.get(StoredBlob, export.blob_id)
    if blob is None:
        raise ValueError("export not downloadable")
    audit.record("export.downloaded", actor_id=user.id, subject_id=user.id, export_id=export.id)
    return read_blob(blob)


def record_denied_download(user: User, export_id: int) -> None:
    """Someone asked for an export that is not theirs (or does not exist)."""
    audit.record("export.download_denied", actor_id=user.id, subject_id=user.id,
                 export_id=export_id)


def download_name(export: Export) -> str:
    stamp = (export.finished_at or export.requested_at).astimezone(STOCKHOLM)
    return f"cowrite-export-{stamp:%Y-%m-%d}.zip"


def _discard(export: Export, status: ExportStatus) -> None:
    delete_blob(export.blob_id)
    export.blob_id = None
    export.status = status


def void_exports(user_id: int, actor_id: int | None = None) -> int:
    """Void every export of the user and delete their files at once (erasure starts).

    A job still running finds its export voided when it finishes and keeps nothing.
    """
    exports = list(db.session.scalars(
        sa.select(Export).where(Export.user_id == user_id,
                                Export.status.not_in((ExportStatus.VOIDED,
                                                      ExportStatus.EXPIRED)))
        .with_for_update()))
    for export in exports:
        _discard(export, ExportStatus.VOIDED)
    db.session.execute(sa.delete(StoredBlob).where(StoredBlob.user_id == user_id,
                                                   StoredBlob.kind == BLOB_KIND))
    db.session.flush()
    if exports:
        audit.record("exports.voided", actor_id=actor_id, subject_id=user_id,
                     count=len(exports))
    return len(exports)


def expire_due_exports() -> int:
    """Delete the files of ready exports whose 7 days have passed; returns how many."""
    due = list(db.session.scalars(
        sa.select(Export).where(Export.status == ExportStatus.READY,
                                Export.expires_at <= now())
        .order_by(Export.id).limit(500).with_for_update()))
    for export in due:
        _discard(export, ExportStatus.EXPIRED)
        audit.record("export.expired", subject_id=export.user_id, export_id=export.id)
    db.session.flush()
    return len(due)


def progress_view(export: Export) -> dict:
    """What the progress script (and the page) shows about one export."""
    status = ExportStatus(export.status)
    step = export.step if export.step in STEPS else ""
    progress = 100 if status == ExportStatus.READY else max(0, min(100, export.progress or 0))
    return {"id": export.id, "reference": reference(export), "status": status.value,
            "status_label": str(STATUS_LABELS[status]),
            "step": step, "step_label": str(STEPS[step][1]),
            "progress": progress, "done": status not in IN_PROGRESS}
