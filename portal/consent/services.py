"""Recording consent events and deriving the current state from them."""
from __future__ import annotations

from collections.abc import Iterable

import sqlalchemy as sa

from portal import audit
from portal.consent.models import ConsentEvent, ConsentSource, Purpose
from portal.db import db


def record_consent(user_id: int, purpose: Purpose, granted: bool, source: ConsentSource,
                   actor_id: int | None = None) -> ConsentEvent | None:
    """Append an event if it changes the current state; returns it (or None if unchanged)."""
    if current_state(user_id, [purpose]).get(purpose) is granted:
        return None
    event = ConsentEvent(user_id=user_id, purpose=purpose, granted=granted, source=source)
    db.session.add(event)
    db.session.flush()
    audit.record("consent.changed", actor_id=actor_id, subject_id=user_id,
                 purpose=purpose.value, granted=granted, source=source.value)
    return event


def current_state(user_id: int, purposes: Iterable[Purpose]) -> dict[Purpose, bool | None]:
    """The latest choice per purpose; None where the user has never chosen."""
    purposes = list(purposes)
    latest = (
        sa.select(ConsentEvent.purpose, sa.func.max(ConsentEvent.id).label("last_id"))
        .where(ConsentEvent.user_id == user_id, ConsentEvent.purpose.in_(purposes))
        .group_by(ConsentEvent.purpose).subquery()
    )
    rows = db.session.execute(
        sa.select(ConsentEvent.purpose, ConsentEvent.granted)
        .join(latest, ConsentEvent.id == latest.c.last_id)
    ).all()
    state: dict[Purpose, bool | None] = {p: None for p in purposes}
    state.update({purpose: granted for purpose, granted in rows})
    return state


def history(user_id: int, purposes: Iterable[Purpose] | None = None) -> list[ConsentEvent]:
    """Every event, newest first."""
    query = sa.select(ConsentEvent).where(ConsentEvent.user_id == user_id)
    if purposes is not None:
        query = query.where(ConsentEvent.purpose.in_(list(purposes)))
    return list(db.session.scalars(query.order_by(ConsentEvent.id.desc())))
