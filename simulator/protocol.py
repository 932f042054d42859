"""The charge point's answers to CSMS commands (OCPP 1.6J, one instance per connection)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from ocpp.routing import after as ocpp_after
from ocpp.routing import on as ocpp_on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action
from websockets.asyncio.client import ClientConnection

if TYPE_CHECKING:
    from simulator.station import SimulatedStation

Handler = TypeVar("Handler", bound=Callable[..., Any])

TRIGGERABLE = frozenset(
    {
        "BootNotification",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StatusNotification",
    }
)
WRITABLE_INTERVALS = ("HeartbeatInterval", "MeterValueSampleInterval")


def on(action: Action) -> Callable[[Handler], Handler]:
    return cast(Callable[[Handler], Handler], ocpp_on(action))


def after(action: Action) -> Callable[[Handler], Handler]:
    return cast(Callable[[Handler], Handler], ocpp_after(action))


def _is_call(raw_msg: str | bytes, action: str) -> bool:
    try:
        message = json.loads(raw_msg)
    except ValueError:
        return False
    return (
        isinstance(message, list)
        and len(message) > 2
        and message[:1] == [2]
        and message[2] == action
    )


def _seconds(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


class ChargePointProtocol(ChargePoint):  # type: ignore[misc]  # ocpp ships no type hints
    """Decides each answer from the station's state; side effects run in `after` hooks so
    the answer reaches the CSMS before the messages it causes."""

    def __init__(self, station: SimulatedStation, ws: ClientConnection) -> None:
        super().__init__(station.station_id, ws, response_timeout=station.config.response_timeout_s)
        self._station = station
        self._ws = ws

    async def close(self) -> None:
        await self._ws.close()

    def _record(self, action: str, **payload: Any) -> None:
        self._station.received.append((action, payload))

    async def route_message(self, raw_msg: str | bytes) -> None:
        if self._station.faults.silent_remote_start and _is_call(raw_msg, "RemoteStartTransaction"):
            self._record("RemoteStartTransaction", unanswered=True)
            return  # fault: no answer at all
        await super().route_message(raw_msg)

    # --- charging ------------------------------------------------------------------------

    @on(Action.remote_start_transaction)
    def on_remote_start(
        self, id_tag: str, connector_id: int | None = None, **extra: Any
    ) -> call_result.RemoteStartTransaction:
        self._record("RemoteStartTransaction", id_tag=id_tag, connector_id=connector_id, **extra)
        station = self._station
        accepted = not station.faults.reject_remote_start and (
            station.claim_connector(id_tag, connector_id) is not None
        )
        return call_result.RemoteStartTransaction(status="Accepted" if accepted else "Rejected")

    @after(Action.remote_start_transaction)
    def after_remote_start(self, id_tag: str, **_: Any) -> None:
        self._station.begin_claimed(id_tag)

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id: int) -> call_result.RemoteStopTransaction:
        self._record("RemoteStopTransaction", transaction_id=transaction_id)
        known = self._station.transaction_by_id(transaction_id) is not None
        return call_result.RemoteStopTransaction(status="Accepted" if known else "Rejected")

    @after(Action.remote_stop_transaction)
    def after_remote_stop(self, transaction_id: int) -> None:
        station = self._station
        tx = station.transaction_by_id(transaction_id)
        if tx is not None and not station.faults.ignore_remote_stop:
            station.finish_transaction(tx, "Remote")

    @on(Action.unlock_connector)
    def on_unlock(self, connector_id: int) -> call_result.UnlockConnector:
        self._record("UnlockConnector", connector_id=connector_id)
        known = connector_id in self._station.connectors
        return call_result.UnlockConnector(status="Unlocked" if known else "NotSupported")

    @after(Action.unlock_connector)
    def after_unlock(self, connector_id: int) -> None:
        connector = self._station.connectors.get(connector_id)
        if connector is not None and connector.transaction is not None:
            self._station.finish_transaction(connector.transaction, "UnlockCommand")

    # --- availability and reset ------------------------------------------------------------

    @on(Action.change_availability)
    def on_change_availability(
        self, connector_id: int, type: str
    ) -> call_result.ChangeAvailability:
        self._record("ChangeAvailability", connector_id=connector_id, type=type)
        station = self._station
        if connector_id == 0:
            targets = list(station.connectors.values())
        elif connector_id in station.connectors:
            targets = [station.connectors[connector_id]]
        else:
            return call_result.ChangeAvailability(status="Rejected")
        operative = type == "Operative"
        status = "Accepted"
        for connector in targets:
            if not operative and connector.transaction is not None:
                connector.inoperative_scheduled = True  # applied when the transaction ends
                status = "Scheduled"
            else:
                connector.operative = operative
                connector.inoperative_scheduled = False
        return call_result.ChangeAvailability(status=status)

    @after(Action.change_availability)
    def after_change_availability(self, connector_id: int, **_: Any) -> None:
        station = self._station
        for connector in station.connectors.values():
            if connector_id in (0, connector.connector_id) and connector.transaction is None:
                station.set_status(connector, "Available" if connector.operative else "Unavailable")

    @on(Action.reset)
    def on_reset(self, type: str) -> call_result.Reset:
        self._record("Reset", type=type)
        return call_result.Reset(status="Accepted")

    @after(Action.reset)
    def after_reset(self, type: str) -> None:
        self._station.spawn(self._station.reboot("HardReset" if type == "Hard" else "SoftReset"))

    # --- configuration ------------------------------------------------------------------------

    def _configuration(self) -> dict[str, tuple[str, bool]]:
        """key -> (value, readonly)."""
        station = self._station
        measurands = "Energy.Active.Import.Register,Power.Active.Import"
        if station.config.soc_start_percent is not None:
            measurands += ",SoC"
        return {
            "HeartbeatInterval": (_seconds(station.heartbeat_interval_s), False),
            "MeterValueSampleInterval": (_seconds(station.meter_interval_s), False),
            "NumberOfConnectors": (str(len(station.connectors)), True),
            "AuthorizeRemoteTxRequests": ("false", True),
            "MeterValuesSampledData": (measurands, True),
            "StopTransactionOnInvalidId": ("true", True),
            "TransactionMessageAttempts": (str(station.config.transaction_message_attempts), True),
            "SupportedFeatureProfiles": ("Core,RemoteTrigger", True),
        }

    @on(Action.get_configuration)
    def on_get_configuration(self, key: list[str] | None = None) -> call_result.GetConfiguration:
        self._record("GetConfiguration", key=key)
        known = self._configuration()
        wanted = key or list(known)
        return call_result.GetConfiguration(
            configuration_key=[
                {"key": name, "readonly": known[name][1], "value": known[name][0]}
                for name in wanted
                if name in known
            ],
            unknown_key=[name for name in wanted if name not in known] or None,
        )

    @on(Action.change_configuration)
    def on_change_configuration(self, key: str, value: str) -> call_result.ChangeConfiguration:
        self._record("ChangeConfiguration", key=key, value=value)
        station = self._station
        if key in WRITABLE_INTERVALS:
            if not value.isdigit() or int(value) <= 0:
                return call_result.ChangeConfiguration(status="Rejected")
            if key == "HeartbeatInterval":
                station.heartbeat_interval_s = float(value)
            else:
                station.meter_interval_s = float(value)
            return call_result.ChangeConfiguration(status="Accepted")
        status = "Rejected" if key in self._configuration() else "NotSupported"
        return call_result.ChangeConfiguration(status=status)

    # --- triggers and vendor data --------------------------------------------------------------

    @on(Action.trigger_message)
    def on_trigger_message(
        self, requested_message: str, connector_id: int | None = None
    ) -> call_result.TriggerMessage:
        self._record(
            "TriggerMessage", requested_message=requested_message, connector_id=connector_id
        )
        if requested_message not in TRIGGERABLE:
            return call_result.TriggerMessage(status="NotImplemented")
        if connector_id not in (None, 0) and connector_id not in self._station.connectors:
            return call_result.TriggerMessage(status="Rejected")
        return call_result.TriggerMessage(status="Accepted")

    @after(Action.trigger_message)
    def after_trigger_message(
        self, requested_message: str, connector_id: int | None = None
    ) -> None:
        if requested_message in TRIGGERABLE:
            self._station.send_triggered(requested_message, connector_id)

    @on(Action.clear_cache)
    def on_clear_cache(self) -> call_result.ClearCache:
        # The simulator keeps no authorization cache: there is nothing to clear, so it is done.
        self._record("ClearCache")
        return call_result.ClearCache(status="Accepted")

    @on(Action.data_transfer)
    def on_data_transfer(self, vendor_id: str, **extra: Any) -> call_result.DataTransfer:
        self._record("DataTransfer", vendor_id=vendor_id, **extra)
        return call_result.DataTransfer(status="UnknownVendorId")

    def triggered_payloads(self, requested_message: str, connector_id: int | None) -> list[Any]:
        """The messages a TriggerMessage asks for, built from the station's current state."""
        station = self._station
        connectors = [
            c for c in station.connectors.values() if connector_id in (None, 0, c.connector_id)
        ]
        if requested_message == "BootNotification":
            return [station.boot_payload()]
        if requested_message == "Heartbeat":
            return [call.Heartbeat()]
        if requested_message == "DiagnosticsStatusNotification":
            return [call.DiagnosticsStatusNotification(status="Idle")]
        if requested_message == "FirmwareStatusNotification":
            return [call.FirmwareStatusNotification(status="Idle")]
        if requested_message == "MeterValues":
            return [station.meter_payload(c, c.transaction) for c in connectors]
        return [station.status_payload(c) for c in connectors]
