"""Retention jobs: erasure steps, the daily inactivity sweep, warning mails, reconcilers.

Every job takes ids (or nothing) and is idempotent; the database holds the state, so a lost
or repeated job delays a step but never skips or doubles it. Periodic jobs are registered in
portal/cron.py; the reconcilers below run every minute through `portal.jobs.reconcile`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable

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
    """Daily: find the accounts due for the 14-day warning and those due for deletion, and
    hand each batch of ids to a job (set-based SQL per batch, conditions checked again there).

    The sweep itself only reads (one streamed SELECT per kind, flat memory) and enqueues, so
    it is cheap to run again at any time; a lost batch job is found again by the next sweep.
    A batch the queue does not take is run here once the reading is done, never skipped."""
    stamp = now()
    counts = {"warnings": 0, "erasures": 0}
    unqueued: list[tuple[Callable[[list[int]], int], list[int]]] = []
    for kind, conditions, task in (
            ("warnings", services.warning_due(stamp), warn_inactive_batch),
            ("erasures", services.deletion_due(stamp), erase_inactive_batch)):
        for ids in services.due_id_batches(conditions, batch_size):
            counts[kind] += len(ids)
            job_id = f"inactivity-{kind}-{ids[0]}-{ids[-1]}-{len(ids)}"
            if not jobs.enqueue(f"{__name__}.{task.__name__}", ids, job_id=job_id):
                unqueued.append((task, ids))
    db.session.commit()  # ends the read
    for task, ids in unqueued:
        task(ids)
    log.info("inactivity sweep: %d warnings and %d erasures due, %d batches run here",
             counts["warnings"], counts["erasures"], len(unqueued))
    return counts


def warn_inactive_batch(ids: list[int]) -> int:
    """Mark the warnings of one batch (those still due), then start the mail job."""
    marked = services.mark_warnings(ids, now())
    db.session.commit()
    if marked:
        _start_warning_job()
    return marked


def erase_inactive_batch(ids: list[int]) -> int:
    """Start the erasures of one batch (those still due); the reconciler runs their steps."""
    started = services.start_inactivity_erasures(ids, now())
    db.session.commit()
    return started


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
