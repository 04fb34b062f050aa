"""Coach links: invite, accept, resend, cancel, revoke and expire; what a coach may read.

A user has at most one open link (invited or active) at a time. The coach's access is decided
by the database on every request (`link_for_coach`), never cached, so a revoke takes effect on
the coach's very next request. Functions that change something flush and write the audit log
(ids and codes only); the calling view or job commits once.

Other features call: `active_link_for_user`, `links_for_user`, `reads_for_user`,
`correction_recipients_for` (GDPR Art. 19) and `end_links_for_user` (erasure).
"""
from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum

import sqlalchemy as sa
from sqlalchemy.orm import defer

from portal import audit
from portal.auth.models import AccountStatus, Role, User
from portal.auth.passwords import hash_password
from portal.billing.models import Organisation, OrganisationKind
from portal.clock import now
from portal.coach.models import CoachLink, CoachRead, LinkStatus
from portal.db import db
from portal.mail.services import queue_mail
from portal.texts.models import Text
from portal.urls import external_url

INVITE_TTL = timedelta(days=14)
OPEN_STATUSES = (LinkStatus.INVITED, LinkStatus.ACTIVE)
EXPIRE_BATCH = 1000


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode()).hexdigest()


# --- organisations --------------------------------------------------------------------------

def list_organisations() -> list[Organisation]:
    """Every organisation a coach can belong to, by name."""
    return list(db.session.scalars(sa.select(Organisation)
                                   .order_by(Organisation.name, Organisation.id)))


def find_organisation_by_number(org_number: str) -> Organisation | None:
    """The organisation with this (normalised, ten-digit) organisation number, if any."""
    return db.session.scalar(sa.select(Organisation)
                             .where(Organisation.org_number == org_number))


def add_organisation(name: str, org_number: str, kind: OrganisationKind,
                     actor_id: int) -> Organisation:
    """Register an organisation given by a user (or return the one with that number)."""
    existing = find_organisation_by_number(org_number)
    if existing is not None:
        return existing
    org = Organisation(name=name, org_number=org_number, kind=OrganisationKind(kind))
    db.session.add(org)
    db.session.flush()
    audit.record("organisation.created", actor_id=actor_id, organisation_id=org.id,
                 kind=org.kind.value)
    return org


# --- reading links (the user's side) --------------------------------------------------------

def invitation_is_stale(link: CoachLink) -> bool:
    """An invitation whose 14 days have passed (even before the hourly job marks it)."""
    return link.status == LinkStatus.INVITED and link.invite_expires_at <= now()


def display_status(link: CoachLink) -> LinkStatus:
    """The status to show: a stale invitation is shown as expired straight away."""
    return LinkStatus.EXPIRED if invitation_is_stale(link) else link.status


def active_link_for_user(user_id: int) -> CoachLink | None:
    """The user's active coach link (accepted, not ended), or None."""
    return db.session.scalar(
        sa.select(CoachLink).where(CoachLink.user_id == user_id,
                                   CoachLink.status == LinkStatus.ACTIVE)
        .order_by(CoachLink.id.desc()).limit(1))


def current_link_for_user(user_id: int) -> CoachLink | None:
    """The user's open link: the active one, or an invitation still waiting for the coach."""
    return current_link_among(links_for_user(user_id))  # a user has a handful of links


def current_link_among(links: list[CoachLink]) -> CoachLink | None:
    """The open link among the user's links (newest first): the one rule, for pages that
    have loaded the links already."""
    stamp = now()
    return next((link for link in links if link.status == LinkStatus.ACTIVE
                 or (link.status == LinkStatus.INVITED and link.invite_expires_at > stamp)),
                None)


def links_for_user(user_id: int) -> list[CoachLink]:
    """Every link the user has had (the history), newest first."""
    return list(db.session.scalars(sa.select(CoachLink).where(CoachLink.user_id == user_id)
                                   .order_by(CoachLink.id.desc())))


def get_own_link(user_id: int, link_id: int) -> CoachLink | None:
    """The link with `link_id` if it belongs to the user; None otherwise (the view's 404)."""
    return db.session.scalar(sa.select(CoachLink).where(CoachLink.id == link_id,
                                                        CoachLink.user_id == user_id))


