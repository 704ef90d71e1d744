"""Seniors: who orders care, where they live, and what a caregiver must know."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, CheckConstraint, Enum, Float, ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models.types import UTCDateTime, utcnow


class Gender(StrEnum):
    female = "female"
    male = "male"
    other = "other"


class PreferenceKind(StrEnum):
    preferred = "preferred"
    blocked = "blocked"


class Senior(Base):
    __tablename__ = "senior"
    __table_args__ = (
        CheckConstraint("lat BETWEEN -90 AND 90", name="lat_range"),
        CheckConstraint("lon BETWEEN -180 AND 180", name="lon_range"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), primary_key=True
    )
    district_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("district.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(32), unique=True)
    gender: Mapped[Gender | None] = mapped_column(
        Enum(Gender, native_enum=False, create_constraint=True, name="gender", length=16)
    )
    address: Mapped[str] = mapped_column(String(255))
    neighbourhood: Mapped[str] = mapped_column(String(120))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    preferred_gender: Mapped[Gender | None] = mapped_column(
        Enum(Gender, native_enum=False, create_constraint=True, name="preferred_gender", length=16)
    )
    gender_strict: Mapped[bool] = mapped_column(Boolean, default=False)
    care_notes: Mapped[str] = mapped_column(Text, default="")
    emergency_contacts: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CaregiverPreference(Base):
    """A senior's preferred or blocked caregiver."""

    __tablename__ = "caregiver_preference"

    senior_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("senior.id", ondelete="CASCADE"), primary_key=True
    )
    caregiver_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("caregiver.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    kind: Mapped[PreferenceKind] = mapped_column(
        Enum(PreferenceKind, native_enum=False, create_constraint=True, name="kind", length=16)
    )
