"""Append-only consent events (the current state is derived) and consented statistics."""
from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import now
from portal.db import Base, str_enum


class Purpose(StrEnum):
    NEWSLETTER = "newsletter"
    OFFERS = "offers"
    COOKIES_FUNCTIONAL = "cookies_functional"
    COOKIES_STATISTICS = "cookies_statistics"
    COOKIES_MARKETING = "cookies_marketing"


MARKETING_PURPOSES = (Purpose.NEWSLETTER, Purpose.OFFERS)
COOKIE_PURPOSES = (Purpose.COOKIES_FUNCTIONAL, Purpose.COOKIES_STATISTICS,
                   Purpose.COOKIES_MARKETING)


class ConsentSource(StrEnum):
    REGISTRATION = "registration"
    SETTINGS = "settings"
    UNSUBSCRIBE_LINK = "unsubscribe_link"
    COOKIE_BANNER = "cookie_banner"


class ConsentEvent(Base):
    """Never updated or deleted while the account lives: the history is the record."""

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[Purpose] = mapped_column(
        str_enum(Purpose, "consent_purpose"))
    granted: Mapped[bool]
    source: Mapped[ConsentSource] = mapped_column(
        str_enum(ConsentSource, "consent_source"))
    at: Mapped[datetime] = mapped_column(default=now)

    __table_args__ = (sa.Index("ix_consent_events_user_purpose", "user_id", "purpose", "id"),)


class DailyPageView(Base):
    """Page views per day and route, without any identifier: recorded only with consent."""

    __tablename__ = "daily_page_views"

    day: Mapped[date] = mapped_column(primary_key=True)
    route: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    views: Mapped[int] = mapped_column(default=0)
