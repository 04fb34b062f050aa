"""Worker side of mail: deliver one stored message; reconcile the ones never enqueued."""
from __future__ import annotations

import logging
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from portal import jobs
from portal.clock import now
from portal.db import db
from portal.mail.backends import BACKENDS
from portal.mail.models import MailMessage, MailStatus
from portal.mail.services import RETRY_INTERVALS, build_message

log = logging.getLogger(__name__)
MAX_ATTEMPTS = len(RETRY_INTERVALS) + 1


class DeliveryError(RuntimeError):
    """A delivery failed; the message is kept and retried (no address in the text)."""


def deliver(mail_id: int) -> str:
    """Send one queued message. Idempotent: a sent message is not sent again."""
    row = db.session.get(MailMessage, mail_id, with_for_update=True)
    if row is None or row.status != MailStatus.PENDING:
        db.session.rollback()
        return "skipped"
    row.attempts += 1
    config = current_app.config
    try:
        BACKENDS[config["MAIL_BACKEND"]](build_message(row, config), config)
    except Exception as exc:  # any transport failure: record its class only, retry
        row.last_error = type(exc).__name__
        if row.attempts >= MAX_ATTEMPTS:
            row.status = MailStatus.FAILED
            db.session.commit()
            log.error("mail %s failed permanently (%s)", mail_id, row.last_error)
            return "failed"
        db.session.commit()
        raise DeliveryError(f"mail {mail_id} not delivered: {row.last_error}") from None
    row.status, row.sent_at, row.last_error = MailStatus.SENT, now(), None
    row.body_text = row.body_html = ""  # delivered: keep the record, not the content
    db.session.commit()
    return "sent"


@jobs.reconciler("mail")
def requeue_stuck_mail() -> int:
    """Enqueue pending messages older than two minutes that no live job is carrying."""
    cutoff = now() - timedelta(minutes=2)
    ids = db.session.scalars(
        sa.select(MailMessage.id)
        .where(MailMessage.status == MailStatus.PENDING, MailMessage.created_at < cutoff)
        .order_by(MailMessage.id).limit(500)
    ).all()
    count = 0
    for mail_id in ids:
        job_id = f"mail-{mail_id}"
        if not jobs.job_is_alive(job_id):
            count += jobs.enqueue("portal.mail.tasks.deliver", mail_id, job_id=job_id,
                                  retry_intervals=RETRY_INTERVALS)
    return count
