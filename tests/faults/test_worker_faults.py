"""The erasure pipeline keeps its promises with a real forking worker and a real Redis when
the work horse is SIGKILLed mid-step, when Redis is down at approval, and when a job runs twice.

These tests write committed rows (a worker process cannot see a rolled-back test transaction),
so they are marked `faults` (the root `_isolation` fixture leaves them alone), run only on
PostgreSQL, and delete every row they created afterwards.
"""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from rq import Worker
from rq.job import Job, JobStatus

from portal import jobs
from portal.audit import AuditEvent
from portal.auth.models import AccountStatus, User
from portal.billing.models import Organisation, OrganisationKind, UsageEvent
from portal.db import Base, db
from portal.mail.models import MailMessage, MailStatus
from portal.retention import services
from portal.retention.models import ErasureCase, ErasureReason, ErasureStep
from portal.storage import StoredBlob, put_blob
from portal.texts.models import Text, TextKind
from tests.conftest import REDIS_TEST_URL, free_port, make_user

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
EMAIL = "raderas.snart@example.se"
NAME = "Rut Raderasson"
WAIT = 40.0


# --- fixtures -----------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pg_url(database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("fault tests need PostgreSQL: a worker process must see committed rows "
                    "while this process holds them (SQLite would serialise on its write lock)")
    return database_url


@pytest.fixture
def committed(app, pg_url):
    """Committed rows for the worker to see; every row created here is deleted afterwards."""
    import portal.models  # noqa: F401  (every table)

    tables = [t for t in Base.metadata.sorted_tables if "id" in t.columns]
    with db.engine.connect() as conn:
        baseline = {t.name: conn.scalar(sa.select(sa.func.coalesce(sa.func.max(t.c.id), 0)))
                    for t in tables}
    redis.Redis.from_url(REDIS_TEST_URL).flushdb()
    yield
    db.session.remove()
    with db.engine.begin() as conn:
        for table in reversed(tables):
            conn.execute(table.delete().where(table.c.id > baseline[table.name]))
    redis.Redis.from_url(REDIS_TEST_URL).flushdb()


def person(app) -> int:
    """A committed user with texts, an upload, usage and a sent message."""
    with app.app_context():
        org = Organisation(name="Fackförbundet Test", kind=OrganisationKind.FACKFORBUND)
        db.session.add(org)
        db.session.flush()
        user = make_user(email=EMAIL, name=NAME)
        user.organisation_id, user.phone = org.id, "+46701234567"
        for i in range(3):
            db.session.add(Text(user_id=user.id, title=f"Brev {i} av {NAME}",
                                kind=TextKind.PERSONLIGT_BREV, body="Hej!"))
            db.session.add(UsageEvent(user_id=user.id, organisation_id=org.id))
        put_blob(b"ID-kopia", "id_copy", user.id)
        db.session.commit()
        return user.id


def worker_env(database_url: str, smtp_port: int, redis_url: str, **extra) -> dict:
    return {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis_url,
            "MAIL_BACKEND": "smtp", "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port),
            "SMTP_SECURITY": "none", "PORTAL_BASE_URL": "http://portal.test",
            "SECRET_KEY": "test-secret-key", "PORTAL_INSTANCE": os.environ["PORTAL_INSTANCE"],
            **extra}


class RunningWorker:
    """A real `python worker.py` (forks a work horse per job) until stop()."""

    def __init__(self, env: dict, redis_url: str):
        self.log_path = Path(os.environ["PORTAL_INSTANCE"]) / f"fault-{uuid.uuid4().hex[:6]}.log"
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "worker.py"], cwd=ROOT, env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        conn = redis.Redis.from_url(redis_url)
        wait_for(lambda: any(w.pid == self.proc.pid for w in Worker.all(connection=conn))
                 or self._exited(), "the worker to register")

    def _exited(self) -> bool:
        if self.proc.poll() is not None:
            pytest.fail(f"worker exited with {self.proc.returncode}:\n{self.output()}")
        return False

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def horse_pid(self) -> int | None:
        """The forked work horse: a child of the worker that leads its own process group."""
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid, pgrp = (int(x) for x in stat.rsplit(")", 1)[1].split()[1:3])
            if ppid == self.proc.pid and pgrp == int(entry):
                return int(entry)
        return None

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.log.close()


