"""Storage limitation with a frozen clock: erasure (day 0, 30, 60) and 6-month inactivity."""
from __future__ import annotations

import re
import zlib
from datetime import datetime, timedelta, timezone

import pytest
import redis
import sqlalchemy as sa
from rq import Queue
import time_machine
from rq.job import Job
from babel.dates import format_date
from dateutil.relativedelta import relativedelta

from portal import jobs
from portal.audit import AuditEvent
from portal.auth.models import (AccountStatus, AuthSession, LinkToken, LoginEvent, TokenPurpose,
                                User)
from portal.billing.models import Organisation, OrganisationKind, UsageEvent
from portal.clock import STOCKHOLM, now
from portal.coach.models import CoachLink, CoachRead, LinkStatus
from portal.consent.models import ConsentEvent, ConsentSource, Purpose
from portal.db import Base, db
from portal.mail.models import MailMessage, MailStatus
from portal.mail.services import queue_mail
from portal.retention import services
from portal.retention.models import ErasureCase, ErasureReason, ErasureStep
from portal.retention.tasks import (erase_inactive_batch, inactivity_sweep, run_erasure_step,
                                    warn_inactive_batch)
from portal.storage import StoredBlob, put_blob
from portal.texts.models import Text, TextKind
from tests.conftest import (_APP, REDIS_TEST_URL, links_in, login, login_dpo, make_user, post_form,
                            redis_contents, run_jobs)


EMAIL = "hemlig.person@example.se"
NAME = "Hemlig Persson"
PASSWORD = "ett-bra-losenord-42"
START = datetime(2026, 1, 12, 9, 0, tzinfo=timezone.utc)


def swedish_day(moment: datetime) -> str:
    return format_date(moment.astimezone(STOCKHOLM), "long", locale="sv")


def count(model, *where) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(model).where(*where))


def case_of(user_id: int) -> ErasureCase:
    db.session.expire_all()
    return db.session.scalar(sa.select(ErasureCase).where(ErasureCase.user_id == user_id))


def rows_holding(*needles: str) -> list[str]:
    """Every (table.column) whose text (or JSON) holds one of `needles`, case-insensitively."""
    import portal.models  # noqa: F401  (every table)

    found = []
    for table in Base.metadata.sorted_tables:
        for column in table.columns:
            if not isinstance(column.type, (sa.String, sa.Text, sa.JSON, sa.Enum)):
                continue
            text = sa.func.lower(sa.cast(column, sa.Text))
            for needle in needles:
                hits = db.session.scalar(sa.select(sa.func.count()).select_from(table)
                                         .where(text.contains(needle.lower())))
                if hits:
                    found.append(f"{table.name}.{column.name} ({needle})")
    return found


def redis_dump() -> bytes:
    return redis_contents(redis.Redis.from_url(REDIS_TEST_URL))


@pytest.fixture
def person(app):
    """A user with something in every table an erasure touches (no job coach)."""
    with app.app_context():
        return _person()


def _person() -> dict:
    org = Organisation(name="Rusta Väst AB", org_number="5560160680",
                       kind=OrganisationKind.MATCHNINGSFORETAG)
    db.session.add(org)
    db.session.flush()
    user = make_user(email=EMAIL, name=NAME)
    user.phone, user.org_number, user.organisation_id = "+46701234567", "5560160680", org.id
    db.session.add_all([
        Text(user_id=user.id, title="Brev till Hemlig AB", kind=TextKind.PERSONLIGT_BREV,
             body=f"Med vänliga hälsningar, {NAME}"),
        *[UsageEvent(user_id=user.id, organisation_id=org.id, at=START - timedelta(days=2))
          for _ in range(3)],
        ConsentEvent(user_id=user.id, purpose=Purpose.NEWSLETTER, granted=True,
                     source=ConsentSource.REGISTRATION),
        LoginEvent(user_id=user.id, succeeded=True, ip_prefix="10.0.0.0/24", browser="Firefox"),
    ])
    put_blob(f"ID-kopia för {NAME}".encode(), "id_copy", user.id)
    queue_mail("reset_password", to_addr=EMAIL, to_name=NAME, locale="sv", user_id=user.id,
               name=NAME, link="http://portal.test/l/x", minutes=60)
    db.session.commit()
    run_jobs()  # the earlier message is delivered: a sent row with the address
    return {"user_id": user.id, "org_id": org.id}


