"""The demo district: Lianhu, Xi'an, with its people, their shifts and orders in every state.

Everything is created through the real services (so history rows, outbox events and audit rows
are written as in production) in one transaction, from ``random.Random(2026)``: the same data
on every run, placed relative to the current time so that shifts and orders are live.
"""

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.deps import Principal
from app.models import (
    Account,
    Caregiver,
    District,
    Gender,
    Order,
    Role,
    Senior,
    VisitStatus,
)
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
# China has kept UTC+8 without daylight saving since 1991: a fixed offset needs no tz database.
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")
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
SHIFT_HOURS = ((7, 15), (8, 16), (8, 18), (9, 17), (12, 20), (13, 21))


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


def _local(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour), SHANGHAI).astimezone(UTC)


def _shifts(rng: random.Random, today: date) -> list[ShiftIn]:
    start, end = rng.choice(SHIFT_HOURS)
    days = [today, today + timedelta(days=1)]
    if rng.random() < 0.1:  # a few work only one of the two days
        days = [rng.choice(days)]
    return [ShiftIn(starts_at=_local(d, start), ends_at=_local(d, end)) for d in days]


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
    rng: random.Random, index: int, provider_ids: list[uuid.UUID], today: date, used: set[str]
) -> CaregiverIn:
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
        shifts=_shifts(rng, today),
    )


def _demo_caregivers(provider_ids: list[uuid.UUID], today: date) -> list[CaregiverIn]:
    """Two known caregivers for the README: one who can do everything, one with a lapsed cert."""
    shifts = [
        ShiftIn(starts_at=_local(d, 8), ends_at=_local(d, 18))
        for d in (today, today + timedelta(days=1))
    ]
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
    """Those whose shift is on now are on duty with a fresh position somewhere in the district."""
    for caregiver in caregivers:
        # Draw for everyone, so the time of day never changes what the generator yields next.
        (lat, lon), age = _point(rng, rng.choice(NEIGHBOURHOODS)), rng.randint(20, 600)
        if any(s.starts_at <= now < s.ends_at for s in caregiver.shifts):
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

    def pick(self, skill: str | None) -> Caregiver:
        """The next free caregiver whose certificate for ``skill`` is valid for days to come."""
        for caregiver in self.free:
            if skill is None or any(
                s.skill == skill
                and (
                    s.certificate_expires_on is None
                    or s.certificate_expires_on > self.today + timedelta(days=2)
                )
                for s in caregiver.skills
            ):
                self.free.remove(caregiver)
                return caregiver
        raise RuntimeError(f"no free demo caregiver with {skill!r}")

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
        caregiver = self.pick(skill)
        await visits.assign(
            self.session,
            self.operator,
            order_id,
            caregiver_id=caregiver.id,
            reason="Assigned by the duty desk",
            now=at,
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
    today = now.astimezone(SHANGHAI).date()
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
    today = now.astimezone(SHANGHAI).date()
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

    caregiver_data = _demo_caregivers(provider_ids, today) + [
        _caregiver_in(rng, i, provider_ids, today, used)
        for i in range(len(DEMO_CAREGIVERS), N_CAREGIVERS)
    ]
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
    await session.flush()

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
            _logins(keys),
        ]
    )


async def seed_demo(settings: Settings, *, if_empty: bool) -> str:
    """Load the demo district in one transaction; returns what was done and the demo log-ins."""
    now = datetime.now(UTC)
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            if if_empty and await accounts.count_accounts(session) > 0:
                return "The database has accounts already; nothing was loaded.\n" + _logins(None)
            if await session.scalar(select(District.id).where(District.code == DISTRICT.code)):
                return f"The demo district {DISTRICT.code!r} exists already.\n" + _logins(None)
            return await _load(session, settings, now)
    finally:
        await engine.dispose()