@pytest.fixture
def workers(pg_url, smtp_server):
    started: list[RunningWorker] = []

    def start(redis_url: str = REDIS_TEST_URL, **extra) -> RunningWorker:
        worker = RunningWorker(worker_env(pg_url, smtp_server.port, redis_url, **extra),
                               redis_url)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


class ThrowawayRedis:
    """A private redis-server on a free port (never the machine's 6379), started and stopped
    by the test; it keeps nothing on disk."""

    def __init__(self):
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [shutil.which("redis-server") or "/usr/bin/redis-server", "--port", str(self.port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        conn = redis.Redis.from_url(self.url, socket_connect_timeout=0.2)
        wait_for(lambda: _pings(conn), "the throwaway Redis to answer")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)
        self.proc = None


def _pings(conn) -> bool:
    try:
        return conn.ping()
    except redis.RedisError:
        return False


@pytest.fixture
def throwaway_redis():
    if not (shutil.which("redis-server") or Path("/usr/bin/redis-server").exists()):
        pytest.skip("redis-server is not installed")
    server = ThrowawayRedis()
    yield server
    server.stop()


# --- helpers ------------------------------------------------------------------------------

def wait_for(condition, what: str, timeout: float = WAIT):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def fresh(app, fn):
    """Run `fn()` in a new app context against committed data."""
    with app.app_context():
        try:
            return fn()
        finally:
            db.session.expunge_all()  # keep what was loaded, detached
            db.session.rollback()


def case_of(app, user_id: int) -> ErasureCase | None:
    return fresh(app, lambda: db.session.scalar(
        sa.select(ErasureCase).where(ErasureCase.user_id == user_id)))


def case_by_id(app, case_id: int) -> ErasureCase:
    return fresh(app, lambda: db.session.get(ErasureCase, case_id))


def confirmation_status(app, case_id: int) -> MailStatus | None:
    def check():
        case = db.session.get(ErasureCase, case_id)
        row = db.session.get(MailMessage, case.confirmation_mail_id) \
            if case.confirmation_mail_id else None
        return row.status if row else None
    return fresh(app, check)


def mails_to(outbox, address: str) -> list:
    return [m for m in outbox if m["To"].addresses[0].addr_spec == address]


def assert_erased(app, user_id: int, case_id: int) -> None:
    def check():
        case = db.session.get(ErasureCase, case_id)
        assert case.step == ErasureStep.PSEUDONYMISED
        user = db.session.get(User, user_id)
        assert user.status == AccountStatus.PSEUDONYMISED and user.name == case.pseudonym
        assert EMAIL not in user.email and user.phone is None
        for model in (Text, StoredBlob):
            assert db.session.scalar(sa.select(sa.func.count()).select_from(model)
                                     .where(model.user_id == user_id)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(UsageEvent)
                                 .where(UsageEvent.user_id == user_id)) == 3
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent).where(
            AuditEvent.action == "erasure.pseudonymised",
            AuditEvent.subject_id == user_id)) == 1
        assert db.session.scalar(sa.select(sa.func.count()).select_from(MailMessage).where(
            MailMessage.template == "erasure_confirmed")) == 1
    fresh(app, check)


def redis_back_and_reconciled(app, throwaway_redis, workers, outbox, user_id: int,
                              case_id: int) -> None:
    """Redis returns empty (nothing was enqueued while it was down); a worker starts; the
    reconciler enqueues the erasure's step and the worker completes it, with one mail."""
    throwaway_redis.start()
    assert redis.Redis.from_url(throwaway_redis.url).dbsize() == 0
    workers(redis_url=throwaway_redis.url)
    reconciled_to_completion(app, outbox, user_id, case_id)


def reconciled_to_completion(app, outbox, user_id: int, case_id: int) -> None:
    """The reconciler enqueues the erasure's step (no live job holds it), a running worker
    completes it, and the person gets exactly one confirmation."""
    with app.app_context():
        assert jobs.reconcile()["erasure"] == 1
    wait_for(lambda: case_by_id(app, case_id).step == ErasureStep.PSEUDONYMISED,
             "the reconciled erasure step to complete")
    wait_for(lambda: confirmation_status(app, case_id) == MailStatus.SENT,
             "the confirmation to be sent")
    assert_erased(app, user_id, case_id)
    assert len(mails_to(outbox, EMAIL)) == 1


