"""Outbox: one event per committed transition, written in the same transaction."""

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models.types import BigIntId, UTCDateTime, utcnow


class OutboxEvent(Base):
    __tablename__ = "outbox_event"
    __table_args__ = (
        Index(None, "published_at", "id"),
        Index(None, "position", unique=True),
        # What the relay has yet to publish, found without scanning what it already has.
        Index(
            "ix_outbox_event_unpublished",
            "id",
            postgresql_where=text("position IS NULL"),
            sqlite_where=text("position IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    type: Mapped[str] = mapped_column(String(64))
    order_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("care_order.id", ondelete="CASCADE"), index=True
    )
    # Who may see the event (the SSE stream filters on these).
    senior_id: Mapped[uuid.UUID | None] = mapped_column()
    caregiver_id: Mapped[uuid.UUID | None] = mapped_column()
    provider_id: Mapped[uuid.UUID | None] = mapped_column()
    district_id: Mapped[uuid.UUID | None] = mapped_column()
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Given by the relay in commit order when it publishes: streams resume by position (an id
    # from a sequence can commit after a larger one and would be skipped by a reader).
    position: Mapped[int | None] = mapped_column(BigInteger)
