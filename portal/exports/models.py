"""Export requests and their state machine (the database row is the record)."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import now
from portal.db import Base, str_enum


class ExportStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    READY = "ready"
    FAILED = "failed"
    EXPIRED = "expired"
    VOIDED = "voided"


class Export(Base):
    __tablename__ = "exports"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    status: Mapped[ExportStatus] = mapped_column(
        str_enum(ExportStatus, "export_status", 16), default=ExportStatus.QUEUED)
    progress: Mapped[int] = mapped_column(default=0)
    step: Mapped[str] = mapped_column(sa.String(64), default="")
    error: Mapped[str | None] = mapped_column(sa.String(100))
    requested_at: Mapped[datetime] = mapped_column(default=now)
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]
    expires_at: Mapped[datetime | None]
    blob_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("stored_blobs.id", ondelete="SET NULL"))
    size: Mapped[int | None]
    sha256: Mapped[str | None] = mapped_column(sa.String(64))

    __table_args__ = (sa.Index("ix_exports_user_requested", "user_id", "requested_at"),
                      sa.Index("ix_exports_status_expires", "status", "expires_at"),
                      # Deleting a blob sets this to NULL (foreign key): found by index.
                      sa.Index("ix_exports_blob_id", "blob_id",
                               sqlite_where=sa.text("blob_id IS NOT NULL"),
                               postgresql_where=sa.text("blob_id IS NOT NULL")))
