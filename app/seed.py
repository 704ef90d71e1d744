"""The demo district: Lianhu, Xi'an, with its people, their shifts and orders in every state.

Everything is created through the real services (so history rows, outbox events and audit rows
are written as in production) in one transaction, from ``random.Random(2026)``: the same data
on every run, placed relative to the seeding instant (``now``) so that shifts and orders are live.

The caregivers work in rosters (``ROSTERS``) round the clock, so that the demo dispatches at any
hour; ``refresh_demo`` (run by ``seed-demo`` whenever the demo exists, so on every ``make run``)
tops the rosters up to 48 h ahead and brings crews on or off duty by who is in shift now.
"""

import random
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.deps import Principal
from app.dispatch.geo import haversine_m
from app.models import (
    Account,
    Caregiver,
    District,
    Gender,
    Order,
    Provider,
    Role,
    Senior,
    Shift,
    Visit,
    VisitStatus,
)
from app.phones import to_e164
from app.schemas.orders import OrderIn
from app.schemas.people import (
    CaregiverIn,
    DistrictIn,
    EmergencyContact,
    OperatorIn,
    ProviderIn,
    SeniorIn,
    ShiftIn,
    SkillIn,
)
from app.security import hash_password
from app.services import accounts, orders, visits

DEMO_PASSWORD = "doorstep-demo"  # noqa: S105 (documented in the README; demo data only)
SEED = 2026
DISTRICT = DistrictIn(code="lianhu", name="Lianhu District", city="Xi'an")
# Every local time of the demo (shift hours, "today", certificate dates) is in this zone. It is
# the demo district's zone until districts carry their own (District.time_zone): then read it
# from the district instead of this constant.
DEMO_TIME_ZONE = ZoneInfo("Asia/Shanghai")
# Where the demo's homes are: (lat_min, lat_max, lon_min, lon_max) inside Lianhu District.
BOUNDS = (34.255, 34.285, 108.88, 108.95)
N_CAREGIVERS = 40
N_SENIORS = 200

# Fixed, easy to type log-ins for the README; every other phone number is drawn at random.
DEMO_CAREGIVERS = ("13700000001", "13700000002")
DEMO_SENIORS = ("13900000001", "13900000002")
PROVIDERS = (
    ProviderIn(login="provider.anxin", name="Anxin Home Care"),
    ProviderIn(login="provider.changan", name="Chang'an Silver Years Services", auto_accept=True),
    ProviderIn(login="provider.lianhu", name="Lianhu Community Care Co-op"),
)


@dataclass(frozen=True)
class Neighbourhood:
    name: str
    lat: float
    lon: float
    roads: tuple[str, ...]


NEIGHBOURHOODS = (
    Neighbourhood("Tumen", 34.2612, 108.8925, ("Laodong Road", "Fenghao East Road")),
    Neighbourhood("Taoyuan Road", 34.2640, 108.9035, ("Taoyuan North Road", "Fengqing Road")),
    Neighbourhood("Zaoyuan", 34.2760, 108.8885, ("Zaoyuan East Road", "Daqing Road")),
    Neighbourhood("Hongmiaopo", 34.2790, 108.9180, ("Hongmiaopo Road", "Daxing East Road")),
    Neighbourhood("Xiguan", 34.2590, 108.9170, ("Xiguan Main Street", "Laodong Road")),
    Neighbourhood("Huancheng West Road", 34.2665, 108.9255, ("Huancheng West Road", "Lianhu Road")),
    Neighbourhood("Qingnian Road", 34.2700, 108.9330, ("Qingnian Road", "Sajinqiao Street")),
    Neighbourhood(
        "Beiyuanmen", 34.2650, 108.9410, ("Beiyuanmen Street", "Xiyangshi Street", "Huajue Lane")
    ),
    Neighbourhood("Beiguan", 34.2795, 108.9400, ("Beiguan Main Street", "Huancheng North Road")),
)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


