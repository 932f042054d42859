"""Card-started ChargingSession workflows in the time-skipping environment, activities mocked by
name: started by update-with-start as the gateway does it, reserved before the answer, settled
like any session; refusals reserve nothing."""

from __future__ import annotations

import pytest
from temporalio.client import WithStartWorkflowOperation
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment

from domain.contracts.card_sessions import CARD_TRANSACTION_UPDATE, CardStart, CardStartAnswer
from domain.contracts.charging import ChargingRequest, charging_workflow_id
from domain.contracts.session_signals import TRANSACTION_STOPPED
from tests.charging.fakes import Harness, harness, keep_history, started, stopped, wait_for
from workflows.charging import ChargingSessionWorkflow

RESERVE = 50_000
PRICE = 1_500


def card_request(h: Harness, session_id: str) -> ChargingRequest:
    return h.request(
        session_id,
        amount_tyiyn=RESERVE,
        card=CardStart("04A2B3C4", started(), min_balance_tyiyn=5_000),
    )


async def start_card(h: Harness, request: ChargingRequest) -> CardStartAnswer:
    """What the gateway does at the charger's StartTransaction (update-with-start)."""
    assert request.card is not None
    operation = WithStartWorkflowOperation(
        ChargingSessionWorkflow.run,
        request,
        id=charging_workflow_id(request.session_id),
        task_queue=h.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
    answer: CardStartAnswer = await h.client.execute_update_with_start_workflow(
        CARD_TRANSACTION_UPDATE,
        request.card.transaction,
        start_workflow_operation=operation,
        result_type=CardStartAnswer,
    )
    return answer


async def test_a_card_session_reserves_before_it_answers_and_settles_on_the_stop(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, card_available_tyiyn=30_000) as h:
        request = card_request(h, "cardsession00001")
        answer = await start_card(h, request)
        limit = 30_000 * 1000 // PRICE
        assert answer == CardStartAnswer("Accepted", "cardsession00001", 30_000, limit)
        assert h.world.moved() == [("reserve", "reserve:cardsession00001", 30_000)]
        # A retried StartTransaction joins the session and gets the same answer.
        assert await start_card(h, request) == answer
        handle = h.client.get_workflow_handle_for(
            ChargingSessionWorkflow.run, charging_workflow_id(request.session_id)
        )
        await wait_for(handle, "charging")
        assert h.world.starts == []  # no RemoteStart: the charger started it
        await handle.signal(TRANSACTION_STOPPED, stopped(4_000))
        view = await handle.result()
        await keep_history(handle, "card_session_local_steps")
    assert (view.state, view.energy_wh, view.cost_tyiyn) == ("completed", 4_000, 6_000)
    assert (view.reserved_tyiyn, view.refunded_tyiyn, view.transaction_id) == (30_000, 24_000, 7)
    assert h.world.moved() == [
        ("reserve", "reserve:cardsession00001", 30_000),
        ("capture", "capture:cardsession00001", 6_000),
        ("release", "release:cardsession00001", 24_000),
    ]
    assert [record.state for record in h.world.records] == ["charging", "completed"]


@pytest.mark.parametrize("refusal", ["InsufficientFunds", "CardInUse", "CardNotUsable"])
async def test_a_refused_card_start_answers_invalid_with_nothing_reserved(
    time_skipping_env: WorkflowEnvironment, refusal: str
) -> None:
    async with harness(time_skipping_env, open_error=refusal) as h:
        request = card_request(h, f"cardrefused{len(refusal):05d}")
        answer = await start_card(h, request)
        handle = h.client.get_workflow_handle_for(
            ChargingSessionWorkflow.run, charging_workflow_id(request.session_id)
        )
        view = await handle.result()
    assert (answer.status, answer.refusal, answer.reserved_tyiyn) == ("Invalid", refusal, 0)
    assert (view.state, view.rejection) == ("rejected", refusal)
    assert h.world.moved() == []


async def test_a_failed_reservation_leaves_nothing_and_answers_invalid(
    time_skipping_env: WorkflowEnvironment,
) -> None:
    async with harness(time_skipping_env, reserve_error="InsufficientFunds") as h:
        request = card_request(h, "cardnoreserve001")
        answer = await start_card(h, request)
    assert (answer.status, answer.refusal) == ("Invalid", "InsufficientFunds")
    assert h.world.discarded == []  # claim and reservation are one transaction: none of it
    assert h.world.moved() == []