def erase(user_id: int, reason=ErasureReason.REQUEST, actor_id=None) -> ErasureCase:
    case = services.start_erasure(user_id, reason, actor_id=actor_id)
    db.session.commit()
    run_jobs()
    return case_of(user_id) or db.session.get(ErasureCase, case.id)


# --- the erasure pipeline ----------------------------------------------------------------------

def test_erasure_day_0_30_60(app, person, outbox, client):
    from portal.billing.services import Month, invoice_basis, organisation_totals, pseudonym_for

    uid, org_id = person["user_id"], person["org_id"]
    month = Month(2026, 1)
    assert login(client, EMAIL, PASSWORD).status_code == 302
    outbox.clear()
    with time_machine.travel(START, tick=False) as clock:
        with app.app_context():
            case = erase(uid)
            # --- day 0: pseudonymised, content gone, one confirmation to the captured address
            assert case.step == ErasureStep.PSEUDONYMISED and case.pseudonymised_at == START
            assert case.due_at == START + timedelta(days=30)
            user = db.session.get(User, uid)
            assert user.status == AccountStatus.PSEUDONYMISED
            assert user.name == case.pseudonym == pseudonym_for(uid)
            assert user.email.endswith("@raderad.invalid") and EMAIL not in user.email
            assert (user.phone, user.org_number, user.password_hash) == (None, None, None)
            for model in (Text, StoredBlob, LinkToken, LoginEvent, AuthSession):
                assert count(model, model.user_id == uid) == 0, model
            assert count(MailMessage, MailMessage.user_id == uid) == 0
            assert count(ConsentEvent, ConsentEvent.user_id == uid) == 1
            assert count(UsageEvent, UsageEvent.user_id == uid) == 3
            (mail,) = outbox
            assert mail["To"].addresses[0].addr_spec == EMAIL
            assert mail["Subject"] == "Ditt konto hos Cowrite raderas"
            body = mail.get_body(("plain",)).get_content()
            assert "Vi har genomfört din begäran" in body and "jobbcoach" not in body
            assert swedish_day(START + timedelta(days=30)) in body
            assert swedish_day(START + timedelta(days=60)) in body
            confirmation = db.session.get(MailMessage, case.confirmation_mail_id)
            assert confirmation.status == MailStatus.SENT and confirmation.to_addr == EMAIL
            jobs.reconcile()  # the address is forgotten once the confirmation is sent
            db.session.expire_all()
            assert db.session.get(MailMessage, case.confirmation_mail_id).to_addr == ""
            org = db.session.get(Organisation, org_id)
            basis = invoice_basis(org, month)
            assert [(row.label, row.events) for row in basis.rows] == [(case.pseudonym, 3)]
        assert client.get("/konto/").status_code == 302  # the session ended
        assert login(app.test_client(), EMAIL, PASSWORD).status_code == 200  # no login

        with app.app_context():
            # --- day 29: nothing is due yet
            clock.move_to(START + timedelta(days=29, hours=23))
            assert jobs.reconcile()["erasure"] == 0
            # --- day 30: the invoicing period closes
            clock.move_to(START + timedelta(days=30, minutes=1))
            assert jobs.reconcile()["erasure"] == 1
            run_jobs()
            case = case_of(uid)
            assert case.step == ErasureStep.INVOICING_CLOSED
            assert case.invoicing_closed_at == START + timedelta(days=30, minutes=1)
            assert case.due_at == START + timedelta(days=60)
            assert db.session.get(User, uid).status == AccountStatus.PSEUDONYMISED
            org = db.session.get(Organisation, org_id)
            assert invoice_basis(org, month).rows[0].label == case.pseudonym

            # --- day 60: everything left is deleted; the organisation's totals stay
            clock.move_to(START + timedelta(days=60, minutes=1))
            assert jobs.reconcile()["erasure"] == 1
            run_jobs()
            db.session.expire_all()
            case = db.session.get(ErasureCase, case.id)
            assert case.step == ErasureStep.DELETED and case.user_id is None
            assert case.deleted_at == START + timedelta(days=60, minutes=1)
            assert db.session.get(User, uid) is None
            assert count(ConsentEvent, ConsentEvent.user_id == uid) == 0
            assert count(UsageEvent, UsageEvent.organisation_id == org_id,
                         UsageEvent.user_id.is_(None)) == 3
            (total,) = organisation_totals(month)
            assert (total.organisation_id, total.events) == (org_id, 3)
            assert invoice_basis(org, month).total == 3
            assert rows_holding(EMAIL, NAME, "Hemlig") == []
            assert jobs.reconcile()["erasure"] == 0
    assert len(outbox) == 1
    dump = redis_dump()
    for secret in (EMAIL.encode(), b"Hemlig", b"Persson"):
        assert secret not in dump


