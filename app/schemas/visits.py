"""Visits as caregivers and providers see them.

Before assignment and after check-out a caregiver sees only distance and neighbourhood; from
assignment to check-out it also sees the exact address, phone and care notes (audited).
"""

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import ConfigDict, Field

from app.models import OrderStatus, Priority
from app.schemas.common import Input, Latitude, Longitude, Output, Reason


class SeniorContact(Output):
    name: str
    phone: str
    address: str
    lat: float
    lon: float
    care_notes: str
    emergency_contacts: list[dict[str, str]]


class VisitOut(Output):
    id: uuid.UUID
    order_id: uuid.UUID
    caregiver_id: uuid.UUID
    status: str
    order_status: OrderStatus
    service_code: str
    priority: Priority
    starts_at: datetime
    ends_at: datetime
    checked_in_at: datetime | None
    checked_out_at: datetime | None
    actual_duration_min: int | None
    neighbourhood: str
    distance_m: float | None = Field(description="From the caregiver's last known position.")
    senior: SeniorContact | None = Field(
        default=None, description="Only while the visit is assigned or in progress."
    )


class CheckInIn(Input):
    lat: Latitude
    lon: Longitude

    model_config = ConfigDict(json_schema_extra={"examples": [{"lat": 34.2655, "lon": 108.9081}]})


class OperatorCheckInIn(Input):
    reason: Reason

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"reason": "Caregiver's phone has no GPS; confirmed by call"}]
        }
    )


class CheckOutIn(Input):
    notes: Annotated[str, Field(max_length=2000)] = ""

    model_config = ConfigDict(json_schema_extra={"examples": [{"notes": "Bathed; skin fine."}]})
