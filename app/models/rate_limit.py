"""Counters behind the abuse limits (``app/services/limits.py``), shared by every API worker.

Times here are UTC epoch seconds (float), not timestamps: the limiter's one atomic statement
does arithmetic on them, and that SQL must read the same on SQLite and PostgreSQL.
"""

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base


class RateLimit(Base):
    """One key's state: a request rate (``tat_s``, GCRA's theoretical arrival time) or a
    log-in back-off (``failures``, ``last_failure_s``, ``blocked_until_s``)."""

    __tablename__ = "rate_limit"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    tat_s: Mapped[float] = mapped_column(Float, default=0.0)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    last_failure_s: Mapped[float] = mapped_column(Float, default=0.0)
    blocked_until_s: Mapped[float] = mapped_column(Float, default=0.0)
