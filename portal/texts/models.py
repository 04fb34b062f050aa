"""Texts written in Cowrite."""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from portal.clock import now
from portal.db import Base, str_enum

TITLE_MAX = 200
BODY_MAX = 100_000


class TextKind(StrEnum):
    PERSONLIGT_BREV = "personligt_brev"
    CV = "cv"
    OVRIGT = "ovrigt"


class Text(Base):
    __tablename__ = "texts"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(sa.String(TITLE_MAX))
    kind: Mapped[TextKind] = mapped_column(
        str_enum(TextKind, "text_kind"))
    body: Mapped[str] = mapped_column(sa.Text)
    shared_with_coach: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime] = mapped_column(default=now)
    updated_at: Mapped[datetime] = mapped_column(default=now)

    __table_args__ = (
        sa.Index("ix_texts_user_id_updated", "user_id", "updated_at"),
        # a person's shared texts: counted (Mina uppgifter, the coach's list) from the index
        # alone, listed for the coach in order; queries say `shared_with_coach == true()`
        sa.Index("ix_texts_user_shared", "user_id", "updated_at",
                 sqlite_where=sa.text("shared_with_coach"),
                 postgresql_where=sa.text("shared_with_coach")),
    )