SURNAMES = _words(
    "Wang Li Zhang Liu Chen Yang Zhao Huang Zhou Wu Xu Sun Ma Zhu Hu Guo He Gao Lin Luo Zheng "
    "Liang Xie Song Tang Han Feng Dong Xue Bai Du Lei Tian Ren Qin Jia Cao Yan Wei Lü"
)
ELDER_FEMALE = _words(
    "Guilan Shufen Xiuying Yulan Guiying Fengying Suzhen Guizhi Xiuzhen Shuzhen Yuzhen "
    "Lanying Cuiping Xiulan Fenglan Yufang Guihua Jinhua Shulan Huilan Yumei Sufang"
)
ELDER_MALE = _words(
    "Jianguo Guoqiang Defu Zhiqiang Baoshan Wenhua Jianhua Guoliang Zhenhua Youcai Fuqiang "
    "Shuncheng Changgeng Xuewen Hongqi Weimin Zhongmin Tiezhu Yongfu Qinglin"
)
YOUNG_FEMALE = _words("Min Jing Yan Hong Juan Xia Ping Fang Lina Xiaoyan Hui Na Qian Ying Lei Dan")
YOUNG_MALE = _words("Wei Qiang Jun Tao Peng Bin Hao Chao Yong Gang Jie Kai Long Bo")
RELATIONS = ("son", "daughter", "daughter-in-law", "nephew", "niece", "neighbour")
CARE_NOTES = (
    "Type 2 diabetes; insulin before breakfast and dinner.",
    "Uses a walker; sixth floor with no lift, allow time on the stairs.",
    "Hard of hearing: knock loudly and speak slowly.",
    "Mild dementia; a spare key is with the neighbour in 301.",
    "High blood pressure; please take a reading at each visit.",
    "Lives alone and likes to chat; enjoys Qinqiang opera on the radio.",
    "Recovering from a hip replacement; bathe only with the shower chair.",
    "Weakness on the left side after a stroke; needs a hand getting up.",
    "Has a small dog; keep the door closed.",
    "Cataracts: read medicine labels aloud.",
    "Chronic bronchitis; no strong cleaning products.",
    "Naps from 13:00 to 14:30; please do not ring then.",
)
HALAL_NOTE = "Hui Muslim household: halal food only."
PHONE_PREFIXES = _words(
    "130 131 132 133 135 136 137 138 139 150 151 152 153 155 156 157 158 159 180 181 182 183 "
    "185 186 187 188 189"
)

# Skill sets of the kinds of caregivers providers employ (see the service catalogue).
PROFILES = (
    ("nursing", "medication", "first_aid", "personal_care"),
    ("personal_care", "bathing", "housekeeping", "escort"),
    ("housekeeping", "escort"),
    ("rehabilitation", "first_aid", "escort", "personal_care"),
    ("housekeeping", "personal_care", "medication", "bathing"),
    ("nursing", "rehabilitation", "medication", "first_aid", "bathing"),
)
ALL_SKILLS = (
    "housekeeping",
    "bathing",
    "personal_care",
    "nursing",
    "medication",
    "escort",
    "rehabilitation",
    "first_aid",
)
NO_CERTIFICATE = {"housekeeping", "escort"}  # usually held without a dated certificate


@dataclass(frozen=True)
class Roster:
    """A daily shift: from ``start_hour`` (district time) for ``hours``."""

    name: str
    start_hour: int
    hours: int

    def fits(self, shift: Shift) -> bool:
        """Whether ``shift`` is one of this roster's (how a refresh knows who works which)."""
        start = shift.starts_at.astimezone(DEMO_TIME_ZONE)
        return (start.hour, start.minute, start.second) == (self.start_hour, 0, 0) and (
            shift.ends_at - shift.starts_at == timedelta(hours=self.hours)
        )


# Three crews whose 12 h shifts overlap by 4 h at each handover: at every instant a crew that
# came on at most 8 h ago has 4 h of shift left, more than the longest service (a 3 h hospital
# escort) plus the travel across the district. So any service can be dispatched at any hour,
# though a caregiver is on duty only while in shift. (8 h crews meeting end to end could not
# take a 1 h bath ten minutes before a handover: the crew going off has no room for it, and the
# crew coming on is not on duty yet.)
CREWS = (Roster("day", 7, 12), Roster("evening", 15, 12), Roster("night", 23, 12))
# The README's two caregivers are on call round the clock (one shift a day, handing over to
# the next at 05:00, the quietest hour), so the walk-through finds them at any time. Shifts of
# one caregiver never overlap, as an operator's POST .../shifts also requires.
ON_CALL = Roster("on call", 5, 24)
ROSTERS = (*CREWS, ON_CALL)
# How far ahead the rosters reach after seeding or a refresh.
ROSTER_AHEAD = timedelta(hours=48)
# Seeded shifts reach back this far (the seeded orders' history goes back 5 h).
ROSTER_BEHIND = timedelta(hours=12)
# Every crew holds each skill at least this often, with a certificate valid for months to come
# and a service radius that reaches the whole district (see ``_duty_position``).
COVER_PER_CREW = 2
COVER_RADIUS_M = 5000
COVER_VALID = timedelta(days=60)
# A caregiver on duty stands near a neighbourhood from which every neighbourhood centre lies
# this much within their service radius (room for where homes and the caregiver sit around
# the centres), when their radius allows one.
REACH_MARGIN_M = 1200.0
# A position reported this recently is left as it is by a refresh (the seeded ones are at most
# 10 min old); older ones of caregivers on duty are brought up to now.
FRESH_POSITION = timedelta(minutes=10)
# Fixed on-duty spots for the README's caregivers: Zhang Min near Taoyuan Road reaches all of
# Lianhu within her 5 km; Liu Jianjun works around Tumen.
# Keyed by the stored (E.164) phone: the demo numbers are Chinese mobiles, whatever the region.
DEMO_POSITIONS = {
    to_e164(DEMO_CAREGIVERS[0], "CN"): (34.2641, 108.9031),
    to_e164(DEMO_CAREGIVERS[1], "CN"): (34.2618, 108.8941),
}


