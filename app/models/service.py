"""The service catalogue: what a senior can order."""

from sqlalchemy import JSON, Boolean, CheckConstraint, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class Service(Base):
    __tablename__ = "service"
    __table_args__ = (
        CheckConstraint("default_duration_min > 0", name="duration_positive"),
        CheckConstraint("price_fen >= 0", name="price_not_negative"),
    )

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(String(255), default="")
    required_skills: Mapped[list[str]] = mapped_column(JSON, default=list)
    default_duration_min: Mapped[int] = mapped_column(Integer)
    price_fen: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
