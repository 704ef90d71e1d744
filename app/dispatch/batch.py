"""Batch assignment: many orders at once, each caregiver taking at most one, at least cost.

Each order keeps its k best feasible caregivers (a sparse graph); the assignment over that
graph is solved exactly (``scipy.optimize.linear_sum_assignment``). Leaving an order unplaced
costs a priority-dependent penalty, and the emergency penalty exceeds any sum of other costs,
so an emergency is never given up to save distance elsewhere.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from app.dispatch.assign import Candidate, rank
from app.dispatch.constraints import Exclusion
from app.dispatch.model import Caregiver, Id, Order, Priority
from app.dispatch.policy import DispatchConfig

# Seconds-equivalents for leaving an order unplaced. Any feasible placement costs less than
# UNPLACED[normal] (costs are bounded by the ASAP wait and travel), and each step up is more
# than a whole batch of the level below could cost.
UNPLACED = {Priority.normal: 1e6, Priority.urgent: 1e10, Priority.emergency: 1e14}


@dataclass(frozen=True, slots=True)
class BatchResult:
    assigned: dict[Id, Candidate]  # order -> chosen caregiver, with the cost explained
    unplaced: dict[Id, dict[Exclusion, int]]  # order -> why nobody could take it
    total_cost: float  # of the assigned orders

    def caregiver_of(self, order_id: Id) -> Id | None:
        chosen = self.assigned.get(order_id)
        return chosen.caregiver_id if chosen else None


def candidate_lists(
    orders: Sequence[Order],
    caregivers: Sequence[Caregiver],
    now: float,
    config: DispatchConfig,
    k: int,
) -> tuple[list[tuple[Candidate, ...]], list[dict[Exclusion, int]]]:
    """Each order's k best feasible caregivers, and the exclusions seen."""
    ranked = [rank(order, caregivers, now, config, limit=k) for order in orders]
    return [r.candidates for r in ranked], [r.excluded for r in ranked]


def solve(
    orders: Sequence[Order],
    caregivers: Sequence[Caregiver],
    now: float,
    config: DispatchConfig,
    *,
    k: int = 8,
) -> BatchResult:
    """Minimum total cost over the sparse candidate graph, solved exactly."""
    lists, excluded = candidate_lists(orders, caregivers, now, config, k)
    return solve_lists(orders, lists, excluded)


def solve_lists(
    orders: Sequence[Order],
    lists: Sequence[Sequence[Candidate]],
    excluded: Sequence[dict[Exclusion, int]],
) -> BatchResult:
    columns: dict[Id, int] = {}
    for candidates in lists:
        for c in candidates:
            columns.setdefault(c.caregiver_id, len(columns))
    n, m = len(orders), len(columns)
    if n == 0:
        return BatchResult({}, {}, 0.0)
    # Columns m..m+n-1 are "leave order i unplaced" (only order i may use its own).
    forbidden = UNPLACED[Priority.emergency] * 1e3
    matrix = np.full((n, m + n), forbidden)
    for i, (order, candidates) in enumerate(zip(orders, lists, strict=True)):
        for c in candidates:
            matrix[i, columns[c.caregiver_id]] = c.cost
        matrix[i, m + i] = UNPLACED[order.priority]
    rows, cols = linear_sum_assignment(matrix)
    chosen = {(i, c.caregiver_id): c for i, candidates in enumerate(lists) for c in candidates}
    ids = list(columns)
    assigned: dict[Id, Candidate] = {}
    unplaced: dict[Id, dict[Exclusion, int]] = {}
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        order = orders[i]
        if j < m:
            assigned[order.id] = chosen[(i, ids[j])]
        else:
            unplaced[order.id] = excluded[i]
    return BatchResult(assigned, unplaced, sum(c.cost for c in assigned.values()))


def greedy(
    orders: Sequence[Order],
    caregivers: Sequence[Caregiver],
    now: float,
    config: DispatchConfig,
) -> BatchResult:
    """The baseline: in arrival order, each order takes its best caregiver still free."""
    taken: set[Id] = set()
    assigned: dict[Id, Candidate] = {}
    unplaced: dict[Id, dict[Exclusion, int]] = {}
    for order in orders:
        ranking = rank(order, caregivers, now, config, limit=len(caregivers))
        best = next((c for c in ranking.candidates if c.caregiver_id not in taken), None)
        if best is None:
            unplaced[order.id] = ranking.excluded
        else:
            taken.add(best.caregiver_id)
            assigned[order.id] = best
    return BatchResult(assigned, unplaced, sum(c.cost for c in assigned.values()))
