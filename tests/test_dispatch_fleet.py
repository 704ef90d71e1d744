"""The compiled kernel judges exactly as the scalar reference: same candidates, same floats,
same exclusions, whatever the day looks like (several shifts, bookings, growth)."""

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.dispatch.assign import rank
from app.dispatch.constraints import Exclusion
from app.dispatch.fleet import Fleet
from app.dispatch.model import Caregiver, Order
from tests.test_dispatch_engine import CONFIG, NOW, H, bath, fleets, nurse, orders

pytestmark = pytest.mark.pure


@st.composite
def varied_fleets(draw: st.DrawFn) -> list[Caregiver]:
    """Fleets whose caregivers have zero to three shifts, given in any order."""
    fleet = []
    for c in draw(fleets()):
        shifts = []
        t = NOW + draw(st.floats(min_value=-8 * H, max_value=4 * H))
        for _ in range(draw(st.integers(min_value=0, max_value=3))):
            start = t + draw(st.floats(min_value=0, max_value=3 * H))
            end = start + draw(st.floats(min_value=0.2 * H, max_value=5 * H))
            shifts.append((start, end))
            t = end
        fleet.append(replace(c, shifts=tuple(draw(st.permutations(shifts)))))
    return fleet


EXACT = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TestKernelEqualsReference:
    @EXACT
    @given(order=orders(), fleet=varied_fleets())
    def test_every_candidate_and_exclusion_bit_for_bit(
        self, order: Order, fleet: list[Caregiver]
    ) -> None:
        everyone = len(fleet)
        assert Fleet(fleet, CONFIG).rank(order, NOW, limit=everyone) == rank(
            order, fleet, NOW, CONFIG, limit=everyone
        )

    @EXACT
    @given(order=orders(), fleet=varied_fleets(), data=st.data())
    def test_built_one_by_one_and_replaced_the_same(
        self, order: Order, fleet: list[Caregiver], data: st.DataObject
    ) -> None:
        grown = Fleet([], CONFIG)
        for caregiver in fleet:
            # Someone else first, then the real one under the same id: the row is reused.
            grown.put(replace(caregiver, shifts=(), bookings=(), skills={"other": None}))
        for caregiver in data.draw(st.permutations(fleet)):
            grown.put(caregiver)
        assert grown.rank(order, NOW, limit=3) == rank(order, fleet, NOW, CONFIG, limit=3)


class TestEdges:
    def test_a_skill_nobody_has_excludes_everyone_for_skill(self) -> None:
        fleet = Fleet([nurse(id="a"), nurse(id="b")], CONFIG)
        ranking = fleet.rank(bath(skills=frozenset({"dialysis"})), NOW)
        assert ranking.candidates == ()
        assert ranking.excluded == {Exclusion.skill: 2}

    def test_a_strict_gender_nobody_has(self) -> None:
        fleet = Fleet([nurse(gender="female")], CONFIG)
        order = bath(gender="other", gender_strict=True)
        assert fleet.rank(order, NOW).excluded == {Exclusion.gender: 1}

    def test_an_empty_fleet(self) -> None:
        ranking = Fleet([], CONFIG).rank(bath(), NOW)
        assert (ranking.candidates, ranking.excluded, ranking.examined) == ((), {}, 0)
