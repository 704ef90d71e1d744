"""Compiled kernels: judge caregivers and search the grid at machine speed.

``judge`` repeats the scalar reference (``constraints.place`` then ``scoring.cost_parts``)
step for step, with the same libm functions in the same order, so it gives the very same
floats; the tests compare them bit for bit. numba compiles these functions on first use and
caches the machine code on disk (``__pycache__``), so a process pays the compile once.

Everything is plain arrays and scalars: ``Columns`` is the fleet (one row per caregiver,
padded tables for certificates, shifts and bookings), ``Want`` is one order, ``Model`` the
clock and the settings, ``Grid`` the spatial index over the points caregivers set out from.
"""

import math
from typing import Any, NamedTuple

import numpy as np
from numba import njit, prange

from app.dispatch.geo import EARTH_RADIUS_M

Array = Any  # numpy arrays; numba specialises on their dtype and rank

# Exclusion codes, in the order ``place`` checks them; 0 is feasible (``fleet.REASONS``).
(
    EX_OFF_DUTY,
    EX_BLOCKED,
    EX_GENDER,
    EX_SKILL,
    EX_RADIUS,
    EX_STALE,
    EX_SHIFT,
    EX_REACHABLE,
    EX_CERTIFICATE,
    EX_DAILY_CAP,
) = range(1, 11)
CODES = 11
PARTS = 7  # travel, delay, continuity, preferred, language, workload, rating
DAY_S = 86_400.0
NO_GENDER = -1  # the order has no strict gender wish


# Columns of ``Columns.hot``: one row per caregiver, everything a first look needs, side by
# side in memory (a search meets caregivers in no particular order; one or two cache lines
# each keeps it fast). Bit masks are stored as floats: exact up to 2**53.
LAT, LON, POSITION_AT, RADIUS, ON_DUTY, GENDER, SKILLS, LANGUAGES = range(8)
BOOKINGS, RATING_PART, VISITS_TODAY, DAILY_CAP = range(8, 12)
TIE = 12  # equal costs go to the lower TIE: the caregiver's position in the input
HOT = 13
# Fields of a booking in ``Columns.books``.
B_START, B_END, B_LAT, B_LON, B_DAY = range(5)


class Columns(NamedTuple):
    hot: Array  # [row, HOT]
    cert: Array  # [row, skill] certificate expiry, inf when none is needed
    shifts: Array  # [row, j, start/end] sorted, padded with (inf, -inf)
    books: Array  # [row, j, B_*] by start, padded with (inf, inf, 0, 0, nan)


class Want(NamedTuple):
    lat: float
    lon: float
    duration: float
    earliest: float  # the earliest wanted start, also what delay is measured from
    last_end: float
    asap: bool
    skills: int  # bit mask
    known: bool  # False when a required skill is not in the fleet's vocabulary
    gender: int  # the required gender's code, or NO_GENDER
    languages: int  # bit mask; 0 when the order asks for none
    cert_cols: Array  # certificate columns of the required skills
    blocked: Array  # sorted rows
    preferred: Array  # sorted rows
    served_rows: Array  # sorted rows of caregivers who served this senior
    served: Array  # their visits, up to 3


class Model(NamedTuple):
    now: float
    today: float  # local day of ``now``
    detour: float
    speed: float
    max_age: float
    utc_offset: float
    w_travel: float
    w_delay: float
    w_continuity: float
    w_preferred: float
    w_language: float
    w_workload: float


class Grid(NamedTuple):
    lat0: float
    lon0: float
    cell_lat: float
    cell_lon: float
    height: int
    width: int
    start: Array  # points of cell c are [start[c], start[c + 1]) in the sorted arrays
    row: Array  # caregiver row of each sorted point
    max_abs_lat: float  # of every point, for the longitude bound
    max_radius: float  # no caregiver serves further than this
    rating_bonus: float  # the most any rating takes off a cost (0 for ratings up to five)
    # Per cell, over its caregivers: a cell none of whom could serve is not searched.
    cell_skills: Array  # union of skill masks
    cell_shifts: Array  # 64 bits: time slots some shift covers (see ``slots``)
    cell_seen: Array  # latest position report
    cell_reach: Array  # no caregiver of the cell serves further than this from any point in it
    slot_base: float  # when slot 0 starts