def reads_for_user(user_id: int, limit: int | None = None) -> list[CoachRead]:
    """Every read of the user's texts by a coach, newest first (at most `limit`)."""
    query = (sa.select(CoachRead).where(CoachRead.user_id == user_id)
             .order_by(CoachRead.at.desc(), CoachRead.id.desc()))
    if limit is not None:
        query = query.limit(limit)
    return list(db.session.scalars(query))


def organisations_by_id(ids) -> dict[int, Organisation]:
    """The organisations with these ids, in one query."""
    ids = {i for i in ids if i is not None}
    if not ids:
        return {}
    return {o.id: o for o in db.session.scalars(sa.select(Organisation)
                                                .where(Organisation.id.in_(ids)))}


def correction_recipients_for(user: User) -> list[tuple[str, str]]:
    """Who must hear of a correction of the user's data through the coach link (Art. 19):
    the active coach and the coach's organisation's contact address, as (email, name)."""
    link = active_link_for_user(user.id)
    if link is None:
        return []
    recipients: list[tuple[str, str]] = []
    coach = db.session.get(User, link.coach_id) if link.coach_id else None
    if coach is not None and coach.is_active:
        recipients.append((coach.email, coach.name))
    org = db.session.get(Organisation, link.organisation_id) if link.organisation_id else None
    if org is not None and org.contact_email:
        recipients.append((org.contact_email, org.name))
    return recipients


# --- changing links (the user's side) -------------------------------------------------------

def invite_coach(user: User, email: str, name: str, organisation: Organisation) -> CoachLink:
    """End the user's open link, if any, then create an invitation and mail it to the coach."""
    db.session.scalar(sa.select(User.id).where(User.id == user.id).with_for_update())
    for old in db.session.scalars(sa.select(CoachLink).where(
            CoachLink.user_id == user.id, CoachLink.status.in_(OPEN_STATUSES))):
        _end_link(old, reason="replaced", actor_id=user.id)
    stamp = now()
    link = CoachLink(user_id=user.id, organisation_id=organisation.id, coach_email=email.lower(),
                     coach_name=name or "", status=LinkStatus.INVITED, invited_at=stamp,
                     invite_expires_at=stamp + INVITE_TTL)
    db.session.add(link)
    db.session.flush()
    audit.record("coach.invited", actor_id=user.id, subject_id=user.id, link_id=link.id,
                 organisation_id=organisation.id)
    _send_invitation(user, link, organisation)
    return link


def resend_invitation(user: User, link: CoachLink) -> bool:
    """Mail a fresh invitation (new token, 14 more days); the old link stops working.
    False, and nothing changes, unless the link is a waiting invitation."""
    if link.status != LinkStatus.INVITED or invitation_is_stale(link):
        return False
    link.invite_expires_at = now() + INVITE_TTL
    db.session.flush()
    audit.record("coach.invitation_resent", actor_id=user.id, subject_id=user.id,
                 link_id=link.id)
    organisation = db.session.get(Organisation, link.organisation_id) \
        if link.organisation_id else None
    _send_invitation(user, link, organisation)
    return True


def cancel_invitation(user: User, link: CoachLink) -> bool:
    """Withdraw an invitation the coach has not accepted. False if it is not waiting."""
    if link.status != LinkStatus.INVITED or invitation_is_stale(link):
        return False
    _end_link(link, reason="user", actor_id=user.id)
    return True


def revoke_link(user: User, link: CoachLink) -> bool:
    """End an active link at once; the coach is told by mail. False if it is not active."""
    if link.status != LinkStatus.ACTIVE:
        return False
    _end_link(link, reason="user", actor_id=user.id)
    return True


def end_links_for_user(user_id: int, reason: str, actor_id: int | None = None) -> int:
    """End every open link of the user at once (revoked if active, cancelled if invited);
    coaches with access are told. Used by erasure. Returns how many links ended."""
    links = list(db.session.scalars(sa.select(CoachLink).where(
        CoachLink.user_id == user_id, CoachLink.status.in_(OPEN_STATUSES))))
    for link in links:
        _end_link(link, reason=reason, actor_id=actor_id)
    return len(links)


