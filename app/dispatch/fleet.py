"""The fleet in columns: every caregiver's attributes as numpy arrays for the kernels.

Ties in cost go to the caregiver given first (``kernel.TIE``, as ``assign.rank``
gives them to the earlier caregiver). Skills and languages are bits of an int64; shifts,
bookings and certificates are padded tables that grow when a longer day arrives.
"""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from numpy.typing import NDArray

from app.dispatch import kernel
from app.dispatch.assign import Candidate, Ranking, wanted
from app.dispatch.constraints import Exclusion, latest_end, local_day
from app.dispatch.model import Caregiver, Id, Order
from app.dispatch.policy import DispatchConfig
from app.dispatch.scoring import rating_part
from app.dispatch.travel import StraightLine

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]
Bools = NDArray[np.bool_]

# Exclusion codes in the order ``place`` tests them; 0 is "feasible".
REASONS: tuple[Exclusion, ...] = (
    Exclusion.off_duty,
    Exclusion.blocked,
    Exclusion.gender,
    Exclusion.skill,
    Exclusion.radius,
    Exclusion.stale_position,
    Exclusion.shift,
    Exclusion.reachable,
    Exclusion.certificate,
    Exclusion.daily_cap,
)
CODE = {reason: i + 1 for i, reason in enumerate(REASONS)}
PARTS = ("travel", "delay", "continuity", "preferred", "language", "workload", "rating")
MAX_VOCABULARY = 52  # skills and languages are bits, kept exactly in a float64


SHIFT_PAD = (np.inf, -np.inf)
BOOKING_PAD = (np.inf, np.inf, 0.0, 0.0, np.nan)


def _table(rows: int, width: int, pad: tuple[float, ...]) -> Floats:
    table: Floats = np.empty((rows, width, len(pad)))
    table[:] = pad
    return table


def excluded(counts: list[int]) -> dict[Exclusion, int]:
    """Kernel counts by code as the engine's exclusions."""
    return {reason: counts[code] for code, reason in _CODED if counts[code]}


_CODED = tuple((CODE[reason], reason) for reason in REASONS)
# Writable, like every other array the kernels get: numba compiles a separate version for a
# read-only array, and the service compiles nothing at run time (``index.freeze``). Being empty,
# they cannot be written to anyway.
NO_ROWS = np.zeros(0, np.int64)
NO_COUNTS = np.zeros(0, np.float64)


def _rows(rows: list[int]) -> Ints:
    return np.array(rows, np.int64) if rows else NO_ROWS


class WantArrays(NamedTuple):
    floats: Floats  # lat, lon, duration, earliest, last_end, asap (0/1)
    ints: Ints  # skills, known, gender, languages
    cert: Ints
    blocked: Ints
    preferred: Ints
    served_rows: Ints
    served: Floats
    special: Ints  # preferred or served before: judged first wherever they are


def _csr(lists: list[list[int]]) -> tuple[Ints, Ints]:
    """(ptr, data): list ``q`` is ``data[ptr[q]:ptr[q + 1]]``."""
    ptr = np.zeros(len(lists) + 1, np.int64)
    ptr[1:] = np.cumsum([len(rows) for rows in lists])
    data = np.fromiter((r for rows in lists for r in rows), np.int64, int(ptr[-1]))
    return ptr, data


class Vocabulary:
    """Names to bit positions (skills, languages), growing as new names appear."""

    def __init__(self) -> None:
        self.bits: dict[str, int] = {}

    def add(self, name: str) -> int:
        bit = self.bits.get(name)
        if bit is None:
            if len(self.bits) >= MAX_VOCABULARY:
                raise ValueError(f"more than {MAX_VOCABULARY} distinct names")
            bit = self.bits[name] = len(self.bits)
        return bit

    def mask(self, names: frozenset[str] | Sequence[str]) -> int | None:
        """The bit mask of ``names``, or None when one of them is unknown (nobody has it)."""
        mask = 0
        for name in names:
            bit = self.bits.get(name)
            if bit is None:
                return None
            mask |= 1 << bit
        return mask


