"""Batch assignment: exact on small instances, never worse than greedy, emergencies first."""

import itertools
import math
from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.dispatch.assign import rank
from app.dispatch.batch import greedy, solve
from app.dispatch.model import Caregiver, Order, Priority
from app.dispatch.policy import UNPLACED
from tests.test_dispatch_engine import CENTER, CONFIG, NOW, bath, caregivers, nurse, orders

pytestmark = pytest.mark.pure


@st.composite
def instances(draw: st.DrawFn) -> tuple[list[Order], list[Caregiver]]:
    fleet = [draw(caregivers(i)) for i in range(draw(st.integers(min_value=0, max_value=5)))]
    work = [
        replace(draw(orders()), id=f"o{i}", senior_id=f"s{i}")
        for i in range(draw(st.integers(min_value=0, max_value=4)))
    ]
    return work, fleet


def objective(orders: list[Order], assigned: dict[object, float]) -> float:
    """Placement costs plus the penalty of every order left out (what batch minimises)."""
    return sum(assigned.values()) + sum(
        UNPLACED[o.priority] for o in orders if o.id not in assigned
    )


def brute_force(orders: list[Order], fleet: list[Caregiver]) -> float:
    costs = {
        (o.id, c.caregiver_id): c.cost
        for o in orders
        for c in rank(o, fleet, NOW, CONFIG, limit=len(fleet)).candidates
    }
    best = math.inf
    options = [None, *(c.id for c in fleet)]
    for choice in itertools.product(options, repeat=len(orders)):
        used = [c for c in choice if c is not None]
        if len(used) != len(set(used)):
            continue
        if any(
            c is not None and (o.id, c) not in costs for o, c in zip(orders, choice, strict=True)
        ):
            continue
        assigned = {
            o.id: costs[(o.id, c)] for o, c in zip(orders, choice, strict=True) if c is not None
        }
        best = min(best, objective(orders, assigned))
    return best


SMALL = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TestBatch:
    @SMALL
    @given(instances())
    def test_equals_the_brute_force_optimum(
        self, instance: tuple[list[Order], list[Caregiver]]
    ) -> None:
        work, fleet = instance
        result = solve(work, fleet, NOW, CONFIG, k=len(fleet) or 1)
        got = objective(work, {o: c.cost for o, c in result.assigned.items()})
        assert math.isclose(got, brute_force(work, fleet), rel_tol=1e-9, abs_tol=1e-6)

    @SMALL
    @given(instances())
    def test_never_worse_than_greedy_and_each_caregiver_once(
        self, instance: tuple[list[Order], list[Caregiver]]
    ) -> None:
        work, fleet = instance
        exact = solve(work, fleet, NOW, CONFIG, k=len(fleet) or 1)
        baseline = greedy(work, fleet, NOW, CONFIG)
        mine = objective(work, {o: c.cost for o, c in exact.assigned.items()})
        theirs = objective(work, {o: c.cost for o, c in baseline.assigned.items()})
        assert mine <= theirs + 1e-6
        chosen = [c.caregiver_id for c in exact.assigned.values()]
        assert len(chosen) == len(set(chosen))
        assert set(exact.assigned) | set(exact.unplaced) == {o.id for o in work}

    def test_an_emergency_is_never_given_up_to_save_distance(self) -> None:
        # One caregiver, near a routine order and far from an emergency.
        only = nurse(id="only", lat=CENTER[0] + 0.02, skills={"bathing": None, "first_aid": None})
        routine = bath(id="routine", lat=CENTER[0] + 0.02)
        emergency = bath(
            id="sos", senior_id="s2", priority=Priority.emergency, skills=frozenset({"first_aid"})
        )
        result = solve([routine, emergency], [only], NOW, CONFIG)
        assert result.caregiver_of("sos") == "only"
        assert "routine" in result.unplaced

    def test_unplaced_orders_say_why(self) -> None:
        order = bath(blocked=frozenset({"n1"}))
        result = solve([order], [nurse()], NOW, CONFIG)
        assert result.assigned == {}
        assert result.unplaced == {"o1": {"blocked": 1}}

    def test_an_order_whose_only_caregiver_went_elsewhere_says_so(self) -> None:
        """Not excluded by any constraint: its one feasible caregiver took a more urgent order."""
        urgent = bath(id="urgent", senior_id="s2", priority=Priority.urgent)
        routine = bath(id="routine")
        result = solve([routine, urgent], [nurse()], NOW, CONFIG)
        assert result.caregiver_of("urgent") == "n1"
        assert result.unplaced == {"routine": {}}
        assert result.outbid == {"routine": 1}

    def test_greedy_can_be_beaten(self) -> None:
        # Greedy gives the shared caregiver to the first order; the optimum does not.
        a = nurse(id="a", lat=CENTER[0] + 0.001)
        b = nurse(id="b", lat=CENTER[0] + 0.03)
        first = bath(id="first", lat=CENTER[0] + 0.001)
        second = bath(id="second", senior_id="s2", lat=CENTER[0] + 0.0)
        # Only "a" can serve "second" (b is blocked), and both can serve "first".
        second = replace(second, blocked=frozenset({"b"}))
        exact = solve([first, second], [a, b], NOW, CONFIG)
        baseline = greedy([first, second], [a, b], NOW, CONFIG)
        assert exact.caregiver_of("second") == "a"
        assert baseline.caregiver_of("second") is None


def test_parallel_lists_equal_one_search_per_order() -> None:
    """Enough orders to be split into parallel runs: each order's list is still exactly its
    own ranking (a lost write or a shared visit mark would show here)."""
    from app.bench import instances as gen
    from app.dispatch.index import FleetIndex

    area = gen.area_for(3000)
    index = FleetIndex(gen.caregivers(3000, seed=5, area=area), CONFIG)
    work = gen.orders(300, seed=6, area=area, fleet_size=3000, scheduled=0.3)
    found = index.lists(work, gen.NOW, 4)
    for q, order in enumerate(work):
        ranking = index.rank(order, gen.NOW, limit=4)
        rows = [index.fleet.row[c.caregiver_id] for c in ranking.candidates]
        assert found.row[q, : len(rows)].tolist() == rows
        assert found.cost[q, : len(rows)].tolist() == [c.cost for c in ranking.candidates]
        assert (found.row[q, len(rows) :] == -1).all()