def in_pause(app) -> bool:
    """A backend sits idle inside its transaction right after deleting the user's texts:
    the work horse is in the middle of the step (the test pause)."""
    return bool(fresh(app, lambda: db.session.scalar(sa.text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
        "AND state = 'idle in transaction' AND query LIKE 'DELETE FROM texts%'"))))


# --- the scenarios ------------------------------------------------------------------------

def test_sigkill_mid_erasure_then_a_new_worker_completes_it_with_one_mail(
        app, committed, workers, outbox):
    user_id = person(app)
    with app.app_context():
        case_id = services.start_erasure(user_id, ErasureReason.REQUEST).id
        db.session.commit()
    job_id = services.erasure_job_id(case_id, ErasureStep.APPROVED)
    first = workers(PORTAL_TEST_ERASURE_PAUSE="60")
    wait_for(lambda: in_pause(app), "the work horse to be in the middle of the step")
    horse = first.horse_pid()
    assert horse is not None, first.output()
    os.kill(horse, signal.SIGKILL)
    conn = redis.Redis.from_url(REDIS_TEST_URL)
    wait_for(lambda: Job.fetch(job_id, connection=conn).get_status() == JobStatus.FAILED,
             "the worker to record the dead horse's job as failed")
    # Nothing of the half-done step was committed.
    case = case_by_id(app, case_id)
    assert case.step == ErasureStep.APPROVED and case.confirmation_mail_id is None
    assert fresh(app, lambda: db.session.get(User, user_id).name) == NAME
    assert fresh(app, lambda: db.session.scalar(sa.select(sa.func.count()).select_from(Text)
                                                .where(Text.user_id == user_id))) == 3
    first.stop()

    workers()  # a new worker, without the pause; the failed job is not alive: enqueue again
    reconciled_to_completion(app, outbox, user_id, case_id)
    with app.app_context():
        jobs.reconcile()
    assert fresh(app, lambda: db.session.get(
        MailMessage, case_by_id(app, case_id).confirmation_mail_id).to_addr) == ""


def test_redis_down_at_approval_then_the_reconciler_finishes_it(
        app, committed, workers, outbox, throwaway_redis):
    from flask.testing import FlaskCliRunner

    from portal.retention.cli import erase_account_cmd

    user_id = person(app)
    throwaway_redis.start()
    throwaway_redis.stop()  # Redis is down when the erasure is approved
    real_url = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = throwaway_redis.url
    app.extensions.pop("portal_redis", None)
    try:
        started = time.monotonic()
        result = FlaskCliRunner(app).invoke(erase_account_cmd, [EMAIL, "--yes"])
        elapsed = time.monotonic() - started
        assert result.exit_code == 0, result.output
        assert "avstämningen" in result.output and elapsed < 3.0
        case = case_of(app, user_id)
        assert case is not None and case.step == ErasureStep.APPROVED  # the approval is saved

        redis_back_and_reconciled(app, throwaway_redis, workers, outbox, user_id, case.id)
    finally:
        app.config["REDIS_URL"] = real_url
        app.extensions.pop("portal_redis", None)


