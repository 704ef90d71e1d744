"""Seniors, providers, caregivers, districts and operators."""

import uuid
from datetime import date, datetime, timedelta
from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, computed_field, model_validator

from app import phones
from app.localtime import DEFAULT_TIME_ZONE, valid_time_zone
from app.models import Gender
from app.schemas.common import AwareDatetime, Bool, Input, Int, Latitude, Longitude, Output


def _e164(value: str) -> str:
    try:
        return phones.to_e164(value)
    except ValueError as exc:
        raise ValueError(
            "not a valid phone number (write it with its country code, e.g. +86 139 0000 0001)"
        ) from exc


# Any written form in; E.164 stored and returned (see app/phones.py).
Phone = Annotated[
    str,
    Field(
        min_length=3,
        max_length=32,
        pattern=r"^[+0-9][0-9 ().-]*$",
        description="A phone number in any usual written form (13900000001, +86 139 0000 0001, "
        "139-0000-0001, 0086...); numbers without a country code are read in the "
        "DOORSTEP_PHONE_REGION. Stored and returned in E.164 (+8613900000001).",
        examples=["+8613800000001"],
    ),
    AfterValidator(_e164),
]
Password = Annotated[str, Field(min_length=8, max_length=128)]
Name = Annotated[str, Field(min_length=1, max_length=120)]
Language = Annotated[str, Field(min_length=2, max_length=16, examples=["zh"])]
_MAX_SHIFT = timedelta(hours=24)

Skill = Annotated[str, Field(min_length=1, max_length=40, pattern=r"^[a-z_]+$")]


class EmergencyContact(Input):
    name: Name
    phone: Phone
    relation: Annotated[str, Field(max_length=40)] = ""


TimeZone = Annotated[
    str,
    Field(
        min_length=1,
        max_length=64,
        description="IANA time zone: the district's local dates (certificates, daily caps).",
        examples=[DEFAULT_TIME_ZONE],
    ),
    AfterValidator(valid_time_zone),
]


class DistrictIn(Input):
    code: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z0-9-]+$")]
    name: Name
    city: Name
    time_zone: TimeZone = DEFAULT_TIME_ZONE

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "code": "lianhu",
                    "name": "Lianhu District",
                    "city": "Xi'an",
                    "time_zone": "Asia/Shanghai",
                }
            ]
        }
    )


class DistrictPatch(Input):
    """Only the fields given change."""

    name: Name | None = None
    city: Name | None = None
    time_zone: TimeZone | None = None

    @model_validator(mode="after")
    def _not_null(self) -> "DistrictPatch":
        # Leaving a field out keeps it; null would erase a value the district must have.
        if nulls := sorted(k for k in self.model_fields_set if getattr(self, k) is None):
            raise ValueError(f"{', '.join(nulls)} cannot be null; leave a field out to keep it")
        return self

    model_config = ConfigDict(json_schema_extra={"examples": [{"time_zone": "Asia/Urumqi"}]})


class DistrictOut(Output):
    id: uuid.UUID
    code: str
    name: str
    city: str
    time_zone: str


class OperatorIn(Input):
    login: Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")]
    password: Password
    name: Name
    district_id: uuid.UUID

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "login": "op.wang",
                    "password": "a-long-passphrase",
                    "name": "Wang Fang",
                    "district_id": "00000000-0000-0000-0000-000000000000",
                }
            ]
        }
    )


class AccountOut(Output):
    id: uuid.UUID
    login: str
    display_name: str
    district_id: uuid.UUID | None


class SeniorIn(Input):
    """A community worker registers an elder; the elder logs in with phone and password."""

    name: Name
    phone: Phone
    password: Password
    gender: Gender | None = None
    address: Annotated[str, Field(min_length=1, max_length=255)]
    neighbourhood: Name
    lat: Latitude
    lon: Longitude
    languages: Annotated[list[Language], Field(max_length=10)] = []
    preferred_gender: Gender | None = None
    gender_strict: Bool = False
    care_notes: Annotated[str, Field(max_length=4000)] = ""
    emergency_contacts: Annotated[list[EmergencyContact], Field(max_length=5)] = []
    preferred_caregivers: Annotated[list[uuid.UUID], Field(max_length=20)] = []
    blocked_caregivers: Annotated[list[uuid.UUID], Field(max_length=50)] = []

    @model_validator(mode="after")
    def _lists_disjoint(self) -> "SeniorIn":
        # The same caregiver twice in one list means once.
        self.preferred_caregivers = list(dict.fromkeys(self.preferred_caregivers))
        self.blocked_caregivers = list(dict.fromkeys(self.blocked_caregivers))
        if set(self.preferred_caregivers) & set(self.blocked_caregivers):
            raise ValueError("a caregiver cannot be both preferred and blocked")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "Li Guilan",
                    "phone": "13900000001",
                    "password": "a-long-passphrase",
                    "gender": "female",
                    "address": "Building 3, Unit 2, Room 502, 118 Laodong Road",
                    "neighbourhood": "Tumen",
                    "lat": 34.2655,
                    "lon": 108.9081,
                    "languages": ["zh"],
                    "preferred_gender": "female",
                    "gender_strict": False,
                    "care_notes": "Type 2 diabetes; uses a walker.",
                    "emergency_contacts": [
                        {"name": "Li Wei", "phone": "13900000002", "relation": "son"}
                    ],
                }
            ]
        }
    )


