"""The dispatcher, pass by pass with the test's own clock: offers, answers, expiry, escalation,
emergencies, scheduled batches, no-shows, and the accept race."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from httpx import AsyncClient
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.config import Settings
from app.deps import Principal
from app.models import (
    Account,
    Caregiver,
    DispatchDecision,
    Offer,
    OfferStatus,
    Order,
    OutboxEvent,
    Provider,
    Role,
    Shift,
    Visit,
    VisitStatus,
)
from app.services import accounts
from app.services import dispatch as dispatch_service
from app.services.dispatch import Pass, Tally, run_once
from tests.factories import FAR, NEAR_HOME, Person, World, at, caregiver_in, resend_shed


async def on_duty(client: AsyncClient, who: Person, at: tuple[float, float] = NEAR_HOME) -> None:
    r = await client.put("/v1/caregivers/me/duty", json={"on_duty": True}, headers=who.auth)
    assert r.status_code == 200, r.text
    r = await client.put(
        "/v1/caregivers/me/position", json={"lat": at[0], "lon": at[1]}, headers=who.auth
    )
    assert r.status_code == 200, r.text


async def more_caregivers(
    client: AsyncClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    world: World,
    count: int,
    *,
    at: tuple[float, float] = NEAR_HOME,
) -> list[Person]:
    now = datetime.now(UTC)
    operator = Principal(id=world.operator_a.id, role=Role.operator, district_id=world.district_a)
    async with sessionmaker() as session, session.begin():
        made = [
            await accounts.create_caregiver(
                session, operator, caregiver_in(world.provider_a.id, f"1351000{i:04d}", now)
            )
            for i in range(count)
        ]
        for c in made:
            c.on_duty = True
            c.lat, c.lon, c.position_at = at[0], at[1], now
    settings: Settings = client.app.state.settings  # type: ignore[attr-defined]
    from app.security import create_access_token

    return [
        Person(c.id, create_access_token(settings, account_id=c.id, role=Role.caregiver)[0])
        for c in made
    ]


async def place(client: AsyncClient, world: World, **body: Any) -> dict[str, Any]:
    r = await client.post(
        "/v1/orders", json={"service_code": "cleaning", **body}, headers=world.senior.auth
    )
    assert r.status_code == 201, r.text
    return r.json()


async def dispatch(
    sessionmaker: async_sessionmaker[AsyncSession],
    settings: Settings,
    now: datetime | None = None,
) -> Tally:
    return await run_once(sessionmaker, settings, now or datetime.now(UTC))


async def offers_of(client: AsyncClient, who: Person, status: str = "open") -> list[dict[str, Any]]:
    r = await client.get("/v1/offers", params={"status": status}, headers=who.auth)
    assert r.status_code == 200, r.text
    return r.json()["items"]


async def order_status(client: AsyncClient, world: World, order_id: str) -> str:
    r = await client.get(f"/v1/orders/{order_id}", headers=world.senior.auth)
    return str(r.json()["status"])


class TestOffers:
    async def test_an_asap_order_is_offered_to_the_nearest_qualified_caregiver(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await on_duty(client, world.nurse, FAR)
        await on_duty(client, world.helper, NEAR_HOME)
        order = await place(client, world)

        tally = await dispatch(sessionmaker, settings)

        assert tally.offered == 1
        assert await order_status(client, world, order["id"]) == "offered"
        [offer] = await offers_of(client, world.helper)
        assert offer["order_id"] == order["id"]
        assert offer["neighbourhood"] == "Tumen"
        assert "address" not in offer
        assert 0 < offer["expires_in_s"] <= settings.offer_timeout_s
        # Only coarse figures: exact ones from known positions would locate the home.
        assert offer["travel_s"] % 60 == 0
        assert offer["distance_m"] % 100 == 0
        assert await offers_of(client, world.nurse) == []
        # The operator reads why: the engine's candidates with cost parts adding up.
        r = await client.get(
            f"/v1/ops/orders/{order['id']}/decisions", headers=world.operator_a.auth
        )
        [decision] = r.json()
        assert decision["kind"] == "offer"
        assert decision["caregiver_ids"] == [str(world.helper.id)]
        best = decision["explanation"]["candidates"][0]
        assert best["caregiver_id"] == str(world.helper.id)
        assert sum(best["parts"].values()) == pytest.approx(best["cost"], abs=0.5)
        assert [c["caregiver_id"] for c in decision["explanation"]["candidates"]] == [
            str(world.helper.id),
            str(world.nurse.id),
        ]
        # And on the order itself, with the open offer and its deadline.
        r = await client.get(f"/v1/ops/orders/{order['id']}", headers=world.operator_a.auth)
        assert [d["id"] for d in r.json()["decisions"]] == [decision["id"]]
        assert r.json()["offered_to"] == [str(world.helper.id)]
        assert r.json()["offer_deadline"] is not None

    async def test_accept_makes_it_my_visit(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await on_duty(client, world.nurse)
        order = await place(client, world)
        await dispatch(sessionmaker, settings)
        [offer] = await offers_of(client, world.nurse)

        r = await client.post(f"/v1/offers/{offer['id']}/accept", headers=world.nurse.auth)

        assert r.status_code == 200, r.text
        assert r.json()["status"] == "accepted"
        assert r.json()["visit_id"] is not None
        assert await order_status(client, world, order["id"]) == "assigned"
        visit = (
            await client.get(f"/v1/visits/{r.json()['visit_id']}", headers=world.nurse.auth)
        ).json()
        assert visit["senior"]["address"]  # the address comes with the visit
        again = await client.post(f"/v1/offers/{offer['id']}/accept", headers=world.nurse.auth)
        assert again.status_code == 409
        assert again.json()["code"] == "offer_accepted"

    async def test_after_a_withdrawal_another_caregiver_can_accept(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await on_duty(client, world.nurse)
        order = await place(client, world)
        await dispatch(sessionmaker, settings)
        [offer] = await offers_of(client, world.nurse)
        r = await client.post(f"/v1/offers/{offer['id']}/accept", headers=world.nurse.auth)
        r = await client.post(
            f"/v1/visits/{r.json()['visit_id']}/withdraw",
            json={"reason": "Child is ill"},
            headers=world.nurse.auth,
        )
        assert r.status_code == 200, r.text
        await on_duty(client, world.helper, FAR)
        await dispatch(sessionmaker, settings)
        [second] = await offers_of(client, world.helper)

        r = await client.post(f"/v1/offers/{second['id']}/accept", headers=world.helper.auth)

        assert r.status_code == 200, r.text
        assert await order_status(client, world, order["id"]) == "assigned"

    async def test_decline_offers_the_next_caregiver(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await on_duty(client, world.nurse, NEAR_HOME)
        await on_duty(client, world.helper, FAR)
        order = await place(client, world)
        await dispatch(sessionmaker, settings)
        [offer] = await offers_of(client, world.nurse)

        r = await client.post(
            f"/v1/offers/{offer['id']}/decline",
            json={"reason": "Flat tyre"},
            headers=world.nurse.auth,
        )
        assert r.status_code == 200, r.text
        assert await order_status(client, world, order["id"]) == "pending"
        # The senior's history says it was declined, not what the caregiver wrote.
        mine = (await client.get(f"/v1/orders/{order['id']}", headers=world.senior.auth)).json()
        assert "Flat tyre" not in str(mine)
        await dispatch(sessionmaker, settings)

        [second] = await offers_of(client, world.helper)
        assert second["order_id"] == order["id"]
        assert await offers_of(client, world.nurse) == []  # never asked twice

    async def test_expired_offers_are_expired_and_the_order_offered_again(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await on_duty(client, world.nurse, NEAR_HOME)
        await on_duty(client, world.helper, FAR)
        order = await place(client, world)
        start = datetime.now(UTC)
        await dispatch(sessionmaker, settings, start)
        [offer] = await offers_of(client, world.nurse)
        later = start + timedelta(seconds=settings.offer_timeout_s + 1)

        # Past the deadline but before any pass: the accept is refused all the same.
        at(client, later)
        r = await client.post(f"/v1/offers/{offer['id']}/accept", headers=world.nurse.auth)
        assert r.status_code == 409
        assert r.json()["code"] == "offer_expired"

        tally = await dispatch(sessionmaker, settings, later)
        assert tally.expired == 1
        assert tally.offered == 1
        assert (await offers_of(client, world.nurse, "expired"))[0]["id"] == offer["id"]
        assert (await offers_of(client, world.helper))[0]["order_id"] == order["id"]
        assert await order_status(client, world, order["id"]) == "offered"

    async def test_no_candidate_escalates_with_the_reason_at_the_top_of_the_queue(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await on_duty(client, world.helper)  # housekeeping only: cannot bathe
        await place(client, world)  # cleaning: the helper can take it
        bathing = await place(client, world, service_code="bathing")

        tally = await dispatch(sessionmaker, settings)

        assert (tally.offered, tally.escalated) == (1, 1)
        r = await client.get("/v1/ops/queue", headers=world.operator_a.auth)
        first = r.json()["items"][0]
        assert first["id"] == bathing["id"]
        assert first["status"] == "escalated"
        assert "certificate" in first["escalation_reason"] or "skill" in first["escalation_reason"]

    async def test_after_the_last_round_the_order_is_escalated(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        people = await more_caregivers(client, sessionmaker, world, 3)
        tight = settings.model_copy(update={"max_offer_rounds": 2})
        order = await place(client, world)
        for _ in range(2):
            await dispatch(sessionmaker, tight)
            [offer] = [o for p in people for o in await offers_of(client, p)]
            who = next(p for p in people if p.id == uuid.UUID(offer["caregiver_id"]))
            r = await client.post(
                f"/v1/offers/{offer['id']}/decline", json={"reason": "busy"}, headers=who.auth
            )
            assert r.status_code == 200
        tally = await dispatch(sessionmaker, tight)
        assert tally.escalated == 1
        assert await order_status(client, world, order["id"]) == "escalated"

    async def test_a_window_at_risk_is_escalated(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await on_duty(client, world.nurse)
        now = datetime.now(UTC)
        order = await place(
            client,
            world,
            window_start=(now + timedelta(minutes=1)).isoformat(),
            window_end=(now + timedelta(minutes=121, seconds=30)).isoformat(),
        )
        # Later, the window's last possible start is less than one offer timeout away.
        tally = await dispatch(sessionmaker, settings, now + timedelta(minutes=1))
        assert tally.escalated == 1
        r = await client.get(f"/v1/ops/orders/{order['id']}", headers=world.operator_a.auth)
        assert "at risk" in r.json()["escalation_reason"]

    async def test_cancelling_withdraws_the_open_offer(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await on_duty(client, world.nurse)
        order = await place(client, world)
        await dispatch(sessionmaker, settings)
        [offer] = await offers_of(client, world.nurse)
        r = await client.post(
            f"/v1/orders/{order['id']}/cancel",
            json={"reason": "Daughter came"},
            headers=world.senior.auth,
        )
        assert r.status_code == 200, r.text

        r = await client.post(f"/v1/offers/{offer['id']}/accept", headers=world.nurse.auth)

        assert r.status_code == 409
        assert r.json()["code"] == "offer_withdrawn"
        assert "cancelled" in r.json()["detail"]

    async def test_an_operator_assigning_by_hand_withdraws_the_open_offer(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await on_duty(client, world.nurse)
        order = await place(client, world)
        await dispatch(sessionmaker, settings)
        [offer] = await offers_of(client, world.nurse)
        await on_duty(client, world.helper, FAR)
        r = await client.post(
            f"/v1/ops/orders/{order['id']}/assign",
            json={"caregiver_id": str(world.helper.id), "reason": "phoned him"},
            headers=world.operator_a.auth,
        )
        assert r.status_code == 200, r.text

        r = await client.post(f"/v1/offers/{offer['id']}/accept", headers=world.nurse.auth)

        assert r.status_code == 409
        assert r.json()["code"] == "offer_withdrawn"
        assert await offers_of(client, world.nurse) == []

    async def test_answering_an_offer_whose_visit_was_released_is_a_conflict(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        """Found by the order-life state machine: a 500 (KeyError) before."""
        await on_duty(client, world.nurse)
        await place(client, world)
        await dispatch(sessionmaker, settings)
        [offer] = await offers_of(client, world.nurse)
        r = await client.post(f"/v1/offers/{offer['id']}/accept", headers=world.nurse.auth)
        assert r.status_code == 200, r.text
        [visit] = (await client.get("/v1/visits", headers=world.nurse.auth)).json()["items"]
        r = await client.post(
            f"/v1/visits/{visit['id']}/withdraw", json={"reason": "ill"}, headers=world.nurse.auth
        )
        assert r.status_code == 200, r.text

        for answer, body in (("decline", {"reason": "ill"}), ("accept", None)):
            r = await client.post(
                f"/v1/offers/{offer['id']}/{answer}", json=body, headers=world.nurse.auth
            )
            assert r.status_code == 409, r.text
            assert r.json()["code"] == "offer_released"
            assert "released" in r.json()["detail"]

    async def test_a_provider_cannot_accept_for_a_caregiver_whose_account_was_closed(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await on_duty(client, world.nurse)
        await place(client, world)
        await dispatch(sessionmaker, settings)
        [offer] = await offers_of(client, world.nurse)
        async with sessionmaker() as session, session.begin():
            account = await session.get(Account, world.nurse.id)
            assert account is not None
            account.is_active = False

        r = await client.post(f"/v1/offers/{offer['id']}/accept", headers=world.provider_a_headers)

        assert r.status_code == 409
        assert r.json()["code"] == "caregiver_inactive"

    async def test_strangers_cannot_see_or_answer_an_offer(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await on_duty(client, world.nurse)
        await place(client, world)
        await dispatch(sessionmaker, settings)
        [offer] = await offers_of(client, world.nurse)
        for who in (world.helper, world.other_caregiver):
            r = await client.post(f"/v1/offers/{offer['id']}/accept", headers=who.auth)
            assert r.status_code == 404
        r = await client.get(f"/v1/offers/{offer['id']}", headers=world.senior.auth)
        assert r.status_code == 403
        r = await client.get(
            f"/v1/offers/{offer['id']}", headers={"X-API-Key": world.provider_b_key}
        )
        assert r.status_code == 404
        # The nurse's own provider may answer for her.
        r = await client.get(f"/v1/offers/{offer['id']}", headers=world.provider_a_headers)
        assert r.status_code == 200


class TestPasses:
    async def test_a_pass_reaches_every_pending_order_page_by_page(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        """Scheduled orders nobody can take yet stay pending; they must not hide the orders
        behind them from a pass that takes a page at a time."""
        small = settings.model_copy(update={"dispatch_pass_limit": 2})
        now = datetime.now(UTC)
        window = {
            "window_start": (now + timedelta(hours=20)).isoformat(),
            "window_end": (now + timedelta(hours=23)).isoformat(),
        }
        for _ in range(5):
            await place(client, world, service_code="bathing", **window)
        await on_duty(client, world.helper)
        late = await place(client, world)  # ASAP cleaning: the helper can take it

        tally = await dispatch(sessionmaker, small, now)

        assert tally.offered == 1
        assert (await offers_of(client, world.helper))[0]["order_id"] == late["id"]

    async def test_an_offer_carries_the_time_it_was_made_not_when_the_pass_began(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await on_duty(client, world.nurse)
        order = await place(client, world)
        start = datetime.now(UTC)
        ticks = iter([start] + [start + timedelta(seconds=30)] * 100)  # a slow pass

        await run_once(sessionmaker, settings, lambda: next(ticks))

        async with sessionmaker() as session:
            offer = await session.scalar(
                select(Offer).where(Offer.order_id == uuid.UUID(order["id"]))
            )
        assert offer is not None
        assert offer.created_at == start + timedelta(seconds=30)
        assert offer.deadline == offer.created_at + timedelta(seconds=settings.offer_timeout_s)

    async def test_an_offer_is_never_written_from_a_stale_plan(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A stall between choosing and writing (it was 28 s once, behind a compile): the
        order is planned again from a fresh look, and the offer starts after it is made."""
        await on_duty(client, world.nurse)
        order = await place(client, world)
        now = [datetime.now(UTC)]
        planned_at = now[0]
        write = Pass.send_offers

        async def stalled(self: Pass) -> None:
            if self.queued and now[0] == planned_at:
                now[0] += timedelta(seconds=28)
            await write(self)

        monkeypatch.setattr(Pass, "send_offers", stalled)
        tally = await run_once(sessionmaker, settings, lambda: now[0])

        assert tally.replanned == 1
        assert tally.offered == 1
        async with sessionmaker() as session:
            offer = await session.scalar(
                select(Offer).where(Offer.order_id == uuid.UUID(order["id"]))
            )
            decisions = (
                await session.scalars(
                    select(DispatchDecision).where(
                        DispatchDecision.order_id == uuid.UUID(order["id"])
                    )
                )
            ).all()
        assert offer is not None
        assert offer.created_at == planned_at + timedelta(seconds=28)
        assert offer.starts_at >= offer.created_at
        # The decision written is the fresh one: its candidates start after it was made.
        assert len(decisions) == 1
        best = decisions[0].explanation["candidates"][0]
        assert datetime.fromisoformat(best["starts_at"]) >= offer.created_at

    async def test_an_sos_is_offered_even_when_every_plan_goes_stale(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """A machine so loaded that every write comes 28 s after its plan: the second look's
        plan is written anyway (before, each pass planned twice and offered nothing, so an SOS
        waited for ever)."""
        await on_duty(client, world.nurse)
        r = await client.post("/v1/sos", headers=world.senior.auth)
        assert r.status_code == 201, r.text
        now = [datetime.now(UTC)]
        write = Pass.send_offers

        async def stalled(self: Pass) -> None:
            if self.queued:
                now[0] += timedelta(seconds=28)
            await write(self)

        monkeypatch.setattr(Pass, "send_offers", stalled)
        tally = await run_once(sessionmaker, settings, lambda: now[0])

        assert (tally.replanned, tally.offered) == (1, 1)
        async with sessionmaker() as session:
            offer = await session.scalar(
                select(Offer).where(Offer.order_id == uuid.UUID(r.json()["id"]))
            )
        assert offer is not None
        assert offer.caregiver_id == world.nurse.id
        assert offer.starts_at >= offer.created_at

    async def test_no_offer_from_a_stale_snapshot_later_in_the_same_page(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """Orders planned after an earlier batch of offers was written (the 101st of a page)
        are as old as the snapshot, not as the clock: a caregiver who went off duty during
        a stall is not offered the second order from what was read before it."""
        monkeypatch.setattr(dispatch_service, "OFFER_BATCH", 1)  # stands for the 100th order
        await on_duty(client, world.helper, NEAR_HOME)
        await on_duty(client, world.nurse, FAR)
        await place(client, world)
        await place(client, world)
        now = [datetime.now(UTC)]
        start = now[0]
        write = Pass.send_offers

        async def stalled(self: Pass) -> None:
            if self.queued and now[0] == start:
                now[0] += timedelta(seconds=28)
                async with sessionmaker() as session, session.begin():
                    nurse = await session.get(Caregiver, world.nurse.id)
                    assert nurse is not None
                    nurse.on_duty = False
            await write(self)

        monkeypatch.setattr(Pass, "send_offers", stalled)
        await run_once(sessionmaker, settings, lambda: now[0])

        async with sessionmaker() as session:
            to_nurse = await session.scalar(
                select(func.count()).select_from(Offer).where(Offer.caregiver_id == world.nurse.id)
            )
        assert to_nurse == 0

    async def test_an_order_that_cannot_be_planned_goes_to_the_operators_not_the_pass(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        """One order that breaks planning (a bug, bad data) is escalated at once with the
        reason; the others are still dispatched (it had failed every pass, for everyone)."""
        await on_duty(client, world.nurse)
        r = await client.post("/v1/sos", headers=world.senior.auth)
        assert r.status_code == 201, r.text
        broken = r.json()["id"]
        plan = dispatch_service.Planner.single

        async def single(self: dispatch_service.Planner, order: Order, *args: Any) -> None:
            if str(order.id) == broken:
                raise TypeError("No matching definition for argument type(s)")
            await plan(self, order, *args)

        monkeypatch.setattr(dispatch_service.Planner, "single", single)
        other = await place(client, world)
        tally = await run_once(sessionmaker, settings, datetime.now(UTC))

        assert tally.escalated == 1
        assert tally.offered == 1
        assert await order_status(client, world, other["id"]) == "offered"
        r = await client.get("/v1/ops/queue", headers=world.operator_a.auth)
        row = next(i for i in r.json()["items"] if i["id"] == broken)
        assert row["status"] == "escalated"

    async def test_a_visit_may_run_across_the_handover_of_back_to_back_shifts(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        """A caregiver on call around the clock works shift after shift; 20 minutes before
        a handover she can still start a visit now (it was pushed to the next shift's start:
        the demo's 04:40 bath began at 05:00)."""
        now = datetime.now(UTC)
        handover = now + timedelta(minutes=20)
        async with sessionmaker() as session, session.begin():
            await session.execute(delete(Shift).where(Shift.caregiver_id == world.nurse.id))
            session.add_all(
                [
                    Shift(
                        caregiver_id=world.nurse.id,
                        starts_at=now - timedelta(hours=20),
                        ends_at=handover,
                    ),
                    Shift(
                        caregiver_id=world.nurse.id,
                        starts_at=handover,
                        ends_at=handover + timedelta(hours=24),
                    ),
                ]
            )
        await on_duty(client, world.nurse)
        order = await place(client, world)

        await run_once(sessionmaker, settings, now)

        async with sessionmaker() as session:
            offer = await session.scalar(
                select(Offer).where(Offer.order_id == uuid.UUID(order["id"]))
            )
        assert offer is not None
        assert offer.starts_at < handover


class TestEmergency:
    async def test_sos_goes_to_several_at_once_and_the_first_accept_wins(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        people = await more_caregivers(client, sessionmaker, world, 4)
        r = await client.post("/v1/sos", headers=world.senior.auth)
        assert r.status_code in (200, 201), r.text
        order_id = r.json()["id"]

        await dispatch(sessionmaker, settings)

        offered = [(p, o) for p in people for o in await offers_of(client, p)]
        assert len(offered) == settings.emergency_offers
        assert all(o["expires_in_s"] <= settings.emergency_offer_timeout_s for _, o in offered)
        (first, offer), *rest = offered
        r = await client.post(f"/v1/offers/{offer['id']}/accept", headers=first.auth)
        assert r.status_code == 200, r.text
        for p, o in rest:
            r = await client.post(f"/v1/offers/{o['id']}/accept", headers=p.auth)
            assert r.status_code == 409
            assert r.json()["code"] == "offer_withdrawn"
        assert await order_status(client, world, order_id) == "assigned"

    async def test_an_open_emergency_heads_the_queue_with_its_timer(
        self, client: AsyncClient, world: World
    ) -> None:
        await place(client, world)
        r = await client.post("/v1/sos", headers=world.senior.auth)
        r = await client.get("/v1/ops/queue", headers=world.operator_a.auth)
        first = r.json()["items"][0]
        assert first["priority"] == "emergency"
        assert 0 < first["time_left_s"] <= 15 * 60
        assert first["response_due_at"] is not None


class TestScheduled:
    async def test_a_batch_offers_scheduled_orders_or_assigns_where_the_provider_auto_accepts(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await on_duty(client, world.nurse)
        now = datetime.now(UTC)
        window = {
            "window_start": (now + timedelta(hours=2)).isoformat(),
            "window_end": (now + timedelta(hours=5)).isoformat(),
        }
        first = await place(client, world, **window)
        await dispatch(sessionmaker, settings, now)
        [offer] = await offers_of(client, world.nurse)
        assert offer["order_id"] == first["id"]
        assert offer["starts_at"] >= window["window_start"][:19]

        async with sessionmaker() as session, session.begin():
            provider = await session.get(Provider, world.provider_a.id)
            assert provider is not None
            provider.auto_accept = True
        await on_duty(client, world.helper)
        second = await place(client, world, **window)
        tally = await dispatch(sessionmaker, settings, now)
        assert tally.assigned == 1
        r = await client.get(f"/v1/orders/{second['id']}", headers=world.senior.auth)
        assert r.json()["status"] == "assigned"
        assert r.json()["caregiver_id"] == str(world.helper.id)


class TestNoShow:
    async def test_a_no_show_is_flagged_and_dispatched_again_with_higher_priority(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        await on_duty(client, world.nurse)
        order = await place(client, world)
        now = datetime.now(UTC)
        await dispatch(sessionmaker, settings, now)
        [offer] = await offers_of(client, world.nurse)
        r = await client.post(f"/v1/offers/{offer['id']}/accept", headers=world.nurse.auth)
        assert r.status_code == 200
        async with sessionmaker() as session:
            visit = await session.scalar(
                select(Visit).where(Visit.order_id == uuid.UUID(order["id"]))
            )
            assert visit is not None
        late = visit.starts_at + timedelta(minutes=settings.no_show_grace_min, seconds=1)
        await on_duty(client, world.helper, FAR)

        tally = await dispatch(sessionmaker, settings, late)

        assert tally.no_shows == 1
        async with sessionmaker() as session:
            again = await session.get(Order, uuid.UUID(order["id"]))
            assert again is not None
            assert again.priority.value == "urgent"
            assert again.no_show_at == late
            assert again.redispatch_count == 1
            v = await session.get(Visit, visit.id)
            assert v is not None
            assert v.status is VisitStatus.no_show
        # In the same pass it went to someone else (never back to the caregiver who did not
        # come), who can take it: the first acceptance no longer holds the order.
        assert tally.offered == 1
        assert (await dispatch(sessionmaker, settings, late)).no_shows == 0
        assert await offers_of(client, world.nurse) == []
        [second] = await offers_of(client, world.helper)
        at(client, late)
        r = await client.post(f"/v1/offers/{second['id']}/accept", headers=world.helper.auth)
        assert r.status_code == 200, r.text
        assert await offers_of(client, world.nurse, "released") != []


class TestRace:
    async def test_many_accepting_one_order_at_once_gives_exactly_one_winner(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        n = 200
        people = await more_caregivers(client, sessionmaker, world, n)
        wide = settings.model_copy(update={"emergency_offers": n})
        r = await client.post("/v1/sos", headers=world.senior.auth)
        order_id = uuid.UUID(r.json()["id"])
        await dispatch(sessionmaker, wide)
        async with sessionmaker() as session:
            offers = {
                o.caregiver_id: o.id
                for o in (await session.scalars(select(Offer).where(Offer.order_id == order_id)))
            }
        assert len(offers) == n

        responses = await asyncio.gather(
            *(client.post(f"/v1/offers/{offers[p.id]}/accept", headers=p.auth) for p in people)
        )
        responses = await resend_shed(client, responses)

        codes = sorted(r.status_code for r in responses)
        assert codes == [200] + [409] * (n - 1), {r.status_code: r.text for r in responses}
        assert {r.json()["code"] for r in responses if r.status_code == 409} <= {
            "offer_withdrawn",
            "order_taken",
        }
        async with sessionmaker() as session:
            active = await session.scalar(
                select(func.count())
                .select_from(Visit)
                .where(Visit.order_id == order_id, Visit.status == VisitStatus.assigned)
            )
            accepted = await session.scalar(
                select(func.count())
                .select_from(Offer)
                .where(Offer.order_id == order_id, Offer.status == OfferStatus.accepted)
            )
            still_open = await session.scalar(
                select(func.count())
                .select_from(Offer)
                .where(Offer.order_id == order_id, Offer.status == OfferStatus.open)
            )
            accepts = await session.scalar(
                select(func.count())
                .select_from(OutboxEvent)
                .where(OutboxEvent.order_id == order_id, OutboxEvent.type == "order.accept")
            )
        assert (active, accepted, still_open, accepts) == (1, 1, 0, 1)


class TestFigures:
    async def test_dispatch_moves_the_first_offer_and_escalation_figures(
        self,
        client: AsyncClient,
        world: World,
        sessionmaker: async_sessionmaker[AsyncSession],
        settings: Settings,
    ) -> None:
        """/metrics: order-to-first-offer and SOS-to-first-offer histograms, escalations by
        reason code (never free text)."""
        from prometheus_client import REGISTRY

        def value(name: str, **labels: str) -> float:
            return REGISTRY.get_sample_value(name, labels) or 0.0

        sos = value("doorstep_sos_to_first_offer_seconds_count")
        asap = value("doorstep_order_to_first_offer_seconds_count")
        nobody = value("doorstep_escalations_total", reason="nobody_on_duty")

        await place(client, world)  # nobody is on duty yet
        await dispatch(sessionmaker, settings)
        assert value("doorstep_escalations_total", reason="nobody_on_duty") == nobody + 1
        assert value("doorstep_order_to_first_offer_seconds_count") == asap

        await on_duty(client, world.nurse)
        await place(client, world)
        assert (await dispatch(sessionmaker, settings)).offered == 1
        assert value("doorstep_order_to_first_offer_seconds_count") == asap + 1
        # An emergency may ask a caregiver who holds another offer.
        r = await client.post("/v1/sos", headers=world.senior.auth)
        assert r.status_code == 201, r.text
        assert (await dispatch(sessionmaker, settings)).offered == 1
        assert value("doorstep_sos_to_first_offer_seconds_count") == sos + 1
        assert value("doorstep_order_to_first_offer_seconds_count") == asap + 1
