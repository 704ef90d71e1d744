"""Day plans: scheduled orders placed into caregivers' days, by insertion cost.

A caregiver's day is one open route: from where they are now, through their upcoming bookings
(fixed stops) and the planned visits, with no trip home at the end. Orders are placed by
cheapest insertion with regret (the travel a visit adds between its neighbouring stops, plus the
per-pair scoring terms, the order that would lose most by waiting first); orders left over get
a place by taking another visit's place and moving that visit elsewhere. The plan is then
improved round after round:

- ruin and recreate: strings of consecutive visits are taken out of a few routes near a seed
  visit and put back by regret insertion; a worse plan is accepted with a probability that
  falls to nothing across the rounds (annealing), and the best plan is kept;
- then exact batch assignment around every visit whose neighbourhood changed: the visit and
  its nearest visits in other routes are taken out, every nearby route is priced for taking
  each of them back at its best position, and the assignment (each route taking at most one)
  is solved exactly with ``scipy.optimize.linear_sum_assignment``.

Time windows are checked in O(1) per insertion (Savelsbergh): every stop keeps the earliest
time it can start given what precedes it, and the latest start that keeps everything after it
feasible. All travel comes from one matrix, ``config.travel.matrix``, built once. The search
runs in numba-compiled kernels over plain arrays (cached on disk, like ``kernel``).

Rules of the day, beyond ``constraints.place``:
- Being on duty now is not required: scheduled work is for later shifts.
- Each visit lies inside one shift, and the travel to a caregiver's first stop is work: they
  set off from their position (or from the end of a visit under way) no earlier than the start
  of that visit's shift. Later legs may run outside shifts, as between bookings in ``place``.
- When an order's window meets more than one of a caregiver's shifts (or local days), only the
  longest stretch of allowed starts is used, so that every stop has one start interval.
- An order without a window must start within ``latest_end`` of now, like an ASAP order.

Totals: ``travel_s`` is every leg of every caregiver's day from now on, bookings included;
``idle_s`` is the time between arriving at a stop and its start (a booked or a planned one,
not the first of the day), counted only while the caregiver is on shift; ``cost`` is
``weights.travel`` x travel, plus the per-pair scoring terms of the placed visits, plus
``policy.UNPLACED`` of every unplaced order, so placing more orders always comes first.

The search is deterministic (its pseudo-random choices come from a fixed seed) and bounded by
``rounds``, never by a clock.
"""

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, TypeVar

import numpy as np
from numba import njit
from numpy.typing import NDArray
from scipy.optimize import linear_sum_assignment

from app.dispatch.constraints import DAY_S, Exclusion, Placement, latest_end, local_day
from app.dispatch.geo import haversine_m, haversine_pairs
from app.dispatch.model import Caregiver, Id, Order
from app.dispatch.policy import UNPLACED, DispatchConfig
from app.dispatch.scoring import cost_parts

_T = TypeVar("_T", bound=np.generic)
Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]
Array = Any  # numpy arrays inside the compiled kernels; numba specialises on dtype and rank

# The scoring terms that depend only on who serves whom, not on when or after what.
PAIR_TERMS = ("continuity", "preferred", "language", "rating")
EPS = 1e-6  # cost units: an improvement smaller than this is rounding
INF = math.inf
SEED = 2026  # the search's pseudo-random choices: fixed, so the same input gives the same plan
STEPS_PER_ROUND = 1000  # ruin-and-recreate steps in each round (fewer for a handful of orders)
STEPS_PER_ORDER = 50  # ... at most this many per order that could be placed
TEMPERATURE = 30.0  # cost units: how much worse a plan ruin and recreate may accept, at first
BLINK = 0.05  # how often a recreated visit skips its cheapest route (so groups can move)
SEED_UNPLACED = 0.3  # how often ruin and recreate starts from an unplaced order, if any
NEIGHBOURS = 40  # how many nearest orders each order remembers (related removals)
RELATED = 8  # orders in each exact batch assignment
ASSIGNMENT_EVERY = 4  # rounds of ruin and recreate between rounds of exact batch assignment
FORBIDDEN = max(UNPLACED.values()) * 1e3  # an assignment no cost matrix may choose

# The exclusions that hold whatever else is in the day, in the order they are tested.
STATIC: tuple[Exclusion, ...] = (
    Exclusion.blocked,
    Exclusion.gender,
    Exclusion.skill,
    Exclusion.radius,
    Exclusion.stale_position,
    Exclusion.shift,
    Exclusion.certificate,
    Exclusion.daily_cap,
)


@dataclass(frozen=True, slots=True)
class PlannedVisit:
    order_id: Id
    start: float  # epoch seconds
    end: float
    travel_s: float  # into this visit from the previous stop (or from where the caregiver is)


@dataclass(frozen=True, slots=True)
class DayPlan:
    """Every caregiver's day (maybe empty), the orders left out and why, and the totals."""

    routes: dict[Id, tuple[PlannedVisit, ...]]
    # order -> how many caregivers each hard constraint excluded; caregivers who qualified but
    # had no room in the final plan count as ``reachable`` (no time) or ``daily_cap`` (full).
    unplaced: dict[Id, dict[Exclusion, int]]
    travel_s: float
    idle_s: float
    cost: float


def plan(
    orders: Sequence[Order],
    caregivers: Sequence[Caregiver],
    now: float,
    config: DispatchConfig,
    *,
    rounds: int = 10,
) -> DayPlan:
    """Place every order it can into caregivers' days at least cost, in ``rounds`` of search."""
    # rounds=0 is cheapest insertion with regret alone: the baseline the search improves on.
    planner = _Planner(orders, caregivers, now, config)
    planner.construct()
    planner.improve(rounds)
    return planner.result()


