"""Orders and their status history."""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base
from app.models.types import UUID, BigIntId, UTCDateTime, new_id, utcnow


class OrderStatus(StrEnum):
    pending = "pending"
    offered = "offered"
    assigned = "assigned"
    in_progress = "in_progress"
    completed = "completed"
    escalated = "escalated"
    cancelled = "cancelled"


TERMINAL_STATUSES = frozenset({OrderStatus.completed, OrderStatus.cancelled})


class Priority(StrEnum):
    normal = "normal"
    urgent = "urgent"
    emergency = "emergency"


PRIORITY_RANK = {Priority.emergency: 0, Priority.urgent: 1, Priority.normal: 2}
_OPEN_EMERGENCY_SQL = "priority = 'emergency' AND status NOT IN ('completed', 'cancelled')"


class Order(Base):
    __tablename__ = "care_order"
    __table_args__ = (
        CheckConstraint("duration_min > 0", name="duration_positive"),
        CheckConstraint(
            "window_end IS NULL OR window_start IS NULL OR window_end > window_start",
            name="window_ordered",
        ),
        CheckConstraint("rating IS NULL OR rating BETWEEN 1 AND 5", name="rating_range"),
        Index(None, "district_id", "status"),
        Index(None, "senior_id", "created_at"),
        # Today's figures of a district (app/services/kpis.py) read its orders by placement time.
        Index(None, "district_id", "created_at"),
        Index(None, "caregiver_id", "status"),
        # A double-tapped SOS must not open two emergencies for one senior.
        Index(
            "uq_care_order_open_emergency",
            "senior_id",
            unique=True,
            postgresql_where=text(_OPEN_EMERGENCY_SQL),
            sqlite_where=text(_OPEN_EMERGENCY_SQL),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=new_id)
    senior_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("senior.id", ondelete="RESTRICT"))
    district_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("district.id", ondelete="RESTRICT"))
    service_code: Mapped[str] = mapped_column(ForeignKey("service.code", ondelete="RESTRICT"))
    priority: Mapped[Priority] = mapped_column(
        Enum(Priority, native_enum=False, create_constraint=True, name="priority", length=16)
    )
    status: Mapped[OrderStatus] = mapped_column(
        Enum(OrderStatus, native_enum=False, create_constraint=True, name="status", length=16),
        default=OrderStatus.pending,
    )
    asap: Mapped[bool] = mapped_column(Boolean)
    window_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_end: Mapped[datetime | None] = mapped_column(UTCDateTime)
    duration_min: Mapped[int] = mapped_column(Integer)
    price_fen: Mapped[int] = mapped_column(Integer)
    notes: Mapped[str] = mapped_column(Text, default="")
    # Where the visit happens, copied from the senior's home when the order is placed.
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    caregiver_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("caregiver.id", ondelete="RESTRICT")
    )
    redispatch_count: Mapped[int] = mapped_column(Integer, default=0)
    # Bumped by every transition; transitions match on it, so a same-status move such as a
    # reassignment still makes a racing transition that read the old row fail.
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    escalation_reason: Mapped[str | None] = mapped_column(Text)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Set when the caregiver had not checked in by the start plus the grace period.
    no_show_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    rating_comment: Mapped[str | None] = mapped_column(Text)
    rated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_by: Mapped[uuid.UUID] = mapped_column(ForeignKey("account.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    history: Mapped[list["OrderStatusHistory"]] = relationship(
        lazy="raise", order_by="OrderStatusHistory.id"
    )


class OrderStatusHistory(Base):
    """One row per transition: who moved the order, when, from what to what, and why."""

    __tablename__ = "order_status_history"

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True, autoincrement=True)
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("care_order.id", ondelete="CASCADE"), index=True
    )
    from_status: Mapped[str | None] = mapped_column(String(16))
    to_status: Mapped[str] = mapped_column(String(16))
    event: Mapped[str] = mapped_column(String(32))
    actor_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("account.id", ondelete="SET NULL")
    )
    reason: Mapped[str | None] = mapped_column(Text)
    # Indexed for the day's counts of escalations, no-shows and check-outs (kpis.py).
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
