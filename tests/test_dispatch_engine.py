"""The pure engine: never an infeasible proposal, same input same output, explanations add
up, and the edge cases operators meet. No database here."""

import math
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.dispatch.assign import Candidate, rank
from app.dispatch.constraints import Exclusion, latest_end, local_day
from app.dispatch.geo import haversine_m
from app.dispatch.model import Booking, Caregiver, Order, Priority
from app.dispatch.policy import DispatchConfig

pytestmark = pytest.mark.pure

NOW = 1_795_000_000.0  # 2026-11-17, a fixed clock
H = 3600.0
CENTER = (34.2655, 108.9081)
CONFIG = DispatchConfig()
SKILLS = ["bathing", "nursing", "escort", "first_aid"]


def at(dlat: float, dlon: float) -> tuple[float, float]:
    return CENTER[0] + dlat, CENTER[1] + dlon


offsets = st.floats(min_value=-0.05, max_value=0.05, allow_nan=False)


@st.composite
def caregivers(draw: st.DrawFn, index: int) -> Caregiver:
    lat, lon = at(draw(offsets), draw(offsets))
    skills = {
        s: draw(st.none() | st.floats(min_value=NOW - 10 * H, max_value=NOW + 50 * H))
        for s in draw(st.sets(st.sampled_from(SKILLS)))
    }
    shift_start = NOW + draw(st.floats(min_value=-6 * H, max_value=6 * H))
    shifts = ((shift_start, shift_start + draw(st.floats(min_value=H, max_value=10 * H))),)
    bookings = []
    t = NOW + draw(st.floats(min_value=-2 * H, max_value=2 * H))
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        start = t + draw(st.floats(min_value=0, max_value=2 * H))
        end = start + draw(st.floats(min_value=600, max_value=2 * H))
        blat, blon = at(draw(offsets), draw(offsets))
        bookings.append(Booking(start, end, blat, blon))
        t = end
    return Caregiver(
        id=f"c{index}",
        lat=lat,
        lon=lon,
        position_at=NOW - draw(st.floats(min_value=0, max_value=3 * H)),
        on_duty=draw(st.booleans()) or draw(st.booleans()),
        skills=skills,
        shifts=shifts,
        bookings=tuple(bookings),
        languages=frozenset(draw(st.sets(st.sampled_from(["zh", "en", "sxn"])))),
        gender=draw(st.sampled_from(["female", "male"])),
        radius_m=draw(st.floats(min_value=1000, max_value=20_000)),
        served={"s1": draw(st.integers(min_value=0, max_value=5))},
        visits_today=draw(st.integers(min_value=0, max_value=8)),
        daily_cap=draw(st.integers(min_value=1, max_value=8)),
        rating=draw(st.none() | st.floats(min_value=1, max_value=5)),
    )


@st.composite
def fleets(draw: st.DrawFn) -> list[Caregiver]:
    n = draw(st.integers(min_value=0, max_value=12))
    return [draw(caregivers(i)) for i in range(n)]


@st.composite
def orders(draw: st.DrawFn) -> Order:
    lat, lon = at(draw(offsets), draw(offsets))
    windowed = draw(st.booleans())
    start = NOW + draw(st.floats(min_value=-H, max_value=12 * H)) if windowed else None
    end = start + draw(st.floats(min_value=0.5 * H, max_value=6 * H)) if start else None
    return Order(
        id="o1",
        senior_id="s1",
        lat=lat,
        lon=lon,
        duration_s=draw(st.floats(min_value=600, max_value=3 * H)),
        skills=frozenset(draw(st.sets(st.sampled_from(SKILLS), max_size=2))),
        priority=draw(st.sampled_from(list(Priority))),
        window_start=start,
        window_end=end,
        preferred=frozenset(draw(st.sets(st.sampled_from([f"c{i}" for i in range(12)])))),
        blocked=frozenset(draw(st.sets(st.sampled_from([f"c{i}" for i in range(12)])))),
        gender=draw(st.none() | st.sampled_from(["female", "male"])),
        gender_strict=draw(st.booleans()),
        languages=frozenset(draw(st.sets(st.sampled_from(["zh", "en"])))),
    )


