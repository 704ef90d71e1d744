"""Offers: the dispatcher asks a caregiver to take an order, with a deadline.

An order has at most one accepted offer (a partial unique index backs the order's own
conditional UPDATE), and a caregiver at most one open offer per order.
"""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Enum, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models.types import UUID, BigIntId, UTCDateTime, new_id, utcnow


class OfferStatus(StrEnum):
    open = "open"
    accepted = "accepted"
    declined = "declined"
    expired = "expired"
    withdrawn = "withdrawn"
    # Accepted, then the visit ended undone (withdrawn, no-show, reassigned, cancelled): the
    # order may be accepted again by someone else.
    released = "released"


class Offer(Base):
    __tablename__ = "offer"
    __table_args__ = (
        Index(
            "uq_offer_open_per_caregiver",
            "order_id",
            "caregiver_id",
            unique=True,
            postgresql_where=text("status = 'open'"),
            sqlite_where=text("status = 'open'"),
        ),
        Index(
            "uq_offer_accepted_per_order",
            "order_id",
            unique=True,
            postgresql_where=text("status = 'accepted'"),
            sqlite_where=text("status = 'accepted'"),
        ),
        Index(None, "caregiver_id", "status"),
        Index(None, "status", "deadline"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("care_order.id", ondelete="CASCADE"), index=True
    )
    caregiver_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("caregiver.id", ondelete="CASCADE"))
    status: Mapped[OfferStatus] = mapped_column(
        Enum(OfferStatus, native_enum=False, create_constraint=True, name="status", length=16),
        default=OfferStatus.open,
    )
    decision_id: Mapped[int | None] = mapped_column(
        ForeignKey("dispatch_decision.id", ondelete="SET NULL")
    )
    # Where the caregiver would start and how far they are (the engine's estimate).
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    travel_s: Mapped[int] = mapped_column(Integer, default=0)
    distance_m: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deadline: Mapped[datetime] = mapped_column(UTCDateTime)
    responded_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(Text)


class DispatchDecision(Base):
    """What the dispatcher decided about an order and the engine's explanation of why."""

    __tablename__ = "dispatch_decision"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("care_order.id", ondelete="CASCADE"), index=True
    )
    # offer | emergency | batch | auto_assign | escalate | manual (an operator's assignment)
    kind: Mapped[str] = mapped_column(String(16))
    caregiver_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    reason: Mapped[str | None] = mapped_column(Text)
    # The engine's Ranking: candidates with their cost parts, exclusions per constraint.
    explanation: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
