"""The user's texts: listing, reading, writing, deleting and sharing with the job coach.

Every function takes the owner's id (or the owner) and never returns someone else's text, so
other features (the "Mina uppgifter" page, exports, coaches) can call them safely. Functions
that change something flush and write the audit log (ids and codes only); the caller commits.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import defer

from portal import audit
from portal.auth.models import User
from portal.billing.models import UsageEvent
from portal.clock import now
from portal.db import db
from portal.texts.models import Text, TextKind

USAGE_TEXT_CREATED = "text_created"


def list_texts(user_id: int, *, with_body: bool = False) -> list[Text]:
    """The user's texts, most recently changed first, in one query.

    Without `with_body` the (up to 100 000 characters long) bodies are not loaded, and
    reading `.body` raises instead of quietly querying once per text; exports pass
    `with_body=True`.
    """
    return list(db.session.scalars(_newest_first(user_id, with_body)))


def _newest_first(user_id: int, with_body: bool = False) -> sa.Select:
    query = (sa.select(Text).where(Text.user_id == user_id)
             .order_by(Text.updated_at.desc(), Text.id.desc()))
    return query if with_body else query.options(defer(Text.body, raiseload=True))


def text_page(user_id: int, page: int, per_page: int) -> tuple[list[Text], int, int]:
    """One page of the user's texts (most recently changed first, bodies not loaded), the
    total, and the page actually shown (a page past the end shows the last one)."""
    total = count_texts(user_id)
    page = min(max(page, 1), max(1, -(-total // per_page)))
    query = _newest_first(user_id).limit(per_page).offset((page - 1) * per_page)
    return list(db.session.scalars(query)), total, page


def count_texts(user_id: int) -> int:
    """How many texts the user has."""
    return db.session.scalar(
        sa.select(sa.func.count()).select_from(Text).where(Text.user_id == user_id)) or 0


def get_own_text(user_id: int, text_id: int) -> Text | None:
    """The text with `text_id` if it belongs to the user; None otherwise (the view's 404)."""
    return db.session.scalar(sa.select(Text).where(Text.id == text_id, Text.user_id == user_id))


def billing_organisation_for(user: User) -> int | None:
    """The id of the organisation paying for the user's use of Cowrite, or None (self-paying).

    While the user has an active coach link, the coach's organisation pays (it gave the user
    access); otherwise the user's own sponsoring organisation (`user.organisation_id`). Every
    usage event goes through this function.
    """
    from portal.coach.services import active_link_for_user

    link = active_link_for_user(user.id)
    if link is not None and link.organisation_id is not None:
        return link.organisation_id
    return user.organisation_id


def create_text(user: User, title: str, kind: TextKind, body: str, share: bool) -> Text:
    """Save a new text and record one billable use for the organisation paying."""
    stamp = now()
    text = Text(user_id=user.id, title=title, kind=TextKind(kind), body=body,
                shared_with_coach=bool(share), created_at=stamp, updated_at=stamp)
    db.session.add(text)
    db.session.add(UsageEvent(user_id=user.id, organisation_id=billing_organisation_for(user),
                              kind=USAGE_TEXT_CREATED, at=stamp))
    db.session.flush()
    audit.record("text.created", actor_id=user.id, subject_id=user.id, text_id=text.id,
                 shared=text.shared_with_coach)
    return text


def update_text(user: User, text: Text, title: str, kind: TextKind, body: str,
                share: bool) -> Text:
    """Change a text (the user's own); a change of sharing is audited as such too."""
    _check_owner(user, text)
    text.title, text.kind, text.body = title, TextKind(kind), body
    text.updated_at = now()
    db.session.flush()
    audit.record("text.updated", actor_id=user.id, subject_id=user.id, text_id=text.id)
    set_shared(user, text, share)
    return text


def delete_text(user: User, text: Text) -> None:
    """Delete a text (the user's own) for good."""
    _check_owner(user, text)
    text_id = text.id
    db.session.delete(text)
    db.session.flush()
    audit.record("text.deleted", actor_id=user.id, subject_id=user.id, text_id=text_id)


def set_shared(user: User, text: Text, shared: bool) -> bool:
    """Share the text with the job coach or stop sharing; True if that changed anything."""
    _check_owner(user, text)
    shared = bool(shared)
    if text.shared_with_coach is shared:
        return False
    text.shared_with_coach = shared
    db.session.flush()
    audit.record("text.share_changed", actor_id=user.id, subject_id=user.id, text_id=text.id,
                 shared=shared)
    return True


def _check_owner(user: User, text: Text) -> None:
    if text.user_id != user.id:  # a programming error: views load texts with get_own_text
        raise PermissionError("text does not belong to this user")
