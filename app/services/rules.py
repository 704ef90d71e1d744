"""One set of rules for every assignment: an operator's choice judged by the engine itself.

A manual assignment or reassignment runs the engine's reference ``place`` on the engine values
``fleet`` builds for that one caregiver (the dispatcher's own translation from rows): skills
and certificates over the whole visit, shift, the caregiver's other visits *with the engine's
travel between them*, the senior's blocks and strict gender, the daily cap, the radius. The
visit starts where the engine places it: the earliest feasible start in the window, after the
travel that gets the caregiver there.

``place`` names the first rule a caregiver breaks. To tell an operator everything that stands
in the way, a *soft* rule is relaxed in the engine's inputs and the caregiver judged again,
until the visit fits or a *hard* rule stops it:

- **hard** (never overridable): the skill, a certificate valid until the visit ends, the
  senior's block list and strict gender, overlapping visits and no time to travel between
  them. What they protect (the senior's safety and wishes, the caregiver's other seniors) is
  not the operator's to trade.
- **soft** (overridable with ``override`` and a reason, which is recorded): off duty, no or an
  out-of-date position (ASAP orders: the engine cannot tell how far away the caregiver is;
  the visit is then placed as if they were at the door), outside their shift, outside their
  service radius, at the daily visit cap, and a window with no room left for the visit from
  now (the visit is then booked as soon as it can be). These describe what the caregiver said
  about their availability or what the service promised, and an operator who phoned the
  caregiver and the senior knows better.

Being on duty and a position describe *now*: they bind an ASAP visit (the caregiver sets out
now), not a visit booked for later, which the shift governs.
"""

import math
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from app.dispatch import model as engine
from app.dispatch.constraints import DAY_S, Exclusion, Placement, latest_end, place
from app.dispatch.geo import haversine_m
from app.dispatch.policy import DispatchConfig
from app.dispatch.travel import StraightLine
from app.errors import Conflict
from app.models import Order
from app.services import fleet

# A travel model in which every trip is instant: "would it fit without travel?"
_NO_TRAVEL = StraightLine(speed_mps=math.inf)
_ENOUGH = 1e9  # a daily cap nobody reaches, a radius that covers the planet


@dataclass(frozen=True, slots=True)
class Broken:
    """A rule the caregiver breaks for this visit: a stable code and plain words."""

    code: str
    detail: str
    soft: bool
    extra: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "detail": self.detail, "overridable": self.soft}


@dataclass(frozen=True, slots=True)
class Verdict:
    """Where the visit goes, and which soft rules the operator's override set aside."""

    start: datetime
    travel_s: float
    distance_m: float | None  # None when the caregiver's position is unknown
    overridden: tuple[Broken, ...]
    time_zone: str


def _local(t: float, tz: ZoneInfo) -> str:
    return f"{datetime.fromtimestamp(t, tz):%Y-%m-%d %H:%M} ({tz.key})"


@dataclass(frozen=True, slots=True)
class Judged:
    """One caregiver judged for one order: where the visit would go once the soft rules in
    ``broken`` are set aside (``None`` when a hard rule, the last in ``broken``, stops it)."""

    caregiver: engine.Caregiver  # as the engine sees them (a booked visit: on duty)
    unlocated: bool  # no position reported: distances and travel are not known
    placement: Placement | None
    broken: tuple[Broken, ...]

    @property
    def hard(self) -> bool:
        return any(not b.soft for b in self.broken)


@dataclass(frozen=True, slots=True)
class Judging:
    """The order and the district's settings as the engine sees them, with every caregiver
    asked about judged."""

    order: engine.Order
    config: DispatchConfig
    time_zone: ZoneInfo
    judged: list[Judged]


async def judge(
    session: AsyncSession,
    order: Order,
    *,
    now: datetime,
    config: DispatchConfig,
    ids: list[uuid.UUID] | None = None,
) -> Judging:
    """Judge the district's active caregivers (or only ``ids``) for ``order`` by the engine's
    rules, listing every rule each one breaks (soft ones first, until a hard one stops them or
    the visit fits). Pure Python (the engine's reference ``place``): no compiled kernels."""
    tz = await fleet.district_zone(session, order.district_id)
    cfg = fleet.district_config(config, tz, now)
    [want] = await fleet.orders(session, [order])
    roster = await fleet.caregivers(
        session,
        district_id=order.district_id,
        senior_ids={order.senior_id},
        now=now,
        tz=tz,
        everyone=True,
        ids=ids,
        until=(order.window_end or now) + timedelta(days=1),
        stand_in=(order.lat, order.lon),
    )
    t = now.timestamp()
    judged = []
    for caregiver in roster.caregivers:
        if not want.asap:
            caregiver = replace(caregiver, on_duty=True)
        unlocated = caregiver.id in roster.unlocated
        placement, broken = _judge_one(want, caregiver, t, cfg, tz, unlocated)
        judged.append(Judged(caregiver, unlocated, placement, broken))
    return Judging(want, cfg, tz, judged)


