"""Caregivers: skills with certificates, shifts, duty and live position."""

import uuid
from datetime import date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Enum,
    Float,
    ForeignKey,
    Integer,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base
from app.models.senior import Gender
from app.models.types import UUID, UTCDateTime, new_id, utcnow


class Caregiver(Base):
    __tablename__ = "caregiver"
    __table_args__ = (
        CheckConstraint("service_radius_m > 0", name="radius_positive"),
        CheckConstraint("lat IS NULL OR lat BETWEEN -90 AND 90", name="lat_range"),
        CheckConstraint("lon IS NULL OR lon BETWEEN -180 AND 180", name="lon_range"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), primary_key=True
    )
    provider_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("provider.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(32))
    gender: Mapped[Gender] = mapped_column(
        Enum(Gender, native_enum=False, create_constraint=True, name="gender", length=16)
    )
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    service_radius_m: Mapped[int] = mapped_column(Integer, default=5000)
    daily_visit_cap: Mapped[int] = mapped_column(Integer, default=8)
    on_duty: Mapped[bool] = mapped_column(Boolean, default=False)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    position_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    rating_sum: Mapped[int] = mapped_column(Integer, default=0)
    rating_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    skills: Mapped[list["CaregiverSkill"]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="CaregiverSkill.skill"
    )
    shifts: Mapped[list["Shift"]] = relationship(
        lazy="raise", cascade="all, delete-orphan", order_by="Shift.starts_at"
    )


class CaregiverSkill(Base):
    __tablename__ = "caregiver_skill"

    caregiver_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("caregiver.id", ondelete="CASCADE"), primary_key=True
    )
    skill: Mapped[str] = mapped_column(String(40), primary_key=True)
    certificate_expires_on: Mapped[date | None] = mapped_column(Date)


class Shift(Base):
    __tablename__ = "shift"
    __table_args__ = (CheckConstraint("ends_at > starts_at", name="ends_after_start"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=new_id)
    caregiver_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("caregiver.id", ondelete="CASCADE"), index=True
    )
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
