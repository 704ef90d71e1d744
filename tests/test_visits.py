"""A caregiver's side: duty, position, check-in geofence, check-out, withdrawal."""

from datetime import UTC, datetime, timedelta

from httpx import AsyncClient
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.models import Caregiver
from tests.factories import FAR, HOME, NEAR_HOME, World
from tests.test_orders import assign, booked, check_in, place

FOUR_KM = (34.3015, 108.9081)  # 4.0 km north of HOME


class TestDutyAndPosition:
    async def test_go_on_duty_and_report_position(self, client: AsyncClient, world: World) -> None:
        r = await client.put(
            "/v1/caregivers/me/duty", json={"on_duty": True}, headers=world.nurse.auth
        )
        assert r.json()["on_duty"] is True
        r = await client.put(
            "/v1/caregivers/me/position",
            json={"lat": HOME[0], "lon": HOME[1]},
            headers=world.nurse.auth,
        )
        assert (r.json()["lat"], r.json()["lon"]) == HOME

    async def test_a_json_integer_is_a_valid_coordinate(
        self, client: AsyncClient, world: World
    ) -> None:
        r = await client.put(
            "/v1/caregivers/me/position", json={"lat": 34, "lon": 109}, headers=world.nurse.auth
        )
        assert r.status_code == 200, r.text
        assert (r.json()["lat"], r.json()["lon"]) == (34.0, 109.0)

    async def test_an_older_fix_never_moves_the_caregiver_back(
        self, client: AsyncClient, world: World
    ) -> None:
        now = datetime.now(UTC)
        await client.put(
            "/v1/caregivers/me/position",
            json={"lat": HOME[0], "lon": HOME[1]},
            headers=world.nurse.auth,
        )
        stale = {
            "lat": FAR[0],
            "lon": FAR[1],
            "recorded_at": (now - timedelta(minutes=5)).isoformat(),
        }
        r = await client.put("/v1/caregivers/me/position", json=stale, headers=world.nurse.auth)
        assert (r.json()["lat"], r.json()["lon"]) == HOME

    async def test_a_fix_from_the_future_is_refused(
        self, client: AsyncClient, world: World
    ) -> None:
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        r = await client.put(
            "/v1/caregivers/me/position",
            json={"lat": 34.0, "lon": 108.0, "recorded_at": future},
            headers=world.nurse.auth,
        )
        assert r.status_code == 422
        assert r.json()["code"] == "position_in_future"

    async def test_a_fix_stamped_110_s_ahead_never_blocks_the_real_ones(
        self, client: AsyncClient, world: World
    ) -> None:
        """The issue's case: a phone clock 110 s fast, then real fixes 4 km away."""
        now = datetime.now(UTC)
        ahead = {
            "lat": HOME[0],
            "lon": HOME[1],
            "recorded_at": (now + timedelta(seconds=110)).isoformat(),
        }
        r = await client.put("/v1/caregivers/me/position", json=ahead, headers=world.nurse.auth)
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "position_in_future"
        real = {"lat": FOUR_KM[0], "lon": FOUR_KM[1], "recorded_at": now.isoformat()}
        r = await client.put("/v1/caregivers/me/position", json=real, headers=world.nurse.auth)
        assert (r.json()["lat"], r.json()["lon"]) == FOUR_KM

    async def test_a_fix_a_little_ahead_is_kept_as_now_and_the_next_real_one_wins(
        self, client: AsyncClient, world: World
    ) -> None:
        now = datetime.now(UTC)
        ahead = {
            "lat": HOME[0],
            "lon": HOME[1],
            "recorded_at": (now + timedelta(seconds=4)).isoformat(),
        }
        r = await client.put("/v1/caregivers/me/position", json=ahead, headers=world.nurse.auth)
        assert (r.json()["lat"], r.json()["lon"]) == HOME
        r = await client.put(
            "/v1/caregivers/me/position",
            json={"lat": FOUR_KM[0], "lon": FOUR_KM[1]},
            headers=world.nurse.auth,
        )
        assert (r.json()["lat"], r.json()["lon"]) == FOUR_KM

    async def test_a_fix_stored_in_the_future_by_old_code_blocks_nothing(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
    ) -> None:
        async with sessionmaker() as session, session.begin():
            await session.execute(
                update(Caregiver)
                .where(Caregiver.id == world.nurse.id)
                .values(
                    lat=HOME[0], lon=HOME[1], position_at=datetime.now(UTC) + timedelta(hours=2)
                )
            )
        r = await client.put(
            "/v1/caregivers/me/position",
            json={"lat": FOUR_KM[0], "lon": FOUR_KM[1]},
            headers=world.nurse.auth,
        )
        assert (r.json()["lat"], r.json()["lon"]) == FOUR_KM
        async with sessionmaker() as session:
            stored = await session.scalar(
                select(Caregiver.position_at).where(Caregiver.id == world.nurse.id)
            )
        assert stored is not None
        assert stored <= datetime.now(UTC)


