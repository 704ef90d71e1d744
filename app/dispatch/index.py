"""A spatial index over the caregivers on duty, for ranking one order without judging everyone.

Every place a caregiver could set out from (the current position, and each booking's place)
is a point in a uniform grid. A search judges the caregivers met ring by ring around the
order's cell and stops when nobody further out can beat the k-th best: their travel is at
least that over the gap to the searched block (a guaranteed lower bound on the great-circle
distance), and no non-travel term can gain more than ``Weights`` allows. Caregivers on the
senior's preferred list or who served the senior before can gain more, so they are judged
first wherever they are. The result equals ``assign.rank`` exactly (tests hold it to that).

Points are bucketed by a counting sort, so moving every caregiver at once costs one linear
pass (``move``). Points that leave the grid's extent are kept in its edge cells, which keeps
the search exact; ``rebuild`` re-fits the extent. Caregivers off duty are never offered an
order and are left out of the grid, so a ranking's exclusion counts cover those on duty that
the search examined (the brute force counts everyone).
"""

import math
from collections.abc import Sequence

import numba
import numpy as np
from numba.core.registry import CPUDispatcher
from numpy.typing import NDArray

from app.dispatch import kernel
from app.dispatch.assign import Ranking, wanted
from app.dispatch.fleet import Fleet
from app.dispatch.geo import EARTH_RADIUS_M
from app.dispatch.model import Caregiver, Id, Order
from app.dispatch.policy import DispatchConfig

M_PER_DEG_LAT = math.pi * EARTH_RADIUS_M / 180
MAX_CELLS = 4_000_000  # beyond this the cells grow instead (a fleet spread over a continent)


