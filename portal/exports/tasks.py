"""Worker jobs for exports: build one, expire old ones, and re-enqueue forgotten ones.

`build_export` takes an id only, is idempotent (only a queued export is built; one that is
running, ready, failed, voided or expired is skipped) and reports each step both in the database row (committed per step, which the
page polls) and in the RQ job's meta. On failure the row records the exception's class name
only, and what is raised carries no personal data.
"""
from __future__ import annotations

import gc
import hashlib
import logging
import time
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_babel import force_locale

from portal import jobs
from portal.auth.models import User
from portal.clock import now
from portal.db import db
from portal.exports import render, services
from portal.exports.collect import collect
from portal.exports.document import build_document, reference
from portal.exports.labels import when_long
from portal.exports.models import Export, ExportStatus
from portal.mail.services import queue_mail
from portal.storage import put_blob
from portal.urls import external_url

log = logging.getLogger(__name__)
PENDING = (ExportStatus.QUEUED, ExportStatus.RUNNING)
STUCK_AFTER = timedelta(minutes=15)


class ExportFailed(RuntimeError):
    """Raised so RQ records the failure; names the export and the error class only."""


def _report(export: Export, step: str) -> None:
    """Record the step in the row (committed, so the page sees it) and in the job's meta."""
    export.step, export.progress = step, services.STEPS[step][0]
    db.session.commit()
    from rq import get_current_job

    job = get_current_job()
    if job is not None:
        job.meta.update(step=step, progress=export.progress)
        job.save_meta()


def build_export(export_id: int) -> str:
    """Build the PDF and JSON of everything, zip, store encrypted, mail the owner."""
    export = db.session.get(Export, export_id, with_for_update=True)  # claim it once
    if export is None or export.status != ExportStatus.QUEUED:
        db.session.rollback()
        return "skipped"
    export.status, export.started_at, export.error = ExportStatus.RUNNING, now(), None
    export.finished_at = None
    _report(export, "collect")
    # The objects this process already holds (in a work horse: everything the worker preloaded
    # before forking) are left out of garbage collection while the PDF is built, so the
    # collector neither walks them over and over nor copies their pages into the fork.
    gc.freeze()
    try:
        return _build(export)
    except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
        # The database went away mid-build (a restart, a failover): not the export's fault.
        # It goes back to the queue once the database answers; the reconciler runs it again.
        log.warning("export %s interrupted (%s); back in the queue", export_id,
                    type(exc).__name__)
        return "requeued" if _back_to_queue(export_id) else "interrupted"
    except Exception as exc:  # any failure: record the class only, keep no message
        name = type(exc).__name__
        db.session.rollback()
        export = db.session.get(Export, export_id)
        if export is not None and export.status == ExportStatus.RUNNING:
            export.status, export.error, export.finished_at = ExportStatus.FAILED, name, now()
            db.session.commit()
        log.error("export %s failed (%s)", export_id, name)
        raise ExportFailed(f"export {export_id} failed: {name}") from None
    finally:
        gc.unfreeze()


def _back_to_queue(export_id: int, attempts: int = 30, pause: float = 0.5) -> bool:
    """Mark an interrupted export queued again, waiting up to attempts × pause seconds for
    the database (if it stays away, the reconciler finds the row running without a job and
    marks it failed, and the user can try again)."""
    for attempt in range(attempts):
        try:
            db.session.rollback()
            export = db.session.get(Export, export_id, populate_existing=True)
            if export is None or export.status != ExportStatus.RUNNING:
                return False
            export.status, export.started_at, export.progress, export.step = (
                ExportStatus.QUEUED, None, 0, "")
            db.session.commit()
            return True
        except (sa.exc.OperationalError, sa.exc.InterfaceError):
            db.session.close()
            if attempt + 1 < attempts:
                time.sleep(pause)
    return False


def _build(export: Export) -> str:
    user = db.session.get(User, export.user_id)
    language = user.locale or current_app.config["BABEL_DEFAULT_LOCALE"]
    generated_at = now()
    with force_locale(language):
        document = build_document(collect(user.id), export, generated_at, language)
        _report(export, "json")
        json_bytes = render.export_json(document)
        _report(export, "pdf")
        html = render.export_html(document, name=user.name, generated_at=generated_at)
        pdf = render.render_pdf(html, after_layout=lambda: _report(export, "pdf_write"))
        _report(export, "zip")
        archive = render.build_zip(pdf, json_bytes, render.readme_text(document, generated_at),
                                   generated_at)
    _report(export, "store")
    # Voided meanwhile (an erasure started)? Then keep nothing. The row lock makes a
    # concurrent void wait for this commit, or this wait for the void's.
    db.session.refresh(export, with_for_update=True)
    if export.status != ExportStatus.RUNNING:
        db.session.rollback()
        return "voided"
    blob = put_blob(archive, kind=services.BLOB_KIND, user_id=user.id)
    finished = now()
    export.blob_id, export.size = blob.id, len(archive)
    export.sha256 = hashlib.sha256(archive).hexdigest()
    export.status, export.finished_at = ExportStatus.READY, finished
    export.expires_at = finished + services.LIFETIME
    export.step, export.progress = "done", 100
    queue_mail("export_ready", to_addr=user.email, to_name=user.name, locale=user.locale,
               user_id=user.id, name=user.name, reference=reference(export),
               expires_at=export.expires_at, when_long=when_long,
               link=external_url("exports.index"))
    db.session.commit()
    _report(export, "done")
    return "ready"


def expire_exports() -> int:
    """Delete exports whose 7 days have passed (cron, every 10 minutes)."""
    count = services.expire_due_exports()
    db.session.commit()
    if count:
        log.info("expired %d exports", count)
    return count


@jobs.reconciler("exports")
def requeue_stuck_exports() -> int:
    """Enqueue queued exports that no live job carries (Redis was down when they were asked
    for). An export left running by a worker that died is marked failed instead, so the
    owner sees it and can try again, and a job that kills its worker cannot loop."""
    moment = now()
    rows = db.session.execute(
        sa.select(Export.id, Export.status, Export.requested_at, Export.started_at)
        .where(Export.status.in_(PENDING)).order_by(Export.id).limit(500)).all()
    count, lost = 0, []
    for export_id, status, requested_at, started_at in rows:
        running = status == ExportStatus.RUNNING
        since = (started_at if running else requested_at) or moment
        if moment - since < (STUCK_AFTER if running else timedelta(minutes=2)):
            continue
        if jobs.job_is_alive(services.job_id(export_id)):
            continue
        if running:
            lost.append(export_id)
        else:
            count += jobs.enqueue(services.JOB, export_id, job_id=services.job_id(export_id))
    if lost:
        db.session.execute(sa.update(Export).where(Export.id.in_(lost),
                                                   Export.status == ExportStatus.RUNNING)
                           .values(status=ExportStatus.FAILED, error="WorkerLost",
                                   finished_at=moment))
        db.session.commit()
        log.error("exports %s lost their worker; marked failed", lost)
    return count
