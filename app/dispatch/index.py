"""A spatial index over on-duty caregivers, for ranking one order without judging everyone.

Every place a caregiver could set out from (the current position, and the end of each
upcoming booking) is a point in a uniform grid of cells. A search judges the caregivers met
ring by ring around the order's cell and stops when nobody further out can beat the k-th
best: their travel is at least that of the ring's distance (a guaranteed lower bound on the
great-circle distance), and no non-travel term can gain more than ``Weights`` allows.
Caregivers on the senior's preferred list or who served the senior before can gain more, so
they are judged first wherever they are. The result equals ``assign.rank`` exactly.
"""

import math
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence

from app.dispatch.assign import Candidate, Ranking, judge_all, to_ranking, wanted
from app.dispatch.constraints import Exclusion
from app.dispatch.geo import EARTH_RADIUS_M
from app.dispatch.model import Caregiver, Id, Order
from app.dispatch.policy import DispatchConfig

M_PER_DEG_LAT = math.pi * EARTH_RADIUS_M / 180


class FleetIndex:
    def __init__(
        self,
        caregivers: Sequence[Caregiver],
        config: DispatchConfig,
        *,
        cell_m: float = 1000.0,
        reference_lat: float | None = None,
    ) -> None:
        self.config = config
        self.caregivers: list[Caregiver] = list(caregivers)
        ref = reference_lat
        if ref is None:
            ref = sum(c.lat for c in caregivers) / len(caregivers) if caregivers else 0.0
        self.cell_lat = cell_m / M_PER_DEG_LAT
        self.cell_lon = cell_m / (M_PER_DEG_LAT * max(0.05, math.cos(math.radians(ref))))
        self._cells: dict[tuple[int, int], list[int]] = defaultdict(list)
        self._where: dict[int, list[tuple[int, int]]] = {}
        self._served: dict[Id, set[int]] = defaultdict(set)
        self._by_id: dict[Id, int] = {}
        self.max_abs_lat = 0.0
        self.max_radius = 0.0
        self._extent = (math.inf, -math.inf, math.inf, -math.inf)  # cell rows and columns
        for i, caregiver in enumerate(self.caregivers):
            self._by_id[caregiver.id] = i
            self._insert(i)

    def _points(self, caregiver: Caregiver) -> Iterator[tuple[float, float]]:
        yield caregiver.lat, caregiver.lon
        for booking in caregiver.bookings:
            yield booking.lat, booking.lon

    def _cell(self, lat: float, lon: float) -> tuple[int, int]:
        return math.floor(lat / self.cell_lat), math.floor(lon / self.cell_lon)

    def _insert(self, i: int) -> None:
        caregiver = self.caregivers[i]
        cells = []
        if caregiver.on_duty:
            for lat, lon in self._points(caregiver):
                cell = self._cell(lat, lon)
                self._cells[cell].append(i)
                cells.append(cell)
                y0, y1, x0, x1 = self._extent
                self._extent = (
                    min(y0, cell[0]),
                    max(y1, cell[0]),
                    min(x0, cell[1]),
                    max(x1, cell[1]),
                )
                self.max_abs_lat = max(self.max_abs_lat, abs(lat))
            self.max_radius = max(self.max_radius, caregiver.radius_m)
        self._where[i] = cells
        for senior in caregiver.served:
            self._served[senior].add(i)

    def _remove(self, i: int) -> None:
        for cell in self._where.pop(i, []):
            members = self._cells[cell]
            members.remove(i)
            if not members:
                del self._cells[cell]
        for senior in self.caregivers[i].served:
            self._served[senior].discard(i)

    def update(self, caregiver: Caregiver) -> None:
        """A caregiver moved, went on or off duty, or their day changed."""
        i = self._by_id[caregiver.id]
        self._remove(i)
        self.caregivers[i] = caregiver
        self._insert(i)

    def _gap_m(self, rings: int, order: Order) -> float:
        """Great-circle metres that certainly separate the order from any point in a cell
        more than ``rings`` cells away (in latitude or in longitude)."""
        if rings <= 0:
            return 0.0
        by_lat = EARTH_RADIUS_M * math.radians(rings * self.cell_lat)
        widest = max(self.max_abs_lat, abs(order.lat))
        half = math.radians(min(180.0, rings * self.cell_lon)) / 2
        by_lon = (
            2
            * EARTH_RADIUS_M
            * math.asin(min(1.0, math.cos(math.radians(widest)) * math.sin(half)))
        )
        return min(by_lat, by_lon)

    def rank(self, order: Order, now: float, *, limit: int | None = None) -> Ranking:
        """The same ranking as ``assign.rank`` over the same caregivers, found nearby."""
        config = self.config
        k = wanted(order, config) if limit is None else limit
        seen: set[int] = set()
        judged: list[tuple[float, int, Candidate]] = []
        excluded: dict[Exclusion, int] = defaultdict(int)
        examined = 0

        def judge(indexes: Sequence[int]) -> None:
            nonlocal examined
            fresh = [i for i in indexes if i not in seen]
            seen.update(fresh)
            found, why, count = judge_all(
                order, ((i, self.caregivers[i]) for i in fresh), now, config
            )
            judged.extend(found)
            for reason, n in why.items():
                excluded[reason] += n
            examined += count

        special = {self._by_id[c] for c in order.preferred if c in self._by_id}
        special |= self._served.get(order.senior_id, set())
        judge(sorted(i for i in special if self.caregivers[i].on_duty))

        w = config.weights
        generic_bonus = w.language + w.rating
        cy, cx = self._cell(order.lat, order.lon)
        rings = 0
        while True:
            judge(
                sorted({i for cell in self._ring(cy, cx, rings) for i in self._cells.get(cell, ())})
            )
            gap = self._gap_m(rings, order)
            y0, y1, x0, x1 = self._extent
            covered = (
                cy - rings <= y0 and cy + rings >= y1 and cx - rings <= x0 and cx + rings >= x1
            )
            if gap > self.max_radius or covered or not self._cells:
                break
            if len(judged) >= k:
                kth = sorted(cost for cost, _, _ in judged)[k - 1]
                if kth < w.travel * config.travel.min_seconds(gap) - generic_bonus:
                    break
            rings += 1
        return to_ranking(order, (judged, Counter(excluded), examined), k, config)

    @staticmethod
    def _ring(cy: int, cx: int, r: int) -> Iterator[tuple[int, int]]:
        if r == 0:
            yield cy, cx
            return
        for dx in range(-r, r + 1):
            yield cy - r, cx + dx
            yield cy + r, cx + dx
        for dy in range(-r + 1, r):
            yield cy + dy, cx - r
            yield cy + dy, cx + r