def pair_cost(order: Order, caregiver: Caregiver, now: float, config: DispatchConfig) -> float:
    """The per-pair scoring terms of ``caregiver`` serving ``order`` (continuity and the
    senior's preference take off; a missing shared language and the rating add)."""
    start = now if order.window_start is None else max(now, order.window_start)
    parts = cost_parts(order, caregiver, Placement(start, 0.0, 0.0), now, config)
    return sum(parts[term] for term in PAIR_TERMS)


# -- compiled kernels ---------------------------------------------------------------------
#
# Nodes: orders first (an order's index is its node), then each caregiver's origin, then the
# booked stops, then END, at zero distance from everything: it ends every open route.


class _Model(NamedTuple):
    """What does not change during a search: [node, route] tables and the travel matrix."""

    t: Array  # [node, node] travel seconds
    a: Array  # [node, route] earliest start, inf where not eligible
    b: Array  # [node, route] latest start
    first_leg: Array  # [node, route] a first leg to this visit sets off no earlier than this
    pair: Array  # [node, route] per-pair scoring terms
    dur: Array  # [node] visit length (0 for the other nodes)
    eligible: Array  # [node, route]
    day: Array  # [node, route] index of the visit's local day
    cap: Array  # [route, day] visits that day may still take
    penalty: Array  # [order] cost of leaving it unplaced
    booked_start: Array  # [node] a booking's fixed start (nan for other nodes)
    booked_end: Array  # [node]
    origin: Array  # [route] node the day goes on from
    origin_time: Array  # [route] when
    near: Array  # [order, k] nearest orders, nearest first
    orders: int
    weight: float  # weights.travel


class _State(NamedTuple):
    """A plan: each route's stops and times, and who is where."""

    stops: Array  # [route, i] node, -1 after the last stop
    n: Array  # [route] stops
    est: Array  # [route, i] earliest start of stop i
    dep: Array  # [route, i] departure from the origin (i = 0) or from stop i - 1
    lst: Array  # [route, i] latest start of stop i that keeps the rest feasible
    legs: Array  # [route, i] travel into stop i
    cost: Array  # [route] weight x travel + pair terms
    travel: Array  # [route]
    sound: Array  # [route] every stop within its window (removals can break this)
    routed: Array  # [order] route, -1 if unplaced
    count: Array  # [route, day] planned visits
    left: Array  # [0] penalties of the unplaced orders


@njit(cache=True)
def _schedule(m: _Model, s: _State, r: int) -> None:
    """Route ``r``'s earliest starts and departures (forwards), latest starts (backwards),
    legs, cost and soundness, from its stops."""
    nv = m.orders
    prev = m.origin[r]
    depart = m.origin_time[r]
    s.dep[r, 0] = depart
    paired = 0.0
    travel = 0.0
    sound = True
    k = s.n[r]
    for i in range(k):
        node = s.stops[r, i]
        leg = m.t[prev, node]
        s.legs[r, i] = leg
        travel += leg
        if node >= nv:
            start = m.booked_start[node]
            end = m.booked_end[node]
            # Bookings are fixed: only a planned visit before one can make it late.
            if prev < nv and depart + leg > start:
                sound = False
        else:
            if i == 0 and m.first_leg[node, r] > depart:
                depart = m.first_leg[node, r]
            start = depart + leg
            if start < m.a[node, r]:
                start = m.a[node, r]
            elif start > m.b[node, r]:
                sound = False
            end = start + m.dur[node]
            paired += m.pair[node, r]
        s.est[r, i] = start
        s.dep[r, i + 1] = end
        depart = end
        prev = node
    later = np.inf
    for i in range(k - 1, -1, -1):
        node = s.stops[r, i]
        if node >= nv:
            later = m.booked_start[node]
        else:
            latest = later - m.dur[node] - s.legs[r, i + 1] if i + 1 < k else np.inf
            later = min(latest, m.b[node, r])
        s.lst[r, i] = later
    s.travel[r] = travel
    s.cost[r] = paired + m.weight * travel
    s.sound[r] = sound


@njit(cache=True)
def _schedule_all(m: _Model, s: _State) -> None:
    for r in range(len(s.n)):
        _schedule(m, s, r)


@njit(cache=True)
def _insertion(m: _Model, s: _State, v: int, r: int) -> tuple[float, int]:
    """The cheapest place for order ``v`` in route ``r``: (cost, position), or (inf, -1).

    Between two stops the visit starts when the caregiver gets there (or when its window
    opens), by its latest start, and leaves time to reach the next stop by that stop's latest
    start: O(1) a position."""
    if not m.eligible[v, r]:
        return np.inf, -1
    d = m.day[v, r]
    if s.count[r, d] >= m.cap[r, d]:
        return np.inf, -1
    a, b, dur, first = m.a[v, r], m.b[v, r], m.dur[v], m.first_leg[v, r]
    k = s.n[r]
    prev = m.origin[r]
    best = np.inf
    pos = -1
    for i in range(k + 1):
        depart = s.dep[r, i]
        if i == 0 and first > depart:
            depart = first
        into = m.t[prev, v]
        start = max(depart + into, a)
        if start <= b:
            if i < k:
                after = s.stops[r, i]
                onto = m.t[v, after]
                if start + dur + onto <= s.lst[r, i]:
                    added = into + onto - s.legs[r, i]
                    if added < best:
                        best, pos = added, i
            elif into < best:
                best, pos = into, i
        if i < k:
            prev = s.stops[r, i]
    if pos < 0:
        return np.inf, -1
    return best * m.weight + m.pair[v, r], pos


@njit(cache=True)
def _put(m: _Model, s: _State, v: int, r: int, pos: int) -> None:
    """Insert order ``v`` into route ``r`` as its stop number ``pos``."""
    for j in range(s.n[r], pos, -1):
        s.stops[r, j] = s.stops[r, j - 1]
    s.stops[r, pos] = v
    s.n[r] += 1
    _schedule(m, s, r)
    s.routed[v] = r
    s.count[r, m.day[v, r]] += 1
    s.left[0] -= m.penalty[v]


