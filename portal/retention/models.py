"""The erasure state machine: one row per erased account, each step with its due time.

The row outlives the account (user_id becomes NULL at the final step) and holds no personal
data: only the pseudonym, dates and codes, as the record that the erasure was carried out.
"""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import now
from portal.db import Base, str_enum


class ErasureStep(StrEnum):
    APPROVED = "approved"            # due now: end sessions, delete content, pseudonymise
    PSEUDONYMISED = "pseudonymised"  # due at day 30: close the invoicing period
    INVOICING_CLOSED = "invoicing_closed"  # due at day 60: delete what is left
    DELETED = "deleted"              # done


class ErasureReason(StrEnum):
    REQUEST = "request"        # an approved erasure request (Art. 17)
    INACTIVITY = "inactivity"  # 6 months without activity
    ADMIN = "admin"            # an operator's command


class ErasureCase(Base):
    __tablename__ = "erasure_cases"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="SET NULL"), unique=True)
    pseudonym: Mapped[str] = mapped_column(sa.String(40))
    reason: Mapped[ErasureReason] = mapped_column(
        str_enum(ErasureReason, "erasure_reason", 16))
    step: Mapped[ErasureStep] = mapped_column(
        str_enum(ErasureStep, "erasure_step", 20), default=ErasureStep.APPROVED)
    due_at: Mapped[datetime] = mapped_column(default=now)
    approved_at: Mapped[datetime] = mapped_column(default=now)
    approved_by: Mapped[int | None]
    pseudonymised_at: Mapped[datetime | None]
    invoicing_closed_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    confirmation_mail_id: Mapped[int | None]

    __table_args__ = (sa.Index("ix_erasure_cases_step_due", "step", "due_at"),
                      sa.Index("ix_erasure_cases_approved", "approved_at", "id"))  # DPO list