class TestCheckIn:
    async def test_too_far_says_how_far(self, client: AsyncClient, world: World) -> None:
        _, visit = await booked(client, world)
        r = await client.post(
            f"/v1/visits/{visit['id']}/check-in",
            json={"lat": FAR[0], "lon": FAR[1]},
            headers=world.nurse.auth,
        )
        assert r.status_code == 422
        body = r.json()
        assert body["code"] == "too_far"
        assert 2000 < body["distance_m"] < 3500
        assert body["radius_m"] == 150
        assert f"{body['distance_m']:.0f} m" in body["detail"]

    async def test_within_radius_starts_the_visit(self, client: AsyncClient, world: World) -> None:
        _, visit = await booked(client, world)
        r = await check_in(client, world, visit)
        assert r.status_code == 200
        assert r.json()["status"] == "in_progress"
        assert r.json()["order_status"] == "in_progress"
        r = await check_in(client, world, visit)
        assert r.status_code == 409

    async def test_operator_records_a_check_in_with_a_reason(
        self, client: AsyncClient, world: World
    ) -> None:
        order, visit = await booked(client, world)
        r = await client.post(
            f"/v1/ops/visits/{visit['id']}/check-in",
            json={"reason": "GPS broken; confirmed by phone"},
            headers=world.operator_a.auth,
        )
        assert r.status_code == 200, r.text
        r = await client.get(f"/v1/ops/orders/{order['id']}", headers=world.operator_a.auth)
        assert r.json()["visits"][0]["check_in_override_reason"] == "GPS broken; confirmed by phone"
        assert r.json()["history"][-1]["actor_id"] == str(world.operator_a.id)


class TestCheckOut:
    async def test_check_out_records_duration_and_frees_the_rest_of_the_slot(
        self, client: AsyncClient, world: World
    ) -> None:
        _, visit = await booked(client, world)
        r = await client.post(
            f"/v1/visits/{visit['id']}/check-out", json={}, headers=world.nurse.auth
        )
        assert r.status_code == 409  # not checked in yet
        await check_in(client, world, visit)
        r = await client.post(
            f"/v1/visits/{visit['id']}/check-out",
            json={"notes": "all good"},
            headers=world.nurse.auth,
        )
        assert r.status_code == 200
        done = r.json()
        assert done["status"] == "completed"
        assert done["actual_duration_min"] == 0
        assert datetime.fromisoformat(done["ends_at"]) <= datetime.now(UTC)
        # The 60-minute slot ended at check-out, so the next order can start right away.
        other = await place(client, world.neighbour.auth)
        await assign(client, world, other["id"], world.nurse.id)


class TestWithdraw:
    async def test_withdraw_returns_the_order_to_dispatch(
        self, client: AsyncClient, world: World
    ) -> None:
        order, visit = await booked(client, world)
        r = await client.post(
            f"/v1/visits/{visit['id']}/withdraw", json={"reason": "sick"}, headers=world.nurse.auth
        )
        assert r.status_code == 200
        assert r.json()["status"] == "withdrawn"
        r = await client.get(f"/v1/ops/orders/{order['id']}", headers=world.operator_a.auth)
        assert r.json()["status"] == "pending"
        assert r.json()["caregiver_id"] is None
        assert r.json()["redispatch_count"] == 1
        # And it can be given to someone else.
        await assign(client, world, order["id"], world.nurse.id)


class TestCheckInTime:
    async def test_check_in_to_tomorrows_visit_is_refused(
        self, client: AsyncClient, world: World
    ) -> None:
        start = datetime.now(UTC) + timedelta(days=1)
        r = await client.post(
            f"/v1/ops/caregivers/{world.nurse.id}/shifts",
            json={
                "starts_at": (start - timedelta(hours=1)).isoformat(),
                "ends_at": (start + timedelta(hours=8)).isoformat(),
            },
            headers=world.operator_a.auth,
        )
        assert r.status_code == 201, r.text
        _, visit = await booked(
            client,
            world,
            window_start=start.isoformat(),
            window_end=(start + timedelta(hours=2)).isoformat(),
        )
        r = await check_in(client, world, visit)
        assert r.status_code == 409
        assert r.json()["code"] == "too_early"
        assert datetime.fromisoformat(r.json()["opens_at"]) == start - timedelta(minutes=60)