@njit(cache=True)
def _drop(m: _Model, s: _State, r: int, first: int, last: int, out: Array, taken: int) -> int:
    """Take the planned visits at positions [first, last) out of route ``r`` onto ``out`` from
    ``taken`` on, unless that would make the route late (travel need not obey the triangle
    inequality, and a new first leg waits for its shift); the new length of ``out``."""
    k = s.n[r]
    row = s.stops[r, :k].copy()
    kept = 0
    now = taken
    for i in range(k):
        node = row[i]
        if first <= i < last and node < m.orders:
            out[now] = node
            now += 1
        else:
            s.stops[r, kept] = node
            kept += 1
    if now == taken:
        return taken
    s.stops[r, kept:k] = -1
    s.n[r] = kept
    _schedule(m, s, r)
    if not s.sound[r]:
        s.stops[r, :k] = row
        s.n[r] = k
        _schedule(m, s, r)
        return taken
    for q in range(taken, now):
        x = out[q]
        s.routed[x] = -1
        s.count[r, m.day[x, r]] -= 1
        s.left[0] += m.penalty[x]
    return now


@njit(cache=True)
def _objective(s: _State) -> float:
    return float(s.cost.sum() + s.left[0])


@njit(cache=True)
def _copy(src: _State, dst: _State) -> None:
    dst.stops[:] = src.stops
    dst.n[:] = src.n
    dst.est[:] = src.est
    dst.dep[:] = src.dep
    dst.lst[:] = src.lst
    dst.legs[:] = src.legs
    dst.cost[:] = src.cost
    dst.travel[:] = src.travel
    dst.sound[:] = src.sound
    dst.routed[:] = src.routed
    dst.count[:] = src.count
    dst.left[:] = src.left


@njit(cache=True)
def _regret(m: _Model, s: _State, pending: Array, blink: float) -> None:
    """Insert the pending orders, each where it is cheapest, the one that would lose most by
    not getting its cheapest route first (leaving an order out is priced at its penalty); with
    probability ``blink`` a visit takes its second-cheapest route instead, so that a group of
    visits can move together where one alone would not pay."""
    k = len(pending)
    nr = len(s.n)
    cost = np.empty((k, nr))
    pos = np.empty((k, nr), dtype=np.int64)
    for q in range(k):
        for r in range(nr):
            cost[q, r], pos[q, r] = _insertion(m, s, pending[q], r)
    waiting = np.ones(k, dtype=np.bool_)
    for _ in range(k):
        pick = -1
        most = -np.inf
        for q in range(k):
            if not waiting[q]:
                continue
            ceiling = m.penalty[pending[q]]
            c1 = np.inf
            c2 = np.inf
            for r in range(nr):
                c = min(cost[q, r], ceiling)
                if c < c1:
                    c1, c2 = c, c1
                elif c < c2:
                    c2 = c
            if c1 == ceiling:
                continue  # nowhere to go
            regret = (c2 if nr > 1 else ceiling) - c1
            if regret > most:
                most, pick = regret, q
        if pick < 0:
            return
        v = pending[pick]
        r = int(np.argmin(cost[pick]))
        if blink > 0 and np.random.random() < blink:
            other = cost[pick].copy()
            other[r] = np.inf
            if other.min() < np.inf:
                r = int(np.argmin(other))
        _put(m, s, v, r, pos[pick, r])
        waiting[pick] = False
        for q in range(k):
            if waiting[q]:
                cost[q, r], pos[q, r] = _insertion(m, s, pending[q], r)


@njit(cache=True)
def _search(
    m: _Model,
    s: _State,
    spare: _State,
    best: _State,
    candidates: Array,
    steps: int,
    hot: float,
    cold: float,
    seed: int,
    blink: float,
    seed_unplaced: float,
) -> None:
    """Ruin and recreate: take strings of consecutive visits out of 2 to 5 routes near a seed
    visit that could take it (string removal, after Christiaens and Vanden Berghe), and put
    them back by regret insertion, unplaced orders that now fit first; accept a worse plan
    with a probability that falls from ``hot`` to ``cold`` (annealing); keep the best plan."""
    np.random.seed(seed)
    nv = m.orders
    nr = len(s.n)
    nc = len(candidates)
    if nc == 0 or nr == 0:
        return
    _copy(s, best)
    lowest = _objective(s)
    current = lowest
    out = np.empty(nv, dtype=np.int64)
    pending = np.empty(nv, dtype=np.int64)
    touched = np.empty(nr, dtype=np.int64)
    stamp = np.zeros(nr, dtype=np.int64)
    gone = np.zeros(nv, dtype=np.int64)
    for step in range(1, steps + 1):
        temperature = hot + (cold - hot) * (step - 1) / steps
        left = 0
        for c in candidates:
            if s.routed[c] < 0:
                left += 1
        if left > 0 and np.random.random() < seed_unplaced:
            pick = np.random.randint(left)
            origin = -1
            for c in candidates:
                if s.routed[c] < 0:
                    if pick == 0:
                        origin = c
                        break
                    pick -= 1
        else:
            origin = candidates[np.random.randint(nc)]
        _copy(s, spare)
        before = current
        taken = 0
        ruined = 0
        routes = np.random.randint(2, 6)
        for j in range(-1, m.near.shape[1]):
            u = origin if j < 0 else m.near[origin, j]
            r = s.routed[u]
            if r < 0 or stamp[r] == step or not m.eligible[origin, r]:
                continue
            stamp[r] = step
            touched[ruined] = r
            ruined += 1
            i = 0
            while s.stops[r, i] != u:
                i += 1
            length = np.random.randint(1, 5)
            first = max(0, i - np.random.randint(length))
            taken = _drop(m, s, r, first, first + length, out, taken)
            if ruined >= routes:
                break
        for q in range(taken):
            gone[out[q]] = step
        # Unplaced orders that now fit into a ruined route get the first chance at the room.
        waiting = 0
        if left > 0:
            for c in candidates:
                if s.routed[c] >= 0 or gone[c] == step:
                    continue
                for z in range(ruined):
                    if _insertion(m, s, c, touched[z])[1] >= 0:
                        pending[waiting] = c
                        waiting += 1
                        break
        pending[waiting : waiting + taken] = out[:taken]
        _regret(m, s, pending[: waiting + taken], blink)
        after = _objective(s)
        worse = after - before
        if worse > EPS and not (
            temperature > 0 and np.random.random() < math.exp(-worse / temperature)
        ):
            _copy(spare, s)
        else:
            current = after
            if after < lowest - EPS:
                lowest = after
                _copy(s, best)
    if current > lowest + EPS:
        _copy(best, s)


