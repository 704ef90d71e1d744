"""Single-order ranking: who could serve this order, best first, and why.

``rank`` is the exact reference: every caregiver is judged. The indexed search (for large
fleets) must return the same ranking; tests hold it to that.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from app.dispatch.constraints import Exclusion, Placement, place
from app.dispatch.model import Caregiver, Id, Order, Priority
from app.dispatch.policy import DispatchConfig
from app.dispatch.scoring import cost_parts, total


@dataclass(frozen=True, slots=True)
class Candidate:
    caregiver_id: Id
    cost: float
    parts: dict[str, float]  # adds up to ``cost``
    start: float
    travel_s: float
    distance_m: float


@dataclass(frozen=True, slots=True)
class Ranking:
    """The engine's answer for one order, readable by an operator."""

    order_id: Id
    candidates: tuple[Candidate, ...]  # best first; [0] is the choice, the rest runners-up
    excluded: dict[Exclusion, int] = field(default_factory=dict)  # per hard constraint
    examined: int = 0

    @property
    def best(self) -> Candidate | None:
        return self.candidates[0] if self.candidates else None


def judge(
    order: Order, caregiver: Caregiver, now: float, config: DispatchConfig
) -> Candidate | Exclusion:
    placed = place(order, caregiver, now, config)
    if not isinstance(placed, Placement):
        return placed
    parts = cost_parts(order, caregiver, placed, now, config)
    return Candidate(
        caregiver_id=caregiver.id,
        cost=total(parts),
        parts=parts,
        start=placed.start,
        travel_s=placed.travel_s,
        distance_m=placed.distance_m,
    )


def wanted(order: Order, config: DispatchConfig) -> int:
    """How many ranked candidates an order asks for (an emergency asks for several offers)."""
    if order.priority is Priority.emergency:
        return max(config.candidates, config.emergency_offers)
    return config.candidates


def rank(
    order: Order,
    caregivers: Sequence[Caregiver],
    now: float,
    config: DispatchConfig,
    *,
    limit: int | None = None,
) -> Ranking:
    """Judge every caregiver; best ``limit`` first. Ties go to the earlier caregiver in input."""
    return to_ranking(order, judge_all(order, enumerate(caregivers), now, config), limit, config)


def judge_all(
    order: Order, indexed: Iterable[tuple[int, Caregiver]], now: float, config: DispatchConfig
) -> tuple[list[tuple[float, int, Candidate]], Counter[Exclusion], int]:
    feasible: list[tuple[float, int, Candidate]] = []
    excluded: Counter[Exclusion] = Counter()
    examined = 0
    for position, caregiver in indexed:
        examined += 1
        verdict = judge(order, caregiver, now, config)
        if isinstance(verdict, Candidate):
            feasible.append((verdict.cost, position, verdict))
        else:
            excluded[verdict] += 1
    return feasible, excluded, examined


def to_ranking(
    order: Order,
    judged: tuple[list[tuple[float, int, Candidate]], Counter[Exclusion], int],
    limit: int | None,
    config: DispatchConfig,
) -> Ranking:
    feasible, excluded, examined = judged
    feasible.sort(key=lambda item: (item[0], item[1]))
    k = wanted(order, config) if limit is None else limit
    return Ranking(
        order_id=order.id,
        candidates=tuple(c for _, _, c in feasible[:k]),
        excluded=dict(excluded),
        examined=examined,
    )
