"""The weighted, explainable cost of giving an order to a caregiver (lower is better).

Every term is a cost (>= 0) except the two that only familiar caregivers earn: continuity and
the senior's preference. So anyone else costs at least their travel, and the spatial search
can stop as soon as travel alone rules out the rest. A missing shared language and a rating
below five stars add to the cost, rather than a shared language and five stars taking off:
the same ranking for each order (a constant shift), without the slack in the bound."""

from app.dispatch.constraints import Placement, local_day
from app.dispatch.model import Caregiver, Order
from app.dispatch.policy import DispatchConfig


def cost_parts(
    order: Order, caregiver: Caregiver, placement: Placement, now: float, config: DispatchConfig
) -> dict[str, float]:
    """Each term of the cost by name; the cost is their sum (operators read these)."""
    w = config.weights
    wanted = now if order.window_start is None else max(now, order.window_start)
    day = local_day(placement.start, config)
    load = sum(1 for b in caregiver.bookings if local_day(b.start, config) == day)
    if day == local_day(now, config):
        load += caregiver.visits_today
    served = min(caregiver.served.get(order.senior_id, 0), 3)
    return {
        "travel": w.travel * placement.travel_s,
        "delay": w.delay * (placement.start - wanted),
        "continuity": -w.continuity * served / 3,
        "preferred": -w.preferred if caregiver.id in order.preferred else 0.0,
        "language": w.language
        if order.languages and not order.languages & caregiver.languages
        else 0.0,
        "workload": w.workload * load / caregiver.daily_cap,
        "rating": rating_part(caregiver, config),
    }


def rating_part(caregiver: Caregiver, config: DispatchConfig) -> float:
    """0 for five stars up to ``weights.rating`` for one; no rating yet counts as three."""
    stars = caregiver.rating if caregiver.rating is not None else 3.0
    return config.weights.rating * (5 - stars) / 4


def total(parts: dict[str, float]) -> float:
    return sum(parts.values())
