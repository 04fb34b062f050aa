"""The user's own data: gathering it for "Mina uppgifter", and correcting it."""
from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import load_only

from portal import audit
from portal.audit import AuditEvent
from portal.auth.models import AuthSession, LinkToken, LoginEvent, TokenPurpose, User
from portal.auth.services import consume_token, find_user_by_email, issue_token, link_for
from portal.billing.models import Organisation, UsageEvent
from portal.clock import now
from portal.coach import services as coach_services
from portal.coach.models import CoachRead
from portal.exports.services import list_exports
from portal.requests.services import list_requests
from portal.consent.models import COOKIE_PURPOSES, MARKETING_PURPOSES, ConsentEvent
from portal.consent.services import current_state
from portal.db import db
from portal.mail.models import MailMessage
from portal.mail.services import queue_mail
from portal.texts.models import Text
from portal.urls import external_url

PROFILE_FIELDS = ("name", "phone", "org_number")


@dataclass
class MyData:
    """Everything held about one user, loaded with a fixed number of queries."""

    user: User
    organisation: Organisation | None
    text_count: int
    shared_text_count: int
    latest_texts: list[Text]
    session_count: int
    open_link_count: int
    marketing: dict
    cookie_events: list[ConsentEvent]
    marketing_events: list[ConsentEvent]
    logins: list[LoginEvent]
    usage_count: int
    latest_usage: list[UsageEvent]
    messages: list[MailMessage]
    message_count: int
    activity: list[AuditEvent]
    coach_link: object = None
    coach_links: list = field(default_factory=list)
    coach_reads: list = field(default_factory=list)
    coach_read_count: int = 0
    exports: list = field(default_factory=list)
    rights_requests: list = field(default_factory=list)


def _count(query) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(query.subquery()))


def _counts(uid: int) -> dict[str, int]:
    """Every count "Mina uppgifter" shows, in one statement (each an index lookup)."""
    def count(model, *where):
        return (sa.select(sa.func.count()).select_from(model).where(*where)
                .scalar_subquery())

    row = db.session.execute(sa.select(
        count(Text, Text.user_id == uid).label("text_count"),
        count(Text, Text.user_id == uid, Text.shared_with_coach.is_(True))
        .label("shared_text_count"),
        count(AuthSession, AuthSession.user_id == uid).label("session_count"),
        count(LinkToken, LinkToken.user_id == uid, LinkToken.used_at.is_(None),
              LinkToken.expires_at > now()).label("open_link_count"),
        count(UsageEvent, UsageEvent.user_id == uid).label("usage_count"),
        count(MailMessage, MailMessage.user_id == uid).label("message_count"),
        count(CoachRead, CoachRead.user_id == uid).label("coach_read_count"),
    )).one()
    return dict(row._mapping)


def gather_my_data(user: User) -> MyData:
    """Load every category of the register for `user`: a fixed number of queries (the counts
    in one), and only the columns the page shows of wide rows (text and mail bodies stay in
    the database)."""
    uid = user.id
    events = sa.select(ConsentEvent).where(ConsentEvent.user_id == uid)
    links = coach_services.links_for_user(uid)
    return MyData(
        user=user,
        organisation=db.session.get(Organisation, user.organisation_id)
        if user.organisation_id else None,
        **_counts(uid),
        latest_texts=list(db.session.scalars(
            sa.select(Text).options(load_only(Text.id, Text.title, Text.kind,
                                              Text.shared_with_coach, Text.updated_at))
            .where(Text.user_id == uid)
            .order_by(Text.updated_at.desc(), Text.id.desc()).limit(5))),
        marketing=current_state(uid, MARKETING_PURPOSES),
        marketing_events=list(db.session.scalars(
            events.where(ConsentEvent.purpose.in_(MARKETING_PURPOSES))
            .order_by(ConsentEvent.id.desc()).limit(10))),
        cookie_events=list(db.session.scalars(
            events.where(ConsentEvent.purpose.in_(COOKIE_PURPOSES))
            .order_by(ConsentEvent.id.desc()).limit(10))),
        logins=login_history(uid, limit=5),
        latest_usage=list(db.session.scalars(
            sa.select(UsageEvent).where(UsageEvent.user_id == uid)
            .order_by(UsageEvent.at.desc(), UsageEvent.id.desc()).limit(5))),
        messages=list(db.session.scalars(
            sa.select(MailMessage).options(load_only(
                MailMessage.id, MailMessage.created_at, MailMessage.subject,
                MailMessage.to_addr, MailMessage.status))
            .where(MailMessage.user_id == uid)
            .order_by(MailMessage.id.desc()).limit(10))),
        activity=activity_log(uid, limit=10),
        coach_link=coach_services.current_link_among(links),
        coach_links=links,
        coach_reads=coach_services.reads_for_user(uid, limit=10),
        exports=list_exports(uid, limit=10),
        rights_requests=list_requests(uid),
    )


