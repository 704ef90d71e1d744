"""Audit trail of reads of seniors' personal data (DESIGN.md invariant 6)."""

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from app.deps import Principal
from app.models import AuditLog


def record_read(
    session: AsyncSession,
    principal: Principal,
    *,
    senior_id: uuid.UUID,
    action: str,
    fields: str,
    object_id: uuid.UUID | None,
    at: datetime,
) -> None:
    """One row: who read whose what, when. Commits with the request that read it."""
    session.add(
        AuditLog(
            actor_id=principal.id,
            actor_role=principal.role.value,
            senior_id=senior_id,
            action=action,
            fields=fields,
            object_id=str(object_id) if object_id else None,
            at=at,
        )
    )
