"""Visits: a caregiver's assignment to an order, from assignment to check-out.

Invariant 1 (one active assignment per order) is a partial unique index on both databases.
Invariant 2 (a caregiver's visits never overlap) is an ``EXCLUDE USING gist`` on PostgreSQL and
a check inside the serialized ``BEGIN IMMEDIATE`` transaction on SQLite.
"""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import CheckConstraint, Enum, Float, ForeignKey, Index, Integer, Text, func, text
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models.types import UUID, UTCDateTime, new_id, utcnow


class VisitStatus(StrEnum):
    assigned = "assigned"
    in_progress = "in_progress"
    completed = "completed"
    withdrawn = "withdrawn"
    reassigned = "reassigned"
    cancelled = "cancelled"
    no_show = "no_show"


# Visits that hold the order and the caregiver's time.
ACTIVE_VISIT_STATUSES = (VisitStatus.assigned, VisitStatus.in_progress, VisitStatus.completed)
_ACTIVE_SQL = "status IN ('assigned', 'in_progress', 'completed')"


class Visit(Base):
    __tablename__ = "visit"
    __table_args__ = (
        CheckConstraint("ends_at >= starts_at", name="ends_after_start"),
        Index(
            "uq_visit_active_order",
            "order_id",
            unique=True,
            postgresql_where=text(_ACTIVE_SQL),
            sqlite_where=text(_ACTIVE_SQL),
        ),
        Index(None, "caregiver_id", "starts_at"),
        ExcludeConstraint(
            (text("caregiver_id"), "="),
            (func.tstzrange(text("starts_at"), text("ends_at")), "&&"),
            name="ex_visit_caregiver_overlap",
            using="gist",
            where=text(_ACTIVE_SQL),
        ).ddl_if(dialect="postgresql"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=new_id)
    order_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("care_order.id", ondelete="CASCADE"), index=True
    )
    caregiver_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("caregiver.id", ondelete="RESTRICT"))
    status: Mapped[VisitStatus] = mapped_column(
        Enum(VisitStatus, native_enum=False, create_constraint=True, name="status", length=16),
        default=VisitStatus.assigned,
    )
    # The caregiver's booked slot; shrinks to the real end at check-out, never grows.
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    assigned_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("account.id", ondelete="SET NULL")
    )
    checked_in_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    check_in_lat: Mapped[float | None] = mapped_column(Float)
    check_in_lon: Mapped[float | None] = mapped_column(Float)
    check_in_distance_m: Mapped[float | None] = mapped_column(Float)
    check_in_override_reason: Mapped[str | None] = mapped_column(Text)
    checked_in_by: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("account.id", ondelete="SET NULL")
    )
    checked_out_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    actual_duration_min: Mapped[int | None] = mapped_column(Integer)
    end_reason: Mapped[str | None] = mapped_column(Text)
