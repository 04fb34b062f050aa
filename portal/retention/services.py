"""Storage limitation: the erasure pipeline and the inactivity rule (policy §1.4).

Erasure is a state machine in the database (`ErasureCase`): approved → (at once) pseudonymised
→ (day 30) invoicing closed → (day 60) deleted. Each step runs under a row lock in the caller's
transaction and sets the next step with its due time, so a job that dies mid-step leaves
nothing committed and the step simply runs again; a job that runs twice finds the step done.

Inactivity: a daily sweep selects, in keyset batches, the accounts due for a warning (6 months
− 14 days without activity) and those warned at least 14 days ago and still inactive at 6
months; a job per batch of ids then marks the warnings or starts the erasures with one
set-based statement, checking the conditions again. The warning mails themselves are written by a job, one user
per transaction, under the user's row lock (exactly once: the warning's single-use
"keep my account" token is the record that the mail exists).

Functions flush and audit (ids and codes only); the calling job, view or command commits.
"""
from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from dateutil.relativedelta import relativedelta
from flask import current_app
from flask_babel import format_date

from portal import audit
from portal.auth.models import AccountStatus, LinkToken, LoginEvent, Role, TokenPurpose, User
from portal.clock import now
from portal.coach.models import CoachLink, CoachRead
from portal.db import db
from portal.mail.models import MailMessage, MailStatus
from portal.mail.services import queue_mail
from portal.retention.models import ErasureCase, ErasureReason, ErasureStep
from portal.storage import StoredBlob
from portal.texts.models import Text
from portal.urls import external_url

INACTIVITY = relativedelta(months=6)
WARNING_LEAD = timedelta(days=14)
INVOICING_DAYS = timedelta(days=30)   # day 30 after approval: the invoicing period closes
DELETION_DAYS = timedelta(days=60)    # day 60 after approval: everything left is deleted
BATCH_SIZE = 1000
ERASED_DOMAIN = "raderad.invalid"
OPEN_STEPS = (ErasureStep.APPROVED, ErasureStep.PSEUDONYMISED, ErasureStep.INVOICING_CLOSED)
# Tests only (tests/faults): seconds to sleep in the middle of the pseudonymisation step, so a
# fault test can SIGKILL the work horse while the step's transaction is open.
_PAUSE_ENV = "PORTAL_TEST_ERASURE_PAUSE"


def erasure_job_id(case_id: int, step: ErasureStep) -> str:
    return f"erasure-{case_id}-{ErasureStep(step).value}"


def _enqueue_step(case: ErasureCase) -> None:
    from portal import jobs

    jobs.enqueue_after_commit(db.session, "portal.retention.tasks.run_erasure_step", case.id,
                              job_id=erasure_job_id(case.id, case.step))


def _pseudonym(user_id: int) -> str:
    from portal.billing.services import pseudonym_for

    return pseudonym_for(user_id)


# --- starting an erasure ---------------------------------------------------------------------

def case_for_user(user_id: int) -> ErasureCase | None:
    """The erasure case of a user, if one was started."""
    return db.session.scalar(sa.select(ErasureCase).where(ErasureCase.user_id == user_id))


def start_erasure(user_id: int, reason: ErasureReason | str,
                  actor_id: int | None = None) -> ErasureCase:
    """Start erasing an account (idempotent: an existing case is returned unchanged).

    The case is due at once; its first step is enqueued after the caller commits (if Redis is
    down, the reconciler enqueues it later: the row is the record)."""
    existing = case_for_user(user_id)
    if existing is not None:
        return existing
    user = db.session.get(User, user_id)
    if user is None:
        raise LookupError(f"no user {user_id}")
    reason, stamp = ErasureReason(reason), now()
    case = ErasureCase(user_id=user_id, pseudonym=_pseudonym(user_id), reason=reason,
                       step=ErasureStep.APPROVED, due_at=stamp, approved_at=stamp,
                       approved_by=actor_id)
    try:
        with db.session.begin_nested():
            db.session.add(case)
    except sa.exc.IntegrityError:  # started at the same moment elsewhere: that one stands
        return case_for_user(user_id)
    user.status = AccountStatus.ERASURE_PENDING
    audit.record("erasure.started", actor_id=actor_id, subject_id=user_id, case_id=case.id,
                 reason=reason.value)
    _enqueue_step(case)
    return case


