"""Temporal trouble on the start endpoints is a 503 with the standard body, never a 500."""

from __future__ import annotations

import pytest
from temporalio.client import WorkflowFailureError
from temporalio.service import RPCError, RPCStatusCode

from api.errors import ApiError
from api.v1.balance import temporal_errors


@pytest.mark.parametrize(
    "error",
    [
        RPCError("tcp connect error", RPCStatusCode.UNAVAILABLE, b""),
        RPCError("deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b""),
        WorkflowFailureError(cause=RuntimeError("the workflow failed")),
    ],
    ids=["unavailable", "deadline", "workflow_failure"],
)
def test_temporal_trouble_is_503_temporal_unavailable(error: Exception) -> None:
    with pytest.raises(ApiError) as raised, temporal_errors():
        raise error
    assert (raised.value.status, raised.value.code) == (503, "temporal_unavailable")
    assert raised.value.headers == {"Retry-After": "5"}


def test_other_rpc_errors_are_not_hidden() -> None:
    bug = RPCError("bad request", RPCStatusCode.INVALID_ARGUMENT, b"")
    with pytest.raises(RPCError), temporal_errors():
        raise bug
