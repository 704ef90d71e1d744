"""Audit log: one row for every read of a senior's personal data."""

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models.types import BigIntId, UTCDateTime, utcnow


class AuditLog(Base):
    __tablename__ = "audit_log"
    __table_args__ = (Index(None, "senior_id", "at"),)

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    actor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("account.id", ondelete="SET NULL")
    )
    actor_role: Mapped[str] = mapped_column(String(16))
    senior_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("senior.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(64))
    fields: Mapped[str] = mapped_column(String(255))
    object_id: Mapped[str | None] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