@njit(cache=True, inline="always")
def haversine(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    a, b = math.sin((p2 - p1) / 2), math.sin(math.radians(lon2 - lon1) / 2)
    h = a * a + math.cos(p1) * math.cos(p2) * (b * b)
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


@njit(cache=True, inline="always")
def seconds(m: Model, lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    return haversine(lat1, lon1, lat2, lon2) * m.detour / m.speed


@njit(cache=True, inline="always")
def has(sorted_rows: Array, row: int) -> int:
    """Position of ``row`` in ``sorted_rows``, or -1 (binary search)."""
    lo, hi = 0, len(sorted_rows)
    while lo < hi:
        mid = (lo + hi) // 2
        if sorted_rows[mid] < row:
            lo = mid + 1
        else:
            hi = mid
    if lo < len(sorted_rows) and sorted_rows[lo] == row:
        return lo
    return -1


@njit(cache=True, inline="always")
def _upcoming(books: Array, nb: int, k: int, now: float) -> int:
    """The first booking from ``k`` on that has not ended by ``now``."""
    while k < nb and books[k, B_END] <= now:
        k += 1
    return k


@njit(cache=True, inline="always")
def judge(c: Columns, w: Want, m: Model, i: int, parts: Array) -> tuple[int, float, float, float]:
    """(code, start, travel, distance) of ``w`` for row ``i``; ``parts`` gets the cost terms."""
    me = c.hot[i]
    if me[ON_DUTY] == 0.0:
        return EX_OFF_DUTY, 0.0, 0.0, 0.0
    if has(w.blocked, i) >= 0:
        return EX_BLOCKED, 0.0, 0.0, 0.0
    if w.gender != NO_GENDER and me[GENDER] != w.gender:
        return EX_GENDER, 0.0, 0.0, 0.0
    if not w.known or (np.int64(me[SKILLS]) & w.skills) != w.skills:
        return EX_SKILL, 0.0, 0.0, 0.0
    distance = haversine(me[LAT], me[LON], w.lat, w.lon)
    if distance > me[RADIUS]:
        return EX_RADIUS, 0.0, 0.0, distance
    if w.asap and m.now - me[POSITION_AT] > m.max_age:
        return EX_STALE, 0.0, 0.0, distance
    shifts = c.shifts[i]
    some_shift = False
    for j in range(len(shifts)):
        s, e = shifts[j, 0], shifts[j, 1]
        if s < w.last_end and e > w.earliest and e - s >= w.duration:
            some_shift = True
            break
    if not some_shift:
        return EX_SHIFT, 0.0, 0.0, distance
    # Walk the gaps between upcoming bookings, as ``constraints._earliest_start`` does.
    books = c.books[i]
    nb = int(me[BOOKINGS])
    u = _upcoming(books, nb, 0, m.now)
    if u < nb and books[u, B_START] <= m.now:
        set_off, from_lat, from_lon = books[u, B_END], books[u, B_LAT], books[u, B_LON]
        u = _upcoming(books, nb, u + 1, m.now)
    else:
        set_off, from_lat, from_lon = m.now, me[LAT], me[LON]
    found = False
    start = 0.0
    travel_in = 0.0
    while True:
        travel_in = seconds(m, from_lat, from_lon, w.lat, w.lon)
        arrive = max(w.earliest, set_off + travel_in)
        for j in range(len(shifts)):
            start = max(arrive, shifts[j, 0])
            end = start + w.duration
            if end > shifts[j, 1]:
                continue
            if end > w.last_end:
                break
            if u < nb:
                onward = seconds(m, w.lat, w.lon, books[u, B_LAT], books[u, B_LON])
                if end + onward > books[u, B_START]:
                    break
            found = True
            break
        if found or u >= nb or books[u, B_START] >= w.last_end:
            break
        set_off, from_lat, from_lon = books[u, B_END], books[u, B_LAT], books[u, B_LON]
        u = _upcoming(books, nb, u + 1, m.now)
    if not found:
        return EX_REACHABLE, 0.0, 0.0, distance
    end = start + w.duration
    for col in w.cert_cols:
        if c.cert[i, col] < end:
            return EX_CERTIFICATE, start, travel_in, distance
    day = (start + m.utc_offset) // DAY_S
    load = 0.0
    for j in range(nb):
        if books[j, B_DAY] == day:
            load += 1.0
    if day == m.today:
        load += me[VISITS_TODAY]
    if load >= me[DAILY_CAP]:
        return EX_DAILY_CAP, start, travel_in, distance
    # The cost terms, as ``scoring.cost_parts`` computes them.
    at = has(w.served_rows, i)
    served = w.served[at] if at >= 0 else 0.0
    parts[0] = m.w_travel * travel_in
    parts[1] = m.w_delay * (start - w.earliest)
    parts[2] = -m.w_continuity * served / 3
    parts[3] = -m.w_preferred if has(w.preferred, i) >= 0 else 0.0
    shared = (np.int64(me[LANGUAGES]) & w.languages) != 0
    parts[4] = m.w_language if w.languages != 0 and not shared else 0.0
    parts[5] = m.w_workload * load / me[DAILY_CAP]
    parts[6] = me[RATING_PART]
    return 0, start, travel_in, distance


@njit(cache=True, inline="always")
def total(parts: Array) -> float:
    cost = 0.0
    for p in parts:
        cost += p
    return cost


class Best(NamedTuple):
    """The best ``k`` so far by cost (then ``TIE``)."""

    row: Array
    cost: Array
    start: Array
    travel: Array
    distance: Array
    parts: Array  # [k, PARTS]
    size: Array  # one element: how many are filled
    counts: Array  # [CODES] how many each code got (0: feasible)


@njit(cache=True)
def new_best(k: int) -> Best:
    return Best(
        np.full(k, -1, np.int64),
        np.full(k, np.inf),
        np.zeros(k),
        np.zeros(k),
        np.zeros(k),
        np.zeros((k, PARTS)),
        np.zeros(1, np.int64),
        np.zeros(CODES, np.int64),
    )


@njit(cache=True, inline="always")
def _before(c: Columns, key: float, i: int, other_key: float, other: int) -> bool:
    return key < other_key or (key == other_key and c.hot[i, TIE] < c.hot[other, TIE])


@njit(cache=True, inline="always")
def consider(c: Columns, w: Want, m: Model, i: int, best: Best, scratch: Array) -> None:
    """Judge row ``i`` and keep it if it is among the best."""
    code, start, travel, distance = judge(c, w, m, i, scratch)
    best.counts[code] += 1
    k = len(best.row)
    if code != 0 or k == 0:
        return
    cost = total(scratch)
    size = best.size[0]
    if size == k and not _before(c, cost, i, best.cost[k - 1], best.row[k - 1]):
        return
    p = min(size, k - 1)
    while p > 0 and _before(c, cost, i, best.cost[p - 1], best.row[p - 1]):
        best.row[p] = best.row[p - 1]
        best.cost[p] = best.cost[p - 1]
        best.start[p] = best.start[p - 1]
        best.travel[p] = best.travel[p - 1]
        best.distance[p] = best.distance[p - 1]
        best.parts[p, :] = best.parts[p - 1, :]
        p -= 1
    best.row[p] = i
    best.cost[p] = cost
    best.start[p] = start
    best.travel[p] = travel
    best.distance[p] = distance
    best.parts[p, :] = scratch
    best.size[0] = min(size + 1, k)


@njit(cache=True)
def rank_rows(c: Columns, w: Want, m: Model, rows: Array, k: int) -> Best:
    """Judge every row given (the brute-force reference, compiled)."""
    best = new_best(k)
    scratch = np.zeros(PARTS)
    for i in rows:
        consider(c, w, m, i, best, scratch)
    return best


@njit(cache=True, inline="always")
def _cell(g: Grid, lat: float, lon: float) -> tuple[int, int]:
    return _cell_at(g.lat0, g.lon0, g.cell_lat, g.cell_lon, g.height, g.width, lat, lon)


@njit(cache=True, inline="always")
def _cell_at(
    lat0: float,
    lon0: float,
    cell_lat: float,
    cell_lon: float,
    height: int,
    width: int,
    lat: float,
    lon: float,
) -> tuple[int, int]:
    """The cell of a point; points beyond the grid's edge belong to its edge cells."""
    y = min(max(math.floor((lat - lat0) / cell_lat), 0), height - 1)
    x = min(max(math.floor((lon - lon0) / cell_lon), 0), width - 1)
    return y, x


@njit(cache=True)
def cell_keys(
    lat0: float,
    lon0: float,
    cell_lat: float,
    cell_lon: float,
    height: int,
    width: int,
    lat: Array,
    lon: Array,
) -> Array:
    """Each point's cell as ``row * width + column``."""
    keys = np.empty(len(lat), np.int64)
    for p in range(len(lat)):
        y, x = _cell_at(lat0, lon0, cell_lat, cell_lon, height, width, lat[p], lon[p])
        keys[p] = y * width + x
    return keys


@njit(cache=True)
def cells_of(g: Grid, lat: Array, lon: Array) -> Array:
    return cell_keys(g.lat0, g.lon0, g.cell_lat, g.cell_lon, g.height, g.width, lat, lon)


@njit(cache=True)
def bucket(keys: Array, cells: int) -> tuple[Array, Array]:
    """Counting sort of point keys, leaving out negative ones: (points in cell order, start
    of each cell)."""
    start = np.zeros(cells + 1, np.int64)
    for key in keys:
        if key >= 0:
            start[key + 1] += 1
    for cell in range(cells):
        start[cell + 1] += start[cell]
    fill = start[:-1].copy()
    order = np.empty(start[cells], np.int64)
    for p in range(len(keys)):
        if keys[p] >= 0:
            order[fill[keys[p]]] = p
            fill[keys[p]] += 1
    return order, start


SLOT_S = 2700.0  # 45 minutes: 64 slots cover two days


@njit(cache=True, inline="always")
def slots(base: float, start: float, end: float) -> int:
    """The bits of the slots [start, end] touches; times past either end of the 64 slots
    fall in the first or last one, which only ever widens the mask."""
    first = min(max(math.floor((start - base) / SLOT_S), 0), 63)
    last = min(max(math.floor((end - base) / SLOT_S), 0), 63)
    if last < first:
        return 0
    width = last - first + 1
    bits = -1 if width == 64 else (1 << width) - 1
    return int(bits << first)


@njit(cache=True)
def shift_slots(c: Columns, n: int, base: float) -> Array:
    """Per row, the time slots its shifts cover (``slots``)."""
    out = np.zeros(n, np.int64)
    for i in range(n):
        for j in range(c.shifts.shape[1]):
            if c.shifts[i, j, 0] < c.shifts[i, j, 1]:
                out[i] |= slots(base, c.shifts[i, j, 0], c.shifts[i, j, 1])
    return out


@njit(cache=True)
def summarise(
    c: Columns, start: Array, order: Array, point_row: Array, row_slots: Array
) -> tuple[Array, Array, Array, Array]:
    """Per cell: the union of skills, the slots shifts cover, the latest position, and the
    reach (the widest service radius of anyone with a point there).

    Reach is exact for booking places too: whoever can serve is within their radius of the
    order from where they are now, so their position's cell is never skipped for reach; and a
    booking place further than that radius costs more travel than that position is away, so
    skipping it never hides anyone the search would otherwise have to judge."""
    cells = len(start) - 1
    skills = np.zeros(cells, np.int64)
    shifts = np.zeros(cells, np.int64)
    seen = np.full(cells, -np.inf)
    reach = np.zeros(cells)
    for cell in range(cells):
        for at in range(start[cell], start[cell + 1]):
            i = point_row[order[at]]
            skills[cell] |= np.int64(c.hot[i, SKILLS])
            shifts[cell] |= row_slots[i]
            seen[cell] = max(seen[cell], c.hot[i, POSITION_AT])
            # A hair wider, so that rounding in the cell's distance bound never skips someone
            # standing exactly at their radius.
            reach[cell] = max(reach[cell], c.hot[i, RADIUS] * (1 + 1e-9) + 1e-6)
    return skills, shifts, seen, reach


@njit(cache=True, inline="always")
def _hopeless(g: Grid, w: Want, m: Model, window: int, cell: int) -> bool:
    """Nobody in the cell has the skills, a shift during the order's window, or (ASAP) a
    fresh position: nobody there can serve."""
    return (
        not w.known
        or (g.cell_skills[cell] & w.skills) != w.skills
        or (g.cell_shifts[cell] & window) == 0
        or (w.asap and m.now - g.cell_seen[cell] > m.max_age)
    )


@njit(cache=True)
def _gap_m(g: Grid, w: Want, y0: int, y1: int, x0: int, x1: int) -> float:
    """Great-circle metres that certainly separate the order from every point in a cell
    outside rows y0..y1 and columns x0..x1 (a side at the grid's edge holds nothing beyond)."""
    gap = np.inf
    if y0 > 0:
        gap = min(gap, EARTH_RADIUS_M * math.radians(max(0.0, w.lat - (g.lat0 + y0 * g.cell_lat))))
    if y1 < g.height - 1:
        beyond = g.lat0 + (y1 + 1) * g.cell_lat - w.lat
        gap = min(gap, EARTH_RADIUS_M * math.radians(max(0.0, beyond)))
    widest = math.cos(math.radians(min(90.0, max(g.max_abs_lat, abs(w.lat)))))
    for side in range(2):
        if side == 0 and x0 > 0:
            degrees = w.lon - (g.lon0 + x0 * g.cell_lon)
        elif side == 1 and x1 < g.width - 1:
            degrees = g.lon0 + (x1 + 1) * g.cell_lon - w.lon
        else:
            continue
        half = math.radians(min(180.0, max(0.0, degrees))) / 2
        gap = min(gap, 2 * EARTH_RADIUS_M * math.asin(min(1.0, widest * math.sin(half))))
    return gap


@njit(cache=True, inline="always")
def _cell_gap_m(g: Grid, w: Want, y: int, x: int, widest: float) -> float:
    """Great-circle metres that certainly separate the order from every point of a cell
    (an edge cell also holds whatever lies beyond the grid on its side)."""
    south = g.lat0 + y * g.cell_lat if y > 0 else -np.inf
    north = g.lat0 + (y + 1) * g.cell_lat if y < g.height - 1 else np.inf
    west = g.lon0 + x * g.cell_lon if x > 0 else -np.inf
    east = g.lon0 + (x + 1) * g.cell_lon if x < g.width - 1 else np.inf
    by_lat = EARTH_RADIUS_M * math.radians(max(0.0, south - w.lat, w.lat - north))
    degrees = min(180.0, max(0.0, west - w.lon, w.lon - east))
    by_lon = 2 * EARTH_RADIUS_M * math.asin(min(1.0, widest * math.sin(math.radians(degrees) / 2)))
    return max(by_lat, by_lon)


@njit(cache=True)
def grid_rank(
    g: Grid,
    c: Columns,
    w: Want,
    m: Model,
    k: int,
    special: Array,
    stamp: Array,
    tick: int,
) -> Best:
    """The best ``k`` by ring search around the order; equal to ``rank_rows`` over everyone.

    Special rows (preferred, served before) may gain more than anyone else and are judged
    first wherever they are. Anyone else costs at least their travel over the gap between
    the order and their cell (every other term adds): a cell is skipped when that already
    exceeds the k-th best, and the search stops when a whole ring would be."""
    best = new_best(k)
    scratch = np.zeros(PARTS)
    for i in special:
        if stamp[i] != tick:
            stamp[i] = tick
            consider(c, w, m, i, best, scratch)
    per_metre = (m.w_travel + (m.w_delay if w.asap else 0.0)) * m.detour / m.speed
    # A hair under the bound, so rounding never makes it claim more than it knows.
    per_metre *= 1 - 1e-9
    bonus = g.rating_bonus
    window = slots(g.slot_base, w.earliest, w.last_end)
    widest = math.cos(math.radians(min(90.0, max(g.max_abs_lat, abs(w.lat)))))
    cy, cx = _cell(g, w.lat, w.lon)
    r = 0
    while True:
        for y in range(max(cy - r, 0), min(cy + r, g.height - 1) + 1):
            edge = y == cy - r or y == cy + r
            x = max(cx - r, 0)
            while x <= min(cx + r, g.width - 1):
                cell = y * g.width + x
                gap = _cell_gap_m(g, w, y, x, widest)
                if (
                    not _hopeless(g, w, m, window, cell)
                    and gap <= g.cell_reach[cell]
                    and (best.size[0] < k or best.cost[k - 1] >= per_metre * gap - bonus)
                ):
                    for p in range(g.start[cell], g.start[cell + 1]):
                        i = g.row[p]
                        if stamp[i] != tick:
                            stamp[i] = tick
                            consider(c, w, m, i, best, scratch)
                # Inside the ring's span only its two sides are new.
                x = x + 1 if edge or x == cx + r else cx + r
        gap = _gap_m(g, w, cy - r, cy + r, cx - r, cx + r)
        if gap == np.inf or gap > g.max_radius:
            break
        if best.size[0] == k and best.cost[k - 1] < per_metre * gap - bonus:
            break
        r += 1
    return best


class Orders(NamedTuple):
    """Many orders for ``lists``: scalars in columns, per-order lists as CSR (ptr, data)."""

    f: Array  # [n, 6] lat, lon, duration, earliest, last_end, asap
    i: Array  # [n, 4] skills, known, gender, languages
    cert_ptr: Array
    cert: Array
    blocked_ptr: Array
    blocked: Array
    preferred_ptr: Array
    preferred: Array
    served_ptr: Array
    served_rows: Array
    served: Array
    special_ptr: Array
    special: Array


@njit(cache=True)
def want_of(o: Orders, q: int) -> Want:
    return Want(
        o.f[q, 0],
        o.f[q, 1],
        o.f[q, 2],
        o.f[q, 3],
        o.f[q, 4],
        o.f[q, 5] != 0.0,
        o.i[q, 0],
        o.i[q, 1] != 0,
        o.i[q, 2],
        o.i[q, 3],
        o.cert[o.cert_ptr[q] : o.cert_ptr[q + 1]],
        o.blocked[o.blocked_ptr[q] : o.blocked_ptr[q + 1]],
        o.preferred[o.preferred_ptr[q] : o.preferred_ptr[q + 1]],
        o.served_rows[o.served_ptr[q] : o.served_ptr[q + 1]],
        o.served[o.served_ptr[q] : o.served_ptr[q + 1]],
    )


class Lists(NamedTuple):
    """Each order's best ``k``: [n, k] arrays (row -1 where fewer), and [n, CODES] counts."""

    row: Array
    cost: Array
    start: Array
    travel: Array
    distance: Array
    parts: Array  # [n, k, PARTS]
    counts: Array


@njit(cache=True, parallel=True)
def lists(g: Grid, c: Columns, m: Model, o: Orders, k: int, chunks: int) -> Lists:
    """Each order's ``k`` cheapest feasible caregivers (exactly as ``grid_rank``) and what its
    search excluded: the sparse graph batch assignment solves over.

    Orders are taken in grid order, so that one search finds the caregivers the previous one
    met still in cache, and in ``chunks`` spatial runs searched in parallel."""
    n = len(o.f)
    # Plain arrays, not a Lists: writes through a tuple's fields inside prange are lost.
    row = np.full((n, k), -1, np.int64)
    cost = np.full((n, k), np.inf)
    start = np.zeros((n, k))
    travel = np.zeros((n, k))
    distance = np.zeros((n, k))
    parts = np.zeros((n, k, PARTS))
    counts = np.zeros((n, CODES), np.int64)
    ordered = np.argsort(cells_of(g, o.f[:, 0], o.f[:, 1]), kind="mergesort")
    rows = len(c.hot)
    for chunk in prange(chunks):
        stamp = np.zeros(rows, np.int64)  # each run marks its own visits
        for at in range(chunk * n // chunks, (chunk + 1) * n // chunks):
            q = ordered[at]
            special = o.special[o.special_ptr[q] : o.special_ptr[q + 1]]
            best = grid_rank(g, c, want_of(o, q), m, k, special, stamp, at + 1)
            size = best.size[0]
            row[q, :size] = best.row[:size]
            cost[q, :size] = best.cost[:size]
            start[q, :size] = best.start[:size]
            travel[q, :size] = best.travel[:size]
            distance[q, :size] = best.distance[:size]
            parts[q, :size] = best.parts[:size]
            counts[q] = best.counts
    return Lists(row, cost, start, travel, distance, parts, counts)


@njit(cache=True)
def everyone(
    g: Grid, c: Columns, m: Model, o: Orders, stamp: Array, tick: int
) -> tuple[Array, Array, Array]:
    """Every feasible (order, row, cost): the full cost matrix without its infinite entries
    (nobody beyond the widest service radius can serve), for exact reference optima."""
    order_of, rows, costs = [], [], []
    scratch = np.zeros(PARTS)
    for q in range(len(o.f)):
        w = want_of(o, q)
        widest = math.cos(math.radians(min(90.0, max(g.max_abs_lat, abs(w.lat)))))
        window = slots(g.slot_base, w.earliest, w.last_end)
        t = tick + q
        cy, cx = _cell(g, w.lat, w.lon)
        reach = g.max_radius / EARTH_RADIUS_M * 180 / math.pi  # degrees of latitude
        dy = int(reach / g.cell_lat) + 2
        dx = int(reach / max(widest, 1e-9) / g.cell_lon) + 2
        for y in range(max(cy - dy, 0), min(cy + dy, g.height - 1) + 1):
            for x in range(max(cx - dx, 0), min(cx + dx, g.width - 1) + 1):
                cell = y * g.width + x
                if (
                    _hopeless(g, w, m, window, cell)
                    or _cell_gap_m(g, w, y, x, widest) > g.max_radius
                ):
                    continue
                for p in range(g.start[cell], g.start[cell + 1]):
                    i = g.row[p]
                    if stamp[i] == t:
                        continue
                    stamp[i] = t
                    if judge(c, w, m, i, scratch)[0] == 0:
                        order_of.append(q)
                        rows.append(i)
                        costs.append(total(scratch))
    return np.array(order_of, np.int64), np.array(rows, np.int64), np.array(costs)


# The single-order entry point takes and returns plain arrays: numba types a tuple argument in
# Python, field by field, and boxes a returned tuple of arrays one by one, ~15 µs a call that
# the 100 µs budget of a single order cannot spare. Inside, the tuples are free.
OUT = 5 + PARTS  # row, cost, start, travel, distance, parts


@njit(cache=True)
def search(
    grid_f: Array,  # lat0, lon0, cell_lat, cell_lon, max_abs_lat, max_radius, rating_bonus, slot_base
    grid_i: Array,  # height, width
    start: Array,
    row: Array,
    cell_skills: Array,
    cell_shifts: Array,
    cell_seen: Array,
    cell_reach: Array,
    hot: Array,
    cert: Array,
    shifts: Array,
    books: Array,
    want_f: Array,  # Want's floats, asap as 0/1
    want_i: Array,  # skills, known, gender, languages
    cert_cols: Array,
    blocked: Array,
    preferred: Array,
    served_rows: Array,
    served: Array,
    model_f: Array,  # Model's fields in order
    k: int,
    special: Array,
    stamp: Array,
    tick: int,
) -> tuple[Array, Array]:
    """``grid_rank`` from plain arrays: ([size, OUT] best first, [CODES] counts)."""
    g = Grid(
        grid_f[0],
        grid_f[1],
        grid_f[2],
        grid_f[3],
        grid_i[0],
        grid_i[1],
        start,
        row,
        grid_f[4],
        grid_f[5],
        grid_f[6],
        cell_skills,
        cell_shifts,
        cell_seen,
        cell_reach,
        grid_f[7],
    )
    w = Want(
        want_f[0],
        want_f[1],
        want_f[2],
        want_f[3],
        want_f[4],
        want_f[5] != 0.0,
        want_i[0],
        want_i[1] != 0,
        want_i[2],
        want_i[3],
        cert_cols,
        blocked,
        preferred,
        served_rows,
        served,
    )
    m = Model(
        model_f[0],
        model_f[1],
        model_f[2],
        model_f[3],
        model_f[4],
        model_f[5],
        model_f[6],
        model_f[7],
        model_f[8],
        model_f[9],
        model_f[10],
        model_f[11],
    )
    best = grid_rank(g, Columns(hot, cert, shifts, books), w, m, k, special, stamp, tick)
    size = best.size[0]
    out = np.empty((size, OUT))
    for n in range(size):
        out[n, 0] = best.row[n]
        out[n, 1] = best.cost[n]
        out[n, 2] = best.start[n]
        out[n, 3] = best.travel[n]
        out[n, 4] = best.distance[n]
        out[n, 5:] = best.parts[n]
    return out, best.counts