@njit(cache=True)
def _elsewhere(m: _Model, s: _State, v: int, avoid: int) -> tuple[float, int, int]:
    """The cheapest place for order ``v`` in a route other than ``avoid``: (cost, route,
    position), or (inf, -1, -1)."""
    cheapest = np.inf
    to = -1
    at = -1
    for r in range(len(s.n)):
        if r != avoid:
            cost, pos = _insertion(m, s, v, r)
            if cost < cheapest:
                cheapest, to, at = cost, r, pos
    return cheapest, to, at


@njit(cache=True)
def _replacement(m: _Model, s: _State, v: int, elsewhere: Array) -> tuple[float, int, int]:
    """The best planned visit for unplaced order ``v`` to replace, that visit moving to where
    ``elsewhere`` prices it: (change in cost, route, position), or (-EPS, -1, -1)."""
    nv = m.orders
    lowest = -EPS
    into = -1
    at = -1
    for r in range(len(s.n)):
        if not m.eligible[v, r]:
            continue
        d = m.day[v, r]
        k = s.n[r]
        prev = m.origin[r]
        for i in range(k):
            w = s.stops[r, i]
            # Stop i is replaced by v, between stops i - 1 and i + 1.
            load = s.count[r, d] - (1 if m.day[w, r] == d else 0)
            if w < nv and load < m.cap[r, d]:
                depart = s.dep[r, i]
                if i == 0:
                    depart = max(depart, m.first_leg[v, r])
                leg = m.t[prev, v]
                start = max(depart + leg, m.a[v, r])
                onto = 0.0
                out_of = 0.0
                latest = np.inf
                if i + 1 < k:
                    onto = m.t[v, s.stops[r, i + 1]]
                    out_of = s.legs[r, i + 1]
                    latest = s.lst[r, i + 1]
                if start <= m.b[v, r] and start + m.dur[v] + onto <= latest:
                    delta = (
                        m.weight * (leg + onto - s.legs[r, i] - out_of)
                        + m.pair[v, r]
                        - m.pair[w, r]
                        + elsewhere[w]
                        - m.penalty[v]
                    )
                    if delta < lowest:
                        lowest, into, at = delta, r, i
            prev = w
    return lowest, into, at


@njit(cache=True)
def _squeeze(m: _Model, s: _State, spare: _State, candidates: Array) -> int:
    """Place unplaced orders by taking a visit's place and moving that visit to another
    route (an ejection chain of two); how many such moves paid."""
    nv = m.orders
    # Where each placed visit would go if it left its route, or its penalty if nowhere.
    elsewhere = np.full(nv, np.inf)
    for w in range(nv):
        if s.routed[w] >= 0:
            elsewhere[w] = min(m.penalty[w], _elsewhere(m, s, w, s.routed[w])[0])
    out = np.empty(1, dtype=np.int64)
    moved = 0
    for v in candidates:
        if s.routed[v] >= 0:
            continue
        _, r, i = _replacement(m, s, v, elsewhere)
        if r < 0:
            continue
        before = _objective(s)
        _copy(s, spare)
        w = s.stops[r, i]
        if _drop(m, s, r, i, i + 1, out, 0) == 0:
            continue
        pos = _insertion(m, s, v, r)[1]
        if pos >= 0:
            _put(m, s, v, r, pos)
            _, to, at = _elsewhere(m, s, w, r)
            if to >= 0:
                _put(m, s, w, to, at)
        if pos >= 0 and _objective(s) < before - EPS:
            moved += 1
        else:
            _copy(spare, s)
    return moved


@njit(cache=True)
def _prices(
    m: _Model, s: _State, scratch: _State, chosen: Array, routes: Array
) -> tuple[Array, Array, Array, float]:
    """For an exact batch assignment: on a scratch copy, take the chosen orders out (at most
    one per route), then price each of them into each of the given routes at its best
    position. (prices [order, route], positions, which could be taken out, change in cost)."""
    _copy(s, scratch)
    k = len(chosen)
    out = np.empty(1, dtype=np.int64)
    usable = np.zeros(k, dtype=np.bool_)
    change = 0.0
    for q in range(k):
        v = chosen[q]
        r = scratch.routed[v]
        if r < 0:
            usable[q] = True
            change -= m.penalty[v]
            continue
        i = 0
        while scratch.stops[r, i] != v:
            i += 1
        was = scratch.cost[r]
        if _drop(m, scratch, r, i, i + 1, out, 0) == 1:
            usable[q] = True
            change += scratch.cost[r] - was
    prices = np.full((k, len(routes)), np.inf)
    positions = np.full((k, len(routes)), -1, dtype=np.int64)
    for q in range(k):
        if usable[q]:
            for j in range(len(routes)):
                prices[q, j], positions[q, j] = _insertion(m, scratch, chosen[q], routes[j])
    return prices, positions, usable, change