def _end_link(link: CoachLink, reason: str, actor_id: int | None) -> None:
    stamp = now()
    if link.status == LinkStatus.ACTIVE:
        link.status, link.ended_at = LinkStatus.REVOKED, stamp
        db.session.flush()
        audit.record("coach.link_revoked", actor_id=actor_id, subject_id=link.user_id,
                     link_id=link.id, coach_id=link.coach_id, reason=reason)
        _tell_coach_of_revoke(link)
        return
    status = LinkStatus.EXPIRED if invitation_is_stale(link) else LinkStatus.CANCELLED
    link.status, link.ended_at = status, stamp
    db.session.flush()
    action = "coach.invitation_expired" if status == LinkStatus.EXPIRED \
        else "coach.invitation_cancelled"
    audit.record(action, actor_id=actor_id, subject_id=link.user_id, link_id=link.id,
                 reason=reason)


def _send_invitation(user: User, link: CoachLink, organisation: Organisation | None) -> None:
    raw = secrets.token_urlsafe(32)
    link.invite_token_hash = _digest(raw)
    db.session.flush()
    queue_mail("coach_invitation", to_addr=link.coach_email, to_name=link.coach_name,
               locale=user.locale, user_id=user.id, user_name=user.name,
               coach_name=link.coach_name, organisation_name=organisation.name
               if organisation else "", link=external_url("coach.follow_invitation", token=raw),
               days=INVITE_TTL.days, expires_at=link.invite_expires_at)


def _tell_coach_of_revoke(link: CoachLink) -> None:
    coach = db.session.get(User, link.coach_id) if link.coach_id else None
    user = db.session.get(User, link.user_id)
    if coach is None or not coach.is_active or user is None:
        return
    queue_mail("coach_revoked", to_addr=coach.email, to_name=coach.name, locale=coach.locale,
               user_id=coach.id, coach_name=coach.name, user_name=user.name,
               coach_url=external_url("coach.index"))


def expire_due_invitations(limit: int = EXPIRE_BATCH) -> int:
    """Mark up to `limit` invitations whose 14 days have passed as expired (the hourly job)."""
    links = list(db.session.scalars(sa.select(CoachLink).where(
        CoachLink.status == LinkStatus.INVITED, CoachLink.invite_expires_at <= now())
        .order_by(CoachLink.id).limit(limit)))
    for link in links:
        _end_link(link, reason="expired", actor_id=None)
    return len(links)


# --- the invitation (the coach's side) ------------------------------------------------------

class InviteProblem(Enum):
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


@dataclass
class InviteCheck:
    link: CoachLink | None
    problem: InviteProblem | None


def check_invitation(raw: str | None) -> InviteCheck:
    """Look an invitation token up; say precisely why it cannot be used, if it cannot."""
    if not raw or len(raw) > 100:
        return InviteCheck(None, InviteProblem.UNKNOWN)
    link = db.session.scalar(sa.select(CoachLink)
                             .where(CoachLink.invite_token_hash == _digest(raw)))
    if link is None:
        return InviteCheck(None, InviteProblem.UNKNOWN)
    if link.accepted_at is not None or link.status in (LinkStatus.ACTIVE, LinkStatus.REVOKED):
        return InviteCheck(link, InviteProblem.USED)
    if link.status == LinkStatus.CANCELLED:
        return InviteCheck(link, InviteProblem.CANCELLED)
    if link.status == LinkStatus.EXPIRED or invitation_is_stale(link):
        return InviteCheck(link, InviteProblem.EXPIRED)
    return InviteCheck(link, None)


def inviting_user(link: CoachLink) -> User:
    """The user who sent the invitation."""
    return db.session.get(User, link.user_id)


def create_coach_account(link: CoachLink, name: str, password: str, locale: str,
                         policy_version: str) -> User:
    """A verified coach account for the invited address (the mailed link proves it),
    belonging to the organisation the invitation names."""
    stamp = now()
    coach = User(email=link.coach_email.lower(), name=name, role=Role.COACH,
                 password_hash=hash_password(password), password_changed_at=stamp,
                 email_verified_at=stamp, organisation_id=link.organisation_id, locale=locale,
                 policy_version=policy_version, policy_accepted_at=stamp, created_at=stamp,
                 last_active_at=stamp)
    db.session.add(coach)
    db.session.flush()
    audit.record("account.registered", actor_id=coach.id, subject_id=coach.id,
                 role=Role.COACH.value, policy_version=policy_version, link_id=link.id)
    return coach