# --- running the steps -----------------------------------------------------------------------

def advance_erasure(case_id: int) -> str:
    """Run the case's current step if it is due; return the new step ("skipped" if nothing
    was due, "cancelled" if an inactive user came back before the first step ran).

    Takes the case's row lock first, so two jobs for the same case run one after the other
    and the second finds the step done (not due any more)."""
    case = db.session.get(ErasureCase, case_id, with_for_update=True, populate_existing=True)
    if case is None or case.step == ErasureStep.DELETED or case.due_at > now():
        return "skipped"
    {ErasureStep.APPROVED: _pseudonymise,
     ErasureStep.PSEUDONYMISED: _close_invoicing,
     ErasureStep.INVOICING_CLOSED: _delete_rest}[case.step](case)
    db.session.flush()
    return "cancelled" if sa.inspect(case).was_deleted else case.step.value


def _pause_for_fault_tests() -> None:
    seconds = os.environ.get(_PAUSE_ENV)
    if seconds:
        time.sleep(float(seconds))


def _pseudonymise(case: ErasureCase) -> None:
    """Day 0: end access, delete content, replace identity with the pseudonym, confirm once."""
    stamp = now()
    user = db.session.get(User, case.user_id, with_for_update=True, populate_existing=True) \
        if case.user_id is not None else None
    if user is None:  # nothing left to erase: the case is complete
        _finish(case, stamp)
        return
    if case.reason == ErasureReason.INACTIVITY and _active_since_warning(user):
        _cancel(case, user)
        return
    # Captured before they are replaced: the confirmation goes to this address, then it is
    # forgotten (see forget_confirmation_address).
    address, name, verified = user.email, user.name, user.is_verified
    locale = user.locale or current_app.config["BABEL_DEFAULT_LOCALE"]
    coach_told = _end_access_and_delete_content(user)
    _replace_identity(user, case, address)
    if verified and case.confirmation_mail_id is None:
        case.confirmation_mail_id = _queue_confirmation(case, address, name, locale,
                                                        coach_told).id
    case.pseudonymised_at = stamp
    case.step, case.due_at = ErasureStep.PSEUDONYMISED, case.approved_at + INVOICING_DAYS
    audit.record("erasure.pseudonymised", subject_id=user.id, case_id=case.id,
                 reason=case.reason.value)


def _end_access_and_delete_content(user: User) -> bool:
    """End sessions and coach links, void exports, delete content; True if a coach was told."""
    from portal.auth.services import end_all_sessions
    from portal.coach.services import end_links_for_user
    from portal.exports.services import void_exports

    uid = user.id
    end_all_sessions(user, reason="erasure")
    # The user's own messages go first; notices queued below (to the coach) must be sent.
    db.session.execute(sa.delete(MailMessage).where(MailMessage.user_id == uid))
    coach_told = end_links_for_user(uid, reason="erasure") > 0
    void_exports(uid)
    for model in (CoachRead, Text):
        db.session.execute(sa.delete(model).where(model.user_id == uid))
    _pause_for_fault_tests()
    for model in (StoredBlob, LinkToken, LoginEvent):
        db.session.execute(sa.delete(model).where(model.user_id == uid))
    return coach_told


def _replace_identity(user: User, case: ErasureCase, address: str) -> None:
    """Name, e-mail, phone, organisation number and password give way to the pseudonym."""
    pseudo_email = f"{secrets.token_hex(12)}@{ERASED_DOMAIN}"
    # If the person was a coach, other users' link records name them: pseudonymise those too.
    db.session.execute(
        sa.update(CoachLink)
        .where(sa.or_(CoachLink.coach_id == user.id,
                      sa.func.lower(CoachLink.coach_email) == address))
        .values(coach_email=pseudo_email, coach_name=case.pseudonym)
        .execution_options(synchronize_session=False))
    user.name, user.email = case.pseudonym, pseudo_email
    user.phone = user.org_number = user.password_hash = None
    user.status, user.inactivity_warned_at = AccountStatus.PSEUDONYMISED, None