@njit(cache=True)
def _assign(m: _Model, s: _State, chosen: Array, targets: Array, positions: Array) -> None:
    """Apply an assignment priced by ``_prices``: take the chosen orders out, then put each
    into its target route (-1: leave it out) at the priced position."""
    out = np.empty(1, dtype=np.int64)
    for v in chosen:
        r = s.routed[v]
        if r >= 0:
            i = 0
            while s.stops[r, i] != v:
                i += 1
            _drop(m, s, r, i, i + 1, out, 0)
    for q in range(len(chosen)):
        if targets[q] >= 0:
            _put(m, s, chosen[q], targets[q], positions[q])


def _new_state(routes: int, orders: int, width: int, days: int) -> _State:
    return _State(
        stops=np.full((routes, width), -1, dtype=np.int64),
        n=np.zeros(routes, dtype=np.int64),
        est=np.zeros((routes, width)),
        dep=np.zeros((routes, width + 1)),
        lst=np.zeros((routes, width)),
        legs=np.zeros((routes, width)),
        cost=np.zeros(routes),
        travel=np.zeros(routes),
        sound=np.ones(routes, dtype=np.bool_),
        routed=np.full(orders, -1, dtype=np.int64),
        count=np.zeros((routes, days), dtype=np.int64),
        left=np.zeros(1),
    )