def _as_principal(account: Account) -> Principal:
    return Principal(id=account.id, role=account.role, district_id=account.district_id)


def _phone(rng: random.Random, used: set[str]) -> str:
    while True:
        phone = rng.choice(PHONE_PREFIXES) + f"{rng.randrange(10**8):08d}"
        if phone not in used:
            used.add(phone)
            return phone


def _point(rng: random.Random, hood: Neighbourhood) -> tuple[float, float]:
    """A spot near the neighbourhood's centre, never outside the district's box."""
    lat_min, lat_max, lon_min, lon_max = BOUNDS
    lat = min(max(rng.gauss(hood.lat, 0.0022), lat_min + 0.0005), lat_max - 0.0005)
    lon = min(max(rng.gauss(hood.lon, 0.0028), lon_min + 0.0005), lon_max - 0.0005)
    return round(lat, 6), round(lon, 6)


def _reach_m(hood: Neighbourhood) -> float:
    """How far the farthest neighbourhood centre is from this one's."""
    return max(haversine_m(hood.lat, hood.lon, h.lat, h.lon) for h in NEIGHBOURHOODS)


REACH_M = {hood.name: _reach_m(hood) for hood in NEIGHBOURHOODS}


def _duty_position(rng: random.Random, radius_m: int) -> tuple[float, float]:
    """Where a caregiver comes on duty: near a neighbourhood from which their radius reaches
    every neighbourhood, if it can; else near any (a short radius serves its own corner)."""
    hoods = [h for h in NEIGHBOURHOODS if REACH_M[h.name] + REACH_MARGIN_M <= radius_m]
    return _point(rng, rng.choice(hoods or NEIGHBOURHOODS))


def _local_date(at: datetime) -> date:
    return at.astimezone(DEMO_TIME_ZONE).date()


def _local(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), DEMO_TIME_ZONE).astimezone(UTC)


def _roster_shifts(
    rosters: Iterable[Roster], now: datetime, *, ending_after: datetime
) -> list[tuple[datetime, datetime]]:
    """The rosters' shifts that end after ``ending_after`` and start on a local day from
    yesterday through the day ``ROSTER_AHEAD`` from now: whole days, so that ``now`` through
    ``now + ROSTER_AHEAD`` is always covered, and a second refresh on the same day adds none."""
    first = _local_date(now) - timedelta(days=1)
    days = (_local_date(now + ROSTER_AHEAD) - first).days + 1
    out = []
    for roster in rosters:
        for n in range(days):
            starts = _local(first + timedelta(days=n), roster.start_hour)
            ends = starts + timedelta(hours=roster.hours)
            if ends > ending_after:
                out.append((starts, ends))
    return sorted(out)


def _seed_shifts(roster: Roster, now: datetime) -> list[ShiftIn]:
    return [
        ShiftIn(starts_at=starts, ends_at=ends)
        for starts, ends in _roster_shifts([roster], now, ending_after=now - ROSTER_BEHIND)
    ]


def _in_shift(shifts: Iterable[Shift], now: datetime) -> bool:
    return any(s.starts_at <= now < s.ends_at for s in shifts)


def _skills(rng: random.Random, today: date, expired: bool) -> list[SkillIn]:
    names = set(rng.choice(PROFILES))
    if rng.random() < 0.3:
        names.add(rng.choice(ALL_SKILLS))
    skills = []
    for name in sorted(names):
        expires: date | None = today + timedelta(days=rng.randint(60, 1100))
        if name in NO_CERTIFICATE and rng.random() < 0.7:
            expires = None
        skills.append(SkillIn(skill=name, certificate_expires_on=expires))
    if expired:  # one certificate has lapsed: the caregiver may not do that service any more
        dated = [s for s in skills if s.certificate_expires_on is not None] or skills
        lapsed = rng.choice(dated)
        lapsed.certificate_expires_on = today - timedelta(days=rng.randint(5, 300))
    return skills


def _caregiver_in(
    rng: random.Random,
    index: int,
    provider_ids: list[uuid.UUID],
    used: set[str],
    crew: Roster,
    now: datetime,
) -> CaregiverIn:
    today = _local_date(now)
    gender = Gender.female if rng.random() < 0.7 else Gender.male
    given = rng.choice(YOUNG_FEMALE if gender is Gender.female else YOUNG_MALE)
    languages = ["zh"]
    if rng.random() < 0.3:
        languages.append("sxn")
    if rng.random() < 0.12:
        languages.append("en")
    return CaregiverIn(
        provider_id=provider_ids[index % len(provider_ids)],
        name=f"{rng.choice(SURNAMES)} {given}",
        phone=_phone(rng, used),
        password=DEMO_PASSWORD,
        gender=gender,
        languages=languages,
        service_radius_m=rng.choice((2000, 3000, 3000, 5000, 5000, 8000)),
        daily_visit_cap=rng.randint(5, 10),
        skills=_skills(rng, today, expired=rng.random() < 0.12),
        shifts=_seed_shifts(crew, now),
    )