def _judge_one(
    want: engine.Order,
    caregiver: engine.Caregiver,
    t: float,
    cfg: DispatchConfig,
    tz: ZoneInfo,
    unlocated: bool,
) -> tuple[Placement | None, tuple[Broken, ...]]:
    broken: list[Broken] = []
    for _ in range(len(Exclusion) + 2):  # each round sets aside one more soft rule
        verdict = place(want, caregiver, t, cfg)
        if isinstance(verdict, Placement):
            return verdict, tuple(broken)
        rule, caregiver, want = _relax(verdict, want, caregiver, t, cfg, tz, unlocated)
        broken.append(rule)
        if not rule.soft:
            return None, tuple(broken)
    raise AssertionError("the rules did not settle")  # pragma: no cover (finite set of rules)


async def check(
    session: AsyncSession,
    order: Order,
    caregiver_id: uuid.UUID,
    *,
    now: datetime,
    config: DispatchConfig,
    override: bool,
) -> Verdict:
    """Judge ``caregiver_id`` (an active caregiver of the order's district) for ``order`` by
    the engine's rules; 409 ``Conflict`` naming the rule when a hard rule is broken, or a soft
    one without ``override``. The conflict lists every rule found in ``rules``."""
    judging = await judge(session, order, now=now, config=config, ids=[caregiver_id])
    [judged] = judging.judged
    broken = list(judged.broken)
    if judged.placement is None:
        raise _conflict(broken[-1], broken)
    if broken and not override:
        first = broken[0]
        raise _conflict(
            first,
            broken,
            suffix=" An operator may assign anyway with override and a reason.",
        )
    return Verdict(
        start=datetime.fromtimestamp(judged.placement.start, UTC),
        travel_s=judged.placement.travel_s,
        distance_m=None if judged.unlocated else judged.placement.distance_m,
        overridden=tuple(broken),
        time_zone=judging.time_zone.key,
    )


def _conflict(rule: Broken, broken: list[Broken], *, suffix: str = "") -> Conflict:
    return Conflict(
        rule.detail + suffix,
        code=rule.code,
        extra={
            **rule.extra,
            "overridable": all(b.soft for b in broken),
            "rules": [b.as_json() for b in broken],
        },
    )


def _relax(
    why: Exclusion,
    want: engine.Order,
    c: engine.Caregiver,
    now: float,
    cfg: DispatchConfig,
    tz: ZoneInfo,
    unlocated: bool,
) -> tuple[Broken, engine.Caregiver, engine.Order]:
    """The rule ``place`` reported, in plain words, and (for a soft one) the inputs with it set
    aside so the next round finds what else stands in the way."""
    if why is Exclusion.off_duty:
        off = Broken("off_duty", "The caregiver is off duty.", soft=True)
        return off, replace(c, on_duty=True), want
    if why is Exclusion.blocked:
        detail = "The senior has asked not to be visited by this caregiver."
        return Broken("blocked", detail, soft=False), c, want
    if why is Exclusion.gender:
        detail = f"The senior accepts only {want.gender} caregivers."
        return Broken("gender_preference", detail, soft=False), c, want
    if why is Exclusion.skill:
        missing = sorted(want.skills - c.skills.keys())
        detail = f"The caregiver does not have the skill {', '.join(missing)} this visit needs."
        return Broken("missing_skill", detail, False, {"missing_skills": missing}), c, want
    if why is Exclusion.radius:
        km = haversine_m(c.lat, c.lon, want.lat, want.lon) / 1000
        detail = (
            f"The senior lives {km:.1f} km from where the caregiver is, outside their service "
            f"radius of {c.radius_m / 1000:.1f} km."
        )
        return Broken("outside_radius", detail, soft=True), replace(c, radius_m=_ENOUGH), want
    if why is Exclusion.stale_position:
        if unlocated:
            # Judged as if at the door from here on: the operator knows where they are.
            detail = (
                "The caregiver has not reported a position, so how soon they can be at the "
                "door cannot be told."
            )
            rule = Broken("no_position", detail, soft=True)
        else:
            detail = (
                f"The caregiver's last position is {(now - c.position_at) / 60:.0f} min old, so "
                "how soon they can be at the door cannot be told."
            )
            rule = Broken("stale_position", detail, soft=True)
        return rule, replace(c, position_at=now), want
    if why is Exclusion.shift:
        return _outside_shift(want, c, now, cfg)
    if why is Exclusion.reachable:
        return _unreachable(want, c, now, cfg, tz)
    if why is Exclusion.certificate:
        return _certificate(want, c, now, cfg, tz), c, want
    # Exclusion.daily_cap
    detail = f"The caregiver already has {c.daily_cap} visits that day (their daily cap)."
    return Broken("daily_cap", detail, soft=True), replace(c, daily_cap=int(_ENOUGH)), want


def _around_the_clock(
    want: engine.Order, c: engine.Caregiver, now: float, cfg: DispatchConfig
) -> engine.Caregiver:
    """``c`` as if in shift from now until well after the window."""
    return replace(c, shifts=((now - DAY_S, latest_end(want, now, cfg) + DAY_S),))