def violations(order: Order, c: Caregiver, chosen: Candidate) -> list[str]:
    """An independent re-check of every hard constraint for a proposal."""
    travel = CONFIG.travel
    start, end = chosen.start, chosen.start + order.duration_s
    wrong = []
    if not c.on_duty:
        wrong.append("off duty")
    if c.id in order.blocked:
        wrong.append("blocked")
    if order.gender_strict and order.gender and c.gender != order.gender:
        wrong.append("gender")
    for skill in order.skills:
        if skill not in c.skills:
            wrong.append(f"no {skill}")
        elif (expiry := c.skills[skill]) is not None and expiry < end:
            wrong.append(f"{skill} certificate expired")
    if haversine_m(c.lat, c.lon, order.lat, order.lon) > c.radius_m:
        wrong.append("outside radius")
    if order.asap and NOW - c.position_at > CONFIG.max_position_age_s:
        wrong.append("stale position")
    if not any(s <= start and end <= e for s, e in c.shifts):
        wrong.append("outside shift")
    if start < NOW - 1e-6 or (order.window_start is not None and start < order.window_start):
        wrong.append("starts too early")
    if end > latest_end(order, NOW, CONFIG) + 1e-6:
        wrong.append("ends too late")
    upcoming = [b for b in c.bookings if b.end > NOW]
    for b in upcoming:
        before = end + travel.seconds(order.lat, order.lon, b.lat, b.lon) <= b.start + 1e-6
        after = b.end + travel.seconds(b.lat, b.lon, order.lat, order.lon) <= start + 1e-6
        if not (before or after):
            wrong.append("clashes with a booking")
    coming_from_here = not any(b.end <= start for b in upcoming)
    if coming_from_here and NOW + travel.seconds(c.lat, c.lon, order.lat, order.lon) > start + 1e-6:
        wrong.append("cannot get there from where they are")
    day = local_day(start, CONFIG)
    load = sum(1 for b in c.bookings if local_day(b.start, CONFIG) == day)
    load += c.visits_today if day == local_day(NOW, CONFIG) else 0
    if load >= c.daily_cap:
        wrong.append("over the daily cap")
    return wrong


FAST = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TestProperties:
    @FAST
    @given(order=orders(), fleet=fleets())
    def test_never_proposes_a_caregiver_who_breaks_a_hard_constraint(
        self, order: Order, fleet: list[Caregiver]
    ) -> None:
        ranking = rank(order, fleet, NOW, CONFIG, limit=len(fleet))
        by_id = {c.id: c for c in fleet}
        for candidate in ranking.candidates:
            assert violations(order, by_id[candidate.caregiver_id], candidate) == []
        assert ranking.examined == len(fleet)
        assert len(ranking.candidates) + sum(ranking.excluded.values()) == len(fleet)

    @FAST
    @given(order=orders(), fleet=fleets())
    def test_same_input_same_output(self, order: Order, fleet: list[Caregiver]) -> None:
        assert rank(order, fleet, NOW, CONFIG) == rank(order, list(fleet), NOW, CONFIG)

    @FAST
    @given(order=orders(), fleet=fleets())
    def test_explanations_add_up_and_the_best_comes_first(
        self, order: Order, fleet: list[Caregiver]
    ) -> None:
        ranking = rank(order, fleet, NOW, CONFIG, limit=len(fleet))
        costs = [c.cost for c in ranking.candidates]
        assert costs == sorted(costs)
        for candidate in ranking.candidates:
            assert math.isclose(sum(candidate.parts.values()), candidate.cost, abs_tol=1e-6)
            # Only a familiar caregiver's terms take off: the spatial search relies on it.
            adds = {
                k: v for k, v in candidate.parts.items() if k not in {"continuity", "preferred"}
            }
            assert all(v >= 0 for v in adds.values()), adds


