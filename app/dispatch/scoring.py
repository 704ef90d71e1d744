"""The weighted, explainable cost of giving an order to a caregiver (lower is better)."""

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
        "language": -w.language if order.languages & caregiver.languages else 0.0,
        "workload": w.workload * load / caregiver.daily_cap,
        "rating": -w.rating * (caregiver.rating - 3) / 2 if caregiver.rating is not None else 0.0,
    }


def total(parts: dict[str, float]) -> float:
    return sum(parts.values())