def test_erasure_job_arguments_are_ids_only(ctx, person):
    case = services.start_erasure(person["user_id"], ErasureReason.REQUEST)
    db.session.commit()
    conn = redis.Redis.from_url(REDIS_TEST_URL)
    job = Job.fetch(f"erasure-{case.id}-approved", connection=conn)
    assert job.func_name == "portal.retention.tasks.run_erasure_step"
    assert job.args == (case.id,) and job.kwargs == {}
    data = zlib.decompress(conn.hget(f"rq:job:erasure-{case.id}-approved", "data"))
    assert b"hemlig" not in data.lower() and b"persson" not in data.lower()


def test_the_same_erasure_enqueued_twice_has_one_executions_effects(ctx, person, outbox):
    uid = person["user_id"]
    outbox.clear()
    first = services.start_erasure(uid, ErasureReason.REQUEST)
    again = services.start_erasure(uid, ErasureReason.ADMIN)  # idempotent: the same case
    db.session.commit()
    assert first.id == again.id and again.reason == ErasureReason.REQUEST
    jobs.enqueue("portal.retention.tasks.run_erasure_step", first.id,
                 job_id=f"erasure-{first.id}-approved-again")
    assert run_jobs() == 2
    assert run_erasure_step(first.id) == "skipped"  # and a third time, directly
    assert len(outbox) == 1
    assert count(ErasureCase) == 1
    assert count(AuditEvent, AuditEvent.action == "erasure.pseudonymised") == 1
    assert count(MailMessage, MailMessage.template == "erasure_confirmed") == 1


def test_a_step_that_is_not_due_does_nothing(ctx, person):
    case = erase(person["user_id"])
    assert run_erasure_step(case.id) == "skipped"
    assert case_of(person["user_id"]).step == ErasureStep.PSEUDONYMISED
    assert run_erasure_step(999_999) == "skipped"


def test_a_lost_job_delays_a_step_but_never_skips_it(ctx, person, outbox):
    uid = person["user_id"]
    case = services.start_erasure(uid, ErasureReason.REQUEST)
    db.session.commit()
    redis.Redis.from_url(REDIS_TEST_URL).flushdb()  # the job is lost
    assert run_jobs() == 0
    assert case_of(uid).step == ErasureStep.APPROVED
    assert jobs.reconcile()["erasure"] == 1
    assert jobs.reconcile()["erasure"] == 0  # a live job is not enqueued twice
    run_jobs()
    assert case_of(uid).step == ErasureStep.PSEUDONYMISED
    assert case.id == case_of(uid).id


