"""Temporal trouble where an endpoint calls Temporal is a 503 with the standard body, never a
500: one mapping (api.errors.temporal_calls / temporal_error) for every endpoint."""

from __future__ import annotations

import pytest
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError, outage_response, temporal_calls


@pytest.mark.parametrize(
    "error",
    [
        RPCError("tcp connect error", RPCStatusCode.UNAVAILABLE, b""),
        RPCError("deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b""),
        # Seen by the chaos suite as 500s on topup-qr (Temporal killed; worker killed).
        RPCError("transport error", RPCStatusCode.UNKNOWN, b""),
        RPCError(
            "no poller seen for task queue recently, worker may be down",
            RPCStatusCode.FAILED_PRECONDITION,
            b"",
        ),
        # Seen by benchmarks/e2e.py as 500s on charging/stop (a CPU-starved worker).
        RPCError(
            "Unable to perform workflow execution update due to Workflow Task in failed state.",
            RPCStatusCode.FAILED_PRECONDITION,
            b"",
        ),
    ],
    ids=["unavailable", "deadline", "transport", "no_poller", "workflow_task_failed"],
)
def test_temporal_trouble_is_503_temporal_unavailable(error: Exception) -> None:
    with pytest.raises(ApiError) as raised, temporal_calls():
        raise error
    assert (raised.value.status, raised.value.code) == (503, "temporal_unavailable")
    assert raised.value.headers == {"Retry-After": "5"}


def test_other_rpc_errors_are_not_hidden() -> None:
    bug = RPCError("bad request", RPCStatusCode.INVALID_ARGUMENT, b"")
    with pytest.raises(RPCError), temporal_calls():
        raise bug


@pytest.mark.parametrize(
    "error",
    [
        RPCError("transport error", RPCStatusCode.UNKNOWN, b""),
        RPCError(
            "no poller seen for task queue recently, worker may be down",
            RPCStatusCode.FAILED_PRECONDITION,
            b"",
        ),
    ],
    ids=["transport", "no_poller"],
)
def test_an_outage_escaping_a_handler_is_503_not_500(error: RPCError) -> None:
    """What the chaos suite saw: these reached the catch-all and answered 500."""
    answer = outage_response(error)
    assert answer is not None and answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