class FleetIndex:
    """Not thread-safe: one dispatcher owns it (the search marks visited rows in place)."""

    def __init__(
        self, caregivers: Sequence[Caregiver], config: DispatchConfig, *, cell_m: float = 500.0
    ) -> None:
        self.config = config
        self.cell_m = cell_m
        self.fleet = Fleet(caregivers, config)
        self._tick = 0
        self._stamp = np.zeros(0, np.int64)
        self.rebuild()
        # Store neighbours next to each other: a search then reads a few runs of memory
        # instead of a caregiver here and there (most of its time was cache misses).
        keys = self._keys(self.fleet.lat[: self.fleet.n], self.fleet.lon[: self.fleet.n])
        self.fleet.reorder(np.argsort(keys, kind="stable"))
        self.rebuild()

    def rows(self, ids: Sequence[Id]) -> NDArray[np.int64]:
        """The rows of caregivers by id (keep them: ``move`` takes rows)."""
        return np.array([self.fleet.row[i] for i in ids], np.int64)

    def rebuild(self) -> None:
        """Re-fit the grid to where everyone is, and bucket every point."""
        f, n = self.fleet, self.fleet.n
        lat, lon = self._points()
        if n:
            lat0, lat1 = float(lat.min()), float(lat.max())
            lon0, lon1 = float(lon.min()), float(lon.max())
        else:
            lat0 = lat1 = lon0 = lon1 = 0.0
        reference = (lat0 + lat1) / 2
        cell_lat = self.cell_m / M_PER_DEG_LAT
        cell_lon = self.cell_m / (M_PER_DEG_LAT * max(0.05, math.cos(math.radians(reference))))
        height = int((lat1 - lat0) / cell_lat) + 1
        width = int((lon1 - lon0) / cell_lon) + 1
        if height * width > MAX_CELLS:
            grow = math.sqrt(height * width / MAX_CELLS)
            cell_lat, cell_lon = cell_lat * grow, cell_lon * grow
            height = int((lat1 - lat0) / cell_lat) + 1
            width = int((lon1 - lon0) / cell_lon) + 1
        self._shape = (lat0, lon0, cell_lat, cell_lon, height, width)
        if len(self._stamp) < len(f.hot):
            self._stamp = np.zeros(len(f.hot), np.int64)
        # What only changes with a caregiver's day, not with where they are (``move``).
        self._off_duty = f.hot[self._point_row, kernel.ON_DUTY] == 0.0
        starts = f.shifts[:n, :, 0]
        finite = starts[np.isfinite(starts)]
        self._slot_base = float(finite.min()) if len(finite) else 0.0
        self._row_slots = kernel.shift_slots(f.columns(), n, self._slot_base)
        self._max_radius = float(f.radius[:n].max()) if n else 0.0
        self._rating_bonus = max(0.0, -float(f.rating_part[:n].min())) if n else 0.0
        self._bucket(lat, lon)
        self._dirty = False

    def _points(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Positions first (point ``i`` is row ``i``), then every booking's place."""
        f, n = self.fleet, self.fleet.n
        has = np.arange(f.books.shape[1]) < f.bookings[:n, None]
        booked_rows, booked_cols = np.nonzero(has)
        self._point_row = np.concatenate([np.arange(n), booked_rows])
        booked = f.books[booked_rows, booked_cols]
        lat = np.concatenate([f.lat[:n], booked[:, kernel.B_LAT]])
        lon = np.concatenate([f.lon[:n], booked[:, kernel.B_LON]])
        self._lat, self._lon = lat, lon
        return lat, lon

    def _keys(self, lat: NDArray[np.float64], lon: NDArray[np.float64]) -> NDArray[np.int64]:
        lat0, lon0, cell_lat, cell_lon, height, width = self._shape
        # Contiguous always (a column of the fleet is a strided view): one compiled version.
        keys: NDArray[np.int64] = kernel.cell_keys(
            lat0,
            lon0,
            cell_lat,
            cell_lon,
            height,
            width,
            np.ascontiguousarray(lat),
            np.ascontiguousarray(lon),
        )
        return keys

    def _bucket(self, lat: NDArray[np.float64], lon: NDArray[np.float64]) -> None:
        f = self.fleet
        lat0, lon0, cell_lat, cell_lon, height, width = self._shape
        keys = self._keys(lat, lon)
        # Only caregivers on duty can be offered anything: the others are not searched.
        keys[self._off_duty] = -1
        order, start = kernel.bucket(keys, height * width)
        skills, shifts, seen, reach = kernel.summarise(
            f.columns(), start, order, self._point_row, self._row_slots
        )
        g = self.grid = kernel.Grid(
            lat0=lat0,
            lon0=lon0,
            cell_lat=cell_lat,
            cell_lon=cell_lon,
            height=height,
            width=width,
            start=start,
            row=self._point_row[order],
            max_abs_lat=float(np.abs(lat).max()) if len(lat) else 0.0,
            max_radius=self._max_radius,
            rating_bonus=self._rating_bonus,
            cell_skills=skills,
            cell_shifts=shifts,
            cell_seen=seen,
            cell_reach=reach,
            slot_base=self._slot_base,
        )
        # ``kernel.search`` takes the grid as plain arrays (see there why).
        self._grid_arrays = (
            np.array(
                [
                    g.lat0,
                    g.lon0,
                    g.cell_lat,
                    g.cell_lon,
                    g.max_abs_lat,
                    g.max_radius,
                    g.rating_bonus,
                    g.slot_base,
                ]
            ),
            np.array([g.height, g.width], np.int64),
            g.start,
            g.row,
            g.cell_skills,
            g.cell_shifts,
            g.cell_seen,
            g.cell_reach,
        )

    def move(
        self,
        rows: NDArray[np.int64],
        lat: NDArray[np.float64],
        lon: NDArray[np.float64],
        position_at: NDArray[np.float64] | float,
    ) -> None:
        """Many caregivers reported where they are: one linear pass, no Python loop."""
        if self._dirty:
            self.rebuild()
        self.fleet.move(rows, lat, lon, position_at)
        self._lat[rows] = lat
        self._lon[rows] = lon
        self._bucket(self._lat, self._lon)

    def update(self, caregiver: Caregiver) -> None:
        """A caregiver joined, moved, went on or off duty, or their day changed."""
        self.fleet.put(caregiver)
        self._dirty = True

    def rank(
        self,
        order: Order,
        now: float,
        *,
        limit: int | None = None,
        taken: NDArray[np.int64] | None = None,
    ) -> Ranking:
        """The same ranking as ``assign.rank`` over the same caregivers, found nearby.
        ``taken`` rows (caregivers already given other work) count as blocked."""
        if self._dirty:
            self.rebuild()
        f = self.fleet
        k = wanted(order, self.config) if limit is None else limit
        self._tick += 1
        want = f.want_arrays(order, now, taken=taken)
        out, counts = kernel.search(
            *self._grid_arrays,
            f.hot,
            f.cert,
            f.shifts,
            f.books,
            *want[:7],
            f.model_array(now),
            k,
            want.special,
            self._stamp,
            self._tick,
        )
        return f.ranking_flat(order, out, counts)

    def lists(self, orders: Sequence[Order], now: float, k: int) -> kernel.Lists:
        """Each order's ``k`` cheapest feasible caregivers, searched in parallel."""
        if self._dirty:
            self.rebuild()
        f = self.fleet
        chunks = max(1, min(numba.get_num_threads(), len(orders) // 64))
        return kernel.lists(self.grid, f.columns(), f.model(now), f.orders(orders, now), k, chunks)

    def everyone(
        self, orders: Sequence[Order], now: float
    ) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.float64]]:
        """Every feasible (order, row, cost): the full cost matrix, for reference optima."""
        if self._dirty:
            self.rebuild()
        f = self.fleet
        self._tick += len(orders) + 1
        return kernel.everyone(
            self.grid,
            f.columns(),
            f.model(now),
            f.orders(orders, now),
            self._stamp,
            self._tick - len(orders),
        )


def warm_up(config: DispatchConfig | None = None, *, dayplan: bool = False) -> None:
    """Compile (or load from numba's on-disk cache) every kernel the live dispatcher runs, each
    in the one version the service calls: at install (``doorstep warm-up``), when building the
    image, and when a dispatcher starts (then it only loads, about 2 s). ``dayplan``: the day
    planner's kernels too (the bench and the simulator use them; the live service does not)."""
    from app.dispatch.batch import solve
    from app.dispatch.model import Booking, Priority

    config = config or DispatchConfig()
    now = 0.0
    busy = Booking(now - 600, now + 600, 0.001, 0.0)
    fleet = [
        Caregiver(id=i, lat=0.001 * i, lon=0.0, position_at=now, shifts=((now, now + 3600),))
        for i in range(2)
    ]
    fleet.append(
        Caregiver(
            id=2, lat=0.0, lon=0.0, position_at=now, shifts=((now, now + 3600),), bookings=(busy,)
        )
    )
    index = FleetIndex(fleet, config)
    orders = [
        Order(id=0, senior_id=0, lat=0.0, lon=0.0, duration_s=600.0, priority=Priority.urgent),
        Order(
            id=1,
            senior_id=1,
            lat=0.0,
            lon=0.0,
            duration_s=600.0,
            window_start=now + 60,
            window_end=now + 3000,
            preferred=frozenset({1}),
        ),
    ]
    index.rank(orders[0], now)
    index.rank(orders[1], now, limit=1, taken=index.rows([0]))
    index.fleet.rank(orders[0], now)
    solve(orders, index, now, config)
    index.everyone(orders, now)
    index.move(index.rows([0]), np.array([0.0]), np.array([0.0]), now)
    if dayplan:
        from app.dispatch.dayplan import plan

        plan(orders, fleet, now, config, rounds=1)


def kernels() -> list[CPUDispatcher]:
    """Every compiled function of ``kernel``."""
    return [f for f in vars(kernel).values() if isinstance(f, CPUDispatcher)]


def freeze() -> None:
    """After ``warm_up``: a call that would need a new compiled version raises instead of
    compiling (which takes minutes on a small machine and holds the GIL meanwhile). The
    service passes every kernel the same array types, so this never fires; a test runs the
    whole suite frozen to prove it."""
    for f in kernels():
        if f.signatures:
            f.disable_compile()


def compiled_versions() -> int:
    """How many compiled versions the kernels hold (it must not grow after ``freeze``)."""
    return sum(len(f.signatures) for f in kernels())
