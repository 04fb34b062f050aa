"""Append-only, hash-chained audit log: who did what to whom, and when.

Rows carry ids and codes only, never names, addresses or free text, so the chain can outlive
an erased account without keeping its personal data.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import now
from portal.db import Base, db

GENESIS = "0" * 64
_LOCK_KEY = 7_202_611  # PostgreSQL advisory lock that serialises appends to the chain


class AuditEvent(Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(default=now)
    actor_id: Mapped[int | None]
    subject_id: Mapped[int | None]
    action: Mapped[str] = mapped_column(sa.String(64))
    details: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    prev_hash: Mapped[str] = mapped_column(sa.String(64))
    hash: Mapped[str] = mapped_column(sa.String(64), unique=True)

    # A person's latest events by id: read from this index, never by walking the primary key.
    __table_args__ = (sa.Index("ix_audit_events_subject_id", "subject_id", "id"),)


def _digest(prev_hash: str, at: datetime, actor_id, subject_id, action: str, details: dict) -> str:
    body = json.dumps(
        [prev_hash, at.isoformat(timespec="microseconds"), actor_id, subject_id, action, details],
        sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def record(action: str, *, actor_id: int | None = None, subject_id: int | None = None,
           **details) -> AuditEvent:
    """Append one event to the chain (flushed, committed with the caller's transaction)."""
    session = db.session
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _LOCK_KEY})
    prev = session.scalar(sa.select(AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1))
    at = now()
    prev = prev or GENESIS
    event = AuditEvent(at=at, actor_id=actor_id, subject_id=subject_id, action=action,
                       details=details, prev_hash=prev,
                       hash=_digest(prev, at, actor_id, subject_id, action, details))
    session.add(event)
    session.flush()
    return event


def verify_chain() -> int | None:
    """Return the id of the first event whose hash does not verify, or None if all do."""
    prev = GENESIS
    for ev in db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id)).yield_per(500):
        expected = _digest(prev, ev.at, ev.actor_id, ev.subject_id, ev.action, ev.details)
        if ev.prev_hash != prev or ev.hash != expected:
            return ev.id
        prev = ev.hash
    return None
