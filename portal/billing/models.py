"""Organisations and usage events (the basis for usage-based invoicing)."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import now
from portal.db import Base, str_enum


class OrganisationKind(StrEnum):
    MATCHNINGSFORETAG = "matchningsforetag"
    FACKFORBUND = "fackforbund"
    INTRESSEORGANISATION = "intresseorganisation"
    OMSTALLNINGSFOND = "omstallningsfond"


class Organisation(Base):
    __tablename__ = "organisations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    org_number: Mapped[str | None] = mapped_column(sa.String(10), unique=True)
    kind: Mapped[OrganisationKind] = mapped_column(
        str_enum(OrganisationKind, "organisation_kind"))
    contact_email: Mapped[str | None] = mapped_column(sa.String(254))
    created_at: Mapped[datetime] = mapped_column(default=now)


class UsageEvent(Base):
    """One billable use (a text created), attributed to the organisation paying for it."""

    __tablename__ = "usage_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    # NULL once the account is finally deleted (day 60 of an erasure): the organisation's
    # totals stay, with no link to the person.
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="SET NULL"))
    organisation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="RESTRICT"))
    kind: Mapped[str] = mapped_column(sa.String(32), default="text_created")
    at: Mapped[datetime] = mapped_column(default=now)

    __table_args__ = (
        sa.Index("ix_usage_events_user_at", "user_id", "at"),
        sa.Index("ix_usage_events_org_at", "organisation_id", "at"),
        sa.Index("ix_usage_events_at", "at"),  # a month's totals over every organisation
    )
