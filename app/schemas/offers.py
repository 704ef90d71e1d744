"""Offers as a caregiver (or their provider's system) sees them: enough to decide, and no
address or care notes (those come with the visit, once the order is theirs)."""

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from app.models import OfferStatus, Priority
from app.schemas.common import Input, Output


class OfferOut(Output):
    id: uuid.UUID
    order_id: uuid.UUID
    caregiver_id: uuid.UUID
    status: OfferStatus
    service_code: str
    priority: Priority
    asap: bool
    window_start: datetime | None
    window_end: datetime | None
    duration_min: int
    neighbourhood: str = Field(description="Where, roughly; the address comes with the visit.")
    starts_at: datetime = Field(description="When the visit would start (to the minute).")
    travel_s: int = Field(description="Estimated travel from where you are (whole minutes).")
    distance_m: int = Field(description="Straight-line distance, rounded to 100 m.")
    created_at: datetime
    deadline: datetime
    expires_in_s: int = Field(description="Seconds left to answer (0 once past the deadline).")
    responded_at: datetime | None
    visit_id: uuid.UUID | None = Field(default=None, description="Once accepted.")


class DeclineIn(Input):
    reason: Annotated[str, Field(min_length=1, max_length=500)] = "declined"

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "Stuck in traffic on the ring road"}]}
    )


class DecisionOut(Output):
    """One dispatch decision with the engine's explanation: candidates with their cost parts
    (seconds-equivalents that add up to the cost), and how many each hard rule excluded
    (``excluded_scope``: ``examined`` by the search, the whole ``district``, or ``none``).
    Kind ``manual`` is an operator's assignment: who, where the engine placed the visit, and
    the rules overridden (``overridden``) with the operator's reason."""

    id: int
    kind: str
    caregiver_ids: list[str]
    reason: str | None
    explanation: dict[str, Any]
    at: datetime