def _at(client: AsyncClient, moment: datetime) -> None:
    """Move the API's clock (the NowDep dependency)."""
    from app.deps import get_now

    client.app.dependency_overrides[get_now] = lambda: moment  # type: ignore[attr-defined]


class TestOneVisitAtATime:
    async def test_cannot_check_in_to_a_second_visit_while_one_is_open(
        self, client: AsyncClient, world: World
    ) -> None:
        now = datetime.now(UTC)
        first = await place(client, world.senior.auth, service_code="companionship")
        later = now + timedelta(minutes=95)  # after the first visit's 90 booked minutes
        second = await place(
            client,
            world.neighbour.auth,
            service_code="companionship",
            window_start=later.isoformat(),
            window_end=(later + timedelta(hours=2)).isoformat(),
        )
        await assign(client, world, first["id"], world.nurse.id)
        await assign(client, world, second["id"], world.nurse.id)
        visits = (await client.get("/v1/visits", headers=world.nurse.auth)).json()["items"]
        by_order = {v["order_id"]: v["id"] for v in visits}
        near = {"lat": NEAR_HOME[0], "lon": NEAR_HOME[1]}
        r = await client.post(
            f"/v1/visits/{by_order[first['id']]}/check-in", json=near, headers=world.nurse.auth
        )
        assert r.status_code == 200
        # 45 minutes on, the neighbour's visit is open for check-in (60 min early) — but the
        # nurse is still with the first senior.
        _at(client, now + timedelta(minutes=45))
        r = await client.post(
            f"/v1/visits/{by_order[second['id']]}/check-in", json=near, headers=world.nurse.auth
        )
        assert r.status_code == 409
        assert r.json()["code"] == "caregiver_busy"

    async def test_early_check_in_moves_the_booked_start(
        self, client: AsyncClient, world: World
    ) -> None:
        start = datetime.now(UTC) + timedelta(minutes=30)
        _, visit = await booked(
            client,
            world,
            window_start=start.isoformat(),
            window_end=(start + timedelta(hours=2)).isoformat(),
        )
        r = await check_in(client, world, visit)
        assert datetime.fromisoformat(r.json()["starts_at"]) < start


class TestWhatAFormerCaregiverSees:
    async def test_no_distance_once_the_visit_is_not_theirs(
        self, client: AsyncClient, world: World
    ) -> None:
        """An exact distance from three positions would give away the home."""
        await client.put(
            "/v1/caregivers/me/position",
            json={"lat": FAR[0], "lon": FAR[1]},
            headers=world.nurse.auth,
        )
        _, visit = await booked(client, world)
        r = await client.get(f"/v1/visits/{visit['id']}", headers=world.nurse.auth)
        assert r.json()["distance_m"] is not None
        await client.post(
            f"/v1/visits/{visit['id']}/withdraw", json={"reason": "sick"}, headers=world.nurse.auth
        )
        r = await client.get(f"/v1/visits/{visit['id']}", headers=world.nurse.auth)
        assert r.json()["distance_m"] is None
        assert r.json()["senior"] is None
        r = await client.get(f"/v1/provider/visits/{visit['id']}", headers=world.provider_a_headers)
        assert r.json()["distance_m"] is None


class TestOperatorClosesAVisit:
    async def test_operator_check_out_when_the_caregivers_phone_died(
        self, client: AsyncClient, world: World
    ) -> None:
        _, visit = await booked(client, world)
        await check_in(client, world, visit)
        r = await client.post(
            f"/v1/ops/visits/{visit['id']}/check-out",
            json={"reason": "phone died; senior confirmed the visit ended"},
            headers=world.operator_a.auth,
        )
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "completed"
        r = await client.get(f"/v1/visits/{visit['id']}", headers=world.nurse.auth)
        assert r.json()["senior"] is None

    async def test_a_deactivated_caregiver_cannot_be_assigned(
        self, client: AsyncClient, world: World, sessionmaker: async_sessionmaker[AsyncSession]
    ) -> None:
        from app.models import Account

        async with sessionmaker() as session, session.begin():
            account = await session.get(Account, world.nurse.id)
            assert account is not None
            account.is_active = False
        order = await place(client, world.senior.auth)
        r = await client.post(
            f"/v1/ops/orders/{order['id']}/assign",
            json={"caregiver_id": str(world.nurse.id)},
            headers=world.operator_a.auth,
        )
        assert r.status_code == 422
        assert r.json()["code"] == "unknown_caregiver"
