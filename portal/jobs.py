"""Queue access for web and worker: short timeouts, enqueue after commit, and a reconciler.

The database row is always the record of what must happen; a job is only a trigger. A web
request never waits on Redis: if Redis is down the job is simply not enqueued and the
reconciler (a periodic job) enqueues whatever is still pending once Redis is back.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import redis
from flask import current_app
from redis.backoff import NoBackoff
from redis.retry import Retry
from rq import Queue
from rq.job import Job, JobStatus
from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

QUEUE_NAMES = ("default",)
FAILED_JOB_TTL = 86400  # failed jobs (ids and a message-free traceback) are kept one day
_PENDING_KEY = "portal_pending_jobs"
_UNQUEUED_KEY = "portal_unqueued_jobs"
_ALIVE = {JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED, JobStatus.DEFERRED}


def redis_connection(url: str | None = None, *, for_worker: bool = False) -> redis.Redis:
    """A Redis client. Web clients fail fast (no retries, sub-second timeouts)."""
    url = url or current_app.config["REDIS_URL"]
    if for_worker:
        return redis.Redis.from_url(url, socket_connect_timeout=5, health_check_interval=30)
    return redis.Redis.from_url(
        url, socket_connect_timeout=0.5, socket_timeout=1.0, retry=Retry(NoBackoff(), 0),
        retry_on_error=[],
    )


def get_connection() -> redis.Redis:
    app = current_app._get_current_object()
    conn = app.extensions.get("portal_redis")
    if conn is None:
        conn = app.extensions["portal_redis"] = redis_connection(app.config["REDIS_URL"])
    return conn


def get_queue(name: str = "default") -> Queue:
    return Queue(name, connection=get_connection())


@dataclass(frozen=True)
class PendingJob:
    func: str
    args: tuple
    job_id: str
    retry_intervals: tuple[int, ...] = ()


def enqueue(func: str, *args, job_id: str, retry_intervals: Iterable[int] = ()) -> bool:
    """Enqueue now; return False (and log) instead of raising when Redis is unreachable."""
    from rq import Retry as RQRetry

    intervals = list(retry_intervals)
    try:
        get_queue().enqueue(
            func, *args, job_id=job_id, failure_ttl=FAILED_JOB_TTL, result_ttl=3600,
            retry=RQRetry(max=len(intervals), interval=intervals) if intervals else None,
        )
        return True
    except redis.RedisError as exc:
        log.warning("queue unavailable, %s left for the reconciler (%s)", job_id, type(exc).__name__)
        return False


def enqueue_after_commit(session: Session, func: str, *args, job_id: str,
                         retry_intervals: Iterable[int] = ()) -> None:
    """Enqueue once the caller's transaction commits, so the job sees the rows it needs."""
    session.info.setdefault(_PENDING_KEY, []).append(
        PendingJob(func, args, job_id, tuple(retry_intervals))
    )


@event.listens_for(Session, "after_commit")
def _enqueue_pending(session: Session) -> None:
    for job in session.info.pop(_PENDING_KEY, []):
        if not enqueue(job.func, *job.args, job_id=job.job_id,
                       retry_intervals=job.retry_intervals):
            session.info.setdefault(_UNQUEUED_KEY, []).append(job.job_id)


def unqueued_after_commit(session: Session) -> list[str]:
    """Ids of the jobs the last commit could not enqueue (Redis unreachable): the rows are
    saved and the reconciler enqueues them later, so a page can say so instead of failing."""
    return session.info.pop(_UNQUEUED_KEY, [])


@event.listens_for(Session, "after_soft_rollback")
def _drop_pending(session: Session, previous_transaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_PENDING_KEY, None)


def job_is_alive(job_id: str) -> bool:
    """True when the job is queued, running or waiting for a retry."""
    try:
        job = Job.fetch(job_id, connection=get_connection())
    except Exception:  # rq raises NoSuchJobError; a missing hash means not alive
        return False
    return job.get_status(refresh=False) in _ALIVE


# Reconcilers: each feature registers how to find its pending rows and which job handles them.
Reconciler = Callable[[], int]
RECONCILERS: dict[str, Reconciler] = {}


def reconciler(name: str) -> Callable[[Reconciler], Reconciler]:
    def register(fn: Reconciler) -> Reconciler:
        RECONCILERS[name] = fn
        return fn
    return register


def reconcile() -> dict[str, int]:
    """Periodic job: give every feature the chance to enqueue what was not enqueued."""
    return {name: fn() for name, fn in RECONCILERS.items()}
