"""Encrypted blobs in the database (exports now; ID copies and receipts later).

Web and worker share nothing but the database and Redis, so files live here, encrypted with
AES-GCM (portal.crypto). The associated data binds each blob to its own random reference, so
a blob copied into another row does not decrypt. Deleting a user deletes their blobs.
"""
from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import now
from portal.crypto import keyring
from portal.db import Base, db


class StoredBlob(Base):
    __tablename__ = "stored_blobs"

    id: Mapped[int] = mapped_column(primary_key=True)
    ref: Mapped[str] = mapped_column(sa.String(36), unique=True)
    user_id: Mapped[int | None] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"),
                                                index=True)
    kind: Mapped[str] = mapped_column(sa.String(32))
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=now)


def _context(ref: str) -> bytes:
    return f"blob:{ref}".encode()


def put_blob(plaintext: bytes, kind: str, user_id: int | None) -> StoredBlob:
    """Encrypt and store; returns the (flushed) row."""
    ref = str(uuid.uuid4())
    blob = StoredBlob(ref=ref, user_id=user_id, kind=kind,
                      data=keyring().encrypt(plaintext, _context(ref)))
    db.session.add(blob)
    db.session.flush()
    return blob


def read_blob(blob: StoredBlob) -> bytes:
    return keyring().decrypt(blob.data, _context(blob.ref))


def delete_blob(blob_id: int | None) -> None:
    if blob_id is not None:
        db.session.execute(sa.delete(StoredBlob).where(StoredBlob.id == blob_id))
