"""Retention jobs: erasure steps, the daily inactivity sweep, warning mails, reconcilers.

Every job takes ids (or nothing) and is idempotent; the database holds the state, so a lost
or repeated job delays a step but never skips or doubles it. Periodic jobs are registered in
portal/cron.py; the reconcilers below run every minute through `portal.jobs.reconcile`.
"""
from __future__ import annotations

import logging

from portal import jobs
from portal.auth.services import purge_unverified_accounts
from portal.clock import now
from portal.db import db
from portal.retention import services

log = logging.getLogger(__name__)

WARNINGS_JOB_ID = "inactivity-warnings"
WARNINGS_PER_RUN = 2000  # the reconciler starts the job again a minute later for the rest


def purge_unverified() -> int:
    """Delete registrations that were never confirmed within seven days."""
    count = purge_unverified_accounts()
    db.session.commit()
    if count:
        log.info("deleted %d unverified registrations", count)
    return count


def run_erasure_step(case_id: int) -> str:
    """Run the erasure case's due step in one transaction (row-locked, idempotent)."""
    outcome = services.advance_erasure(case_id)
    db.session.commit()
    if outcome != "skipped":
        log.info("erasure case %s: %s", case_id, outcome)
    return outcome


def inactivity_sweep(batch_size: int = services.BATCH_SIZE) -> dict[str, int]:
    """Daily: mark accounts due for the 14-day warning and start erasure for accounts 6 months
    inactive (set-based SQL in batches, one short transaction per batch, flat memory)."""
    stamp = now()
    warned = _in_batches(services.mark_warning_batch, stamp, batch_size)
    erasures = _in_batches(services.start_inactivity_erasure_batch, stamp, batch_size)
    if warned:
        _start_warning_job()
    log.info("inactivity sweep: %d warnings due, %d erasures started", warned, erasures)
    return {"warnings": warned, "erasures": erasures}


def _in_batches(step, stamp, batch_size: int) -> int:
    total, after = 0, None
    while True:
        batch = step(stamp, after, batch_size)
        db.session.commit()
        total += batch.done
        if batch.next is None:
            return total
        after = batch.next


def send_inactivity_warnings(limit: int = WARNINGS_PER_RUN) -> int:
    """Write pending warning mails, one user per transaction (each exactly once)."""
    sent = seen = 0
    after = 0
    while seen < limit:
        ids = services.pending_warning_ids(after, min(200, limit - seen))
        db.session.commit()
        if not ids:
            break
        for user_id in ids:
            sent += services.send_inactivity_warning(user_id)
            db.session.commit()
        seen += len(ids)
        after = ids[-1]
    return sent


def _start_warning_job() -> int:
    if jobs.job_is_alive(WARNINGS_JOB_ID):
        return 0
    return int(jobs.enqueue("portal.retention.tasks.send_inactivity_warnings",
                            job_id=WARNINGS_JOB_ID))


@jobs.reconciler("erasure")
def requeue_due_erasures() -> int:
    """Enqueue every erasure step that is due and has no live job; forget the addresses of
    confirmations that have been sent."""
    if services.forget_sent_confirmations():
        db.session.commit()
    count = 0
    for case_id, step in services.due_erasure_steps():
        job_id = services.erasure_job_id(case_id, step)
        if not jobs.job_is_alive(job_id):
            count += jobs.enqueue("portal.retention.tasks.run_erasure_step", case_id,
                                  job_id=job_id)
    return count


@jobs.reconciler("inactivity")
def requeue_inactivity_warnings() -> int:
    """Start the warning-mail job if some marked account has no warning mail yet."""
    pending = services.pending_warning_ids(limit=1)
    return _start_warning_job() if pending else 0
