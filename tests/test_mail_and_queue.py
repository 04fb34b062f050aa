"""Mail through the queue: SMTP and file backends, retries, Redis outages, the reconciler."""
import subprocess
import sys
import time
from datetime import timedelta
from email import message_from_bytes, policy
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
import time_machine

from portal import jobs
from portal.clock import now
from portal.db import db
from portal.mail.models import MailMessage, MailStatus
from portal.mail.services import queue_mail
from tests.conftest import REDIS_TEST_URL, make_user, post_form, redis_contents, run_jobs


def queue_one(**extra):
    msg = queue_mail("reset_password", to_addr="anna@example.se", to_name="Anna Ö. Andersson",
                     locale="sv", name="Anna", link="http://portal.test/l/x", minutes=60,
                     **extra)
    db.session.commit()
    return msg


def test_message_is_multipart_swedish_and_headers_are_safe(ctx, outbox):
    queue_one()
    run_jobs()
    (message,) = outbox
    assert message["Subject"] == "Välj ett nytt lösenord"
    assert message["To"].addresses[0].display_name == "Anna Ö. Andersson"
    assert message.get_body(("plain",)).get_content().startswith("Hej Anna!")
    assert "<html lang=\"sv\">" in message.get_body(("html",)).get_content()
    assert message["Message-ID"] and message["Date"]


def test_english_locale_gives_english_mail(ctx, outbox):
    queue_mail("reset_password", to_addr="anna@example.se", locale="en", name="Anna",
               link="http://portal.test/l/x", minutes=60)
    db.session.commit()
    run_jobs()
    assert outbox[0]["Subject"] == "Choose a new password"


def test_sent_message_keeps_the_record_not_the_content(ctx, outbox):
    msg = queue_one()
    run_jobs()
    db.session.expire_all()
    row = db.session.get(MailMessage, msg.id)
    assert row.status == MailStatus.SENT and row.sent_at is not None
    assert row.body_text == "" and row.body_html == ""


def test_delivery_is_idempotent(ctx, outbox):
    from portal.mail.tasks import deliver

    msg = queue_one()
    assert deliver(msg.id) == "sent"
    assert deliver(msg.id) == "skipped"
    run_jobs()
    assert len(outbox) == 1


def test_smtp_failure_is_retried_and_keeps_no_address_in_the_error(app, ctx):
    from portal.mail.tasks import DeliveryError, deliver

    msg = queue_one()
    app.config["SMTP_PORT"], port = 1, app.config["SMTP_PORT"]
    try:
        with pytest.raises(DeliveryError) as info:
            deliver(msg.id)
    finally:
        app.config["SMTP_PORT"] = port
    assert "anna" not in str(info.value)
    row = db.session.get(MailMessage, msg.id)
    assert row.status == MailStatus.PENDING and row.attempts == 1
    assert row.last_error == "ConnectionRefusedError"


def test_file_backend_writes_one_eml_per_message(app, ctx, tmp_path):
    from portal.mail.tasks import deliver

    app.config.update(MAIL_BACKEND="file", MAIL_OUTBOX=str(tmp_path))
    try:
        deliver(queue_one().id)
    finally:
        app.config["MAIL_BACKEND"] = "smtp"
    (path,) = tmp_path.glob("*.eml")
    assert path.stat().st_mode & 0o077 == 0
    parsed = message_from_bytes(path.read_bytes(), policy=policy.default)
    assert parsed["Subject"] == "Välj ett nytt lösenord"


def test_web_request_does_not_hang_when_redis_is_down(app, client, outbox):
    """The action is saved; the reconciler enqueues it when Redis is back."""
    make_user()
    app.config["REDIS_URL"], real = "redis://127.0.0.1:1/0", app.config["REDIS_URL"]
    app.extensions.pop("portal_redis", None)
    try:
        started = time.monotonic()
        response = post_form(client, "/glomt-losenord", {"email": "anna@example.se"})
        elapsed = time.monotonic() - started
    finally:
        app.config["REDIS_URL"] = real
        app.extensions.pop("portal_redis", None)
    assert response.status_code == 200 and elapsed < 2.0
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(MailMessage)) == 1
        assert run_jobs() == 0  # nothing reached the queue
        assert jobs.reconcile()["mail"] == 0  # too fresh: maybe still on its way
        with time_machine.travel(now() + timedelta(minutes=3)):
            assert jobs.reconcile()["mail"] == 1
            assert jobs.reconcile()["mail"] == 0  # the live job is not enqueued twice
        run_jobs()
    assert len(outbox) == 1