class Fleet:
    """Caregivers as columns; row ``i`` is the ``i``-th caregiver given (its tie-break rank).

    Storage is ``kernel.Columns``: a ``hot`` matrix with a row per caregiver, and padded
    certificate, shift and booking tables. Rows beyond ``n`` are spare capacity."""

    def __init__(self, caregivers: Sequence[Caregiver], config: DispatchConfig) -> None:
        self.config = config
        self.skills = Vocabulary()
        self.languages = Vocabulary()
        self.genders: dict[str, int] = {}
        self.ids: list[Id] = []
        self.row: dict[Id, int] = {}
        self._served: dict[Id, dict[int, int]] = {}
        self.caregivers: list[Caregiver] = []
        self.n = 0
        self.hot: Floats = np.zeros((0, kernel.HOT))
        self.cert: Floats = np.full((0, 1), np.inf)
        self.shifts: Floats = _table(0, 1, SHIFT_PAD)
        self.books: Floats = _table(0, 1, BOOKING_PAD)
        self._grow(len(caregivers), shifts=1, bookings=1, skills=1)
        self._next_tie = 0
        self._model: tuple[float, Floats] | None = None
        for caregiver in caregivers:
            self.put(caregiver)

    def __len__(self) -> int:
        return self.n

    # Views of the hot columns, for numpy work on the Python side.
    @property
    def lat(self) -> Floats:
        return self.hot[:, kernel.LAT]

    @property
    def lon(self) -> Floats:
        return self.hot[:, kernel.LON]

    @property
    def radius(self) -> Floats:
        return self.hot[:, kernel.RADIUS]

    @property
    def rating_part(self) -> Floats:
        return self.hot[:, kernel.RATING_PART]

    @property
    def bookings(self) -> Ints:
        return self.hot[:, kernel.BOOKINGS].astype(np.int64)

    def _grow(self, rows: int, shifts: int, bookings: int, skills: int) -> None:
        """Make room for more rows (doubling), longer days or more certificate columns."""
        have_rows = len(self.hot)
        if (
            rows <= have_rows
            and shifts <= self.shifts.shape[1]
            and bookings <= self.books.shape[1]
            and skills <= self.cert.shape[1]
        ):
            return
        size = have_rows if rows <= have_rows else max(rows, 2 * have_rows, 16)
        hot = np.zeros((size, kernel.HOT))
        hot[:, kernel.DAILY_CAP] = 1.0
        hot[:have_rows] = self.hot
        cert = np.full((size, max(skills, self.cert.shape[1])), np.inf)
        cert[:have_rows, : self.cert.shape[1]] = self.cert
        table = _table(size, max(shifts, self.shifts.shape[1]), SHIFT_PAD)
        table[:have_rows, : self.shifts.shape[1]] = self.shifts
        books = _table(size, max(bookings, self.books.shape[1]), BOOKING_PAD)
        books[:have_rows, : self.books.shape[1]] = self.books
        self.hot, self.cert, self.shifts, self.books = hot, cert, table, books

    def put(self, caregiver: Caregiver) -> int:
        """Add a caregiver (last in ties), or replace the one with the same id (keeping its
        place in ties); returns its row."""
        config = self.config
        i = self.row.get(caregiver.id)
        if i is None:
            i = self.n
        for skill in caregiver.skills:
            self.skills.add(skill)
        for language in caregiver.languages:
            self.languages.add(language)
        self._grow(i + 1, len(caregiver.shifts), len(caregiver.bookings), len(self.skills.bits))
        if i == self.n:
            self.n += 1
            self.row[caregiver.id] = i
            self.ids.append(caregiver.id)
            self.caregivers.append(caregiver)
            self.hot[i, kernel.TIE] = self._next_tie
            self._next_tie += 1
        else:
            for senior in self.caregivers[i].served:
                self._served.get(senior, {}).pop(i, None)
            self.caregivers[i] = caregiver
        hot = self.hot[i]
        hot[kernel.LAT] = caregiver.lat
        hot[kernel.LON] = caregiver.lon
        hot[kernel.POSITION_AT] = caregiver.position_at
        hot[kernel.RADIUS] = caregiver.radius_m
        hot[kernel.ON_DUTY] = caregiver.on_duty
        hot[kernel.GENDER] = self._gender_code(caregiver.gender)
        hot[kernel.SKILLS] = self.skills.mask(list(caregiver.skills)) or 0
        hot[kernel.LANGUAGES] = self.languages.mask(caregiver.languages) or 0
        hot[kernel.BOOKINGS] = len(caregiver.bookings)
        hot[kernel.RATING_PART] = rating_part(caregiver, config)
        hot[kernel.VISITS_TODAY] = caregiver.visits_today
        hot[kernel.DAILY_CAP] = caregiver.daily_cap
        self.cert[i] = np.inf
        for skill, expiry in caregiver.skills.items():
            if expiry is not None:
                self.cert[i, self.skills.bits[skill]] = expiry
        self.shifts[i] = SHIFT_PAD
        for j, (start, end) in enumerate(sorted(caregiver.shifts)):
            self.shifts[i, j] = (start, end)
        self.books[i] = BOOKING_PAD
        for j, b in enumerate(caregiver.bookings):
            self.books[i, j] = (b.start, b.end, b.lat, b.lon, local_day(b.start, config))
        for senior, visits in caregiver.served.items():
            self._served.setdefault(senior, {})[i] = visits
        return i

    def reorder(self, order: Ints) -> None:
        """Store row ``order[j]`` as row ``j`` (a spatial index keeps neighbours together).
        Ties still go by the order caregivers were given: that rides in ``kernel.TIE``."""
        n = self.n
        for name in ("hot", "cert", "shifts", "books"):
            table = getattr(self, name)
            table[:n] = table[order]
        self.ids = [self.ids[i] for i in order.tolist()]
        self.caregivers = [self.caregivers[i] for i in order.tolist()]
        self.row = {id_: j for j, id_ in enumerate(self.ids)}
        moved_to = np.empty(n, np.int64)
        moved_to[order] = np.arange(n)
        self._served = {
            senior: {int(moved_to[i]): visits for i, visits in rows.items()}
            for senior, rows in self._served.items()
        }

    def move(self, rows: Ints, lat: Floats, lon: Floats, position_at: Floats | float) -> None:
        """Many caregivers reported where they are (a bulk update: no Python loop)."""
        self.hot[rows, kernel.LAT] = lat
        self.hot[rows, kernel.LON] = lon
        self.hot[rows, kernel.POSITION_AT] = position_at

    def _gender_code(self, gender: str | None) -> int:
        if gender is None:
            return 0
        return self.genders.setdefault(gender, len(self.genders) + 1)

    def served_by(self, senior: Id) -> dict[int, int]:
        """Rows of the caregivers who served ``senior`` before, with how many visits."""
        return self._served.get(senior, {})

    # -- judging ---------------------------------------------------------------------------

    def columns(self) -> kernel.Columns:
        return kernel.Columns(self.hot, self.cert, self.shifts, self.books)

    def model(self, now: float) -> kernel.Model:
        return kernel.Model(*self.model_array(now).tolist())

    def model_array(self, now: float) -> Floats:
        """``kernel.Model``'s fields as an array (kept for the last ``now`` asked)."""
        if self._model is not None and self._model[0] == now:
            return self._model[1]
        fields = self._model_fields(now)
        array = np.array(fields, np.float64)
        self._model = (now, array)
        return array

    def _model_fields(self, now: float) -> kernel.Model:
        config = self.config
        travel = config.travel
        if not isinstance(travel, StraightLine):
            raise TypeError("the compiled kernels implement the straight-line travel model")
        w = config.weights
        return kernel.Model(
            now=now,
            today=float(local_day(now, config)),
            detour=travel.detour,
            speed=travel.speed_mps,
            max_age=config.max_position_age_s,
            utc_offset=config.utc_offset_s,
            w_travel=w.travel,
            w_delay=w.delay,
            w_continuity=w.continuity,
            w_preferred=w.preferred,
            w_language=w.language,
            w_workload=w.workload,
        )

    def _terms(self, order: Order, now: float) -> tuple[tuple[float, ...], tuple[int, ...]]:
        """One order's scalars for the kernel: (floats, ints) as ``kernel.Orders`` holds them."""
        skills = self.skills.mask(order.skills)
        languages = 0
        for name in order.languages:
            bit = self.languages.bits.get(name)
            if bit is not None:
                languages |= 1 << bit
        if order.languages and not languages:
            languages = 1 << MAX_VOCABULARY  # asked for, but nobody speaks them
        gender = kernel.NO_GENDER
        if order.gender_strict and order.gender is not None:
            gender = self.genders.get(order.gender, -2)  # -2: a gender nobody has
        earliest = now if order.window_start is None else max(now, order.window_start)
        floats = (
            order.lat,
            order.lon,
            order.duration_s,
            earliest,
            latest_end(order, now, self.config),
            float(order.asap),
        )
        return floats, (skills or 0, int(skills is not None), gender, languages)

    def _lists(self, order: Order) -> tuple[list[int], list[int], list[int], list[int]]:
        """One order's lists of rows: certificates, blocked, preferred, served before."""
        skills = self.skills.bits
        known = all(s in skills for s in order.skills)
        cert = [skills[s] for s in order.skills] if known else []
        served = sorted(self.served_by(order.senior_id))
        return cert, self.rows_of(order.blocked), self.rows_of(order.preferred), served

    def want_arrays(self, order: Order, now: float, *, taken: Ints | None = None) -> WantArrays:
        """The kernel's view of one order as plain arrays (``kernel.search``'s arguments);
        ``taken`` rows are excluded as if blocked."""
        floats, ints = self._terms(order, now)
        cert, blocked, preferred, served = self._lists(order)
        if taken is not None and len(taken):
            blocked = np.union1d(blocked, taken).tolist()
        history = self.served_by(order.senior_id)
        return WantArrays(
            np.array(floats),
            np.array(ints, np.int64),
            _rows(cert),
            _rows(blocked),
            _rows(preferred),
            _rows(served),
            np.array([min(history[r], 3) for r in served], np.float64) if served else NO_COUNTS,
            _rows(sorted({*preferred, *served})) if preferred or served else NO_ROWS,
        )

    def want(self, order: Order, now: float, *, taken: Ints | None = None) -> kernel.Want:
        """The kernel's view of one order; ``taken`` rows are excluded as if blocked."""
        a = self.want_arrays(order, now, taken=taken)
        lat, lon, duration, earliest, last_end, asap = a.floats.tolist()
        skills, known, gender, languages = a.ints.tolist()
        return kernel.Want(
            lat,
            lon,
            duration,
            earliest,
            last_end,
            asap != 0.0,
            skills,
            known != 0,
            gender,
            languages,
            a.cert,
            a.blocked,
            a.preferred,
            a.served_rows,
            a.served,
        )

    def orders(self, orders: Sequence[Order], now: float) -> kernel.Orders:
        """Many orders for ``kernel.lists``."""
        floats, ints = [], []
        lists: tuple[list[list[int]], ...] = ([], [], [], [], [])
        served_counts: list[float] = []
        for order in orders:
            f, i = self._terms(order, now)
            floats.append(f)
            ints.append(i)
            cert, blocked, preferred, served = self._lists(order)
            history = self.served_by(order.senior_id)
            served_counts.extend(min(history[r], 3) for r in served)
            special = sorted(set(preferred) | set(served))
            for bucket, rows in zip(
                lists, (cert, blocked, preferred, served, special), strict=True
            ):
                bucket.append(rows)
        packed = [_csr(bucket) for bucket in lists]
        return kernel.Orders(
            np.array(floats, np.float64).reshape(len(orders), 6),
            np.array(ints, np.int64).reshape(len(orders), 4),
            *packed[0],
            *packed[1],
            *packed[2],
            *packed[3],
            np.array(served_counts, np.float64),
            *packed[4],
        )

    def rows_of(self, ids: frozenset[Id]) -> list[int]:
        """Sorted rows of the caregivers among ``ids`` that this fleet has."""
        return sorted(self.row[i] for i in ids if i in self.row)

    def candidate(
        self,
        row: int,
        cost: float,
        start: float,
        travel: float,
        distance: float,
        parts: list[float],
    ) -> Candidate:
        """A kernel's verdict for one caregiver, explained."""
        return Candidate(
            caregiver_id=self.ids[row],
            cost=cost,
            parts=dict(zip(PARTS, parts, strict=True)),
            start=start,
            travel_s=travel,
            distance_m=distance,
        )

    def ranking_flat(self, order: Order, out: Floats, counts: Ints) -> Ranking:
        """``kernel.search``'s answer as the engine's ``Ranking``."""
        found = out.tolist()
        tally = counts.tolist()
        return Ranking(
            order_id=order.id,
            candidates=tuple(
                self.candidate(int(r[0]), r[1], r[2], r[3], r[4], r[5:]) for r in found
            ),
            excluded=excluded(tally),
            examined=sum(tally),
        )

    def ranking(self, order: Order, best: kernel.Best) -> Ranking:
        """The kernel's answer as the engine's ``Ranking``."""
        size = int(best.size[0])
        columns = (best.row, best.cost, best.start, best.travel, best.distance, best.parts)
        candidates = tuple(
            self.candidate(*values)
            for values in zip(*(column[:size].tolist() for column in columns), strict=True)
        )
        return Ranking(
            order_id=order.id,
            candidates=candidates,
            excluded=excluded(best.counts.tolist()),
            examined=int(best.counts.sum()),
        )

    def rank(self, order: Order, now: float, *, limit: int | None = None) -> Ranking:
        """Judge every caregiver (compiled brute force): the same answer as ``assign.rank``."""
        k = wanted(order, self.config) if limit is None else limit
        best = kernel.rank_rows(
            self.columns(), self.want(order, now), self.model(now), np.arange(self.n), k
        )
        return self.ranking(order, best)