def _valid_for_months(skill: SkillIn, today: date) -> bool:
    expires = skill.certificate_expires_on
    return (expires is None and skill.skill in NO_CERTIFICATE) or (
        expires is not None and expires > today + COVER_VALID
    )


def _covers(caregiver: CaregiverIn, skill: str, today: date) -> bool:
    """Holds ``skill`` for months to come, with a radius that reaches the whole district."""
    return caregiver.service_radius_m >= COVER_RADIUS_M and any(
        s.skill == skill and _valid_for_months(s, today) for s in caregiver.skills
    )


def _cover_every_skill(crew: Sequence[CaregiverIn], today: date) -> None:
    """Make sure the crew holds every skill ``COVER_PER_CREW`` times, with a wide radius and a
    certificate valid for months: so every service can be dispatched whichever crew is on.
    The random draw does that nearly always; where it does not, the crew's widest-reaching
    members who lack the skill learn it (their radius widened to ``COVER_RADIUS_M`` if short)."""
    widest_first = sorted(crew, key=lambda c: -c.service_radius_m)  # stable: deterministic
    for name in ALL_SKILLS:
        missing = COVER_PER_CREW - sum(_covers(c, name, today) for c in crew)
        lacking = [c for c in widest_first if not _covers(c, name, today)]
        for caregiver in lacking[: max(missing, 0)]:
            caregiver.service_radius_m = max(caregiver.service_radius_m, COVER_RADIUS_M)
            caregiver.skills = [s for s in caregiver.skills if s.skill != name] + [
                SkillIn(skill=name, certificate_expires_on=today + timedelta(days=365))
            ]


def _demo_caregivers(provider_ids: list[uuid.UUID], now: datetime) -> list[CaregiverIn]:
    """Two known caregivers for the README, on call round the clock: one who can do
    everything, one with a lapsed bathing certificate."""
    today = _local_date(now)
    shifts = _seed_shifts(ON_CALL, now)
    valid = today + timedelta(days=720)
    return [
        CaregiverIn(
            provider_id=provider_ids[0],
            name="Zhang Min",
            phone=DEMO_CAREGIVERS[0],
            password=DEMO_PASSWORD,
            gender=Gender.female,
            languages=["zh", "sxn", "en"],
            service_radius_m=5000,
            skills=[SkillIn(skill=s, certificate_expires_on=valid) for s in ALL_SKILLS],
            shifts=shifts,
        ),
        CaregiverIn(
            provider_id=provider_ids[1],
            name="Liu Jianjun",
            phone=DEMO_CAREGIVERS[1],
            password=DEMO_PASSWORD,
            gender=Gender.male,
            languages=["zh", "sxn"],
            service_radius_m=3000,
            skills=[
                SkillIn(skill="housekeeping"),
                SkillIn(skill="escort"),
                SkillIn(skill="first_aid", certificate_expires_on=valid),
                SkillIn(skill="bathing", certificate_expires_on=today - timedelta(days=40)),
            ],
            shifts=shifts,
        ),
    ]


def _senior_in(
    rng: random.Random,
    index: int,
    phone: str,
    used: set[str],
    caregivers: list[Caregiver],
) -> SeniorIn:
    hood = NEIGHBOURHOODS[index % len(NEIGHBOURHOODS)]
    gender = Gender.female if rng.random() < 0.62 else Gender.male
    surname = rng.choice(SURNAMES)
    given = rng.choice(ELDER_FEMALE if gender is Gender.female else ELDER_MALE)
    lat, lon = _point(rng, hood)
    address = (
        f"Building {rng.randint(1, 12)}, Unit {rng.randint(1, 4)}, "
        f"Room {rng.randint(1, 7)}0{rng.randint(1, 4)}, "
        f"{rng.randint(1, 260)} {rng.choice(hood.roads)}"
    )
    languages = ["zh"]
    if rng.random() < 0.45:
        languages.append("sxn")
    if rng.random() < 0.05:
        languages.append("en")
    notes = rng.sample(CARE_NOTES, k=rng.choice((0, 1, 1, 2)))
    if hood.name == "Beiyuanmen" and rng.random() < 0.6:
        notes.insert(0, HALAL_NOTE)
    contacts = []
    for _ in range(rng.choice((1, 1, 2))):
        relation = rng.choice(RELATIONS)
        young = YOUNG_MALE if relation in ("son", "nephew") else YOUNG_FEMALE
        family = surname if relation in ("son", "daughter") else rng.choice(SURNAMES)
        contacts.append(
            EmergencyContact(
                name=f"{family} {rng.choice(young)}", phone=_phone(rng, used), relation=relation
            )
        )
    # Wishes about caregivers only for seniors without demo orders (index >= 20), so the
    # seeded assignments below are always allowed.
    preferred_gender, strict = None, False
    preferred: list[uuid.UUID] = []
    blocked: list[uuid.UUID] = []
    if index >= 20:
        if gender is Gender.female and rng.random() < 0.25:
            preferred_gender, strict = Gender.female, rng.random() < 0.15
        others = [
            c.id
            for c in caregivers[len(DEMO_CAREGIVERS) :]
            if preferred_gender is None or c.gender is preferred_gender
        ]
        if rng.random() < 0.05:
            preferred = rng.sample(others, k=rng.randint(1, 2))
        if rng.random() < 0.03:
            blocked = [rng.choice([c for c in others if c not in preferred])]
    return SeniorIn(
        name=f"{surname} {given}",
        phone=phone,
        password=DEMO_PASSWORD,
        gender=gender,
        address=address,
        neighbourhood=hood.name,
        lat=lat,
        lon=lon,
        languages=languages,
        preferred_gender=preferred_gender,
        gender_strict=strict,
        care_notes=" ".join(notes),
        emergency_contacts=contacts,
        preferred_caregivers=preferred,
        blocked_caregivers=blocked,
    )


