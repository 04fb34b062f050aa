"""The user's own data: gathering it for "Mina uppgifter", and correcting it."""
from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from portal import audit, feeds
from portal.audit import AuditEvent
from portal.auth.models import AuthSession, LinkToken, LoginEvent, TokenPurpose, User
from portal.auth.services import consume_token, find_user_by_email, issue_token, link_for
from portal.billing.models import Organisation, UsageEvent
from portal.clock import now
from portal.coach import services as coach_services
from portal.coach.models import CoachLink, CoachRead
from portal.consent.models import COOKIE_PURPOSES, MARKETING_PURPOSES, ConsentEvent
from portal.db import db
from portal.exports.models import Export
from portal.feeds import Feed
from portal.mail.models import MailMessage
from portal.mail.services import queue_mail
from portal.requests.models import RightsRequest
from portal.texts.models import Text
from portal.urls import external_url

PROFILE_FIELDS = ("name", "phone", "org_number")


@dataclass
class MyData:
    """Everything "Mina uppgifter" shows of one user: counts and the newest rows of each
    category (named tuples of the columns shown; the detail pages hold the rest)."""

    user: User
    organisation: tuple | None
    text_count: int
    shared_text_count: int
    latest_texts: list
    session_count: int
    open_link_count: int
    marketing: dict
    cookie_events: list
    marketing_events: list
    logins: list
    usage_count: int
    latest_usage: list
    messages: list
    message_count: int
    activity: list
    coach_link: object = None
    coach_links: list = field(default_factory=list)
    coach_reads: list = field(default_factory=list)
    coach_read_count: int = 0
    exports: list = field(default_factory=list)
    rights_requests: list = field(default_factory=list)


USER_ID = sa.bindparam("user_id")


def _count_of(model, *where) -> sa.ScalarSelect:
    return sa.select(sa.func.count()).select_from(model).where(*where).scalar_subquery()


def _consents(name: str, purposes, limit: int) -> Feed:
    return Feed(name, {"id": ConsentEvent.id, "at": ConsentEvent.at,
                       "purpose": ConsentEvent.purpose, "granted": ConsentEvent.granted,
                       "source": ConsentEvent.source},
                # one equality per purpose rather than IN (an "expanding" parameter would make
                # SQLAlchemy render the statement's SQL anew at every execution)
                (ConsentEvent.user_id == USER_ID,
                 sa.or_(*(ConsentEvent.purpose == purpose for purpose in purposes))),
                (ConsentEvent.id.desc(),), limit)


# The page shows the five newest rows of each category (all of the few coach links and
# requests) and links to the detail pages for the rest.
NEWEST = 5

