"""The indexed search returns exactly the brute-force ranking, and follows moves."""

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.dispatch.assign import rank
from app.dispatch.index import FleetIndex
from app.dispatch.model import Caregiver, Order
from tests.test_dispatch_engine import CENTER, CONFIG, NOW, bath, caregivers, nurse, orders

pytestmark = pytest.mark.pure


@st.composite
def big_fleets(draw: st.DrawFn) -> list[Caregiver]:
    n = draw(st.integers(min_value=0, max_value=40))
    fleet = []
    for i in range(n):
        c = draw(caregivers(i))
        # Spread some far out, and let some have served the senior.
        spread = draw(st.sampled_from([1.0, 1.0, 3.0]))
        fleet.append(
            replace(
                c,
                lat=CENTER[0] + (c.lat - CENTER[0]) * spread,
                lon=CENTER[1] + (c.lon - CENTER[1]) * spread,
                position_at=NOW - draw(st.floats(min_value=0, max_value=600)),
            )
        )
    return fleet


EXACT = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class TestIndexedRanking:
    @EXACT
    @given(order=orders(), fleet=big_fleets(), cell_m=st.sampled_from([200.0, 1000.0, 5000.0]))
    def test_equals_brute_force(self, order: Order, fleet: list[Caregiver], cell_m: float) -> None:
        index = FleetIndex(fleet, CONFIG, cell_m=cell_m)
        for limit in (1, 3, None):
            mine = index.rank(order, NOW, limit=limit)
            truth = rank(order, fleet, NOW, CONFIG, limit=limit)
            assert mine.candidates == truth.candidates

    def test_examines_few_of_a_spread_fleet(self) -> None:
        fleet = [
            nurse(id=f"n{i}", lat=CENTER[0] + 0.002 * (i % 50), lon=CENTER[1] + 0.002 * (i // 50))
            for i in range(2500)
        ]
        index = FleetIndex(fleet, CONFIG, cell_m=500.0)
        ranking = index.rank(bath(), NOW)
        assert ranking.candidates == rank(bath(), fleet, NOW, CONFIG).candidates
        assert ranking.examined < len(fleet) / 5

    def test_follows_a_caregiver_who_moves(self) -> None:
        near, far = nurse(id="near"), nurse(id="far", lat=CENTER[0] + 0.02)
        index = FleetIndex([near, far], CONFIG)
        assert index.rank(bath(), NOW).candidates[0].caregiver_id == "near"
        index.update(replace(near, lat=CENTER[0] + 0.04))
        index.update(replace(far, lat=CENTER[0] + 0.0001))
        assert index.rank(bath(), NOW).candidates[0].caregiver_id == "far"
        index.update(replace(far, on_duty=False))
        assert [c.caregiver_id for c in index.rank(bath(), NOW).candidates] == ["near"]

    @EXACT
    @given(
        order=orders(),
        fleet=big_fleets(),
        moves=st.lists(
            st.tuples(
                st.floats(min_value=-0.2, max_value=0.2), st.floats(min_value=-0.2, max_value=0.2)
            ),
            max_size=40,
        ),
    )
    def test_a_bulk_move_keeps_it_exact(
        self, order: Order, fleet: list[Caregiver], moves: list[tuple[float, float]]
    ) -> None:
        """Some move far outside the grid the index was built on: still the exact answer."""
        index = FleetIndex(fleet, CONFIG, cell_m=300.0)
        moved = list(fleet)
        ids, lats, lons = [], [], []
        for n, (dlat, dlon) in enumerate(moves[: len(fleet)]):
            c = fleet[n]
            moved[n] = replace(c, lat=c.lat + dlat, lon=c.lon + dlon, position_at=NOW)
            ids.append(c.id)
            lats.append(c.lat + dlat)
            lons.append(c.lon + dlon)
        index.move(index.rows(ids), np.array(lats), np.array(lons), NOW)
        for limit in (1, 5):
            mine = index.rank(order, NOW, limit=limit)
            assert mine.candidates == rank(order, moved, NOW, CONFIG, limit=limit).candidates

    def test_equal_costs_go_to_the_earlier_caregiver_not_the_earlier_cell(self) -> None:
        """Due north and due south at the same distance: the same cost to the bit. The index
        stores the southern one first (its cell comes first); the input order still decides."""
        north = nurse(id="north", lat=CENTER[0] + 0.01)
        south = nurse(id="south", lat=CENTER[0] - 0.01)
        index = FleetIndex([north, south], CONFIG, cell_m=200.0)
        assert index.fleet.ids == ["south", "north"]
        first = index.rank(bath(), NOW, limit=1).candidates
        assert [c.caregiver_id for c in first] == ["north"]
        assert first == rank(bath(), [north, south], NOW, CONFIG, limit=1).candidates


def test_warm_up_runs_every_kernel() -> None:
    """The Docker build runs it; it must keep working as the engine changes."""
    from app.dispatch.index import warm_up

    warm_up(CONFIG)


def test_a_call_that_would_compile_is_refused_after_freeze() -> None:
    """The suite runs with compiling off (conftest): this is what makes a stray compile fail a
    test instead of stalling a live dispatcher. A float32 array needs a version never built."""
    from app.dispatch import kernel
    from app.dispatch.index import compiled_versions

    before = compiled_versions()
    odd = np.zeros(1, np.float32)
    with pytest.raises((TypeError, RuntimeError)):
        kernel.cell_keys(0.0, 0.0, 1.0, 1.0, 1, 1, odd, odd)
    assert compiled_versions() == before