def _queue_confirmation(case: ErasureCase, address: str, name: str, locale: str,
                        coach_told: bool) -> MailMessage:
    """The one confirmation, to the address captured before it was replaced (user_id None:
    the message belongs to no account; its address is forgotten once it is sent)."""
    return queue_mail("erasure_confirmed", to_addr=address, to_name=name, locale=locale,
                      user_id=None, name=name, reason=case.reason.value, coach_told=coach_told,
                      invoicing_closes=case.approved_at + INVOICING_DAYS,
                      deleted_on=case.approved_at + DELETION_DAYS, format_date=format_date)


def _close_invoicing(case: ErasureCase) -> None:
    """Day 30: the invoicing period closes; the invoice basis keeps showing the pseudonym."""
    case.invoicing_closed_at = now()
    forget_confirmation_address(case, even_if_unsent=True)
    case.step, case.due_at = ErasureStep.INVOICING_CLOSED, case.approved_at + DELETION_DAYS
    audit.record("erasure.invoicing_closed", subject_id=case.user_id, case_id=case.id)


def _delete_rest(case: ErasureCase) -> None:
    """Day 60: delete the account row; usage events stay with the organisation (user_id NULL),
    everything else of the user goes with it (foreign keys cascade)."""
    uid = case.user_id
    if uid is not None:
        db.session.execute(sa.delete(User).where(User.id == uid)
                           .execution_options(synchronize_session="fetch"))
    forget_confirmation_address(case, even_if_unsent=True)
    _finish(case, now())
    audit.record("erasure.deleted", subject_id=uid, case_id=case.id)


def _finish(case: ErasureCase, stamp: datetime) -> None:
    case.user_id = None
    case.deleted_at = stamp
    case.step = ErasureStep.DELETED


def _active_since_warning(user: User) -> bool:
    warned = user.inactivity_warned_at
    return warned is None or user.last_active_at > warned


def _cancel(case: ErasureCase, user: User) -> None:
    """An inactivity erasure whose user came back before it ran: the account stays."""
    audit.record("erasure.cancelled", subject_id=user.id, case_id=case.id, reason="activity")
    if user.status == AccountStatus.ERASURE_PENDING:
        user.status = AccountStatus.ACTIVE
    db.session.delete(case)


def forget_confirmation_address(case: ErasureCase, even_if_unsent: bool = False) -> None:
    """Blank the address, name and content of the case's confirmation once it is sent (or
    given up); at day 30 even an unsent one is given up, so the address never outlives it."""
    if case.confirmation_mail_id is None:
        return
    row = MailMessage.id == case.confirmation_mail_id
    if even_if_unsent:
        db.session.execute(sa.update(MailMessage)
                           .where(row, MailMessage.status == MailStatus.PENDING)
                           .values(status=MailStatus.FAILED, last_error="ErasureClosed")
                           .execution_options(synchronize_session=False))
    db.session.execute(_scrub(row, MailMessage.status.in_((MailStatus.SENT, MailStatus.FAILED))))


def _scrub(*where) -> sa.Update:
    return (sa.update(MailMessage).where(*where, MailMessage.to_addr != "")
            .values(to_addr="", to_name="", body_text="", body_html="")
            .execution_options(synchronize_session=False))


def forget_sent_confirmations() -> int:
    """Set-based: blank every delivered (or failed) confirmation still holding an address."""
    confirmations = (sa.select(ErasureCase.confirmation_mail_id)
                     .where(ErasureCase.step == ErasureStep.PSEUDONYMISED,
                            ErasureCase.confirmation_mail_id.is_not(None)))
    result = db.session.execute(_scrub(
        MailMessage.id.in_(confirmations),
        MailMessage.status.in_((MailStatus.SENT, MailStatus.FAILED))))
    return result.rowcount or 0


def due_erasure_steps(limit: int = BATCH_SIZE) -> list[tuple[int, ErasureStep]]:
    """(case id, step) of open cases whose step is due, oldest first."""
    rows = db.session.execute(
        sa.select(ErasureCase.id, ErasureCase.step)
        .where(ErasureCase.step.in_(OPEN_STEPS), ErasureCase.due_at <= now())
        .order_by(ErasureCase.due_at, ErasureCase.id).limit(limit))
    return [(case_id, ErasureStep(step)) for case_id, step in rows]