def _place_on_duty(rng: random.Random, caregivers: list[Caregiver], now: datetime) -> None:
    """Those whose shift is on now are on duty with a fresh position (see ``_duty_position``)."""
    for caregiver in caregivers:
        # Draw for everyone, so the time of day never changes what the generator yields next.
        (lat, lon), age = _duty_position(rng, caregiver.service_radius_m), rng.randint(20, 600)
        lat, lon = DEMO_POSITIONS.get(caregiver.phone, (lat, lon))
        if _in_shift(caregiver.shifts, now):
            caregiver.lat, caregiver.lon = lat, lon
            caregiver.position_at = now - timedelta(seconds=age)
            caregiver.on_duty = True


class _Orders:
    """Drives a few orders through the real state machine as their actors would."""

    def __init__(
        self,
        session: AsyncSession,
        settings: Settings,
        operator: Principal,
        caregivers: list[Caregiver],
        today: date,
    ) -> None:
        self.session = session
        self.settings = settings
        self.operator = operator
        # The README's caregivers stay free; each seeded visit gets its own caregiver.
        self.free = caregivers[len(DEMO_CAREGIVERS) :]
        self.today = today

    def pick(self, skill: str | None, starts: datetime, ends: datetime) -> Caregiver:
        """The next free caregiver whose certificate for ``skill`` is valid for days to come,
        one in shift for the whole visit if there is one (as the duty desk would choose)."""
        able = [
            c
            for c in self.free
            if skill is None
            or any(
                s.skill == skill
                and (
                    s.certificate_expires_on is None
                    or s.certificate_expires_on > self.today + timedelta(days=2)
                )
                for s in c.skills
            )
        ]
        if not able:
            raise RuntimeError(f"no free demo caregiver with {skill!r}")
        in_shift = (
            c for c in able if any(s.starts_at <= starts and ends <= s.ends_at for s in c.shifts)
        )
        caregiver = next(in_shift, able[0])
        self.free.remove(caregiver)
        return caregiver

    async def place(
        self, senior: Senior, service: str, at: datetime, **window: datetime
    ) -> uuid.UUID:
        data = OrderIn(service_code=service, notes=_order_note(service), **window)
        out, _ = await orders.place(
            self.session,
            _senior_principal(senior),
            data,
            settings=self.settings,
            idempotency_key=None,
            now=at,
        )
        return out.id

    async def assign(
        self, order_id: uuid.UUID, skill: str | None, at: datetime
    ) -> tuple[Caregiver, uuid.UUID]:
        """Assign by hand; returns the caregiver and the visit."""
        order = await self.session.get(Order, order_id)
        assert order is not None
        starts = at if order.asap or order.window_start is None else max(order.window_start, at)
        caregiver = self.pick(skill, starts, starts + timedelta(minutes=order.duration_min))
        # The demo's past is replayed with today's rows (where everyone is now, who is on duty
        # now), so soft rules are overridden, as a duty desk may; hard ones still hold.
        await visits.assign(
            self.session,
            self.operator,
            order_id,
            caregiver_id=caregiver.id,
            reason="Assigned by the duty desk",
            now=at,
            override=True,
        )
        visit = next(
            v
            for v in await visits.order_visits(self.session, order_id)
            if v.status is VisitStatus.assigned
        )
        return caregiver, visit.id

    async def check_in(
        self, caregiver: Caregiver, visit_id: uuid.UUID, senior: Senior, at: datetime
    ) -> None:
        """At the door (about 15 m from the pin), where the caregiver's phone now is."""
        lat, lon = senior.lat + 0.0001, senior.lon + 0.0001
        await visits.check_in(
            self.session,
            _caregiver_principal(caregiver),
            visit_id,
            lat=lat,
            lon=lon,
            settings=self.settings,
            now=at,
        )
        caregiver.lat, caregiver.lon, caregiver.position_at = lat, lon, at
        caregiver.on_duty = True


def _senior_principal(senior: Senior) -> Principal:
    return Principal(id=senior.id, role=Role.senior, district_id=senior.district_id)


