"""Browser sessions: what the pages' HttpOnly cookie stands for.

The cookie holds a random token; only its SHA-256 is stored, so a copy of the database cannot be
replayed as a session. A session slides: each use within ``web_session_idle_days`` keeps it alive
(stay logged in on that phone), up to ``web_session_max_days`` after log-in; log-out revokes it.
"""

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base
from app.models.types import UUID, UTCDateTime, new_id, utcnow


class WebSession(Base):
    __tablename__ = "web_session"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=new_id)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("account.id", ondelete="CASCADE"), index=True
    )
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Idle expiry (slides with use, never past ``absolute_expires_at``).
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    absolute_expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