def test_coach_is_told_and_loses_access_at_day_0(ctx, person, outbox):
    uid = person["user_id"]
    coach = make_user(email="coach@rusta.se", name="Cora Coach", role="coach")
    link = CoachLink(user_id=uid, coach_id=coach.id, coach_email=coach.email,
                     coach_name=coach.name, status=LinkStatus.ACTIVE,
                     invite_expires_at=now() + timedelta(days=14), accepted_at=now())
    db.session.add(link)
    db.session.flush()
    text_id = db.session.scalar(sa.select(Text.id).where(Text.user_id == uid))
    db.session.add(CoachRead(link_id=link.id, user_id=uid, text_id=text_id,
                             text_title="Brev till Hemlig AB"))
    db.session.commit()
    outbox.clear()
    erase(uid)
    db.session.expire_all()
    assert db.session.get(CoachLink, link.id).status == LinkStatus.REVOKED
    assert count(CoachRead, CoachRead.user_id == uid) == 0
    recipients = sorted(m["To"].addresses[0].addr_spec for m in outbox)
    assert recipients == ["coach@rusta.se", EMAIL]
    (confirmation,) = [m for m in outbox if m["To"].addresses[0].addr_spec == EMAIL]
    assert "Din jobbcoach har inte längre åtkomst" in \
        confirmation.get_body(("plain",)).get_content()


def test_no_trace_of_the_person_at_day_60_even_with_a_job_coach(ctx, person):
    uid = person["user_id"]
    coach = make_user(email="coach@rusta.se", name="Cora Coach", role="coach")
    db.session.add(CoachLink(user_id=uid, coach_id=coach.id, coach_email=coach.email,
                             coach_name=coach.name, status=LinkStatus.ACTIVE,
                             invite_expires_at=now() + timedelta(days=14), accepted_at=now()))
    db.session.commit()
    with time_machine.travel(START, tick=False) as clock:
        erase(uid)
        for day in (30, 60):
            clock.move_to(START + timedelta(days=day, minutes=1))
            jobs.reconcile()
            run_jobs()
        db.session.expire_all()
        assert rows_holding(EMAIL, NAME) == []


def test_a_coach_who_is_erased_disappears_from_other_users_links(ctx):
    user = make_user()
    coach = make_user(email="coach@rusta.se", name="Cora Coach", role="coach")
    link = CoachLink(user_id=user.id, coach_id=coach.id, coach_email=coach.email,
                     coach_name=coach.name, status=LinkStatus.REVOKED,
                     invite_expires_at=now(), accepted_at=now(), ended_at=now())
    db.session.add(link)
    db.session.commit()
    erase(coach.id, ErasureReason.ADMIN)
    db.session.expire_all()
    link = db.session.get(CoachLink, link.id)
    assert "coach@rusta.se" not in link.coach_email and link.coach_name.startswith("Pseudonym ")


def test_an_unconfirmed_address_gets_no_confirmation(ctx, outbox):
    user = make_user(email="obekraftad@example.se", verified=False)
    outbox.clear()
    case = erase(user.id, ErasureReason.ADMIN)
    assert case.step == ErasureStep.PSEUDONYMISED and case.confirmation_mail_id is None
    assert outbox == []


def test_an_unsent_confirmation_is_given_up_and_forgotten_at_day_30(app, ctx, person):
    uid = person["user_id"]
    with time_machine.travel(START, tick=False) as clock:
        services.start_erasure(uid, ErasureReason.REQUEST)
        db.session.commit()
        app.config["SMTP_PORT"], port = 1, app.config["SMTP_PORT"]
        try:
            run_jobs()  # the step runs; the confirmation cannot be delivered
        finally:
            app.config["SMTP_PORT"] = port
        case = case_of(uid)
        assert db.session.get(MailMessage, case.confirmation_mail_id).status == \
            MailStatus.PENDING
        redis.Redis.from_url(REDIS_TEST_URL).flushdb()  # its retries never come
        clock.move_to(START + timedelta(days=30, minutes=1))
        run_erasure_step(case.id)
        db.session.expire_all()
        row = db.session.get(MailMessage, case.confirmation_mail_id)
        assert row.status == MailStatus.FAILED and row.to_addr == "" and row.to_name == ""


def test_a_case_survives_when_redis_is_down_and_the_reconciler_runs_it(app, ctx, person):
    uid = person["user_id"]
    app.config["REDIS_URL"], real = "redis://127.0.0.1:1/0", app.config["REDIS_URL"]
    app.extensions.pop("portal_redis", None)
    try:
        case = services.start_erasure(uid, ErasureReason.REQUEST)
        db.session.commit()  # the enqueue after commit fails quietly
    finally:
        app.config["REDIS_URL"] = real
        app.extensions.pop("portal_redis", None)
    assert case_of(uid).step == ErasureStep.APPROVED
    assert run_jobs() == 0
    assert jobs.reconcile()["erasure"] == 1
    run_jobs()
    assert case_of(uid).step == ErasureStep.PSEUDONYMISED and case.id == case_of(uid).id