def _caregiver_principal(caregiver: Caregiver) -> Principal:
    return Principal(
        id=caregiver.id, role=Role.caregiver, district_id=None, provider_id=caregiver.provider_id
    )


def _order_note(service: str) -> str:
    return {
        "bathing": "Please bring the shower chair from the community centre.",
        "cleaning": "Kitchen and bathroom, please.",
        "hospital_escort": "Follow-up at Xi'an No. 4 Hospital, cardiology.",
        "nursing_visit": "Change the dressing on the left leg.",
        "meal_delivery": "Soft food; no chilli.",
    }.get(service, "")


async def _orders(
    session: AsyncSession,
    settings: Settings,
    operator: Principal,
    seniors: list[Senior],
    caregivers: list[Caregiver],
    now: datetime,
) -> None:
    """Orders in every state a demo can show (escalation needs the dispatcher: none yet)."""
    today = _local_date(now)
    tomorrow = today + timedelta(days=1)
    flow = _Orders(session, settings, operator, caregivers, today)
    h, m = timedelta(hours=1), timedelta(minutes=1)

    # Completed and rated: the nurse checked in at the door.
    t0 = now - 5 * h
    oid = await flow.place(seniors[2], "nursing_visit", t0)
    nurse, visit = await flow.assign(oid, "nursing", t0 + 8 * m)
    await flow.check_in(nurse, visit, seniors[2], t0 + 35 * m)
    await visits.check_out(
        session, _caregiver_principal(nurse), visit, notes="Dressing changed.", now=t0 + 80 * m
    )
    await orders.rate(
        session,
        _senior_principal(seniors[2]),
        oid,
        score=5,
        comment="Gentle, and explained the new tablets.",
        now=t0 + 2 * h,
    )

    # Completed and rated: no GPS fix in the stairwell, so the operator recorded the check-in.
    t0 = now - 3 * h
    oid = await flow.place(seniors[3], "meal_delivery", t0)
    courier, visit = await flow.assign(oid, None, t0 + 5 * m)
    await visits.operator_check_in(
        session,
        operator,
        visit,
        reason="Caregiver's phone had no GPS fix in the stairwell; confirmed by phone call",
        settings=settings,
        now=t0 + 30 * m,
    )
    await visits.check_out(session, _caregiver_principal(courier), visit, notes="", now=t0 + 40 * m)
    await orders.rate(
        session,
        _senior_principal(seniors[3]),
        oid,
        score=4,
        comment="Still warm, a little late.",
        now=t0 + 90 * m,
    )

    # In progress: the second README senior is being helped right now.
    t0 = now - 45 * m
    oid = await flow.place(seniors[1], "personal_care", t0)
    helper, visit = await flow.assign(oid, "personal_care", t0 + 5 * m)
    await flow.check_in(helper, visit, seniors[1], now - 15 * m)

    # Assigned: a bath later today.
    soon = (now + 90 * m).replace(minute=0, second=0, microsecond=0)
    oid = await flow.place(
        seniors[4], "bathing", now - 25 * m, window_start=soon, window_end=soon + 2 * h
    )
    await flow.assign(oid, "bathing", now - 10 * m)

    # Pending: waiting for a caregiver (ASAP, tomorrow morning, and an SOS).
    await flow.place(seniors[5], "meal_delivery", now - 12 * m)
    await flow.place(
        seniors[6],
        "cleaning",
        now - 2 * h,
        window_start=_local(tomorrow, 9),
        window_end=_local(tomorrow, 11),
    )
    await orders.sos(session, _senior_principal(seniors[7]), settings=settings, now=now - 3 * m)

    # Cancelled by the senior before anyone was found.
    oid = await flow.place(
        seniors[8],
        "hospital_escort",
        now - 4 * h,
        window_start=_local(tomorrow, 8),
        window_end=_local(tomorrow, 12),
    )
    await orders.cancel(
        session, _senior_principal(seniors[8]), oid, reason="My son can take me.", now=now - 3 * h
    )

    # Cancelled by the operator after assignment: the caregiver's visit is released.
    t0 = now - 2 * h
    oid = await flow.place(seniors[9], "cleaning", t0)
    await flow.assign(oid, "housekeeping", t0 + 10 * m)
    await orders.cancel(
        session,
        operator,
        oid,
        reason="Admitted to hospital overnight; the family phoned.",
        now=now - 30 * m,
    )


def _logins(keys: dict[str, str] | None) -> str:
    lines = [
        f"Demo log-ins (password for all: {DEMO_PASSWORD}), POST /v1/auth/token:",
        "  admin      admin",
        "  operator   operator",
        f"  caregiver  {DEMO_CAREGIVERS[0]}  (Zhang Min, every skill)",
        f"  caregiver  {DEMO_CAREGIVERS[1]}  (Liu Jianjun, bathing certificate expired)",
        f"  senior     {DEMO_SENIORS[0]}  (Li Guilan, Tumen)",
        f"  senior     {DEMO_SENIORS[1]}  (Wang Shufen, Beiyuanmen, a visit in progress)",
    ]
    if keys is None:
        lines.append("Provider API keys (X-API-Key) were printed when the demo was loaded.")
    else:
        lines.append("Provider API keys (X-API-Key; shown only now, only their hashes are kept):")
        lines += [f"  {login:<17} {key}" for login, key in keys.items()]
    return "\n".join(lines)


