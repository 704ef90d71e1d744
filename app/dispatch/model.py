"""The engine's inputs and outputs: plain frozen values, times as UTC epoch seconds.

Nothing here knows about the database, FastAPI or the clock; the live dispatcher and the
simulator build these from whatever they have and pass ``now`` in.
"""

from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum

Id = Hashable


class Priority(StrEnum):
    normal = "normal"
    urgent = "urgent"
    emergency = "emergency"


@dataclass(frozen=True, slots=True)
class Booking:
    """A visit already on a caregiver's day: when, and where it is."""

    start: float
    end: float
    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class Caregiver:
    id: Id
    lat: float
    lon: float
    position_at: float
    on_duty: bool = True
    # skill -> certificate expiry (epoch seconds), None when the skill needs no certificate
    skills: Mapping[str, float | None] = field(default_factory=dict)
    shifts: tuple[tuple[float, float], ...] = ()
    bookings: tuple[Booking, ...] = ()  # sorted by start, never overlapping
    languages: frozenset[str] = frozenset()
    gender: str | None = None
    radius_m: float = 5000.0
    served: Mapping[Id, int] = field(default_factory=dict)  # senior -> visits done
    visits_today: int = 0  # completed today (today's bookings are in ``bookings``)
    daily_cap: int = 8
    rating: float | None = None


@dataclass(frozen=True, slots=True)
class Order:
    id: Id
    senior_id: Id
    lat: float
    lon: float
    duration_s: float
    skills: frozenset[str] = frozenset()
    priority: Priority = Priority.normal
    # Both None: as soon as possible. Otherwise the visit must fit inside the window.
    window_start: float | None = None
    window_end: float | None = None
    preferred: frozenset[Id] = frozenset()
    blocked: frozenset[Id] = frozenset()
    gender: str | None = None
    gender_strict: bool = False
    languages: frozenset[str] = frozenset()

    @property
    def asap(self) -> bool:
        return self.window_start is None