# --- inactivity --------------------------------------------------------------------------------

SIX = relativedelta(months=6)


@pytest.fixture
def idle(app):
    """A user last active at START (nothing else happens to the account)."""
    with app.app_context():
        user = make_user(email=EMAIL, name=NAME)
        user.last_active_at = user.created_at = START
        db.session.commit()
        return user.id


def sweep_at(moment: datetime) -> dict:
    """The daily sweep at `moment`, then the reconciler and every queued job."""
    with time_machine.travel(moment, tick=False), _APP["app"].app_context():
        result = inactivity_sweep()
        run_jobs()  # the batch jobs
        jobs.reconcile()
        run_jobs()  # the erasure steps the reconciler found due
    return result


def user_row(user_id: int) -> User | None:
    with _APP["app"].app_context():
        return db.session.get(User, user_id)


def db_ctx():
    return _APP["app"].app_context()


def warning_mails(outbox) -> list:
    return [m for m in outbox if m["Subject"].startswith("Ditt konto hos Cowrite raderas den")]


def test_at_five_and_a_half_months_nothing_happens(idle, outbox):
    outbox.clear()
    assert sweep_at(START + relativedelta(months=5, days=15)) == {"warnings": 0, "erasures": 0}
    assert outbox == []
    assert user_row(idle).inactivity_warned_at is None


def test_warning_at_six_months_less_14_days_exactly_once(idle, outbox):
    outbox.clear()
    moment = START + SIX - timedelta(days=14)
    assert sweep_at(moment - timedelta(minutes=1))["warnings"] == 0
    assert sweep_at(moment) == {"warnings": 1, "erasures": 0}
    (mail,) = warning_mails(outbox)
    assert mail["To"].addresses[0].addr_spec == EMAIL
    assert mail["Subject"] == f"Ditt konto hos Cowrite raderas den {swedish_day(START + SIX)}"
    body = mail.get_body(("plain",)).get_content()
    assert "Behåll mitt konto" in body and swedish_day(START) in body
    assert [link for link in links_in(mail) if "/l/" in link]
    assert any(link.endswith("/logga-in") for link in links_in(mail))
    assert user_row(idle).inactivity_warned_at == moment
    for later in (moment, moment + timedelta(days=1), moment + timedelta(days=13)):
        assert sweep_at(later) == {"warnings": 0, "erasures": 0}
    assert len(warning_mails(outbox)) == 1
    with db_ctx():
        assert count(LinkToken, LinkToken.purpose == TokenPurpose.KEEP_ACCOUNT) == 1
        assert count(AuditEvent, AuditEvent.action == "inactivity.warned") == 1


def test_deletion_starts_at_six_months_after_a_warning(idle, outbox):
    sweep_at(START + SIX - timedelta(days=14))
    outbox.clear()
    assert sweep_at(START + SIX - timedelta(minutes=1))["erasures"] == 0
    assert sweep_at(START + SIX) == {"warnings": 0, "erasures": 1}
    with db_ctx():
        case = db.session.scalar(sa.select(ErasureCase))
        assert case.reason == ErasureReason.INACTIVITY
        assert case.step == ErasureStep.PSEUDONYMISED
        assert db.session.get(User, idle).status == AccountStatus.PSEUDONYMISED
    (mail,) = outbox
    assert "har inte använts på sex månader" in mail.get_body(("plain",)).get_content()


def test_no_deletion_without_a_warning_14_days_before(idle, outbox):
    """A sweep that did not run for a while warns first; deletion waits its 14 days."""
    late = START + SIX + timedelta(days=3)
    assert sweep_at(late) == {"warnings": 1, "erasures": 0}
    (mail,) = warning_mails(outbox)
    assert swedish_day(late + timedelta(days=14)) in mail["Subject"]
    assert sweep_at(late + timedelta(days=13))["erasures"] == 0
    assert sweep_at(late + timedelta(days=14))["erasures"] == 1