# Everything "Mina uppgifter" loads besides the user, in one statement (portal.feeds): the
# counts (each an index lookup) and the newest rows of each category. Only the columns the page
# shows: text and mail bodies stay in the database.
MY_DATA_FEEDS = (
    Feed("counts", {
        "text_count": _count_of(Text, Text.user_id == USER_ID),
        "shared_text_count": _count_of(Text, Text.user_id == USER_ID,
                                       Text.shared_with_coach == sa.true()),
        "session_count": _count_of(AuthSession, AuthSession.user_id == USER_ID),
        "open_link_count": _count_of(LinkToken, LinkToken.user_id == USER_ID,
                                     LinkToken.used_at.is_(None),
                                     LinkToken.expires_at > sa.bindparam("now")),
        "usage_count": _count_of(UsageEvent, UsageEvent.user_id == USER_ID),
        "message_count": _count_of(MailMessage, MailMessage.user_id == USER_ID),
        "coach_read_count": _count_of(CoachRead, CoachRead.user_id == USER_ID),
    }, (), ()),
    Feed("organisation", {"id": Organisation.id, "name": Organisation.name,
                          "org_number": Organisation.org_number},
         (Organisation.id == sa.bindparam("organisation_id"),), (Organisation.id,), 1),
    Feed("latest_texts", {"id": Text.id, "title": Text.title, "kind": Text.kind,
                          "shared_with_coach": Text.shared_with_coach,
                          "updated_at": Text.updated_at},
         (Text.user_id == USER_ID,), (Text.updated_at.desc(), Text.id.desc()), NEWEST),
    _consents("marketing_events", MARKETING_PURPOSES, NEWEST),
    _consents("cookie_events", COOKIE_PURPOSES, NEWEST),
    # the current marketing choice: the newest event of each purpose
    *(_consents(f"marketing_{purpose.value}", (purpose,), 1) for purpose in MARKETING_PURPOSES),
    Feed("logins", {"id": LoginEvent.id, "at": LoginEvent.at,
                    "succeeded": LoginEvent.succeeded, "ip_prefix": LoginEvent.ip_prefix,
                    "browser": LoginEvent.browser},
         (LoginEvent.user_id == USER_ID,),
         (LoginEvent.at.desc(), LoginEvent.id.desc()), NEWEST),
    Feed("latest_usage", {"id": UsageEvent.id, "at": UsageEvent.at, "kind": UsageEvent.kind,
                          "organisation_id": UsageEvent.organisation_id},
         (UsageEvent.user_id == USER_ID,),
         (UsageEvent.at.desc(), UsageEvent.id.desc()), NEWEST),
    Feed("messages", {"id": MailMessage.id, "created_at": MailMessage.created_at,
                      "subject": MailMessage.subject, "to_addr": MailMessage.to_addr,
                      "status": MailMessage.status},
         (MailMessage.user_id == USER_ID,), (MailMessage.id.desc(),), NEWEST),
    Feed("activity", {"id": AuditEvent.id, "at": AuditEvent.at, "action": AuditEvent.action,
                      "actor_id": AuditEvent.actor_id, "subject_id": AuditEvent.subject_id},
         (AuditEvent.subject_id == USER_ID,), (AuditEvent.id.desc(),), NEWEST),
    # every link the user has had (a handful), for the current one and the history's length
    Feed("coach_links", {"id": CoachLink.id, "coach_email": CoachLink.coach_email,
                         "coach_name": CoachLink.coach_name, "status": CoachLink.status,
                         "invite_expires_at": CoachLink.invite_expires_at},
         (CoachLink.user_id == USER_ID,), (CoachLink.id.desc(),)),
    Feed("coach_reads", {"id": CoachRead.id, "at": CoachRead.at,
                         "text_title": CoachRead.text_title},
         (CoachRead.user_id == USER_ID,),
         (CoachRead.at.desc(), CoachRead.id.desc()), NEWEST),
    Feed("exports", {"id": Export.id, "requested_at": Export.requested_at,
                     "status": Export.status, "expires_at": Export.expires_at},
         (Export.user_id == USER_ID,),
         (Export.requested_at.desc(), Export.id.desc()), NEWEST),
    # every request: few, and each one the user may still be waiting for
    Feed("rights_requests", {"id": RightsRequest.id, "reference": RightsRequest.reference,
                             "kind": RightsRequest.kind, "status": RightsRequest.status,
                             "due_on": RightsRequest.due_on},
         (RightsRequest.user_id == USER_ID,),
         (RightsRequest.received_at.desc(), RightsRequest.id.desc())),
)


def gather_my_data(user: User) -> MyData:
    """Load every category of the register for `user` in one statement."""
    rows = feeds.newest(MY_DATA_FEEDS, user_id=user.id, organisation_id=user.organisation_id,
                        now=now())
    marketing = {purpose: (latest[0].granted if (latest := rows.pop(f"marketing_{purpose.value}"))
                           else None) for purpose in MARKETING_PURPOSES}
    organisation = rows.pop("organisation")
    return MyData(
        user=user,
        organisation=organisation[0] if organisation else None,
        **rows.pop("counts")[0]._asdict(),
        marketing=marketing,
        coach_link=coach_services.current_link_among(rows["coach_links"]),
        **rows,
    )


def session_count(user_id: int) -> int:
    """How many browsers the user is logged in with (counted in SQL, not loaded)."""
    return db.session.scalar(sa.select(sa.func.count()).select_from(AuthSession)
                             .where(AuthSession.user_id == user_id))


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
