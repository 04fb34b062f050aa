"""Marketing choices (opt-out, GDPR Art. 21(2)-(3)): state, unsubscribe tokens, audience, mailings.

An objection is absolute and takes effect at once: every mailing is computed from the latest
consent event at the moment it is queued, and a user who never chose counts as "no".
"""
from __future__ import annotations

import re

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadData, URLSafeSerializer
from jinja2 import TemplateNotFound

from portal import audit
from portal.auth.models import AccountStatus, Role, User
from portal.consent.models import MARKETING_PURPOSES, ConsentEvent, ConsentSource, Purpose
from portal.consent.services import current_state, history, record_consent
from portal.db import db
from portal.urls import external_url

UNSUBSCRIBE_SALT = "unsubscribe-v1"
BATCH_SIZE = 500
TEMPLATE_PREFIXES = {"newsletter": Purpose.NEWSLETTER, "offers": Purpose.OFFERS}
_TEMPLATE_NAME = re.compile(r"^(newsletter|offers)_[a-z0-9_]{1,50}$")
_MAIL_PARTS = (".subject.txt", ".txt", ".html")


class MailingTemplateError(ValueError):
    """The template is not a marketing template, does not exist or does not fit the purpose."""

    def __init__(self, code: str, template: str) -> None:
        super().__init__(code)
        self.code, self.template = code, template


def marketing_purpose(value: str) -> Purpose | None:
    """The marketing purpose named `value`, or None (cookie purposes are not marketing)."""
    return next((p for p in MARKETING_PURPOSES if p.value == value), None)


def marketing_state(user_id: int) -> dict[Purpose, bool]:
    """Whether each mailing is on; never having chosen counts as off (we never mail then)."""
    return {p: granted is True for p, granted in current_state(user_id, MARKETING_PURPOSES).items()}


def marketing_history(user_id: int) -> list[ConsentEvent]:
    """Every marketing consent event of the user, newest first."""
    return history(user_id, MARKETING_PURPOSES)


def set_marketing(user_id: int, purpose: Purpose, granted: bool) -> ConsentEvent | None:
    """The user's own choice in the settings; effective for the next mailing already."""
    return record_consent(user_id, purpose, granted, ConsentSource.SETTINGS, actor_id=user_id)


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(current_app.config["SECRET_KEY"], salt=UNSUBSCRIBE_SALT)


def make_unsubscribe_token(user_id: int, purpose: Purpose) -> str:
    """A signed, non-expiring token that stops one mailing for one user."""
    return _serializer().dumps([user_id, Purpose(purpose).value])


def read_unsubscribe_token(token: str) -> tuple[int, Purpose] | None:
    """(user id, purpose) from a genuine token; None if tampered, foreign or malformed."""
    try:
        payload = _serializer().loads(token)
    except (BadData, UnicodeError, ValueError):
        return None
    if not (isinstance(payload, list) and len(payload) == 2):
        return None
    user_id, value = payload
    purpose = marketing_purpose(value) if isinstance(value, str) else None
    if type(user_id) is not int or purpose is None:
        return None
    return user_id, purpose


def unsubscribe(user_id: int, purpose: Purpose) -> ConsentEvent | None:
    """Stop one mailing via the link in a mail; a no-op if already off or the account is gone."""
    if db.session.get(User, user_id) is None:
        return None
    return record_consent(user_id, purpose, False, ConsentSource.UNSUBSCRIBE_LINK)


def audience(purpose: Purpose, after_id: int = 0) -> sa.Select:
    """Ids of active, verified users whose latest event for `purpose` is a yes (in SQL).

    `after_id`: only users with a larger id, so each batch of a mailing scans only the rest.
    """
    latest = (
        sa.select(ConsentEvent.user_id, sa.func.max(ConsentEvent.id).label("last_id"))
        .where(ConsentEvent.purpose == purpose, ConsentEvent.user_id > after_id)
        .group_by(ConsentEvent.user_id)
        .subquery()
    )
    return (
        sa.select(User.id)
        .join(latest, latest.c.user_id == User.id)
        .join(ConsentEvent, ConsentEvent.id == latest.c.last_id)
        .where(ConsentEvent.granted == sa.true(), User.role == Role.USER,
               User.email_verified_at.is_not(None), User.status == AccountStatus.ACTIVE)
        .order_by(User.id)
    )


def check_template(template: str, purpose: Purpose) -> None:
    """Refuse anything but an existing `newsletter_*`/`offers_*` mail matching the purpose."""
    if not _TEMPLATE_NAME.fullmatch(template):
        raise MailingTemplateError("not_marketing", template)
    if TEMPLATE_PREFIXES[template.split("_", 1)[0]] != purpose:
        raise MailingTemplateError("wrong_purpose", template)
    for part in _MAIL_PARTS:
        try:
            current_app.jinja_env.get_template(f"email/{template}{part}")
        except TemplateNotFound:
            raise MailingTemplateError("missing", template) from None


def purpose_of_template(template: str) -> Purpose | None:
    """The purpose a marketing template is named for (`offers_*` → offers), else None."""
    return TEMPLATE_PREFIXES.get(template.split("_", 1)[0]) if "_" in template else None


def send_mailing(template: str, purpose: Purpose) -> int:
    """Queue `template` to the current audience in batches, committing each; returns the count."""
    check_template(template, purpose)
    preferences_url = external_url("marketing.preferences")
    after, queued = 0, 0
    while True:
        ids = db.session.scalars(audience(purpose, after_id=after).limit(BATCH_SIZE)).all()
        if not ids:
            break
        users = db.session.scalars(sa.select(User).where(User.id.in_(ids)).order_by(User.id)).all()
        for user in users:
            _queue_one(template, purpose, user, preferences_url)
            queued += 1
        after = ids[-1]
        db.session.commit()  # each batch is queued (and its jobs enqueued) on its own
    audit.record("marketing.mailing_queued", template=template, purpose=purpose.value,
                 count=queued)
    db.session.commit()
    return queued


def _queue_one(template: str, purpose: Purpose, user: User, preferences_url: str) -> None:
    from portal.mail.services import queue_mail

    url = external_url("marketing.unsubscribe", token=make_unsubscribe_token(user.id, purpose))
    queue_mail(template, to_addr=user.email, to_name=user.name, locale=user.locale,
               user_id=user.id, unsubscribe_url=url, preferences_url=preferences_url,
               name=user.name, headers={"List-Unsubscribe": f"<{url}>",
                                        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click"})