def session_count(user_id: int) -> int:
    """How many browsers the user is logged in with (counted in SQL, not loaded)."""
    return _count(sa.select(AuthSession.id).where(AuthSession.user_id == user_id))


def login_history(user_id: int, limit: int = 20) -> list[LoginEvent]:
    return list(db.session.scalars(
        sa.select(LoginEvent).where(LoginEvent.user_id == user_id)
        .order_by(LoginEvent.at.desc(), LoginEvent.id.desc()).limit(limit)))


def activity_log(user_id: int, limit: int = 100) -> list[AuditEvent]:
    return list(db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.subject_id == user_id)
        .order_by(AuditEvent.id.desc()).limit(limit)))


def correction_recipients(user: User) -> list[tuple[str, str]]:
    """Who has received the user's profile data and must hear of a correction (Art. 19).

    The organisation that gave access (it sees the name on invoice bases), the active coach
    and the coach's organisation; each address once.
    """
    from portal.coach.services import correction_recipients_for

    recipients = []
    if user.organisation_id:
        org = db.session.get(Organisation, user.organisation_id)
        if org is not None and org.contact_email:
            recipients.append((org.contact_email, org.name))
    recipients += correction_recipients_for(user)
    unique = {address.lower(): (address, name) for address, name in reversed(recipients)}
    return list(reversed(unique.values()))


def correct_profile(user: User, changes: dict) -> list[str]:
    """Apply corrections to name/phone/org number; audit and tell recipients. Returns fields."""
    changed = [name for name in PROFILE_FIELDS
               if name in changes and changes[name] != getattr(user, name)]
    if not changed:
        return []
    for name in changed:
        setattr(user, name, changes[name])
    audit.record("profile.corrected", actor_id=user.id, subject_id=user.id, fields=changed)
    for address, org_name in correction_recipients(user):
        queue_mail("correction_notice", to_addr=address, to_name=org_name, locale="sv",
                   org_name=org_name, fields=changed, name=user.name,
                   phone=user.phone, org_number=user.org_number)
    db.session.flush()
    return changed


def request_email_change(user: User, new_email: str) -> None:
    """Mail a confirmation link to the new address; a taken address gets a notice instead."""
    holder = find_user_by_email(new_email)
    if holder is not None:
        if holder.id != user.id:
            queue_mail("account_exists", to_addr=new_email, locale=user.locale,
                       login_url=external_url("auth.login"),
                       reset_url=external_url("auth.forgot_password"))
        return
    raw = issue_token(user, TokenPurpose.CHANGE_EMAIL, new_email=new_email)
    queue_mail("confirm_new_email", to_addr=new_email, to_name=user.name, locale=user.locale,
               user_id=user.id, name=user.name, link=link_for(raw), hours=24)
    audit.record("email.change_requested", actor_id=user.id, subject_id=user.id)


def confirm_email_change(token: LinkToken) -> bool:
    """Apply a confirmed change; the old address is told. False if the address got taken."""
    user = token.user
    consume_token(token)
    if token.new_email is None or find_user_by_email(token.new_email) is not None:
        return False
    old = user.email
    user.email = token.new_email
    user.email_verified_at = now()
    audit.record("email.changed", actor_id=user.id, subject_id=user.id)
    queue_mail("email_changed", to_addr=old, to_name=user.name, locale=user.locale,
               user_id=user.id, name=user.name, new_email=user.email,
               contact_url=external_url("pages.contact"))
    return True
