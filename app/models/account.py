"""Districts and the accounts that log in (every role)."""

import uuid
from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, Enum, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, validates

from app.db import Base
from app.localtime import DEFAULT_TIME_ZONE, valid_time_zone
from app.models.types import UUID, UTCDateTime, new_id, utcnow


class Role(StrEnum):
    senior = "senior"
    caregiver = "caregiver"
    provider = "provider"
    operator = "operator"
    admin = "admin"


class District(Base):
    __tablename__ = "district"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=new_id)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    city: Mapped[str] = mapped_column(String(120))
    # IANA zone: the district's local dates (certificate validity, "today", daily caps).
    time_zone: Mapped[str] = mapped_column(
        String(64), default=DEFAULT_TIME_ZONE, server_default=DEFAULT_TIME_ZONE
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    @validates("time_zone")
    def _known_zone(self, _key: str, value: str) -> str:
        # Every way a district is made or changed goes through here, not only the API's schema.
        return valid_time_zone(value)


class Account(Base):
    """Who can authenticate. Profiles (senior, caregiver, provider) share the account's id."""

    __tablename__ = "account"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=new_id)
    role: Mapped[Role] = mapped_column(
        Enum(Role, native_enum=False, create_constraint=True, name="role", length=16)
    )
    login: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    display_name: Mapped[str] = mapped_column(String(120))
    district_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("district.id", ondelete="RESTRICT"), index=True
    )
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    # Stamped into every access token; raising it (password change, log-out everywhere,
    # disabling) makes every token issued before refused at once, on REST and open streams.
    token_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