class _Planner:
    """One planning run: the tables (``_Model``) and the plan (``_State``) the kernels share."""

    def __init__(
        self,
        orders: Sequence[Order],
        caregivers: Sequence[Caregiver],
        now: float,
        config: DispatchConfig,
    ) -> None:
        self.orders = list(orders)
        self.caregivers = list(caregivers)
        self.now = now
        self.config = config
        self.nv = nv = len(self.orders)
        self.nr = nr = len(self.caregivers)
        self._eligibility()
        self._nodes()
        self._pad()
        near = self.t[:nv, :nv] + self.t[:nv, :nv].T
        np.fill_diagonal(near, INF)
        # Every other order, nearest first: an order is its own farthest (inf), so drop it.
        order = np.argsort(near, axis=1, kind="stable")[:, : min(NEIGHBOURS, max(nv - 1, 0))]
        self.model = _Model(
            t=self.t,
            a=self.a,
            b=self.b,
            first_leg=self.shift_start,
            pair=self.pair,
            dur=self.dur,
            eligible=self.eligible,
            day=self.day,
            cap=self.cap_left,
            penalty=self.penalty,
            booked_start=np.array(self.bk_start, dtype=np.float64),
            booked_end=np.array(self.bk_end, dtype=np.float64),
            origin=np.array(self.origin, dtype=np.int64),
            origin_time=np.array(self.origin_time, dtype=np.float64),
            near=np.ascontiguousarray(order, dtype=np.int64),
            orders=nv,
            weight=float(config.weights.travel),
        )
        # Room for every booking and as many visits as the caps allow, and one more.
        room = np.clip(self.cap_left, 0, None).sum(axis=1) if nr else np.zeros(0)
        width = max([len(f) + min(nv, int(c)) for f, c in zip(self.fixed, room, strict=True)] + [0])
        self.days_n = self.cap_left.shape[1]
        self.state = self._blank(width + 1)
        for r, fixed in enumerate(self.fixed):
            self.state.stops[r, : len(fixed)] = fixed
            self.state.n[r] = len(fixed)
        self.state.left[0] = float(self.penalty.sum())
        self.candidates = np.nonzero(self.eligible[:nv].any(axis=1))[0].astype(np.int64)
        self.tried: dict[int, bytes] = {}  # seed -> its neighbourhood when last reassigned
        if nr:
            _schedule_all(self.model, self.state)

    def _blank(self, width: int) -> _State:
        return _new_state(self.nr, self.nv, width, self.days_n)

    # -- set-up ---------------------------------------------------------------------------

    def _eligibility(self) -> None:
        """Per (order, caregiver): the hard constraints that hold whatever else is in the
        day, and the one interval of allowed starts."""
        orders, cgs, now, config = self.orders, self.caregivers, self.now, self.config
        nv, nr = self.nv, self.nr
        self.dur = np.array([o.duration_s for o in orders], dtype=np.float64)
        self.penalty = np.array([UNPLACED[o.priority] for o in orders], dtype=np.float64)
        excluded = np.zeros((nv, nr), dtype=np.int64)  # 1 + index into STATIC, 0 if eligible

        def exclude(mask: Bools, why: Exclusion) -> None:
            excluded[(excluded == 0) & mask] = STATIC.index(why) + 1

        index = {c.id: r for r, c in enumerate(cgs)}
        blocked = np.zeros((nv, nr), dtype=bool)
        for v, o in enumerate(orders):
            for cid in o.blocked:
                if cid in index:
                    blocked[v, index[cid]] = True
        exclude(blocked, Exclusion.blocked)
        strict = np.array([o.gender_strict and o.gender is not None for o in orders], dtype=bool)
        same = np.array([[c.gender == o.gender for c in cgs] for o in orders], dtype=bool)
        exclude(strict[:, None] & ~same.reshape(nv, nr), Exclusion.gender)
        names = sorted({s for o in orders for s in o.skills})
        need = np.array([[s in o.skills for s in names] for o in orders], dtype=bool)
        need = need.reshape(nv, len(names))
        # Certificate expiry per caregiver and skill: inf without a certificate, NaN unheld.
        expiry = np.full((nr, len(names)), np.nan)
        for r, c in enumerate(cgs):
            for k, s in enumerate(names):
                if s in c.skills:
                    e = c.skills[s]
                    expiry[r, k] = INF if e is None else e
        exclude((need[:, None, :] & np.isnan(expiry)[None, :, :]).any(axis=2), Exclusion.skill)
        lat = np.array([o.lat for o in orders], dtype=np.float64)
        lon = np.array([o.lon for o in orders], dtype=np.float64)
        clat = np.array([c.lat for c in cgs], dtype=np.float64)
        clon = np.array([c.lon for c in cgs], dtype=np.float64)
        radius = np.array([c.radius_m for c in cgs], dtype=np.float64)
        metres = haversine_pairs(clat[None, :], clon[None, :], lat[:, None], lon[:, None])
        exclude(metres > radius[None, :], Exclusion.radius)
        asap = np.array([o.asap for o in orders], dtype=bool)
        stale = np.array([now - c.position_at > config.max_position_age_s for c in cgs], dtype=bool)
        exclude(asap[:, None] & stale[None, :], Exclusion.stale_position)

        # Allowed starts: the window (an ASAP order's is [now, latest_end]) within one shift
        # piece, and early enough for every certificate to outlast the visit.
        first = np.array(
            [now if o.window_start is None else max(now, o.window_start) for o in orders],
            dtype=np.float64,
        )
        last = np.array([latest_end(o, now, config) for o in orders], dtype=np.float64) - self.dur
        certified = np.where(need[:, None, :], np.nan_to_num(expiry, nan=INF)[None, :, :], INF)
        cert_last = certified.min(axis=2, initial=INF) - self.dur[:, None]
        self.days: list[int] = []
        self.cap_left = np.zeros((nr, 0), dtype=np.int64)
        self._day_index(local_day(now, config))
        pieces = [self._pieces(c) for c in cgs]
        width = max([len(p) for p in pieces] + [1])
        shift_start = np.zeros((nr, width))
        piece_first = np.full((nr, width), INF)
        piece_last = np.full((nr, width), -INF)
        shift_end = np.full((nr, width), -INF)
        day = np.zeros((nr, width), dtype=np.int64)
        for r, ps in enumerate(pieces):
            for k, (begins, opens, closes, ends, d) in enumerate(ps):
                shift_start[r, k], piece_first[r, k], piece_last[r, k] = begins, opens, closes
                shift_end[r, k], day[r, k] = ends, d
        lo = np.maximum(first[:, None, None], piece_first[None, :, :])
        hi = np.minimum(
            np.minimum(last[:, None, None], piece_last[None, :, :]),
            shift_end[None, :, :] - self.dur[:, None, None],
        )
        fits = lo <= hi
        exclude(~fits.any(axis=2), Exclusion.shift)
        hi = np.minimum(hi, cert_last[:, :, None])
        fits &= lo <= hi
        exclude(~fits.any(axis=2), Exclusion.certificate)
        fits &= self.cap_left[np.arange(nr)[:, None], day][None, :, :] > 0
        exclude(~fits.any(axis=2), Exclusion.daily_cap)
        best = np.argmax(np.where(fits, hi - lo, -INF), axis=2)  # longest, earliest on ties
        pick = (np.arange(nv)[:, None], np.arange(nr)[None, :], best)
        self.excluded = excluded
        self.eligible: Bools = excluded == 0
        self.a = np.where(self.eligible, lo[pick], INF)
        self.b = np.where(self.eligible, hi[pick], -INF)
        self.shift_start = np.where(
            self.eligible, np.broadcast_to(shift_start, lo.shape)[pick], 0.0
        )
        self.day = np.where(self.eligible, np.broadcast_to(day, lo.shape)[pick], 0)
        self.pair = np.zeros((nv, nr))
        for v, r in zip(*np.nonzero(self.eligible), strict=True):
            self.pair[v, r] = pair_cost(orders[v], cgs[r], now, config)

    def _pieces(self, caregiver: Caregiver) -> list[tuple[float, float, float, float, int]]:
        """Each shift cut at local midnights: (shift start, first start, last start, shift
        end, local-day index), so that every interval of starts lies inside one local day."""
        out = []
        offset = self.config.utc_offset_s
        for s, e in caregiver.shifts:
            first = max(s, self.now)
            while first < e:
                d = local_day(first, self.config)
                midnight = (d + 1) * DAY_S - offset
                # A visit may run past midnight; it must start a millisecond before it.
                out.append((s, first, min(e, midnight - 1e-3), e, self._day_index(d)))
                first = midnight
        return out

    def _day_index(self, day: int) -> int:
        if day not in self.days:
            self.days.append(day)
            today = local_day(self.now, self.config)
            caps = np.zeros((self.nr, len(self.days)), dtype=np.int64)
            for r, c in enumerate(self.caregivers):
                for d, each in enumerate(self.days):
                    load = sum(1 for b in c.bookings if local_day(b.start, self.config) == each)
                    load += c.visits_today if each == today else 0
                    caps[r, d] = c.daily_cap - load
            self.cap_left = caps
        return self.days.index(day)

    def _nodes(self) -> None:
        """The travel matrix over orders, origins and booked stops, plus END."""
        nv, nr, now = self.nv, self.nr, self.now
        lat = [o.lat for o in self.orders] + [c.lat for c in self.caregivers]
        lon = [o.lon for o in self.orders] + [c.lon for c in self.caregivers]
        self.origin = list(range(nv, nv + nr))
        self.origin_time = [now] * nr
        self.fixed: list[list[int]] = []
        bk_start: list[float] = []
        bk_end: list[float] = []
        for r, c in enumerate(self.caregivers):
            nodes = []
            for i, b in enumerate(x for x in c.bookings if x.end > now):
                node = len(lat)
                lat.append(b.lat)
                lon.append(b.lon)
                bk_start.append(b.start)
                bk_end.append(b.end)
                if i == 0 and b.start <= now:
                    # A visit under way: the day goes on from there when it ends.
                    self.origin[r], self.origin_time[r] = node, b.end
                else:
                    nodes.append(node)
            self.fixed.append(nodes)
        n = len(lat)
        self.end = n
        la, lo = np.array(lat, dtype=np.float64), np.array(lon, dtype=np.float64)
        self.t = np.zeros((n + 1, n + 1))
        self.t[:n, :n] = self.config.travel.matrix(la, lo, la, lo)
        self.bk_start = [math.nan] * (nv + nr) + bk_start + [math.nan]
        self.bk_end = [math.nan] * (nv + nr) + bk_end + [math.nan]

    def _pad(self) -> None:
        """Give every node a row in the per-order arrays, never eligible, so that a route's
        stops index them without masks."""
        extra = self.end + 1 - self.nv
        nr = self.nr

        def pad(x: NDArray[_T], fill: object) -> NDArray[_T]:
            grown = np.concatenate([x, np.full((extra, nr), fill, dtype=x.dtype)])
            return np.ascontiguousarray(grown)

        self.eligible = pad(self.eligible, False)
        self.a = pad(self.a, INF)
        self.b = pad(self.b, -INF)
        self.shift_start = pad(self.shift_start, 0.0)
        self.day = pad(self.day.astype(np.int64), 0)
        self.pair = pad(self.pair, 0.0)
        self.dur = np.concatenate([self.dur, np.zeros(extra)])

    # -- search ---------------------------------------------------------------------------

    def construct(self) -> None:
        """Cheapest insertion with regret, from empty days."""
        if self.nr and len(self.candidates):
            _regret(self.model, self.state, self.candidates, 0.0)

    def improve(self, rounds: int) -> None:
        """Make room for the orders left out, then round after round: ruin and recreate
        (annealing from warm to cold across the rounds), and every few rounds (and last) a
        round of exact batch assignment."""
        if self.nr == 0 or len(self.candidates) == 0 or rounds <= 0:
            return
        spare, best = self._blank(self.state.stops.shape[1]), self._blank(self.state.stops.shape[1])
        for _ in range(10):
            if not _squeeze(self.model, self.state, spare, self.candidates):
                break
        steps = min(STEPS_PER_ROUND, STEPS_PER_ORDER * len(self.candidates))
        for k in range(rounds):
            hot = TEMPERATURE * (1 - k / rounds)
            cold = TEMPERATURE * (1 - (k + 1) / rounds)
            _search(
                self.model,
                self.state,
                spare,
                best,
                self.candidates,
                steps,
                hot,
                cold,
                SEED + k,
                BLINK,
                SEED_UNPLACED,
            )
            if (k + 1) % ASSIGNMENT_EVERY == 0 or k == rounds - 1:
                self._assignment_round(spare)

    def _assignment_round(self, scratch: _State) -> int:
        """Exact batch assignment around every order whose neighbourhood changed since it was
        last tried; how many improved the plan."""
        s = self.state
        better = 0
        for seed in self.candidates.tolist():
            chosen = self._related(seed)
            nearby = {int(s.routed[u]) for u in self.model.near[seed, :20]}
            routes = sorted((nearby | {int(s.routed[v]) for v in chosen}) - {-1})
            key = b"".join(s.stops[r, : s.n[r]].tobytes() for r in routes)
            if len(chosen) < 2 or not routes or self.tried.get(seed) == key:
                continue
            if self._reassign(np.array(chosen, dtype=np.int64), np.array(routes), scratch):
                better += 1
            else:
                self.tried[seed] = key
        return better

    def _related(self, seed: int) -> list[int]:
        """The seed and its nearest orders, at most one per route (unplaced ones too)."""
        s = self.state
        chosen = [seed]
        taken = {int(s.routed[seed])}
        for u in self.model.near[seed].tolist():
            r = int(s.routed[u])
            if r < 0 and self.eligible[u].any():
                chosen.append(u)
            elif r >= 0 and r not in taken:
                chosen.append(u)
                taken.add(r)
            if len(chosen) >= RELATED:
                break
        return chosen

    def _reassign(self, chosen: Ints, routes: Ints, scratch: _State) -> bool:
        """Take the chosen orders out and give them back by an exact minimum-cost assignment,
        each route taking at most one; True if that is cheaper (else nothing changes)."""
        prices, positions, usable, change = _prices(self.model, self.state, scratch, chosen, routes)
        if not usable.all():
            chosen, prices, positions = chosen[usable], prices[usable], positions[usable]
        k, width = len(chosen), len(routes)
        matrix = np.full((k, width + k), FORBIDDEN)
        matrix[:, :width] = np.where(prices < INF, prices, FORBIDDEN)
        matrix[np.arange(k), width + np.arange(k)] = self.penalty[chosen]
        rows, cols = linear_sum_assignment(matrix)
        chosen_cost = matrix[rows, cols]
        if (chosen_cost >= FORBIDDEN).any() or change + float(chosen_cost.sum()) >= -EPS:
            return False
        targets = np.full(k, -1, dtype=np.int64)
        at = np.zeros(k, dtype=np.int64)
        for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
            if j < width:
                targets[i], at[i] = routes[j], positions[i, j]
        before = _objective(self.state)
        _copy(self.state, scratch)
        _assign(self.model, self.state, chosen, targets, at)
        if _objective(self.state) < before - EPS:
            return True
        _copy(scratch, self.state)
        return False

    # -- the answer -----------------------------------------------------------------------

    def result(self) -> DayPlan:
        s = self.state
        nv = self.nv
        routes: dict[Id, tuple[PlannedVisit, ...]] = {}
        idle = 0.0
        for r, c in enumerate(self.caregivers):
            visits = []
            for i in range(int(s.n[r])):
                node = int(s.stops[r, i])
                start, leg = float(s.est[r, i]), float(s.legs[r, i])
                if i > 0:
                    idle += _on_shift(float(s.dep[r, i]) + leg, start, c.shifts)
                if node < nv:
                    end = start + float(self.dur[node])
                    visits.append(PlannedVisit(self.orders[node].id, start, end, leg))
            routes[c.id] = tuple(visits)
        unplaced: dict[Id, dict[Exclusion, int]] = {}
        for v in np.nonzero(s.routed < 0)[0].tolist():
            why: Counter[Exclusion] = Counter()
            for r in range(self.nr):
                code = int(self.excluded[v, r])
                if code:
                    why[STATIC[code - 1]] += 1
                else:
                    day = self.day[v, r]
                    full = s.count[r, day] >= self.cap_left[r, day]
                    why[Exclusion.daily_cap if full else Exclusion.reachable] += 1
            unplaced[self.orders[v].id] = dict(why)
        travel = float(s.travel.sum())
        cost = float(s.cost.sum()) + float(self.penalty[s.routed < 0].sum())
        return DayPlan(routes, unplaced, travel, idle, cost)


