"""Command activities: CSMS -> charger calls served on this gateway's own task queue."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import structlog
from ocpp.exceptions import OCPPError
from ocpp.v16 import call
from temporalio import activity
from temporalio.exceptions import ApplicationError

from domain.contracts.station_commands import (
    CHANGE_AVAILABILITY,
    CHANGE_CONFIGURATION,
    CLEAR_CACHE,
    DATA_TRANSFER,
    GET_CONFIGURATION,
    INVALID_COMMAND,
    REMOTE_START,
    REMOTE_STOP,
    RESET,
    STATION_CALL_ERROR,
    STATION_NOT_CONNECTED,
    STATION_TIMEOUT,
    TRIGGER_MESSAGE,
    UNLOCK_CONNECTOR,
    CommandResult,
    RemoteStartRequest,
    RemoteStopRequest,
    StationCommand,
)
from gateway import framing, schemas
from gateway.charge_point import StationDisconnected
from gateway.handlers import StationHandler
from gateway.registry import ConnectionRegistry
from gateway.store import GatewayStore

log = structlog.get_logger("gateway.commands")


def _fail(message: str, error_type: str, **details: object) -> ApplicationError:
    # Non-retryable: the workflow decides (re-locate, give up); a blind retry would only
    # repeat a command the charger may already have acted on.
    extra = [details] if details else []
    return ApplicationError(message, *extra, type=error_type, non_retryable=True)


class ChargerCommandActivities:
    """Activities for the chargers this process holds; workflows pick the queue per station."""

    def __init__(
        self, registry: ConnectionRegistry, store: GatewayStore, *, answer_within_s: float
    ) -> None:
        self._registry = registry
        self._store = store
        self._answer_within_s = answer_within_s

    def activities(self) -> list[Callable[..., Any]]:
        return [
            self.remote_start,
            self.remote_stop,
            self.change_availability,
            self.reset,
            self.unlock_connector,
            self.get_configuration,
            self.change_configuration,
            self.trigger_message,
            self.clear_cache,
            self.data_transfer,
        ]

    @activity.defn(name=REMOTE_START)
    async def remote_start(self, request: RemoteStartRequest) -> CommandResult:
        self._connection(request.station_id)  # fail fast before writing anything
        # Written before the charger hears of it: its StartTransaction may beat the answer.
        await self._store.save_remote_start(
            request.station_id,
            request.connector_id,
            request.id_tag,
            request.energy_limit_wh,
            datetime.now(UTC),
        )
        command = call.RemoteStartTransaction(
            connector_id=request.connector_id, id_tag=request.id_tag
        )
        return await self._send(request.station_id, command, session_id=request.id_tag)

    @activity.defn(name=REMOTE_STOP)
    async def remote_stop(self, request: RemoteStopRequest) -> CommandResult:
        command = call.RemoteStopTransaction(transaction_id=request.transaction_id)
        return await self._send(request.station_id, command)

    @activity.defn(name=CHANGE_AVAILABILITY)
    async def change_availability(self, command: StationCommand) -> CommandResult:
        return await self._generic(command, call.ChangeAvailability)

    @activity.defn(name=RESET)
    async def reset(self, command: StationCommand) -> CommandResult:
        return await self._generic(command, call.Reset)

    @activity.defn(name=UNLOCK_CONNECTOR)
    async def unlock_connector(self, command: StationCommand) -> CommandResult:
        return await self._generic(command, call.UnlockConnector)

    @activity.defn(name=GET_CONFIGURATION)
    async def get_configuration(self, command: StationCommand) -> CommandResult:
        params: dict[str, Any] = dict(command.params)
        keys = params.pop("key", None)
        if isinstance(keys, str):  # the contract's params are scalars: keys travel comma-separated
            params["key"] = [key.strip() for key in keys.split(",") if key.strip()]
        return await self._generic(command, call.GetConfiguration, params)

    @activity.defn(name=CHANGE_CONFIGURATION)
    async def change_configuration(self, command: StationCommand) -> CommandResult:
        return await self._generic(command, call.ChangeConfiguration)

    @activity.defn(name=TRIGGER_MESSAGE)
    async def trigger_message(self, command: StationCommand) -> CommandResult:
        return await self._generic(command, call.TriggerMessage)

    @activity.defn(name=CLEAR_CACHE)
    async def clear_cache(self, command: StationCommand) -> CommandResult:
        return await self._generic(command, call.ClearCache)

    @activity.defn(name=DATA_TRANSFER)
    async def data_transfer(self, command: StationCommand) -> CommandResult:
        return await self._generic(command, call.DataTransfer)

    async def _generic(
        self, command: StationCommand, kind: type[Any], params: dict[str, Any] | None = None
    ) -> CommandResult:
        try:
            request = kind(**(command.params if params is None else params))
        except TypeError as exc:
            raise _fail(f"{kind.__name__}: {exc}", INVALID_COMMAND) from None
        return await self._send(command.station_id, request)

    def _connection(self, station_id: str) -> StationHandler:
        connection = self._registry.get(station_id)
        if connection is None or connection.closed:
            raise _fail(f"station {station_id} is not connected here", STATION_NOT_CONNECTED)
        return connection

    async def _send(
        self, station_id: str, request: Any, *, session_id: str | None = None
    ) -> CommandResult:
        action = type(request).__name__
        try:
            schemas.validate_request(action, framing.to_camel(request))
        except OCPPError as error:
            raise _fail(f"{action}: {error.details}", INVALID_COMMAND) from None
        connection = self._connection(station_id)
        try:
            answer = await connection.call(request, self._answer_within_s)
        except StationDisconnected:
            raise _fail(f"station {station_id} disconnected", STATION_NOT_CONNECTED) from None
        except TimeoutError:
            raise _fail(
                f"station {station_id} did not answer {action} in {self._answer_within_s}s",
                STATION_TIMEOUT,
            ) from None
        except OCPPError as error:
            raise _fail(
                f"station {station_id} answered {action} with {error.code}",
                STATION_CALL_ERROR,
                code=error.code,
                description=error.description,
            ) from None
        payload: dict[str, Any] = framing.to_camel(answer)
        status = str(payload.get("status", "Accepted"))
        log.info(
            "command answered",
            station_id=station_id,
            session_id=session_id,
            action=action,
            status=status,
        )
        return CommandResult(status=status, payload=payload)