class SeniorSummary(Output):
    """What an operator's list shows: no address, phone or notes."""

    id: uuid.UUID
    name: str
    neighbourhood: str
    district_id: uuid.UUID


class SeniorProfile(Output):
    """Full personal data; every read of it is audit-logged."""

    id: uuid.UUID
    name: str
    phone: str
    gender: Gender | None
    district_id: uuid.UUID
    address: str
    neighbourhood: str
    lat: float
    lon: float
    languages: list[str]
    preferred_gender: Gender | None
    gender_strict: bool
    care_notes: str
    emergency_contacts: list[dict[str, str]]
    preferred_caregivers: list[uuid.UUID] = []
    blocked_caregivers: list[uuid.UUID] = []


class ProviderIn(Input):
    login: Annotated[str, Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")]
    name: Name
    auto_accept: Bool = False

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"login": "provider.anxin", "name": "Anxin Home Care"}]}
    )


class ProviderOut(Output):
    id: uuid.UUID
    name: str
    district_id: uuid.UUID
    api_key_prefix: str
    auto_accept: bool


class ProviderCreated(ProviderOut):
    api_key: str = Field(description="Shown once; only its hash is stored.")


class SkillIn(Input):
    skill: Skill
    certificate_expires_on: date | None = None


class ShiftIn(Input):
    starts_at: AwareDatetime
    ends_at: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> "ShiftIn":
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        if self.ends_at - self.starts_at > _MAX_SHIFT:
            raise ValueError("a shift lasts at most 24 hours")
        return self

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"starts_at": "2026-11-24T08:00:00+08:00", "ends_at": "2026-11-24T16:00:00+08:00"}
            ]
        }
    )


class CaregiverIn(Input):
    provider_id: uuid.UUID
    name: Name
    phone: Phone
    password: Password
    gender: Gender
    languages: Annotated[list[Language], Field(max_length=10)] = []
    service_radius_m: Annotated[Int, Field(ge=100, le=100_000)] = 5000
    daily_visit_cap: Annotated[Int, Field(ge=1, le=30)] = 8
    skills: Annotated[list[SkillIn], Field(max_length=30)] = []
    shifts: Annotated[list[ShiftIn], Field(max_length=60)] = []

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "provider_id": "00000000-0000-0000-0000-000000000000",
                    "name": "Zhang Min",
                    "phone": "13700000001",
                    "password": "a-long-passphrase",
                    "gender": "female",
                    "languages": ["zh"],
                    "skills": [
                        {"skill": "bathing", "certificate_expires_on": "2027-06-30"},
                        {"skill": "personal_care"},
                    ],
                    "shifts": [
                        {
                            "starts_at": "2026-11-24T08:00:00+08:00",
                            "ends_at": "2026-11-24T16:00:00+08:00",
                        }
                    ],
                }
            ]
        }
    )


class SkillOut(Output):
    skill: str
    certificate_expires_on: date | None


class ShiftOut(Output):
    id: uuid.UUID
    starts_at: datetime
    ends_at: datetime


class CaregiverOut(Output):
    id: uuid.UUID
    provider_id: uuid.UUID
    name: str
    phone: str
    gender: Gender
    languages: list[str]
    service_radius_m: int
    daily_visit_cap: int
    on_duty: bool
    lat: float | None
    lon: float | None
    position_at: datetime | None
    rating_sum: int = Field(exclude=True)
    rating_count: int = Field(exclude=True)
    skills: list[SkillOut]
    shifts: list[ShiftOut]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def rating(self) -> float | None:
        """Average of the seniors' ratings (1-5); null until rated."""
        return round(self.rating_sum / self.rating_count, 2) if self.rating_count else None


class DutyIn(Input):
    on_duty: Bool

    model_config = ConfigDict(json_schema_extra={"examples": [{"on_duty": True}]})


class PositionIn(Input):
    lat: Latitude
    lon: Longitude
    recorded_at: AwareDatetime | None = Field(
        default=None, description="When the device took the fix; defaults to now."
    )

    model_config = ConfigDict(json_schema_extra={"examples": [{"lat": 34.2651, "lon": 108.9075}]})