def _on_shift(begin: float, end: float, shifts: Sequence[tuple[float, float]]) -> float:
    """How much of [begin, end] lies inside the shifts."""
    return sum(max(0.0, min(end, e) - max(begin, s)) for s, e in shifts)


def violations(
    result: DayPlan,
    orders: Sequence[Order],
    caregivers: Sequence[Caregiver],
    now: float,
    config: DispatchConfig,
    *,
    tolerance: float = 1e-6,
) -> list[str]:
    """Every broken rule in a plan, re-checked from scratch (empty when the plan is sound)."""
    by_id = {o.id: o for o in orders}
    wrong: list[str] = []
    seen: Counter[Id] = Counter()
    travel = idle = 0.0
    for c in caregivers:
        visits = result.routes.get(c.id)
        if visits is None:
            wrong.append(f"{c.id}: missing from the routes")
            continue
        if [v.start for v in visits] != sorted(v.start for v in visits):
            wrong.append(f"{c.id}: visits out of time order")
        # The day as stops: (start, end, lat, lon, the planned visit or None for a booking).
        stops: list[tuple[float, float, float, float, PlannedVisit | None]] = []
        day_load: Counter[int] = Counter()
        for visit in visits:
            order = by_id.get(visit.order_id)
            if order is None:
                wrong.append(f"{visit.order_id}: not an order of this plan")
                continue
            seen[order.id] += 1
            faults = _visit_faults(order, c, visit, now, config, tolerance)
            wrong += [f"{order.id} on {c.id}: {fault}" for fault in faults]
            day_load[local_day(visit.start, config)] += 1
            stops.append((visit.start, visit.end, order.lat, order.lon, visit))
        today = local_day(now, config)
        for day, planned in day_load.items():
            load = sum(1 for b in c.bookings if local_day(b.start, config) == day)
            load += c.visits_today if day == today else 0
            if load + planned > c.daily_cap:
                wrong.append(f"{c.id}: {load + planned} visits on day {day}, cap {c.daily_cap}")
        upcoming = [b for b in c.bookings if b.end > now]
        depart, lat, lon = now, c.lat, c.lon
        if upcoming and upcoming[0].start <= now:
            depart, lat, lon = upcoming[0].end, upcoming[0].lat, upcoming[0].lon
            upcoming = upcoming[1:]
        stops += [(b.start, b.end, b.lat, b.lon, None) for b in upcoming]
        stops.sort(key=lambda stop: stop[0])
        after_planned = False
        for i, (start, end, to_lat, to_lon, here) in enumerate(stops):
            leg = config.travel.seconds(lat, lon, to_lat, to_lon)
            travel += leg
            if here is not None and abs(here.travel_s - leg) > tolerance * max(1.0, leg):
                wrong.append(f"{here.order_id}: travel {here.travel_s} reported, {leg} found")
            if i > 0:
                idle += sum(max(0.0, min(start, e) - max(depart + leg, s)) for s, e in c.shifts)
            if here is not None and i == 0:
                # The first leg is work: it sets off no earlier than the visit's shift.
                on_time = any(
                    s <= start + tolerance
                    and end <= e + tolerance
                    and start + tolerance >= max(depart, s) + leg
                    for s, e in c.shifts
                )
            elif here is None and not after_planned:
                on_time = True  # bookings, and how to get to them, are given: not planned
            else:
                on_time = start + tolerance >= depart + leg
            if not on_time:
                what = here.order_id if here is not None else "a booking"
                wrong.append(f"{c.id}: cannot reach {what} by {start}")
            after_planned = here is not None
            depart, lat, lon = end, to_lat, to_lon
    for order in orders:
        times = seen[order.id] + (order.id in result.unplaced)
        if times != 1:
            wrong.append(f"{order.id}: planned or left out {times} times, not once")
    for name, reported, found in (
        ("travel", result.travel_s, travel),
        ("idle", result.idle_s, idle),
    ):
        if abs(reported - found) > tolerance * max(1.0, found):
            wrong.append(f"{name}: {reported} reported, {found} found")
    return wrong