# --- inactivity: who is due -------------------------------------------------------------------

def warning_cutoff(stamp: datetime) -> datetime:
    """Accounts last active at or before this are due for the warning: their 6 months end
    within 14 days. (Months are calendar months; at a month's end the boundary errs late.)"""
    return (stamp + WARNING_LEAD) - INACTIVITY


def _eligible():
    return (User.role == Role.USER, User.status == AccountStatus.ACTIVE,
            User.email_verified_at.is_not(None))


def _warning_mail_exists():
    """The warning's keep token is the record that its mail was queued (same transaction)."""
    return sa.exists(sa.select(LinkToken.id).where(
        LinkToken.user_id == User.id, LinkToken.purpose == TokenPurpose.KEEP_ACCOUNT,
        LinkToken.created_at >= User.inactivity_warned_at))


def warning_due(stamp: datetime) -> tuple:
    """Conditions: inactive for 6 months − 14 days and not warned since last active."""
    return (*_eligible(), User.last_active_at <= warning_cutoff(stamp),
            sa.or_(User.inactivity_warned_at.is_(None),
                   User.inactivity_warned_at < User.last_active_at))


def deletion_due(stamp: datetime) -> tuple:
    """Conditions: inactive for 6 months, warned (mail queued) at least 14 days ago, and no
    activity since the warning."""
    return (*_eligible(), User.last_active_at <= stamp - INACTIVITY,
            User.inactivity_warned_at <= stamp - WARNING_LEAD,
            User.inactivity_warned_at >= User.last_active_at, _warning_mail_exists())


def warning_mail_pending(stamp: datetime) -> tuple:
    """Conditions: marked for a warning whose mail has not been written yet."""
    return (*_eligible(), User.last_active_at <= warning_cutoff(stamp),
            User.inactivity_warned_at.is_not(None),
            User.inactivity_warned_at >= User.last_active_at, ~_warning_mail_exists())


def due_id_batches(conditions: tuple, batch_size: int = BATCH_SIZE) -> Iterator[list[int]]:
    """Ids meeting `conditions`, `batch_size` at a time, from one streamed SELECT (a
    server-side cursor on PostgreSQL, so memory stays flat however many accounts there are).
    The caller must not commit while it reads."""
    result = db.session.execute(sa.select(User.id).where(*conditions)
                                .execution_options(yield_per=batch_size))
    for partition in result.scalars().partitions():
        yield list(partition)


def mark_warnings(ids: list[int], stamp: datetime) -> int:
    """Mark those of `ids` still due for the warning (one UPDATE, conditions checked again);
    the mail job writes each mail and re-stamps `inactivity_warned_at` when it is queued."""
    if not ids:
        return 0
    result = db.session.execute(
        sa.update(User).where(User.id.in_(ids), *warning_due(stamp))
        .values(inactivity_warned_at=stamp).execution_options(synchronize_session=False))
    return result.rowcount or 0


def start_inactivity_erasures(ids: list[int], stamp: datetime) -> int:
    """Start erasure for those of `ids` still due for deletion (three statements and one
    audit event per batch). The cases are due at once; the reconciler enqueues their steps
    (within a minute, a bounded number per run)."""
    if not ids:
        return 0
    # An active account has no case (start_erasure sets the status); should one exist anyway,
    # it stands as it is. One lookup per batch, not a correlated check per account.
    existing = set(db.session.scalars(
        sa.select(ErasureCase.user_id).where(ErasureCase.user_id.in_(ids))))
    taken = list(db.session.scalars(
        sa.update(User).where(User.id.in_([i for i in ids if i not in existing]),
                              *deletion_due(stamp))
        .values(status=AccountStatus.ERASURE_PENDING).returning(User.id)
        .execution_options(synchronize_session=False)))
    if taken:
        db.session.execute(sa.insert(ErasureCase), [
            {"user_id": user_id, "pseudonym": _pseudonym(user_id),
             "reason": ErasureReason.INACTIVITY, "step": ErasureStep.APPROVED,
             "due_at": stamp, "approved_at": stamp} for user_id in taken])
        audit.record("erasure.started", reason=ErasureReason.INACTIVITY.value,
                     count=len(taken), subject_ids=sorted(taken))
    return len(taken)