def test_no_deletion_when_the_warning_mail_was_never_written(idle, outbox):
    moment = START + SIX - timedelta(days=14)
    with time_machine.travel(moment, tick=False), db_ctx():
        assert warn_inactive_batch([idle]) == 1  # the batch job marks the account ...
    redis.Redis.from_url(REDIS_TEST_URL).flushdb()  # ... and the mail job it started is lost
    assert user_row(idle).inactivity_warned_at == moment
    assert sweep_at(START + SIX + timedelta(days=1))["erasures"] == 0  # the mail comes first
    assert len(warning_mails(outbox)) == 1
    assert sweep_at(START + SIX + timedelta(days=14))["erasures"] == 0
    assert sweep_at(START + SIX + timedelta(days=15))["erasures"] == 1


@pytest.mark.parametrize("activity", ["login_and_request", "login_only"])
def test_activity_between_warning_and_deletion_cancels_it(app, idle, outbox, activity):
    sweep_at(START + SIX - timedelta(days=14))
    back = START + SIX - timedelta(days=7)
    client = app.test_client()
    with time_machine.travel(back, tick=False):
        assert login(client, EMAIL, PASSWORD).status_code == 302
        if activity == "login_and_request":
            assert client.get("/konto/").status_code == 200
    user = user_row(idle)
    assert user.last_active_at == back
    assert (user.inactivity_warned_at is None) == (activity == "login_and_request")
    assert sweep_at(START + SIX)["erasures"] == 0
    assert sweep_at(START + SIX + timedelta(days=30))["erasures"] == 0
    assert user_row(idle).status == AccountStatus.ACTIVE
    # a new period: a new warning 6 months − 14 days after the return, then deletion
    outbox.clear()
    assert sweep_at(back + SIX - timedelta(days=14))["warnings"] == 1
    assert len(warning_mails(outbox)) == 1
    assert sweep_at(back + SIX)["erasures"] == 1


def test_an_inactive_user_who_returns_before_the_first_step_is_not_erased(app, idle, outbox):
    sweep_at(START + SIX - timedelta(days=14))
    with time_machine.travel(START + SIX, tick=False):
        with db_ctx():
            assert inactivity_sweep()["erasures"] == 1
            redis.Redis.from_url(REDIS_TEST_URL).flushdb()
            assert erase_inactive_batch([idle]) == 1  # the case exists; no step ran yet
            assert len(Queue("default", connection=jobs.get_connection())) == 0
        client = app.test_client()
        assert login(client, EMAIL, PASSWORD).status_code == 302
        assert client.get("/konto/").status_code == 200
        with db_ctx():
            jobs.reconcile()
            run_jobs()
            assert db.session.scalar(sa.select(ErasureCase)) is None
            user = db.session.get(User, idle)
            assert user.status == AccountStatus.ACTIVE and user.name == NAME
            assert count(AuditEvent, AuditEvent.action == "erasure.cancelled") == 1


def keep_link(outbox) -> str:
    (mail,) = warning_mails(outbox)
    (link,) = [link for link in links_in(mail) if "/l/" in link]
    return link.replace("http://portal.test", "")


def test_the_keep_link_keeps_the_account_without_login_once(app, idle, outbox):
    sweep_at(START + SIX - timedelta(days=14))
    path = keep_link(outbox)
    client = app.test_client()
    with time_machine.travel(START + SIX - timedelta(days=3), tick=False):
        response = client.get(path)
        assert response.status_code == 302 and response.headers["Location"] == "/behall-konto"
        page = client.get("/behall-konto").get_data(as_text=True)
        assert "Vill du behålla ditt konto?" in page and swedish_day(START + SIX) in page
        assert user_row(idle).inactivity_warned_at is not None  # a GET keeps nothing
        response = post_form(client, "/behall-konto", {})
        assert response.status_code == 302
        assert response.headers["Location"] == "/behall-konto/klart"
        assert "Ditt konto finns kvar" in client.get("/behall-konto/klart").get_data(as_text=True)
        assert client.get("/behall-konto/klart").status_code == 302  # shown once
        again = app.test_client().get(path)
        assert again.status_code == 410
        assert "Länken har redan använts" in again.get_data(as_text=True)
    user = user_row(idle)
    assert user.inactivity_warned_at is None
    assert user.last_active_at == START + SIX - timedelta(days=3)
    assert sweep_at(START + SIX + timedelta(days=1))["erasures"] == 0
    with db_ctx():
        assert count(AuditEvent, AuditEvent.action == "inactivity.kept") == 1


