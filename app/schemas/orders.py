"""Orders, as seniors, caregivers, providers and operators see them."""

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import ConfigDict, Field, model_validator

from app.models import OrderStatus, Priority
from app.schemas.common import AwareDatetime, Bool, Input, Int, Output
from app.schemas.offers import DecisionOut
from app.schemas.people import SeniorProfile

ServiceCode = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z_]+$")]


class OrderIn(Input):
    """ASAP (no window) or a time window within which the visit should happen."""

    service_code: ServiceCode
    priority: Priority = Priority.normal
    window_start: AwareDatetime | None = None
    window_end: AwareDatetime | None = None
    duration_min: Annotated[Int | None, Field(ge=5, le=12 * 60)] = Field(
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
    score: Annotated[Int, Field(ge=1, le=5)]
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
    override: Bool = Field(
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
    """An order's own fields, as every audience may see them (seniors get ``SeniorOrderOut``)."""

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


class SeniorStatus(StrEnum):
    """Where the senior's order stands, in the senior's terms: a stable code for pages and
    apps to translate (``SENIOR_STATUS_TEXT`` holds the English default)."""

    finding_caregiver = "finding_caregiver"  # pending
    asking_caregiver = "asking_caregiver"  # offered
    caregiver_coming = "caregiver_coming"  # assigned: "<caregiver.display_name> is coming"
    caregiver_late = "caregiver_late"  # assigned, not checked in past the no-show grace
    caregiver_here = "caregiver_here"  # in_progress
    visit_done = "visit_done"  # completed
    duty_desk_arranging = "duty_desk_arranging"  # escalated, not an emergency
    duty_desk_on_it = "duty_desk_on_it"  # escalated SOS (emergency)
    cancelled = "cancelled"


SENIOR_STATUS_TEXT: dict[SeniorStatus, str] = {
    SeniorStatus.finding_caregiver: "Finding a caregiver.",
    SeniorStatus.asking_caregiver: "Asking a caregiver.",
    SeniorStatus.caregiver_coming: "Your caregiver is coming.",
    SeniorStatus.caregiver_late: "Your caregiver is late; the duty desk is looking into it.",
    SeniorStatus.caregiver_here: "Your caregiver is with you.",
    SeniorStatus.visit_done: "The visit is done.",
    SeniorStatus.duty_desk_arranging: "The duty desk is arranging a caregiver for you.",
    SeniorStatus.duty_desk_on_it: "The duty desk has your call and is finding help.",
    SeniorStatus.cancelled: "This order was cancelled.",
}


class CaregiverForSenior(Output):
    """The caregiver who will come to the door (from assignment on; never while only offered)."""

    id: uuid.UUID
    display_name: str = Field(description="The caregiver's name as the senior should see it.")
    initial: str = Field(
        description="First character of the name (upper-cased), for a photo placeholder."
    )


class SeniorOrderOut(OrderOut):
    """An order as its senior sees it: who is coming, when, and the status in plain words.
    ``cancel_reason`` is shown only when the senior cancelled (an operator's reason is theirs)."""

    caregiver: CaregiverForSenior | None = Field(
        description="Null until a caregiver is assigned (an offer is not a promise), and after "
        "the visit is undone (withdrawn, no-show, cancelled)."
    )
    planned_start: datetime | None = Field(
        description="UTC. The assigned visit's booked start (after check-in: when it began)."
    )
    eta: datetime | None = Field(
        description="UTC. When the caregiver is expected at the door: for an ASAP order (a time "
        "window has its planned_start instead) while assigned and not yet checked in, else null. It is the visit's booked start, fixed at assignment: "
        "for an ASAP order the moment of assignment (offer accepted, or assigned by the engine "
        "or an operator) plus the engine's travel estimate in seconds from the caregiver's last "
        "reported position (great-circle metres x detour factor / speed; 1.35 and 4.2 m/s by "
        "default), or later if the caregiver first finishes another visit. Not updated from live positions: it may lie in the past when the "
        "caregiver is late."
    )
    status_code: SeniorStatus = Field(
        description="Stable senior-facing status; translate it, do not parse status_text."
    )
    status_text: str = Field(description="English default sentence for status_code.")


class SeniorOrderDetail(SeniorOrderOut):
    history: list[HistoryOut]
