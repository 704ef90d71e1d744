"""Hard constraints: a caregiver who breaks one is never offered the order.

``place`` answers either where the visit would go (the earliest feasible start, with the
travel that gets there) or the first constraint that excludes the caregiver.
"""

from dataclasses import dataclass
from enum import StrEnum

from app.dispatch.geo import haversine_m
from app.dispatch.model import Caregiver, Order
from app.dispatch.policy import DispatchConfig

DAY_S = 86_400.0


class Exclusion(StrEnum):
    off_duty = "off_duty"
    blocked = "blocked"
    gender = "gender"
    skill = "skill"
    certificate = "certificate"
    radius = "radius"
    stale_position = "stale_position"
    shift = "shift"
    reachable = "reachable"
    daily_cap = "daily_cap"


@dataclass(frozen=True, slots=True)
class Placement:
    start: float  # when the visit would start
    travel_s: float  # travel to the senior from where the caregiver would come from
    distance_m: float  # from the caregiver's current position


def local_day(t: float, config: DispatchConfig) -> int:
    return int((t + config.utc_offset_s) // DAY_S)


def latest_end(order: Order, now: float, config: DispatchConfig) -> float:
    if order.window_end is not None:
        return order.window_end
    return now + config.asap_max_wait_s[order.priority] + order.duration_s


def place(
    order: Order, caregiver: Caregiver, now: float, config: DispatchConfig
) -> Placement | Exclusion:
    """The earliest feasible start for ``order`` in ``caregiver``'s day, or why there is none."""
    if not caregiver.on_duty:
        return Exclusion.off_duty
    if caregiver.id in order.blocked:
        return Exclusion.blocked
    if order.gender_strict and order.gender is not None and caregiver.gender != order.gender:
        return Exclusion.gender
    if not order.skills <= caregiver.skills.keys():
        return Exclusion.skill
    distance = haversine_m(caregiver.lat, caregiver.lon, order.lat, order.lon)
    if distance > caregiver.radius_m:
        return Exclusion.radius
    if order.asap and now - caregiver.position_at > config.max_position_age_s:
        return Exclusion.stale_position
    earliest = now if order.window_start is None else max(now, order.window_start)
    last_end = latest_end(order, now, config)
    duration = order.duration_s
    if not any(s < last_end and e > earliest and e - s >= duration for s, e in caregiver.shifts):
        return Exclusion.shift
    start, travel = _earliest_start(order, caregiver, now, earliest, last_end, config)
    if start is None:
        return Exclusion.reachable
    # Certificates must be valid for the whole visit.
    end = start + duration
    for skill in order.skills:
        expiry = caregiver.skills[skill]
        if expiry is not None and expiry < end:
            return Exclusion.certificate
    day = local_day(start, config)
    that_day = sum(1 for b in caregiver.bookings if local_day(b.start, config) == day)
    if day == local_day(now, config):
        that_day += caregiver.visits_today
    if that_day >= caregiver.daily_cap:
        return Exclusion.daily_cap
    return Placement(start=start, travel_s=travel, distance_m=distance)


def _earliest_start(
    order: Order,
    caregiver: Caregiver,
    now: float,
    earliest: float,
    last_end: float,
    config: DispatchConfig,
) -> tuple[float | None, float]:
    """Walk the gaps between bookings; in each, the earliest start that fits a shift, leaves
    time to travel on to the next booking, and ends by ``last_end``."""
    travel = config.travel
    duration = order.duration_s
    shifts = sorted(caregiver.shifts)
    upcoming = [b for b in caregiver.bookings if b.end > now]
    # Where the caregiver sets out from, and when: now from the current position, unless a
    # visit is under way (then from that visit, when it ends).
    if upcoming and upcoming[0].start <= now:
        first = upcoming.pop(0)
        origin = (first.end, first.lat, first.lon)
    else:
        origin = (now, caregiver.lat, caregiver.lon)
    for following in [*upcoming, None]:
        set_off, from_lat, from_lon = origin
        travel_in = travel.seconds(from_lat, from_lon, order.lat, order.lon)
        arrive = max(earliest, set_off + travel_in)
        for shift_start, shift_end in shifts:
            start = max(arrive, shift_start)
            end = start + duration
            if end > shift_end:
                continue
            if end > last_end:
                break
            if following is not None:
                onward = travel.seconds(order.lat, order.lon, following.lat, following.lon)
                if end + onward > following.start:
                    break
            return start, travel_in
        if following is None or following.start >= last_end:
            break
        origin = (following.end, following.lat, following.lon)
    return None, 0.0
