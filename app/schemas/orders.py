"""Orders, as seniors, caregivers, providers and operators see them."""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from app.models import OrderStatus, Priority
from app.schemas.common import AwareDatetime, Input, Output
from app.schemas.offers import DecisionOut
from app.schemas.people import SeniorProfile

ServiceCode = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z_]+$")]


class OrderIn(Input):
    """ASAP (no window) or a time window within which the visit should happen."""

    service_code: ServiceCode
    priority: Priority = Priority.normal
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    duration_min: Annotated[int | None, Field(ge=5, le=12 * 60)] = Field(
        default=None, description="Defaults to the service's usual duration."
    )
    notes: Annotated[str, Field(max_length=2000)] = ""

    @model_validator(mode="after")
    def _window(self) -> "OrderIn":
        if (self.window_start is None) != (self.window_end is None):
            raise ValueError("give both window_start and window_end, or neither for ASAP")
        if self.window_start and self.window_end and self.window_end <= self.window_start:
            raise ValueError("window_end must be after window_start")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "service_code": "bathing",
                    "window_start": "2026-11-24T09:00:00+08:00",
                    "window_end": "2026-11-24T11:00:00+08:00",
                    "notes": "Please bring a shower chair.",
                },
                {"service_code": "meal_delivery"},
            ]
        }
    )


class RatingIn(Input):
    score: Annotated[int, Field(ge=1, le=5)]
    comment: Annotated[str, Field(max_length=1000)] = ""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"score": 5, "comment": "Very kind."}]}
    )


class AssignIn(Input):
    """The engine's rules judge the choice; a rule it breaks is a 409 whose ``code`` names it.
    Soft rules (off duty, no or an old position, outside shift, outside radius, daily cap, a
    window with no room left) may be overridden with ``override: true`` and a reason, which
    is recorded; hard ones (skill, certificate, the senior's block list and strict gender,
    overlapping visits, no time to travel) never."""

    caregiver_id: uuid.UUID
    reason: Annotated[str, Field(max_length=500)] = ""
    override: bool = Field(
        default=False, description="Assign despite the soft rules the caregiver breaks."
    )

    @model_validator(mode="after")
    def _override_needs_a_reason(self) -> "AssignIn":
        if self.override and not self.reason:
            raise ValueError("an override needs a reason (say why the rules are set aside)")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "caregiver_id": "00000000-0000-0000-0000-000000000000",
                    "reason": "Phoned her; she can go now",
                },
                {
                    "caregiver_id": "00000000-0000-0000-0000-000000000000",
                    "reason": "Off duty but lives next door; she agreed to go",
                    "override": True,
                },
            ]
        }
    )


class OrderOut(Output):
    """An order as its senior sees it."""

    id: uuid.UUID
    service_code: str
    priority: Priority
    status: OrderStatus
    asap: bool
    window_start: datetime | None
    window_end: datetime | None
    duration_min: int
    price_fen: int
    notes: str
    caregiver_id: uuid.UUID | None
    cancel_reason: str | None
    rating: int | None
    rating_comment: str | None
    created_at: datetime
    updated_at: datetime


class HistoryOut(Output):
    from_status: str | None
    to_status: str
    event: str
    actor_id: uuid.UUID | None
    reason: str | None
    at: datetime


class OrderQueueItem(OrderOut):
    """A row of the operator queue."""

    senior_id: uuid.UUID
    district_id: uuid.UUID
    escalation_reason: str | None
    redispatch_count: int
    escalated_at: datetime | None
    no_show_at: datetime | None = Field(
        description="When the caregiver was flagged for not checking in."
    )
    waiting_s: int = Field(default=0, description="Seconds since the order was placed.")
    response_due_at: datetime | None = Field(
        default=None,
        description="When the visit must start: the emergency response target, an ASAP "
        "order's longest wait, or the last start that fits the window.",
    )
    time_left_s: int | None = Field(
        default=None, description="Seconds until response_due_at (negative: overdue)."
    )
    offered_to: list[uuid.UUID] = Field(
        default_factory=list, description="Caregivers holding an open offer."
    )
    offer_deadline: datetime | None = Field(
        default=None, description="When the open offer expires."
    )


class VisitBrief(Output):
    id: uuid.UUID
    caregiver_id: uuid.UUID
    status: str
    starts_at: datetime
    ends_at: datetime
    checked_in_at: datetime | None
    checked_out_at: datetime | None
    check_in_distance_m: float | None
    check_in_override_reason: str | None


class OrderDetail(OrderQueueItem):
    """Operator view: the order, its history, visits, dispatch decisions with the engine's
    explanations, and the senior's contact (audited)."""

    history: list[HistoryOut]
    visits: list[VisitBrief]
    decisions: list[DecisionOut]
    senior: SeniorProfile


class SeniorOrderDetail(OrderOut):
    history: list[HistoryOut]