def _visit_faults(
    order: Order,
    c: Caregiver,
    visit: PlannedVisit,
    now: float,
    config: DispatchConfig,
    tolerance: float,
) -> list[str]:
    """The hard constraints one planned visit breaks, on its own."""
    start, end = visit.start, visit.end
    wrong = []
    if abs(end - start - order.duration_s) > tolerance:
        wrong.append("the visit is not as long as the order")
    if c.id in order.blocked:
        wrong.append("blocked")
    if order.gender_strict and order.gender is not None and c.gender != order.gender:
        wrong.append("gender")
    for skill in order.skills:
        if skill not in c.skills:
            wrong.append(f"no {skill}")
        elif (expiry := c.skills[skill]) is not None and expiry < end - tolerance:
            wrong.append(f"{skill} certificate expires during the visit")
    if haversine_m(c.lat, c.lon, order.lat, order.lon) > c.radius_m:
        wrong.append("outside the service radius")
    if order.asap and now - c.position_at > config.max_position_age_s:
        wrong.append("stale position for an ASAP order")
    earliest = now if order.window_start is None else max(now, order.window_start)
    if start < earliest - tolerance:
        wrong.append("starts before its window (or before now)")
    if end > latest_end(order, now, config) + tolerance:
        wrong.append("ends after its window")
    if not any(s - tolerance <= start and end <= e + tolerance for s, e in c.shifts):
        wrong.append("outside every shift")
    return wrong