def nurse(**changes: object) -> Caregiver:
    base = Caregiver(
        id="n1",
        lat=CENTER[0] + 0.005,
        lon=CENTER[1],
        position_at=NOW,
        skills={"bathing": None},
        shifts=((NOW - H, NOW + 8 * H),),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def bath(**changes: object) -> Order:
    base = Order(
        id="o1",
        senior_id="s1",
        lat=CENTER[0],
        lon=CENTER[1],
        duration_s=H,
        skills=frozenset({"bathing"}),
    )
    return replace(base, **changes)  # type: ignore[arg-type]


class TestEdgeCases:
    def test_no_caregivers(self) -> None:
        ranking = rank(bath(), [], NOW, CONFIG)
        assert ranking.candidates == ()
        assert ranking.excluded == {}

    def test_everyone_blocked(self) -> None:
        fleet = [nurse(id=f"n{i}") for i in range(4)]
        ranking = rank(bath(blocked=frozenset(c.id for c in fleet)), fleet, NOW, CONFIG)
        assert ranking.candidates == ()
        assert ranking.excluded == {Exclusion.blocked: 4}

    def test_a_certificate_that_expires_before_the_visit_ends(self) -> None:
        expiring = nurse(skills={"bathing": NOW + 0.5 * H})
        assert rank(bath(), [expiring], NOW, CONFIG).excluded == {Exclusion.certificate: 1}
        valid = nurse(skills={"bathing": NOW + 2 * H})
        assert rank(bath(), [valid], NOW, CONFIG).best is not None

    def test_a_window_in_the_past(self) -> None:
        order = bath(window_start=NOW - 3 * H, window_end=NOW - H)
        assert rank(order, [nurse()], NOW, CONFIG).candidates == ()

    def test_two_orders_at_one_address_both_find_the_caregiver(self) -> None:
        first, second = bath(id="o1"), bath(id="o2", senior_id="s2")
        assert rank(first, [nurse()], NOW, CONFIG).best is not None
        assert rank(second, [nurse()], NOW, CONFIG).best is not None

    def test_a_visit_may_end_exactly_when_the_shift_ends(self) -> None:
        order = bath(window_start=NOW + 2 * H, window_end=NOW + 3 * H)
        exact = nurse(shifts=((NOW, NOW + 3 * H),))
        best = rank(order, [exact], NOW, CONFIG).best
        assert best is not None
        assert best.start + order.duration_s == NOW + 3 * H
        a_second_short = nurse(shifts=((NOW, NOW + 3 * H - 1),))
        assert rank(order, [a_second_short], NOW, CONFIG).candidates == ()

    def test_travel_dominates_and_waits_for_the_current_visit(self) -> None:
        near = nurse(id="near")
        far = nurse(id="far", lat=CENTER[0] + 0.03)  # 3.3 km: about 18 minutes away
        busy_near = nurse(id="busy", bookings=(Booking(NOW - H, NOW + H, *CENTER),))
        ranking = rank(bath(), [far, busy_near, near], NOW, CONFIG)
        # Waiting an hour for the busy one (weighted 0.25) beats 18 minutes of travel.
        assert [c.caregiver_id for c in ranking.candidates] == ["near", "busy", "far"]
        assert ranking.candidates[1].start == NOW + H
        assert ranking.candidates[1].parts["travel"] == 0

    def test_continuity_and_preference_can_outweigh_a_little_distance(self) -> None:
        near = nurse(id="near")
        familiar = nurse(id="familiar", lat=CENTER[0] + 0.008, served={"s1": 3})
        ranking = rank(bath(preferred=frozenset({"familiar"})), [near, familiar], NOW, CONFIG)
        assert ranking.best is not None
        assert ranking.best.caregiver_id == "familiar"
        assert ranking.best.parts["continuity"] < 0
        assert ranking.best.parts["preferred"] < 0

    def test_emergency_asks_for_several(self) -> None:
        fleet = [nurse(id=f"n{i}", lat=CENTER[0] + 0.001 * i) for i in range(6)]
        order = bath(priority=Priority.emergency)
        assert len(rank(order, fleet, NOW, CONFIG).candidates) >= CONFIG.emergency_offers
