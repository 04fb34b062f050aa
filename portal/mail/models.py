"""The outbox: one row per message until it is sent, then only the delivery record."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import now
from portal.db import Base, str_enum


class MailStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


class MailMessage(Base):
    __tablename__ = "mail_messages"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("users.id", ondelete="CASCADE")
    )
    template: Mapped[str] = mapped_column(sa.String(64))
    to_addr: Mapped[str] = mapped_column(sa.String(254))
    to_name: Mapped[str] = mapped_column(sa.String(200), default="")
    subject: Mapped[str] = mapped_column(sa.String(300))
    body_text: Mapped[str] = mapped_column(sa.Text, default="")
    body_html: Mapped[str] = mapped_column(sa.Text, default="")
    headers: Mapped[dict] = mapped_column(sa.JSON, default=dict)
    # An attachment is an encrypted blob owned by the feature that made it (e.g. a receipt);
    # the outbox only points at it.
    attachment_blob_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("stored_blobs.id", ondelete="SET NULL"))
    attachment_name: Mapped[str | None] = mapped_column(sa.String(100))
    status: Mapped[MailStatus] = mapped_column(
        str_enum(MailStatus, "mail_status", 16),
        default=MailStatus.PENDING,
    )
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.String(100))
    created_at: Mapped[datetime] = mapped_column(default=now)
    sent_at: Mapped[datetime | None]

    __table_args__ = (
        sa.Index("ix_mail_messages_status_created", "status", "created_at"),
        # A person's latest messages by id (Mina uppgifter), and the FK cascade on user_id.
        sa.Index("ix_mail_messages_user_id", "user_id", "id"),
        # Deleting a blob sets this to NULL (foreign key): found by index, not by a scan.
        sa.Index("ix_mail_messages_attachment_blob_id", "attachment_blob_id",
                 sqlite_where=sa.text("attachment_blob_id IS NOT NULL"),
                 postgresql_where=sa.text("attachment_blob_id IS NOT NULL")),
    )
