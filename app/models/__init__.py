"""Every table, imported here so Alembic and the app see one metadata."""

from app.db import Base
from app.models.account import Account, District, Role
from app.models.audit import AuditLog
from app.models.caregiver import Caregiver, CaregiverSkill, Shift
from app.models.idempotency import IdempotencyKey
from app.models.offer import DispatchDecision, Offer, OfferStatus
from app.models.order import (
    PRIORITY_RANK,
    TERMINAL_STATUSES,
    Order,
    OrderStatus,
    OrderStatusHistory,
    Priority,
)
from app.models.outbox import OutboxEvent
from app.models.provider import Provider
from app.models.rate_limit import RateLimit
from app.models.refresh_token import RefreshToken
from app.models.senior import CaregiverPreference, Gender, PreferenceKind, Senior
from app.models.service import Service
from app.models.visit import ACTIVE_VISIT_STATUSES, Visit, VisitStatus
from app.models.web_session import WebSession

__all__ = [
    "ACTIVE_VISIT_STATUSES",
    "PRIORITY_RANK",
    "TERMINAL_STATUSES",
    "Account",
    "AuditLog",
    "Base",
    "Caregiver",
    "CaregiverPreference",
    "CaregiverSkill",
    "DispatchDecision",
    "District",
    "Gender",
    "IdempotencyKey",
    "Offer",
    "OfferStatus",
    "Order",
    "OrderStatus",
    "OrderStatusHistory",
    "OutboxEvent",
    "PreferenceKind",
    "Priority",
    "Provider",
    "RateLimit",
    "RefreshToken",
    "Role",
    "Senior",
    "Service",
    "Shift",
    "Visit",
    "VisitStatus",
    "WebSession",
]