def _outside_shift(
    want: engine.Order, c: engine.Caregiver, now: float, cfg: DispatchConfig
) -> tuple[Broken, engine.Caregiver, engine.Order]:
    detail = "No shift of the caregiver covers the visit."
    return Broken("outside_shift", detail, soft=True), _around_the_clock(want, c, now, cfg), want


def _unreachable(
    want: engine.Order, c: engine.Caregiver, now: float, cfg: DispatchConfig, tz: ZoneInfo
) -> tuple[Broken, engine.Caregiver, engine.Order]:
    """``place`` found no gap in the caregiver's day for the visit. Find out why by setting
    aside one cause at a time: the shift (soft); the window, if even a free caregiver could
    not make it from where they are (soft); else the other visits, with the travel between
    them (hard)."""
    anytime = _around_the_clock(want, c, now, cfg)
    if place(want, anytime, now, cfg) is not Exclusion.reachable:
        detail = "The visit does not fit inside the caregiver's shift (with the travel there)."
        return Broken("outside_shift", detail, soft=True), anytime, want
    if place(want, replace(anytime, bookings=()), now, cfg) is Exclusion.reachable:
        return _outside_window(want, now, cfg, tz), c, _later(want, now, cfg)
    instant = replace(cfg, travel=_NO_TRAVEL)
    if place(want, anytime, now, instant) is not Exclusion.reachable:
        return _no_time_to_travel(want, c, now, cfg, tz), c, want
    detail = "The caregiver already has a visit at that time."
    return Broken("caregiver_busy", detail, soft=False), c, want


def _later(want: engine.Order, now: float, cfg: DispatchConfig) -> engine.Order:
    """``want`` with a day more to end by (the window, or an ASAP order's longest wait)."""
    return replace(want, window_end=latest_end(want, now, cfg) + DAY_S)


def _outside_window(want: engine.Order, now: float, cfg: DispatchConfig, tz: ZoneInfo) -> Broken:
    last = latest_end(want, now, cfg) - want.duration_s
    if want.asap:
        wait = cfg.asap_max_wait_s[want.priority] / 60
        detail = (
            f"From where the caregiver is, the visit could not start within the {wait:.0f} min "
            f"that {want.priority.value} orders may wait (by {_local(last, tz)})."
        )
    else:
        detail = f"The visit's window has no room left: it had to start by {_local(last, tz)}."
    return Broken("outside_window", detail, soft=True)


def _no_time_to_travel(
    want: engine.Order, c: engine.Caregiver, now: float, cfg: DispatchConfig, tz: ZoneInfo
) -> Broken:
    """The visit fits the caregiver's day only if travel took no time: say between what."""
    travel = cfg.travel
    window_start = want.window_start if want.window_start is not None else now
    window_end = latest_end(want, now, cfg)
    around = [
        b for b in c.bookings if b.end > window_start - DAY_S and b.start < window_end + DAY_S
    ]
    before = [b for b in around if b.end <= window_end - want.duration_s]
    after = [b for b in around if b.start >= window_start + want.duration_s]
    legs = []
    if before:
        b = before[-1]
        minutes = travel.seconds(b.lat, b.lon, want.lat, want.lon) / 60
        legs.append(f"{minutes:.0f} min from their visit ending {_local(b.end, tz)}")
    if after:
        b = after[0]
        minutes = travel.seconds(want.lat, want.lon, b.lat, b.lon) / 60
        legs.append(f"{minutes:.0f} min on to their visit starting {_local(b.start, tz)}")
    if not legs:
        minutes = travel.seconds(c.lat, c.lon, want.lat, want.lon) / 60
        legs.append(f"{minutes:.0f} min from where they are")
    return Broken(
        "no_time_to_travel",
        "No time to travel: with the travel the engine estimates ("
        + "; ".join(legs)
        + ") the visit does not fit between the caregiver's other visits inside its window.",
        soft=False,
    )


def _certificate(
    want: engine.Order, c: engine.Caregiver, now: float, cfg: DispatchConfig, tz: ZoneInfo
) -> Broken:
    """Which certificates lapse before the visit ends, in the district's dates."""
    placed = place(want, replace(c, skills=dict.fromkeys(c.skills)), now, cfg)
    end = (placed.start if isinstance(placed, Placement) else now) + want.duration_s
    lapsed = {
        s: expiry
        for s in sorted(want.skills)
        if (expiry := c.skills.get(s)) is not None and expiry < end
    }
    # The expiry is local midnight after the last valid date.
    through = {
        s: f"{datetime.fromtimestamp(expiry, tz) - timedelta(seconds=1):%Y-%m-%d}"
        for s, expiry in lapsed.items()
    }
    listed = "; ".join(f"{s} valid through {day}" for s, day in through.items())
    return Broken(
        "certificate_expired",
        f"The caregiver's certificate does not cover the whole visit ({listed}, {tz.key}); "
        f"the visit would end {_local(end, tz)}.",
        False,
        {"expired_skills": sorted(lapsed), "valid_through": through},
    )