async def _load(session: AsyncSession, settings: Settings, now: datetime) -> str:
    # Every demo account shares one published password: hash it once, not 240 times.
    password_hash = await hash_password(DEMO_PASSWORD)
    # Never the global random: the demo is the same on every run.
    rng = random.Random(SEED)  # noqa: S311 (demo data, not secrets)
    used = set(DEMO_CAREGIVERS) | set(DEMO_SENIORS)

    district = await accounts.create_district(session, DISTRICT)
    session.add(
        Account(
            role=Role.admin,
            login="admin",
            password_hash=password_hash,
            display_name="Platform administrator",
            created_at=now,
        )
    )
    operator = _as_principal(
        await accounts.create_operator(
            session,
            OperatorIn(
                login="operator",
                password=DEMO_PASSWORD,
                name="Wang Fang (Lianhu duty desk)",
                district_id=district.id,
            ),
            password_hash=password_hash,
        )
    )
    keys: dict[str, str] = {}
    provider_ids: list[uuid.UUID] = []
    for provider_in in PROVIDERS:
        provider, keys[provider_in.login] = await accounts.create_provider(
            session, operator, provider_in
        )
        provider_ids.append(provider.id)

    indices = range(len(DEMO_CAREGIVERS), N_CAREGIVERS)
    crews = [CREWS[i % len(CREWS)] for i in indices]
    crew_data = [
        _caregiver_in(rng, i, provider_ids, used, crew, now)
        for i, crew in zip(indices, crews, strict=True)
    ]
    for crew in CREWS:
        _cover_every_skill(
            [c for c, of in zip(crew_data, crews, strict=True) if of is crew], _local_date(now)
        )
    caregiver_data = _demo_caregivers(provider_ids, now) + crew_data
    caregivers = [
        await accounts.create_caregiver(session, operator, c, password_hash=password_hash)
        for c in caregiver_data
    ]
    _place_on_duty(rng, caregivers, now)
    await session.flush()

    seniors: list[Senior] = []
    for i in range(N_SENIORS):
        phone = DEMO_SENIORS[i] if i < len(DEMO_SENIORS) else _phone(rng, used)
        data = _senior_in(rng, i, phone, used, caregivers)
        if i == 0:  # the README's senior: Tumen, no wishes that could refuse a caregiver
            data.name, data.gender = "Li Guilan", Gender.female
        elif i == 1:
            data.name, data.gender = "Wang Shufen", Gender.female
            data.neighbourhood = "Beiyuanmen"
            data.lat, data.lon = 34.2658, 108.9412
            data.address = "Building 2, Unit 1, Room 402, 86 Beiyuanmen Street"
        senior = await accounts.create_senior(
            session, operator, data, now=now, password_hash=password_hash
        )
        seniors.append(senior)

    await _orders(session, settings, operator, seniors, caregivers, now)
    # The seeded visits put their caregivers on duty where they checked in, hours ago some of
    # them: duty and positions follow the shifts now, as on every later start.
    await _refresh(session, district, now)

    counts = dict(
        (
            await session.execute(
                select(Order.status, func.count())
                .where(Order.district_id == district.id)
                .group_by(Order.status)
            )
        ).all()
    )
    by_status = ", ".join(f"{n} {status.value}" for status, n in sorted(counts.items()))
    on_duty = sum(c.on_duty for c in caregivers)
    return "\n".join(
        [
            f"Loaded the demo district {DISTRICT.name} ({DISTRICT.city}): 1 admin, 1 operator, "
            f"{len(PROVIDERS)} providers, {len(caregivers)} caregivers ({on_duty} on duty now), "
            f"{len(seniors)} seniors, {sum(counts.values())} orders ({by_status}).",
            _rosters(_roster_end(caregivers)),
            _logins(keys),
        ]
    )


def _rosters(until: datetime | None) -> str:
    crews = ", ".join(f"{r.name} {r.start_hour:02d}:00 for {r.hours} h" for r in ROSTERS)
    end = "none" if until is None else f"{until.astimezone(DEMO_TIME_ZONE):%Y-%m-%d %H:%M}"
    return (
        f"Shifts round the clock ({DEMO_TIME_ZONE.key} time): {crews}; they run to {end} and "
        "are topped up whenever seed-demo runs again (make run does on every start)."
    )


def _roster_end(caregivers: Iterable[Caregiver]) -> datetime | None:
    """When the last shift of anyone on a demo roster ends (shifts must be loaded)."""
    ends = [s.ends_at for c in caregivers for s in c.shifts if any(r.fits(s) for r in ROSTERS)]
    return max(ends, default=None)


