"""Seeded instance generators: a 20 km x 20 km district and a 100,000-caregiver city.

Both are built around Xi'an (Lianhu district) at the same density, about 25 caregivers per
square kilometre, with a denser core: a fifth of the caregivers cluster around a few
neighbourhood centres, the rest spread evenly. Days look like a working morning: shifts that
started up to six hours ago, a third of caregivers with visits already booked (some under
way), a few stale positions, expired certificates, seniors with history and wishes.
"""

import math
import random
from dataclasses import dataclass

from app.dispatch.index import M_PER_DEG_LAT
from app.dispatch.model import Booking, Caregiver, Order, Priority

CENTRE = (34.2655, 108.9081)
NOW = 1_795_150_800.0  # 2026-11-18 09:00 in Xi'an (UTC+8)
H = 3600.0
SERVICES = {  # service -> (skills it needs, duration range in minutes)
    "meal": ((), (20, 40)),
    "cleaning": (("cleaning",), (60, 120)),
    "bathing": (("bathing",), (45, 75)),
    "nursing": (("nursing",), (30, 60)),
    "medication": (("nursing",), (15, 30)),
    "escort": (("escort",), (60, 180)),
    "rehabilitation": (("rehab",), (45, 90)),
    "company": ((), (60, 120)),
}
SKILLS = ("cleaning", "bathing", "nursing", "escort", "rehab", "first_aid")
CERTIFIED = {"bathing", "nursing", "first_aid"}


@dataclass(frozen=True, slots=True)
class Area:
    """A square around ``CENTRE``, ``side_m`` metres across."""

    side_m: float

    def point(self, rng: random.Random) -> tuple[float, float]:
        half = self.side_m / 2
        return self.offset(rng.uniform(-half, half), rng.uniform(-half, half))

    def offset(self, north_m: float, east_m: float) -> tuple[float, float]:
        lat = CENTRE[0] + north_m / M_PER_DEG_LAT
        lon = CENTRE[1] + east_m / (M_PER_DEG_LAT * math.cos(math.radians(CENTRE[0])))
        return lat, lon


DISTRICT = Area(20_000.0)


def area_for(caregivers: int, per_km2: float = 25.0) -> Area:
    return Area(math.sqrt(caregivers / per_km2) * 1000.0)


def caregivers(
    n: int, seed: int, area: Area, *, on_duty: float = 1.0, seniors: int = 0
) -> list[Caregiver]:
    """``n`` caregivers spread over ``area``; ``on_duty`` is the share on duty now."""
    rng = random.Random(seed)
    half = area.side_m / 2
    centres = [(rng.uniform(-half, half), rng.uniform(-half, half)) for _ in range(12)]
    seniors = seniors or n * 2
    fleet = []
    for i in range(n):
        if rng.random() < 0.2:
            cy, cx = rng.choice(centres)
            north = min(half, max(-half, rng.gauss(cy, area.side_m / 40)))
            east = min(half, max(-half, rng.gauss(cx, area.side_m / 40)))
            lat, lon = area.offset(north, east)
        else:
            lat, lon = area.point(rng)
        held = rng.sample(SKILLS, rng.randint(2, 5))
        skills: dict[str, float | None] = {}
        for skill in held:
            if skill in CERTIFIED:
                expired = rng.random() < 0.05
                skills[skill] = NOW - 24 * H if expired else NOW + rng.uniform(30, 700) * 24 * H
            else:
                skills[skill] = None
        working = rng.random() < on_duty
        shift_start = NOW - rng.uniform(0, 6) * H
        shifts = [(shift_start, shift_start + 8 * H)]
        if rng.random() < 0.3:
            shifts.append((shift_start + 24 * H, shift_start + 32 * H))
        bookings: list[Booking] = []
        if rng.random() < 0.33:
            t = NOW + rng.uniform(-1, 1) * H
            for _ in range(rng.randint(1, 3)):
                length = rng.uniform(0.5, 1.5) * H
                blat, blon = area.offset(
                    (lat - CENTRE[0]) * M_PER_DEG_LAT + rng.uniform(-2000, 2000),
                    (lon - CENTRE[1]) * M_PER_DEG_LAT * math.cos(math.radians(CENTRE[0]))
                    + rng.uniform(-2000, 2000),
                )
                bookings.append(Booking(t, t + length, blat, blon))
                t += length + rng.uniform(0.3, 1.5) * H
        stale = rng.random() < 0.03
        fleet.append(
            Caregiver(
                id=i,
                lat=lat,
                lon=lon,
                position_at=NOW - (rng.uniform(31, 120) if stale else rng.uniform(0, 20)) * 60,
                on_duty=working,
                skills=skills,
                shifts=tuple(shifts),
                bookings=tuple(bookings),
                languages=frozenset(
                    ["zh"]
                    + (["sxn"] if rng.random() < 0.3 else [])
                    + (["en"] if rng.random() < 0.05 else [])
                ),
                gender="female" if rng.random() < 0.7 else "male",
                radius_m=rng.uniform(3000, 8000),
                served={
                    rng.randrange(seniors): rng.randint(1, 5) for _ in range(rng.randint(0, 4))
                },
                visits_today=rng.randint(0, 3),
                daily_cap=8,
                rating=None if rng.random() < 0.1 else round(rng.uniform(3.0, 5.0), 1),
            )
        )
    return fleet


def orders(
    n: int,
    seed: int,
    area: Area,
    *,
    fleet_size: int,
    seniors: int = 0,
    scheduled: float = 0.0,
    priorities: tuple[float, float] = (0.25, 0.05),
) -> list[Order]:
    """``n`` orders: ASAP ones, and a share ``scheduled`` with a window later today."""
    rng = random.Random(seed)
    seniors = seniors or fleet_size * 2
    urgent, emergency = priorities
    made = []
    for i in range(n):
        service = rng.choice(list(SERVICES))
        skills, (shortest, longest) = SERVICES[service]
        roll = rng.random()
        priority = (
            Priority.emergency
            if roll < emergency
            else Priority.urgent
            if roll < emergency + urgent
            else Priority.normal
        )
        if priority is Priority.emergency:
            skills = ("first_aid",)
        duration = rng.uniform(shortest, longest) * 60
        window: tuple[float | None, float | None] = (None, None)
        if priority is Priority.normal and rng.random() < scheduled:
            start = NOW + rng.uniform(1, 8) * H
            # Wide enough for the visit (a narrower window is refused when ordered).
            window = (start, start + max(rng.choice([1, 2, 4]) * H, duration + 1800))
        lat, lon = area.point(rng)
        made.append(
            Order(
                id=i,
                senior_id=rng.randrange(seniors),
                lat=lat,
                lon=lon,
                duration_s=duration,
                skills=frozenset(skills),
                priority=priority,
                window_start=window[0],
                window_end=window[1],
                preferred=frozenset(rng.randrange(fleet_size) for _ in range(rng.randint(1, 2)))
                if rng.random() < 0.1
                else frozenset(),
                blocked=frozenset([rng.randrange(fleet_size)])
                if rng.random() < 0.05
                else frozenset(),
                gender="female" if rng.random() < 0.1 else None,
                gender_strict=rng.random() < 0.1,
                languages=frozenset(["sxn"]) if rng.random() < 0.2 else frozenset(["zh"]),
            )
        )
    return made
