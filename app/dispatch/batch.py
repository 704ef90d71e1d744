"""Batch assignment: many orders at once, each caregiver taking at most one, at least cost.

Each order keeps its k best feasible caregivers (a sparse graph, found by the index's exact
search); the assignment over that graph is solved exactly with scipy's sparse LAPJV
(``min_weight_full_bipartite_matching``). Leaving an order unplaced costs a priority-dependent
penalty, and the emergency penalty exceeds any sum of other costs, so an emergency is never
given up to save distance elsewhere.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import csr_array
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

from app.dispatch.assign import Candidate
from app.dispatch.constraints import Exclusion
from app.dispatch.fleet import excluded
from app.dispatch.index import FleetIndex
from app.dispatch.model import Caregiver, Id, Order
from app.dispatch.policy import UNPLACED, DispatchConfig

# The matching treats a zero weight as no edge: every weight is lifted by this (each order is
# matched exactly once, so a constant per order does not change which matching is best).
LIFT = 1e5


@dataclass(frozen=True, slots=True)
class BatchResult:
    assigned: dict[Id, Candidate]  # order -> chosen caregiver, with the cost explained
    unplaced: dict[Id, dict[Exclusion, int]]  # order -> which constraints excluded how many
    total_cost: float  # of the assigned orders
    # Unplaced orders that did have feasible caregivers, all given to other orders: how many.
    outbid: dict[Id, int] = field(default_factory=dict)

    def caregiver_of(self, order_id: Id) -> Id | None:
        chosen = self.assigned.get(order_id)
        return chosen.caregiver_id if chosen else None


def _index(fleet: FleetIndex | Sequence[Caregiver], config: DispatchConfig) -> FleetIndex:
    return fleet if isinstance(fleet, FleetIndex) else FleetIndex(fleet, config)


def solve(
    orders: Sequence[Order],
    fleet: FleetIndex | Sequence[Caregiver],
    now: float,
    config: DispatchConfig,
    *,
    k: int = 8,
) -> BatchResult:
    """Minimum total cost over the sparse candidate graph, solved exactly."""
    index = _index(fleet, config)
    n = len(orders)
    if n == 0:
        return BatchResult({}, {}, 0.0)
    found = index.lists(orders, now, k)
    order_of, slot = np.nonzero(found.row >= 0)
    caregivers, column = np.unique(found.row[order_of, slot], return_inverse=True)
    m = len(caregivers)
    # Columns m..m+n-1 are "leave order q unplaced" (only order q may use its own).
    penalty = np.array([UNPLACED[o.priority] for o in orders])
    graph = csr_array(
        (
            np.concatenate([found.cost[order_of, slot], penalty]) + LIFT,
            (np.concatenate([order_of, np.arange(n)]), np.concatenate([column, m + np.arange(n)])),
        ),
        shape=(n, m + n),
    )
    matched_rows, matched_cols = min_weight_full_bipartite_matching(graph)
    chosen = np.full(n, -1, np.int64)
    chosen[matched_rows] = matched_cols
    assigned: dict[Id, Candidate] = {}
    unplaced: dict[Id, dict[Exclusion, int]] = {}
    outbid: dict[Id, int] = {}
    # The chosen caregiver's slot in each order's list (its explanation is already there).
    caregiver_of = np.full(n, -2, np.int64)  # never a row
    placed = chosen < m
    caregiver_of[placed] = caregivers[chosen[placed]]
    slot_of = np.argmax(found.row == caregiver_of[:, None], axis=1).tolist()
    for q, order in enumerate(orders):
        if chosen[q] < m:
            j = slot_of[q]
            assigned[order.id] = index.fleet.candidate(
                int(found.row[q, j]),
                float(found.cost[q, j]),
                float(found.start[q, j]),
                float(found.travel[q, j]),
                float(found.distance[q, j]),
                found.parts[q, j].tolist(),
            )
        else:
            unplaced[order.id] = excluded(found.counts[q].tolist())
            if found.row[q, 0] >= 0:
                outbid[order.id] = int((found.row[q] >= 0).sum())
    return BatchResult(assigned, unplaced, sum(c.cost for c in assigned.values()), outbid)


def greedy(
    orders: Sequence[Order],
    fleet: FleetIndex | Sequence[Caregiver],
    now: float,
    config: DispatchConfig,
) -> BatchResult:
    """The baseline: in arrival order, each order takes its best caregiver still free."""
    index = _index(fleet, config)
    taken = np.zeros(0, np.int64)  # rows, sorted
    assigned: dict[Id, Candidate] = {}
    unplaced: dict[Id, dict[Exclusion, int]] = {}
    for order in orders:
        ranking = index.rank(order, now, limit=1, taken=taken)
        if ranking.best is None:
            # Caregivers taken by earlier orders are counted as blocked here.
            unplaced[order.id] = ranking.excluded
        else:
            assigned[order.id] = ranking.best
            row = index.fleet.row[ranking.best.caregiver_id]
            taken = np.insert(taken, np.searchsorted(taken, row), row)
    return BatchResult(assigned, unplaced, sum(c.cost for c in assigned.values()))