def accept_invitation(link: CoachLink, coach: User) -> None:
    """Make the link active for `coach`; the user is told by mail. The token is spent."""
    db.session.refresh(link, with_for_update=True)  # two tabs accepting at once: one wins
    if link.status != LinkStatus.INVITED or coach.role != Role.COACH:
        raise ValueError("only a waiting invitation can be accepted, by a coach account")
    stamp = now()
    link.status, link.coach_id, link.accepted_at = LinkStatus.ACTIVE, coach.id, stamp
    if not link.coach_name:
        link.coach_name = coach.name
    if coach.organisation_id is None:
        coach.organisation_id = link.organisation_id
    if coach.email_verified_at is None:
        coach.email_verified_at = stamp  # the mailed invitation proves the address
    db.session.flush()
    audit.record("coach.link_accepted", actor_id=coach.id, subject_id=link.user_id,
                 link_id=link.id, organisation_id=link.organisation_id)
    user = inviting_user(link)
    queue_mail("coach_accepted", to_addr=user.email, to_name=user.name, locale=user.locale,
               user_id=user.id, user_name=user.name, coach_name=coach.name,
               coach_email=coach.email, manage_url=external_url("coach.mine"))


# --- the coach area -------------------------------------------------------------------------

def users_for_coach(coach_id: int) -> list[tuple[CoachLink, User]]:
    """The users who share with this coach now (active links only), by name."""
    rows = db.session.execute(
        sa.select(CoachLink, User).join(User, User.id == CoachLink.user_id)
        .where(CoachLink.coach_id == coach_id, CoachLink.status == LinkStatus.ACTIVE,
               User.status == AccountStatus.ACTIVE)  # restricted: paused
        .order_by(User.name, User.id))
    return [(link, user) for link, user in rows]


def link_for_coach(coach_id: int, user_id: int) -> CoachLink | None:
    """The active link between this coach and this user, read from the database now."""
    return db.session.scalar(
        sa.select(CoachLink).join(User, User.id == CoachLink.user_id)
        .where(CoachLink.coach_id == coach_id, CoachLink.user_id == user_id,
               CoachLink.status == LinkStatus.ACTIVE,
               User.status == AccountStatus.ACTIVE)  # restricted: paused
        .order_by(CoachLink.id.desc()).limit(1))


def had_link(coach_id: int, user_id: int) -> bool:
    """True if this coach once had access to this user (the link has since ended)."""
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(CoachLink)
        .where(CoachLink.coach_id == coach_id, CoachLink.user_id == user_id,
               CoachLink.status.in_((LinkStatus.REVOKED, LinkStatus.EXPIRED)))) > 0


def shared_texts(user_id: int) -> list[Text]:
    """The user's texts shared with the coach (bodies not loaded), most recently changed first."""
    return list(db.session.scalars(
        sa.select(Text).where(Text.user_id == user_id, Text.shared_with_coach == sa.true())
        .options(defer(Text.body, raiseload=True))
        .order_by(Text.updated_at.desc(), Text.id.desc())))


def shared_text_counts(user_ids: list[int]) -> dict[int, int]:
    """How many texts each of these users shares, in one grouped query."""
    if not user_ids:
        return {}
    rows = db.session.execute(
        sa.select(Text.user_id, sa.func.count())
        .where(Text.user_id.in_(user_ids), Text.shared_with_coach == sa.true())
        .group_by(Text.user_id))
    return {user_id: count for user_id, count in rows}


def shared_text(user_id: int, text_id: int) -> Text | None:
    """One of the user's texts, only if it is shared with the coach; None otherwise."""
    return db.session.scalar(sa.select(Text).where(
        Text.id == text_id, Text.user_id == user_id, Text.shared_with_coach == sa.true()))


def record_read(link: CoachLink, text: Text) -> CoachRead:
    """Log one read of a shared text by the link's coach (shown to the user)."""
    read = CoachRead(link_id=link.id, user_id=link.user_id, text_id=text.id,
                     text_title=text.title[:200], at=now())
    db.session.add(read)
    db.session.flush()
    audit.record("coach.text_read", actor_id=link.coach_id, subject_id=link.user_id,
                 link_id=link.id, text_id=text.id)
    return read
