"""The link between a user and a job coach, and the log of every read by the coach."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import now
from portal.db import Base, str_enum


class LinkStatus(StrEnum):
    INVITED = "invited"
    ACTIVE = "active"
    REVOKED = "revoked"
    EXPIRED = "expired"
    CANCELLED = "cancelled"


class CoachLink(Base):
    __tablename__ = "coach_links"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    coach_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    organisation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="SET NULL"))
    coach_email: Mapped[str] = mapped_column(sa.String(254))
    coach_name: Mapped[str] = mapped_column(sa.String(200), default="")
    status: Mapped[LinkStatus] = mapped_column(
        str_enum(LinkStatus, "coach_link_status", 16), default=LinkStatus.INVITED)
    invite_token_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    invited_at: Mapped[datetime] = mapped_column(default=now)
    invite_expires_at: Mapped[datetime]
    accepted_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]

    __table_args__ = (
        sa.Index("ix_coach_links_user_status", "user_id", "status"),
        sa.Index("ix_coach_links_coach_status", "coach_id", "status"),
        sa.Index("ix_coach_links_status_expires", "status", "invite_expires_at"),  # expiry job
    )


class CoachRead(Base):
    """One read of one shared text by the coach; shown to the user and in exports."""

    __tablename__ = "coach_reads"

    id: Mapped[int] = mapped_column(primary_key=True)
    link_id: Mapped[int] = mapped_column(sa.ForeignKey("coach_links.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    text_id: Mapped[int | None] = mapped_column(sa.ForeignKey("texts.id", ondelete="SET NULL"))
    text_title: Mapped[str] = mapped_column(sa.String(200))
    at: Mapped[datetime] = mapped_column(default=now)

    __table_args__ = (
        sa.Index("ix_coach_reads_user_at", "user_id", "at"),
        # For the foreign-key actions when a text or a link is deleted (erasure).
        sa.Index("ix_coach_reads_text_id", "text_id"),
        sa.Index("ix_coach_reads_link_id", "link_id"),
    )