# --- inactivity: the warning mail and the keep link ---------------------------------------

def pending_warning_ids(after_id: int = 0, limit: int = 200) -> list[int]:
    """Ids of accounts marked for a warning whose mail is not written yet (keyset on id)."""
    return list(db.session.scalars(
        sa.select(User.id).where(*warning_mail_pending(now()), User.id > after_id)
        .order_by(User.id).limit(limit)))


def deletion_date(user: User, warned_at: datetime) -> datetime:
    """When an account warned at `warned_at` may be deleted: 6 months after its last
    activity, and never sooner than 14 days after the warning."""
    return max(user.last_active_at + INACTIVITY, warned_at + WARNING_LEAD)


def send_inactivity_warning(user_id: int) -> bool:
    """Write the warning mail with its single-use keep link, exactly once per warning."""
    user = db.session.get(User, user_id, with_for_update=True, populate_existing=True)
    if user is None or not db.session.scalar(
            sa.select(sa.literal(True)).where(User.id == user_id,
                                              *warning_mail_pending(now()))):
        return False
    stamp = now()
    delete_at = deletion_date(user, stamp)
    user.inactivity_warned_at = stamp
    raw = _issue_keep_token(user, stamp, delete_at)
    from portal.auth.services import link_for

    queue_mail("inactivity_warning", to_addr=user.email, to_name=user.name, locale=user.locale,
               user_id=user.id, name=user.name, last_active=user.last_active_at,
               delete_at=delete_at, keep_link=link_for(raw),
               login_link=external_url("auth.login"), format_date=format_date)
    audit.record("inactivity.warned", subject_id=user.id)
    return True


def _issue_keep_token(user: User, stamp: datetime, expires_at: datetime) -> str:
    """A single-use KEEP_ACCOUNT token valid until the deletion date (only its hash kept)."""
    from portal.auth.services import _digest

    raw = secrets.token_urlsafe(32)
    db.session.add(LinkToken(user_id=user.id, purpose=TokenPurpose.KEEP_ACCOUNT,
                             token_hash=_digest(raw), created_at=stamp, expires_at=expires_at))
    db.session.flush()
    return raw


def keep_account(token: LinkToken) -> bool:
    """Use a keep link: the account counts as active now and the deletion is cancelled.
    False (and nothing changed) if the account's erasure has already started."""
    from portal.auth.services import consume_token

    user = token.user
    if user.status != AccountStatus.ACTIVE:
        return False
    consume_token(token)
    user.last_active_at, user.inactivity_warned_at = now(), None
    audit.record("inactivity.kept", actor_id=user.id, subject_id=user.id)
    return True


# --- the DPO's overview -------------------------------------------------------------------

@dataclass
class CaseRow:
    case: ErasureCase
    next_due: datetime | None
    overdue: bool
    confirmation: MailStatus | None


def list_erasure_cases(page: int = 1, per_page: int = 50) -> tuple[list[CaseRow], int]:
    """Erasure cases, newest first, with their confirmation's delivery status (two queries)."""
    total = db.session.scalar(sa.select(sa.func.count(ErasureCase.id))) or 0
    rows = db.session.execute(
        sa.select(ErasureCase, MailMessage.status)
        .outerjoin(MailMessage, MailMessage.id == ErasureCase.confirmation_mail_id)
        .order_by(ErasureCase.approved_at.desc(), ErasureCase.id.desc())
        .offset((page - 1) * per_page).limit(per_page)).all()
    late = now() - timedelta(minutes=10)
    return [CaseRow(case, None if case.step == ErasureStep.DELETED else case.due_at,
                    case.step != ErasureStep.DELETED and case.due_at < late,
                    MailStatus(status) if status else None)
            for case, status in rows], total


def erasure_counts() -> dict[ErasureStep, int]:
    """How many cases are at each step."""
    counts = {ErasureStep(step): n for step, n in db.session.execute(
        sa.select(ErasureCase.step, sa.func.count(ErasureCase.id)).group_by(ErasureCase.step))}
    return {step: counts.get(step, 0) for step in ErasureStep}
