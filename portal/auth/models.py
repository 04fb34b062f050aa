"""Accounts, their server-side sessions and single-use link tokens."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.clock import now
from portal.db import Base, str_enum


class Role(StrEnum):
    USER = "user"
    COACH = "coach"
    DPO = "dpo"


class AccessSource(StrEnum):
    """How the user got access to Cowrite (who pays, and who may be told)."""

    STOD_OCH_MATCHNING = "stod_och_matchning"
    KUNDVAL_RUSTA_OCH_MATCHA = "kundval_rusta_och_matcha"
    FACKFORBUND = "fackforbund"
    INTRESSEORGANISATION = "intresseorganisation"
    OMSTALLNINGSFOND = "omstallningsfond"
    EGEN_BETALNING = "egen_betalning"


class AccountStatus(StrEnum):
    ACTIVE = "active"
    RESTRICTED = "restricted"
    ERASURE_PENDING = "erasure_pending"
    PSEUDONYMISED = "pseudonymised"


class TokenPurpose(StrEnum):
    VERIFY_EMAIL = "verify_email"
    RESET_PASSWORD = "reset_password"
    SET_PASSWORD = "set_password"
    CHANGE_EMAIL = "change_email"
    KEEP_ACCOUNT = "keep_account"


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(254), unique=True)
    email_verified_at: Mapped[datetime | None]
    password_hash: Mapped[str | None] = mapped_column(sa.String(200))
    password_changed_at: Mapped[datetime | None]
    name: Mapped[str] = mapped_column(sa.String(200))
    phone: Mapped[str | None] = mapped_column(sa.String(32))
    org_number: Mapped[str | None] = mapped_column(sa.String(10))
    organisation_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("organisations.id", ondelete="SET NULL"))
    locale: Mapped[str | None] = mapped_column(sa.String(5))
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"), default=Role.USER)
    access_source: Mapped[AccessSource | None] = mapped_column(
        str_enum(AccessSource, "access_source"))
    status: Mapped[AccountStatus] = mapped_column(
        str_enum(AccountStatus, "account_status"), default=AccountStatus.ACTIVE
    )
    policy_version: Mapped[str | None] = mapped_column(sa.String(20))
    policy_accepted_at: Mapped[datetime | None]
    created_at: Mapped[datetime] = mapped_column(default=now)
    last_active_at: Mapped[datetime] = mapped_column(default=now, index=True)
    inactivity_warned_at: Mapped[datetime | None]
    totp_secret: Mapped[bytes | None] = mapped_column(sa.LargeBinary)  # AES-GCM encrypted
    totp_enrolled_at: Mapped[datetime | None]
    totp_last_step: Mapped[int | None] = mapped_column(sa.BigInteger)  # replay protection

    sessions: Mapped[list[AuthSession]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        sa.Index("ix_users_unverified_created", "created_at",
                 sqlite_where=sa.text("email_verified_at IS NULL"),
                 postgresql_where=sa.text("email_verified_at IS NULL")),
    )

    # flask-login protocol; the id handed to flask-login is the raw session token.
    session_token = None  # str | None, set by start_session/load_session
    auth_session = None  # AuthSession | None

    @property
    def is_authenticated(self) -> bool:
        return self.auth_session is not None

    @property
    def is_active(self) -> bool:
        return self.status != AccountStatus.PSEUDONYMISED

    @property
    def is_anonymous(self) -> bool:
        return False

    def get_id(self) -> str | None:
        return self.session_token

    @property
    def is_verified(self) -> bool:
        return self.email_verified_at is not None


class AuthSession(Base):
    """One logged-in browser. Deleting the row ends that session on its next request."""

    __tablename__ = "auth_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    last_seen_at: Mapped[datetime] = mapped_column(default=now)

    user: Mapped[User] = relationship(back_populates="sessions")


class LinkToken(Base):
    """A single-use secret sent by mail (verify address, reset or set a password)."""

    __tablename__ = "link_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"), index=True)
    purpose: Mapped[TokenPurpose] = mapped_column(str_enum(TokenPurpose, "token_purpose"))
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(default=now)
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    new_email: Mapped[str | None] = mapped_column(sa.String(254))  # for CHANGE_EMAIL only

    user: Mapped[User] = relationship()


class LoginEvent(Base):
    """A login (or failed attempt) with a truncated address and the browser family only."""

    __tablename__ = "login_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(default=now)
    succeeded: Mapped[bool]
    ip_prefix: Mapped[str] = mapped_column(sa.String(64))
    browser: Mapped[str] = mapped_column(sa.String(40))

    __table_args__ = (sa.Index("ix_login_events_user_at", "user_id", "at"),)
