"""Everything held about one user, complete and unabridged, for an export.

"Mina uppgifter" (portal.account.services.gather_my_data) shows a bounded summary; an export
is the full copy (GDPR Art. 15(3)), so every row of every table in the register of processing
is loaded here, with a fixed number of queries whatever the amount of data. The coach tables
are read directly: the coach feature owns their services.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa

from portal.audit import AuditEvent
from portal.auth.models import AuthSession, LinkToken, LoginEvent, User
from portal.billing.models import Organisation, UsageEvent
from portal.coach.models import CoachLink, CoachRead
from portal.consent.models import ConsentEvent
from portal.db import db
from portal.exports.models import Export
from portal.mail.models import MailMessage
from portal.texts.services import list_texts


@dataclass
class Collected:
    """One user's data, every category of the register, newest first within each list."""

    user: User
    texts: list
    sessions: list
    link_tokens: list
    consents: list
    coach_links: list
    coach_reads: list
    usage: list
    messages: list
    logins: list
    activity: list
    exports: list
    organisations: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)  # rights requests: not built yet

    def organisation(self, organisation_id: int | None) -> Organisation | None:
        return self.organisations.get(organisation_id) if organisation_id else None


def _newest_first(model, *where, order=None) -> list:
    column = order if order is not None else model.id
    return list(db.session.scalars(sa.select(model).where(*where)
                                   .order_by(column.desc(), model.id.desc())))


def collect(user_id: int) -> Collected:
    """Load every row held about the user (one query per table)."""
    user = db.session.get(User, user_id)
    if user is None:
        raise LookupError("no such user")
    links = _newest_first(CoachLink, CoachLink.user_id == user_id, order=CoachLink.invited_at)
    usage = _newest_first(UsageEvent, UsageEvent.user_id == user_id, order=UsageEvent.at)
    data = Collected(
        user=user,
        texts=list_texts(user_id, with_body=True),
        sessions=_newest_first(AuthSession, AuthSession.user_id == user_id,
                               order=AuthSession.created_at),
        link_tokens=_newest_first(LinkToken, LinkToken.user_id == user_id,
                                  order=LinkToken.created_at),
        consents=_newest_first(ConsentEvent, ConsentEvent.user_id == user_id),
        coach_links=links,
        coach_reads=_newest_first(CoachRead, CoachRead.user_id == user_id, order=CoachRead.at),
        usage=usage,
        messages=_newest_first(MailMessage, MailMessage.user_id == user_id,
                               order=MailMessage.created_at),
        logins=_newest_first(LoginEvent, LoginEvent.user_id == user_id, order=LoginEvent.at),
        activity=_newest_first(AuditEvent, AuditEvent.subject_id == user_id),
        exports=_newest_first(Export, Export.user_id == user_id, order=Export.requested_at),
    )
    org_ids = {user.organisation_id} | {link.organisation_id for link in links} \
        | {event.organisation_id for event in usage}
    org_ids.discard(None)
    if org_ids:
        data.organisations = {org.id: org for org in db.session.scalars(
            sa.select(Organisation).where(Organisation.id.in_(org_ids)))}
    return data