def test_worker_process_runs_jobs_in_app_context(app, ctx, database_url, smtp_server, outbox):
    """The real worker.py (fork per job) delivers a queued message and exits in burst mode."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite: the test transaction holds the database's write lock")
    msg = queue_one()
    # The row must be visible to another process: write a copy outside the test transaction
    # (a new id, so nothing waits on the test transaction's locks) and enqueue that one.
    engine = sa.create_engine(db.engine.url)
    row = {c.name: getattr(msg, c.key) for c in MailMessage.__table__.columns if c.name != "id"}
    with engine.begin() as conn:
        copy_id = conn.execute(sa.insert(MailMessage.__table__).values(**row)
                               .returning(MailMessage.id)).scalar_one()
    redis.Redis.from_url(REDIS_TEST_URL).flushdb()
    assert jobs.enqueue("portal.mail.tasks.deliver", copy_id, job_id=f"mail-{copy_id}")
    try:
        env = {"DATABASE_URL": database_url, "REDIS_URL": REDIS_TEST_URL,
               "MAIL_BACKEND": "smtp", "SMTP_HOST": "127.0.0.1",
               "SMTP_PORT": str(smtp_server.port), "SMTP_SECURITY": "none",
               "PATH": "/usr/bin:/bin"}
        import os
        env["PORTAL_INSTANCE"] = os.environ["PORTAL_INSTANCE"]
        subprocess.run([sys.executable, "worker.py", "--burst"], env=env, timeout=60,
                       cwd=Path(__file__).resolve().parent.parent, check=True,
                       capture_output=True)
        assert len(outbox) == 1 and outbox[0]["Subject"] == "Välj ett nytt lösenord"
        with engine.connect() as conn:
            status = conn.scalar(sa.select(MailMessage.status).where(MailMessage.id == copy_id))
        assert status == MailStatus.SENT
    finally:
        with engine.begin() as conn:
            conn.execute(sa.delete(MailMessage.__table__).where(MailMessage.id == copy_id))
        engine.dispose()
        redis.Redis.from_url(REDIS_TEST_URL).flushdb()


def test_redis_holds_ids_only_never_addresses_or_names(app, client):
    """Queued, finished and failed jobs, and rate-limit keys: no e-mail address, no name."""

    make_user(email="hemlig.person@example.se", name="Hemlig Persson")
    post_form(client, "/glomt-losenord", {"email": "hemlig.person@example.se"})
    post_form(client, "/logga-in", {"email": "hemlig.person@example.se", "password": "fel-1234"})
    conn = redis.Redis.from_url(REDIS_TEST_URL)

    def payloads() -> bytes:
        return redis_contents(conn)  # keys, values and decompressed job payloads

    queued = payloads()
    assert b"rq:job:" in queued  # something is really there to inspect
    app.config["SMTP_PORT"], port = 1, app.config["SMTP_PORT"]
    try:
        with app.app_context():
            run_jobs()  # the delivery fails: a failed job with its (sanitised) traceback
    finally:
        app.config["SMTP_PORT"] = port
    from rq.job import Job

    with app.app_context():
        assert jobs.enqueue("tests.test_mail_and_queue.fail_loudly", 7, job_id="loud-7")
        run_jobs()
    kept = Job.fetch("loud-7", connection=conn).latest_result().exc_string
    assert "ValueError" in kept and "fail_loudly" in kept  # the type and the place ...
    assert "hemlig" not in kept  # ... never the message
    everything = queued + payloads()
    for secret in (b"hemlig", b"Hemlig", b"Persson", "hemlig.person@example.se".encode()):
        assert secret not in everything


def fail_loudly(user_id: int) -> None:
    """A job whose exception message carries personal data (as careless code might)."""
    raise ValueError("could not reach hemlig.person@example.se (Hemlig Persson)")