def test_a_mail_scanner_following_the_link_keeps_nothing(app, idle, outbox):
    sweep_at(START + SIX - timedelta(days=14))
    with time_machine.travel(START + SIX - timedelta(days=3), tick=False):
        scanner = app.test_client()
        assert scanner.get(keep_link(outbox), follow_redirects=True).status_code == 200
    assert sweep_at(START + SIX)["erasures"] == 1


def test_keep_link_problems_are_explained_in_swedish(app, idle, outbox):
    sweep_at(START + SIX - timedelta(days=14))
    path = keep_link(outbox)
    with time_machine.travel(START + SIX + timedelta(minutes=1), tick=False):
        expired = app.test_client().get(path)
    assert expired.status_code == 410
    text = expired.get_data(as_text=True)
    assert "Länken har gått ut" in text and "behålla det genom att logga in" in text
    unknown = app.test_client().get("/l/" + "x" * 43)
    assert unknown.status_code == 404
    assert app.test_client().get("/behall-konto").status_code == 302  # nothing pending


def test_keep_link_after_the_erasure_started_is_refused(app, idle, outbox):
    sweep_at(START + SIX - timedelta(days=14))
    client = app.test_client()
    with time_machine.travel(START + SIX - timedelta(days=1), tick=False):
        client.get(keep_link(outbox))
        with db_ctx():
            services.start_erasure(idle, ErasureReason.REQUEST)
            db.session.commit()
        response = post_form(client, "/behall-konto", {}, form_path="/behall-konto")
    assert response.status_code == 410
    assert "raderingen redan har börjat" in response.get_data(as_text=True)
    assert user_row(idle).status == AccountStatus.ERASURE_PENDING


def test_keep_form_without_csrf_changes_nothing(app, idle, outbox):
    sweep_at(START + SIX - timedelta(days=14))
    client = app.test_client()
    with time_machine.travel(START + SIX - timedelta(days=3), tick=False):
        client.get(keep_link(outbox))
        response = client.post("/behall-konto", data={})
        assert response.status_code == 400
        assert "Formuläret har gått ut" in response.get_data(as_text=True)
    assert user_row(idle).inactivity_warned_at is not None


def test_only_verified_active_users_are_swept(app, outbox):
    with db_ctx():
        for email, role, verified in (("coach@x.se", "coach", True), ("dso@x.se", "dpo", True),
                                      ("ny@x.se", "user", False)):
            user = make_user(email=email, role=role, verified=verified)
            user.last_active_at = START
        db.session.commit()
    assert sweep_at(START + SIX + timedelta(days=30)) == {"warnings": 0, "erasures": 0}


def test_the_sweep_works_in_batches(ctx, outbox):
    for i in range(7):
        user = make_user(email=f"u{i}@example.se", name=f"Användare {i}")
        user.last_active_at = START + timedelta(minutes=i % 3)  # ties in last_active_at
    db.session.commit()
    with time_machine.travel(START + SIX - timedelta(days=13), tick=False):
        assert inactivity_sweep(batch_size=2) == {"warnings": 7, "erasures": 0}
        assert len(Queue("default", connection=jobs.get_connection())) == 4  # 2+2+2+1 ids
        run_jobs()
    assert len(warning_mails(outbox)) == 7
    with time_machine.travel(START + SIX + timedelta(days=2), tick=False):
        assert inactivity_sweep(batch_size=3) == {"warnings": 0, "erasures": 7}
        assert count(ErasureCase) == 0  # the sweep only reads and hands out batches of ids
        assert run_jobs() == 3
    assert count(ErasureCase, ErasureCase.reason == ErasureReason.INACTIVITY) == 7
    assert count(AuditEvent, AuditEvent.action == "erasure.started") == 3  # one per batch


