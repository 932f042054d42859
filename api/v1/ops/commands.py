"""`POST /ops/stations/{station_id}/commands/{command}`: an OCPP command to a charger, run as
a StationCommand workflow; `GET /ops/commands/{workflow_id}` for one still running.

No `from __future__ import annotations` here: the routes are made in a loop, one per command
with its own body model, and FastAPI reads their annotations as objects.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from api.deps import Context, DbSession
from api.errors import ApiError
from api.idempotency import IdempotencyKey
from api.openapi import ErrorBody, errors
from api.ops_audit import audit_action
from api.v1.ops.access import CurrentOperator
from api.v1.ops.command_bodies import COMMANDS, CommandBody
from api.v1.ops.command_runner import (
    CommandAnswer,
    answer,
    request_id,
    start_command,
    workflow_request,
)
from api.v1.ops.workflow_wait import pending_answer, still_running
from db.models import Station
from domain.contracts.operator_commands import station_command_workflow_id
from domain.contracts.search_attributes import STATION_ID
from domain.identifiers import StationId
from workflows.station_command import StationCommandWorkflow

router = APIRouter()

RESPONSES: dict[int | str, dict[str, Any]] = {
    **errors(404, 409),
    **pending_answer("Still running: poll the workflow id"),
    502: {"model": ErrorBody, "description": "The charger answered with an OCPP CallError"},
    504: {"model": ErrorBody, "description": "The charger did not answer in time"},
}
StationPath = Annotated[StationId, Path()]
SUMMARIES = {
    "reset": "Reset (Soft or Hard): the charger reboots and connects again",
    "unlock_connector": "UnlockConnector: release the cable (ends a session on it)",
    "change_availability": "ChangeAvailability of a connector (0: the station); a connector "
    "with a running session is refused without `force`",
    "get_configuration": "GetConfiguration: the charger's configuration keys",
    "change_configuration": "ChangeConfiguration of one key",
    "trigger_message": "TriggerMessage: ask the charger to send a message now",
    "clear_cache": "ClearCache: the charger forgets its authorization cache",
    "data_transfer": "DataTransfer: a vendor-specific message",
}


async def _run(
    *,
    request: Request,
    context: Context,
    db: DbSession,
    operator: CurrentOperator,
    key: str | None,
    station_id: str,
    command: str,
    body: CommandBody,
) -> CommandAnswer | JSONResponse:
    note = audit_action(request, f"station.command.{command}", f"station:{station_id}", body.reason)
    if await db.get(Station, station_id) is None:
        raise ApiError(404, "station_not_found", f"no station {station_id}")
    workflow_id = station_command_workflow_id(station_id, command, request_id(operator, key))
    note.result = {"workflow_id": workflow_id}
    handle = await start_command(
        context.temporal,
        context.config.task_queue,
        workflow_id,
        workflow_request(station_id, command, body, operator),
    )
    return await answer(request, handle, station_id, command, context.config.ops.ops_command_wait_s)


def _add_command_route(command: str, body_type: type[CommandBody]) -> None:
    async def endpoint(
        station_id: StationPath,
        body: body_type,  # type: ignore[valid-type]
        *,
        request: Request,
        context: Context,
        db: DbSession,
        operator: CurrentOperator,
        key: IdempotencyKey,
    ) -> CommandAnswer | JSONResponse:
        return await _run(
            request=request,
            context=context,
            db=db,
            operator=operator,
            key=key,
            station_id=station_id,
            command=command,
            body=body,
        )

    router.add_api_route(
        f"/stations/{{station_id}}/commands/{command}",
        endpoint,
        methods=["POST"],
        response_model=CommandAnswer,
        responses=RESPONSES,
        name=f"ops_{command}",
        summary=SUMMARIES[command],
        description="Runs a StationCommand workflow and answers with the charger's response "
        "(or 202 with the workflow id after OPS_COMMAND_WAIT_S). An offline charger is refused "
        "at once (409 `station_offline`).",
    )


for _command, (_, _body) in COMMANDS.items():
    _add_command_route(_command, _body)


WorkflowIdPath = Annotated[
    str, Path(pattern=r"^station-command-[A-Za-z0-9._:*\-]{1,300}$", max_length=320)
]


@router.get(
    "/commands/{workflow_id}",
    response_model=CommandAnswer,
    responses={**RESPONSES},
    name="ops_command_result",
)
async def command_result(
    workflow_id: WorkflowIdPath, request: Request, context: Context, operator: CurrentOperator
) -> CommandAnswer | JSONResponse:
    """A charger command's result by its workflow id (202 while it still runs)."""
    note = audit_action(request, "station.command.result", f"workflow:{workflow_id}")
    handle = context.temporal.get_workflow_handle_for(StationCommandWorkflow.run, workflow_id)
    try:
        description = await handle.describe()
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise ApiError(404, "command_not_found", f"no command {workflow_id}") from None
        raise
    if description.status is WorkflowExecutionStatus.RUNNING:
        return still_running(note, workflow_id)
    station_id = str(description.typed_search_attributes.get(STATION_ID) or "")
    command = _command_of(workflow_id, station_id)
    return await answer(request, handle, station_id, command, None)


def _command_of(workflow_id: str, station_id: str) -> str:
    rest = workflow_id.removeprefix(f"station-command-{station_id}-")
    return next((name for name in COMMANDS if rest.startswith(name + "-")), "")
