"""Request bodies for managing locations and stations: unknown fields refused, a mandatory
`reason` on every change (kept in the audit), prices integer tyiyn per kWh within bounds."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from db.stations_admin import MAX_CONNECTORS, MAX_POWER_W
from domain.tariff import MAX_PRICE_TYIYN_PER_KWH

Reason = Annotated[str, Field(min_length=3, max_length=500, description="why; kept in the audit")]
Price = Annotated[
    int, Field(strict=True, ge=1, le=MAX_PRICE_TYIYN_PER_KWH, description="tyiyn per kWh")
]
LocationId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")]
Name = Annotated[str, Field(max_length=200)]
Latitude = Annotated[Decimal, Field(ge=-90, le=90, max_digits=9, decimal_places=6)]
Longitude = Annotated[Decimal, Field(ge=-180, le=180, max_digits=9, decimal_places=6)]


class Change(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: Reason

    def changes(self) -> dict[str, object]:
        """The fields the caller sent (an explicit null included), without `reason`."""
        return {name: getattr(self, name) for name in self.model_fields_set - {"reason"}}


class LocationCreate(Change):
    id: LocationId
    name: Name = Field(min_length=1)
    address: str = Field(default="", max_length=300)
    city: str = Field(default="", max_length=100)
    latitude: Latitude | None = None
    longitude: Longitude | None = None


class LocationUpdate(Change):
    name: Name | None = Field(default=None, min_length=1)
    address: str | None = Field(default=None, max_length=300)
    city: str | None = Field(default=None, max_length=100)
    latitude: Latitude | None = None
    longitude: Longitude | None = None
    enabled: bool | None = Field(default=None, description="false: hidden from drivers")


class StationCreate(Change):
    id: str = Field(description="the OCPP charge box id (1-48 letters, digits, '.', '_', '-')")
    name: Name = ""
    location_id: LocationId | None = None
    connectors: int = Field(strict=True, ge=1, le=MAX_CONNECTORS)
    price_tyiyn_per_kwh: Price
    current_type: Literal["AC", "DC"] | None = None
    max_power_w: int | None = Field(default=None, strict=True, ge=1, le=MAX_POWER_W)
    authorization_key: str | None = Field(
        default=None, description="16-40 printable characters; none: one is generated"
    )


class StationUpdate(Change):
    name: Name | None = None
    location_id: LocationId | None = None  # an explicit null detaches it from its location
    price_tyiyn_per_kwh: Price | None = None
    connectors: int | None = Field(
        default=None,
        strict=True,
        ge=1,
        le=MAX_CONNECTORS,
        description="the new count: connectors are added, or removed from the highest id down "
        "(only ones that never had a session)",
    )
    enabled: bool | None = Field(
        default=None, description="false: BootNotification Rejected and no new sessions"
    )


class ConnectorUpdate(Change):
    price_tyiyn_per_kwh: Price | None = Field(
        description="this connector's price for sessions started from now on; null: the station's"
    )