async def _demo_district(session: AsyncSession) -> District | None:
    """The demo district, known by its code; nothing else is ever refreshed."""
    return await session.scalar(select(District).where(District.code == DISTRICT.code))


async def _refresh(session: AsyncSession, district: District, now: datetime) -> str:
    """Top the demo rosters up to ``ROSTER_AHEAD`` from now and put the district's caregivers
    on or off duty by whether they are in shift now; returns what was done.

    Only caregivers of ``district`` who work a demo roster (one of their shifts fits one of
    ``ROSTERS``) are touched, and of them only duty, position and new shifts: a caregiver an
    operator added, shifts an operator added (no roster shift is added where one overlaps),
    skills, accounts and orders stay as they are. Whoever has a visit in progress stays on
    duty. An on-duty position keeps its place (a check-in at a door stays there); if it is older
    than ``FRESH_POSITION`` its time becomes ``now``: nobody's phone reports in the demo, and
    the dispatcher passes over a position older than 30 min for ASAP orders. Running it again
    at once changes nothing; within the same local day it adds no shifts.
    """
    caregivers = (
        await session.scalars(
            select(Caregiver)
            .join(Provider, Provider.id == Caregiver.provider_id)
            .where(Provider.district_id == district.id)
            .options(selectinload(Caregiver.shifts))
            .order_by(Caregiver.phone)
        )
    ).all()
    working = set(
        (
            await session.scalars(
                select(Visit.caregiver_id).where(
                    Visit.caregiver_id.in_([c.id for c in caregivers]),
                    Visit.status == VisitStatus.in_progress,
                )
            )
        ).all()
    )
    added = came = went = refreshed = on_duty = 0
    until: datetime | None = None
    for caregiver in caregivers:
        rosters = [r for r in ROSTERS if any(r.fits(s) for s in caregiver.shifts)]
        if not rosters:
            continue
        have = [(s.starts_at, s.ends_at) for s in caregiver.shifts]
        for starts, ends in _roster_shifts(rosters, now, ending_after=now):
            if not any(a < ends and starts < b for a, b in have):
                session.add(Shift(caregiver_id=caregiver.id, starts_at=starts, ends_at=ends))
                have.append((starts, ends))
                added += 1
        last = max(ends for _, ends in have)
        until = last if until is None else max(until, last)
        if caregiver.id in working or any(a <= now < b for a, b in have):
            on_duty += 1
            if not caregiver.on_duty:
                caregiver.on_duty, came = True, came + 1
            if caregiver.lat is None or caregiver.lon is None:
                rng = random.Random(f"{SEED}:{caregiver.phone}")  # noqa: S311 (demo data)
                drawn = _duty_position(rng, caregiver.service_radius_m)
                caregiver.lat, caregiver.lon = DEMO_POSITIONS.get(caregiver.phone, drawn)
            if caregiver.position_at is None or caregiver.position_at < now - FRESH_POSITION:
                caregiver.position_at, refreshed = now, refreshed + 1
        elif caregiver.on_duty:
            caregiver.on_duty, went = False, went + 1
    await session.flush()
    at = now.astimezone(DEMO_TIME_ZONE)
    end = (
        "" if until is None else f" (they run to {until.astimezone(DEMO_TIME_ZONE):%Y-%m-%d %H:%M})"
    )
    return (
        f"Refreshed the demo district {district.name} at {at:%Y-%m-%d %H:%M} "
        f"({DEMO_TIME_ZONE.key} time): {added} shifts added{end}; {on_duty} caregivers on duty "
        f"({came} came on duty, {went} went off duty); {refreshed} positions refreshed."
    )


async def refresh_demo(settings: Settings, now: datetime | None = None) -> str:
    """Bring the loaded demo up to ``now`` (default: the clock) in one transaction: see
    ``_refresh``. Cheap and idempotent, so it may also run periodically (a long-running demo
    would otherwise see its crews' shifts end and its positions go stale). Returns what it did."""
    now = _aware(now)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            district = await _demo_district(session)
            if district is None:
                return f"There is no demo district {DISTRICT.code!r} to refresh."
            return await _refresh(session, district, now)
    finally:
        await engine.dispose()


def _aware(now: datetime | None) -> datetime:
    if now is None:
        return datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(UTC)


async def seed_demo(settings: Settings, *, if_empty: bool, now: datetime | None = None) -> str:
    """Load the demo district as of ``now`` (default: the clock) in one transaction, or, when
    it is loaded already, refresh it (``_refresh``); returns what was done and the log-ins.

    ``if_empty``: load nothing into a database that has accounts but no demo district.
    """
    now = _aware(now)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            district = await _demo_district(session)
            if district is not None:
                done = await _refresh(session, district, now)
                return (
                    f"The demo district {DISTRICT.code!r} exists already; nothing was loaded.\n"
                    f"{done}\n{_logins(None)}"
                )
            if if_empty and await accounts.count_accounts(session) > 0:
                return "The database has accounts already; nothing was loaded.\n" + _logins(None)
            return await _load(session, settings, now)
    finally:
        await engine.dispose()