def test_redis_down_while_the_dpo_approves_the_page_says_queued_and_it_is_finished_later(
        app, committed, workers, outbox, throwaway_redis, client):
    """The DPO approves an erasure request through the console while Redis is down: the
    approval is saved, the page says the erasure is queued (no error), and once Redis is back
    the reconciler and a real worker finish it, with one confirmation mail."""
    from tests.conftest import login_dpo
    from tests.test_dpo import make_request

    from portal.requests.models import RequestStatus, RightsRequest

    user_id = person(app)
    dpo_email = "dso.fel@cowrite.se"
    with app.app_context():
        make_user(dpo_email, name="Dag Dso", role="dpo")
    request_id = make_request(app, user_id)
    assert login_dpo(client, dpo_email).status_code == 302
    review = f"/dso/begaranden/{request_id}"
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"',
                      client.get(review).get_data(as_text=True)).group(1)

    throwaway_redis.start()
    throwaway_redis.stop()  # Redis is down when the DPO presses "approve"
    real_url = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = throwaway_redis.url
    app.extensions.pop("portal_redis", None)
    try:
        started = time.monotonic()
        response = client.post(f"{review}/bevilja", data={"csrf_token": token},
                               follow_redirects=True)
        elapsed = time.monotonic() - started
        page = response.get_data(as_text=True)
        assert response.status_code == 200 and elapsed < 5.0
        assert "Raderingen är köad" in page and "kön inte kan nås" in page, page
        assert "(köad)" in page  # the erasure section of the review page
        with app.app_context():
            assert db.session.get(RightsRequest, request_id).status == RequestStatus.APPROVED
        case = case_of(app, user_id)
        assert case is not None and case.step == ErasureStep.APPROVED  # saved, not yet run

        redis_back_and_reconciled(app, throwaway_redis, workers, outbox, user_id, case.id)
        page = client.get(review).get_data(as_text=True)
        assert "(köad)" not in page and "Avidentifierad" in page
    finally:
        app.config["REDIS_URL"] = real_url
        app.extensions.pop("portal_redis", None)


def test_the_same_erasure_enqueued_twice_runs_once_with_two_workers(
        app, committed, workers, outbox):
    user_id = person(app)
    # Two idle workers: each takes one of the two jobs at the same moment, and the case's row
    # lock makes the second wait for the first (which pauses a second inside the step).
    workers(PORTAL_TEST_ERASURE_PAUSE="1")
    workers(PORTAL_TEST_ERASURE_PAUSE="1")
    with app.app_context():
        case_id = services.start_erasure(user_id, ErasureReason.REQUEST).id
        db.session.commit()  # enqueues erasure-<id>-approved
        assert jobs.enqueue("portal.retention.tasks.run_erasure_step", case_id,
                            job_id=f"erasure-{case_id}-approved-again")
    conn = redis.Redis.from_url(REDIS_TEST_URL)
    finished = []
    for job_id in (f"erasure-{case_id}-approved", f"erasure-{case_id}-approved-again"):
        finished.append(wait_for(lambda: (job := Job.fetch(job_id, connection=conn))
                                 .get_status() == JobStatus.FINISHED and job,
                                 f"job {job_id} to finish"))
    assert sorted(job.return_value() for job in finished) == ["pseudonymised", "skipped"]
    assert finished[0].worker_name != finished[1].worker_name  # really at the same time
    wait_for(lambda: confirmation_status(app, case_id) == MailStatus.SENT,
             "the confirmation to be sent")
    assert_erased(app, user_id, case_id)
    time.sleep(0.5)  # a second message, if there were one, would have arrived by now
    assert len(mails_to(outbox, EMAIL)) == 1


def test_the_worker_outlives_a_redis_outage_and_works_after_it(
        app, committed, workers, outbox, throwaway_redis):
    """Redis goes away under a running `python worker.py` and comes back (empty, as this
    machine's Redis keeps nothing on disk): the same process waits, registers again and runs
    the next job; nothing needs restarting."""
    throwaway_redis.start()
    worker = workers(redis_url=throwaway_redis.url)
    throwaway_redis.stop()
    time.sleep(3)  # long enough for the worker to notice (it polls the queue)
    assert worker.proc.poll() is None, worker.output()
    throwaway_redis.start()
    conn = redis.Redis.from_url(throwaway_redis.url)
    wait_for(lambda: any(w.pid == worker.proc.pid for w in Worker.all(connection=conn)),
             "the same worker process to register again")

    user_id = person(app)
    real_url = app.config["REDIS_URL"]
    app.config["REDIS_URL"] = throwaway_redis.url
    app.extensions.pop("portal_redis", None)
    try:
        with app.app_context():
            services.start_erasure(user_id, ErasureReason.ADMIN)
            db.session.commit()  # enqueues the first step on the restarted Redis
        case = case_of(app, user_id)
        wait_for(lambda: case_by_id(app, case.id).step == ErasureStep.PSEUDONYMISED,
                 "the worker to run a job after the outage")
        assert worker.proc.poll() is None
    finally:
        app.config["REDIS_URL"] = real_url
        app.extensions.pop("portal_redis", None)
