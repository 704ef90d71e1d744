"""What the operator console (/ops) reads: named queue rows, the district map, today's KPIs and
the ranked candidates for a manual assignment. Operators only, scoped to their district."""

import datetime as dt
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

from app.models import OrderStatus, Priority
from app.schemas.common import Output
from app.schemas.orders import OrderDetail, OrderQueueItem


class CaregiverName(Output):
    id: uuid.UUID
    name: str


class PeopleNames(BaseModel):
    """Who an order is about, by name (a person reads the console, not ids)."""

    senior_name: str = ""
    senior_neighbourhood: str = ""
    caregiver_name: str | None = Field(
        default=None, description="The assigned caregiver's display name (caregiver_id)."
    )
    offered: list[CaregiverName] = Field(
        default_factory=list, description="Caregivers holding an open offer, with their names."
    )


class QueueRow(OrderQueueItem, PeopleNames):
    """A row of the operator queue with names. ``response_due_at`` is the timer's target (UTC):
    an emergency's response target (``created_at`` + ``emergency_response_target_min``, until
    the caregiver checks in), an ASAP order's longest wait for its priority (``created_at`` +
    the engine's ``asap_max_wait_s``), or a windowed order's last start that still fits its
    window (``window_end`` - duration). Given until check-in (pending, offered, escalated and
    assigned orders), null once the visit has started."""


class OrderView(OrderDetail, PeopleNames):
    """Operator order detail with names (see ``OrderDetail``)."""


class CaregiverState(StrEnum):
    """What a caregiver on duty is doing, the most engaged first: ``in_progress`` (a visit
    checked in), ``assigned`` (holds a visit not yet started), ``offered`` (holds an open
    offer), ``idle`` (none of these)."""

    idle = "idle"
    offered = "offered"
    assigned = "assigned"
    in_progress = "in_progress"


class MapOrder(BaseModel):
    """An open order at the senior's home (exact coordinates: every read is audit-logged)."""

    order_id: uuid.UUID
    senior_id: uuid.UUID
    senior_name: str
    lat: float = Field(
        description="Degrees north (WGS 84), rounded to 0.001 (about 110 m): never a door."
    )
    lon: float = Field(description="Degrees east (WGS 84), rounded to 0.001.")
    status: OrderStatus
    priority: Priority


class MapCaregiver(BaseModel):
    id: uuid.UUID
    name: str
    lat: float | None = Field(description="Last reported position; null if never reported.")
    lon: float | None
    position_at: datetime | None = Field(description="When the position was reported (UTC).")
    state: CaregiverState


class MapLine(BaseModel):
    """A caregiver linked to an order; both ends are on the map."""

    order_id: uuid.UUID
    caregiver_id: uuid.UUID
    kind: Literal["offered", "assigned", "in_progress"] = Field(
        description="An open offer, an assigned visit, or a visit under way."
    )


class MapOut(BaseModel):
    """A snapshot of the district for a map drawn from coordinates (no tiles)."""

    district_id: uuid.UUID
    as_of: datetime
    orders: list[MapOrder]
    caregivers: list[MapCaregiver]
    lines: list[MapLine]


class KpisOut(BaseModel):
    """Today's figures for the district; *today* is the district's local date.

    Two kinds of figure: those about the orders *placed* today (``orders_placed``, ``filled``,
    ``fill_rate``, the first-offer and arrival times), and counts of what *happened* today
    whatever day the order was placed (``escalations``, ``no_shows``, ``completed``)."""

    district_id: uuid.UUID
    date: dt.date = Field(description="The district's local date.")
    time_zone: str = Field(description="The district's IANA time zone.")
    day_start: datetime = Field(description="Local midnight starting the day (UTC).")
    day_end: datetime = Field(description="Local midnight ending the day (UTC).")
    as_of: datetime
    orders_placed: int = Field(description="Orders placed today (created_at within the day).")
    asap_placed: int = Field(
        description="Of those, the ones to be served as soon as possible (SOS included); an "
        "order booked for a later window is offered only as the window nears."
    )
    filled: int = Field(
        description="Of the ASAP ones, those now assigned, in progress or completed "
        "(an order cancelled or still waiting is not filled)."
    )
    fill_rate: float | None = Field(
        description="filled / asap_placed (0..1); null when no ASAP order was placed."
    )
    first_offer_median_s: float | None = Field(
        description="Median seconds from placing to the first offer, over today's ASAP orders "
        "that were offered; null if none."
    )
    offered: int = Field(description="Today's ASAP orders that received at least one offer.")
    sos_placed: int = Field(description="Emergency orders placed today.")
    sos_first_offer_p95_s: float | None = Field(
        description="95th percentile (nearest rank) of seconds from placing an emergency to "
        "its first offer; null if none was offered."
    )
    sos_arrival_p95_s: float | None = Field(
        description="95th percentile (nearest rank) of seconds from placing an emergency to "
        "the caregiver's check-in; null if none has arrived."
    )
    sos_arrived: int = Field(description="Today's emergencies checked in so far.")
    escalations: int = Field(description="Escalations to the operator queue today.")
    no_shows: int = Field(
        description="The district's orders whose caregiver was flagged today for not checking in."
    )
    completed: int = Field(description="Visits checked out today.")


class BrokenRule(BaseModel):
    code: str = Field(description="The rule, e.g. missing_skill, off_duty, outside_radius.")
    detail: str
    overridable: bool = Field(description="Soft: an operator may assign with override + reason.")


class CandidateOut(BaseModel):
    caregiver_id: uuid.UUID
    name: str
    phone: str = Field(
        description="The caregiver's phone, so the duty desk can call them before assigning "
        "(as in GET /v1/ops/caregivers; two caregivers may share a name)."
    )
    provider_name: str = Field(description="The name of the provider the caregiver works for.")
    verdict: Literal["feasible", "overridable", "excluded"] = Field(
        description="feasible: breaks no rule; overridable: breaks only soft rules (assign "
        "with override and a reason); excluded: a hard rule forbids it."
    )
    rank: int | None = Field(description="1 = the engine's first choice; feasible only.")
    distance_m: int | None = Field(
        description="Straight line from the caregiver's position to the senior's home (m); "
        "null when no position was reported."
    )
    travel_s: int | None = Field(
        description="The engine's travel time to the visit (s), from the caregiver's position "
        "or the visit before; feasible and overridable only."
    )
    starts_at: datetime | None = Field(
        description="Where the engine would start the visit (UTC); feasible and overridable "
        "(after the override) only."
    )
    cost: float | None = Field(description="The engine's cost (lower is better); ranked only.")
    parts: dict[str, float] | None = Field(description="The cost's parts; they add up to it.")
    rules: list[BrokenRule] = Field(
        description="Every rule the caregiver breaks, soft ones first; a hard one ends the list."
    )


class CandidatesOut(BaseModel):
    order_id: uuid.UUID
    as_of: datetime
    time_zone: str
    candidates: list[CandidateOut] = Field(
        description="Feasible caregivers by the engine's rank, then overridable ones, then "
        "excluded ones, each group nearest first."
    )
