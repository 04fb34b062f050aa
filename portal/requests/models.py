"""Rights requests, their uploads (ID copies, signed forms) and their history."""
from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import now
from portal.db import Base, str_enum


class RequestKind(StrEnum):
    ERASURE = "erasure"              # Art. 17
    RESTRICTION = "restriction"      # Art. 18
    RECTIFICATION = "rectification"  # Art. 16, what is not self-service
    OBJECTION = "objection"          # Art. 21


class RequestStatus(StrEnum):
    RECEIVED = "received"
    NEEDS_COMPLETION = "needs_completion"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


_OPEN = "status IN ('received', 'needs_completion')"  # dpo_services.OPEN_STATUSES


class RightsRequest(Base):
    __tablename__ = "rights_requests"

    id: Mapped[int] = mapped_column(primary_key=True)
    reference: Mapped[str] = mapped_column(sa.String(20), unique=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    kind: Mapped[RequestKind] = mapped_column(str_enum(RequestKind, "request_kind", 16))
    status: Mapped[RequestStatus] = mapped_column(
        str_enum(RequestStatus, "request_status", 20), default=RequestStatus.RECEIVED)
    details: Mapped[str] = mapped_column(sa.Text, default="")
    signature_name: Mapped[str] = mapped_column(sa.String(200), default="")
    declaration_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(default=now)
    due_on: Mapped[date]
    extension_months: Mapped[int] = mapped_column(default=0)
    extension_reason: Mapped[str | None] = mapped_column(sa.Text)
    decided_at: Mapped[datetime | None]
    decided_by: Mapped[int | None]
    decision_reason: Mapped[str | None] = mapped_column(sa.Text)
    receipt_payload: Mapped[dict | None] = mapped_column(sa.JSON)
    receipt_signature: Mapped[str | None] = mapped_column(sa.String(200))
    receipt_blob_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("stored_blobs.id", ondelete="SET NULL"))
    id_verified_by: Mapped[int | None]
    id_verified_at: Mapped[datetime | None]

    __table_args__ = (
        sa.Index("ix_rights_requests_status_due", "status", "due_on"),
        sa.Index("ix_rights_requests_user_received", "user_id", "received_at"),
        # The DPO queue: open requests in due order, read a page at a time without sorting.
        sa.Index("ix_rights_requests_open_due", "due_on", "id",
                 sqlite_where=sa.text(_OPEN), postgresql_where=sa.text(_OPEN)),
        # Deleting a blob sets this to NULL (foreign key): found by index, not by a scan.
        sa.Index("ix_rights_requests_receipt_blob_id", "receipt_blob_id",
                 sqlite_where=sa.text("receipt_blob_id IS NOT NULL"),
                 postgresql_where=sa.text("receipt_blob_id IS NOT NULL")),
    )


class RequestUpload(Base):
    """An uploaded ID copy or signed form: only re-encoded images are stored (encrypted), and
    they are destroyed at the decision; the hash of what was received stays."""

    __tablename__ = "request_uploads"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        sa.ForeignKey("rights_requests.id", ondelete="CASCADE"), index=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(sa.String(16), default="id_copy")  # or signed_form
    received_kind: Mapped[str] = mapped_column(sa.String(8))
    received_size: Mapped[int]
    sha256: Mapped[str] = mapped_column(sa.String(64))
    pages: Mapped[int] = mapped_column(default=1)
    blob_id: Mapped[int | None] = mapped_column(
        sa.ForeignKey("stored_blobs.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(default=now)
    destroyed_at: Mapped[datetime | None]

    # For the foreign-key actions when an account or a blob is deleted (erasure, day 60).
    __table_args__ = (
        sa.Index("ix_request_uploads_user_id", "user_id"),
        sa.Index("ix_request_uploads_blob_id", "blob_id",
                 sqlite_where=sa.text("blob_id IS NOT NULL"),
                 postgresql_where=sa.text("blob_id IS NOT NULL")),
    )


class RequestEvent(Base):
    """The request's history as shown to the user and the DPO (the audit log chains it)."""

    __tablename__ = "request_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(
        sa.ForeignKey("rights_requests.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(default=now)
    actor_id: Mapped[int | None]
    action: Mapped[str] = mapped_column(sa.String(40))
    note: Mapped[str | None] = mapped_column(sa.Text)