def test_with_the_queue_down_the_sweep_runs_its_batches_itself(app, idle, outbox):
    moment = START + SIX - timedelta(days=14)
    app.config["REDIS_URL"], real = "redis://127.0.0.1:1/0", app.config["REDIS_URL"]
    app.extensions.pop("portal_redis", None)
    try:
        with time_machine.travel(moment, tick=False), db_ctx():
            assert inactivity_sweep() == {"warnings": 1, "erasures": 0}
    finally:
        app.config["REDIS_URL"] = real
        app.extensions.pop("portal_redis", None)
    assert user_row(idle).inactivity_warned_at == moment  # marked, not skipped
    assert warning_mails(outbox) == []  # the mail job could not be queued either ...
    with time_machine.travel(moment + timedelta(minutes=1), tick=False), db_ctx():
        assert jobs.reconcile()["inactivity"] == 1  # ... so the reconciler starts it
        run_jobs()
    assert len(warning_mails(outbox)) == 1


# --- last_active_at -------------------------------------------------------------------------

def test_last_active_is_written_at_most_once_an_hour(app):
    with db_ctx():
        user_id = make_user().id
    client = app.test_client()

    def stamps():
        with db_ctx():
            user = db.session.get(User, user_id)
            seen = db.session.scalar(sa.select(sa.func.max(AuthSession.last_seen_at))
                                     .where(AuthSession.user_id == user_id))
            return user.last_active_at, seen

    with time_machine.travel(START, tick=False) as clock:
        login(client)
        assert stamps() == (START, START)
        for minutes, expected in ((4, (START, START)), (6, (START, START + timedelta(minutes=6))),
                                  (59, (START, START + timedelta(minutes=59))),
                                  (61, (START + timedelta(minutes=61),
                                        START + timedelta(minutes=59)))):
            clock.move_to(START + timedelta(minutes=minutes))
            assert client.get("/konto/").status_code == 200
            assert stamps() == expected, minutes


# --- the DPO's page and the command -------------------------------------------------------

def test_dpo_sees_every_case_with_step_and_dates(app, person):
    with time_machine.travel(START, tick=False):
        with db_ctx():
            case = erase(person["user_id"])
            make_user(email="dso@cowrite.se", name="Dag DSO", role="dpo")
        client = app.test_client()
        login_dpo(client, "dso@cowrite.se")
        page = client.get("/dso/raderingar")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for expected in ("<h1>Raderingar</h1>", case.pseudonym, "Begäran om radering",
                     "Avidentifierad, faktureringen pågår", "Skickat"):
        assert expected in html
    assert NAME not in html and EMAIL not in html
    assert page.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("role", ["user", "coach"])
def test_only_the_dpo_sees_erasures(app, role):
    with db_ctx():
        make_user(email=f"{role}@x.se", role=role)
    client = app.test_client()
    login(client, f"{role}@x.se")
    assert client.get("/dso/raderingar").status_code == 404
    assert app.test_client().get("/dso/raderingar").status_code == 302


def test_erase_account_command(app, ctx, person):
    from flask.testing import FlaskCliRunner

    from portal.retention.cli import erase_account_cmd

    runner = FlaskCliRunner(app)
    unknown = runner.invoke(erase_account_cmd, ["ingen@example.se", "--yes"])
    assert unknown.exit_code != 0 and "Det finns inget konto" in unknown.output
    refused = runner.invoke(erase_account_cmd, [EMAIL], input="n\n")
    assert refused.exit_code != 0 and count(ErasureCase) == 0
    result = runner.invoke(erase_account_cmd, [EMAIL.upper(), "--yes"])
    assert result.exit_code == 0, result.output
    assert re.search(r"Raderingsärende \d+ för Pseudonym [0-9A-F]{8}", result.output)
    assert case_of(person["user_id"]).reason == ErasureReason.ADMIN
