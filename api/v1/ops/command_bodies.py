"""Request bodies of the charger commands: the OCPP 1.6 fields in snake case, plus the
operator's mandatory `reason`. Validated here so a command that cannot be a valid OCPP call
never starts a workflow."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.contracts.station_commands import (
    CHANGE_AVAILABILITY,
    CHANGE_CONFIGURATION,
    CLEAR_CACHE,
    DATA_TRANSFER,
    GET_CONFIGURATION,
    RESET,
    TRIGGER_MESSAGE,
    UNLOCK_CONNECTOR,
)

# An OCPP connectorId; 0 means the whole charge point where OCPP allows it.
CONNECTOR_MAX = 1_000


class CommandBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=3, max_length=500, description="why; kept in the audit")

    def params(self) -> dict[str, str | int | None]:
        """The OCPP fields, as the gateway's command activities take them."""
        return self.model_dump(exclude={"reason", "force"}, exclude_none=True)


class ResetBody(CommandBody):
    type: Literal["Soft", "Hard"]


class UnlockConnectorBody(CommandBody):
    connector_id: int = Field(ge=1, le=CONNECTOR_MAX)


class ChangeAvailabilityBody(CommandBody):
    connector_id: int = Field(ge=0, le=CONNECTOR_MAX, description="0: the whole station")
    type: Literal["Operative", "Inoperative"]
    force: bool = Field(
        default=False, description="make a connector with a running session inoperative anyway"
    )


# Configuration keys are CiString50; they travel to the gateway comma-separated, so no comma.
ConfigurationKey = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[A-Za-z0-9_.\-]+$")]


class GetConfigurationBody(CommandBody):
    key: list[ConfigurationKey] | None = Field(
        default=None, max_length=100, description="keys to read; none: every key"
    )

    def params(self) -> dict[str, str | int | None]:
        return {"key": ",".join(self.key)} if self.key else {}


class ChangeConfigurationBody(CommandBody):
    key: ConfigurationKey
    value: str = Field(max_length=500)


class TriggerMessageBody(CommandBody):
    requested_message: Literal[
        "BootNotification",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StatusNotification",
    ]
    connector_id: int | None = Field(default=None, ge=1, le=CONNECTOR_MAX)


class ClearCacheBody(CommandBody):
    pass


class DataTransferBody(CommandBody):
    vendor_id: str = Field(min_length=1, max_length=255)
    message_id: str | None = Field(default=None, max_length=50)
    data: str | None = Field(default=None, max_length=4_000)


# Path name (snake case, as in the URL) -> (gateway activity, body).
COMMANDS: dict[str, tuple[str, type[CommandBody]]] = {
    "reset": (RESET, ResetBody),
    "unlock_connector": (UNLOCK_CONNECTOR, UnlockConnectorBody),
    "change_availability": (CHANGE_AVAILABILITY, ChangeAvailabilityBody),
    "get_configuration": (GET_CONFIGURATION, GetConfigurationBody),
    "change_configuration": (CHANGE_CONFIGURATION, ChangeConfigurationBody),
    "trigger_message": (TRIGGER_MESSAGE, TriggerMessageBody),
    "clear_cache": (CLEAR_CACHE, ClearCacheBody),
    "data_transfer": (DATA_TRANSFER, DataTransferBody),
}
