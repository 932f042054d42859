"""Request and response bodies of `/charging`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, computed_field

from domain.identifiers import INT4_MAX, SessionId, StationId
from domain.money import CURRENCY, format_som


class StartCharging(BaseModel):
    model_config = ConfigDict(extra="forbid")

    station_id: StationId
    connector_id: Annotated[StrictInt, Field(ge=1, le=INT4_MAX)]
    amount_tyiyn: StrictInt  # the limits are configuration: checked by the endpoint


class StopCharging(BaseModel):
    model_config = ConfigDict(extra="forbid")

    session_id: SessionId


class ChargingSession(BaseModel):
    """A session as the driver sees it. Money in integer tyiyn plus display strings in som."""

    session_id: str
    state: str
    station_id: str
    connector_id: int
    reserved_tyiyn: int
    price_tyiyn_per_kwh: int
    energy_limit_wh: int
    energy_wh: int
    cost_tyiyn: int
    refunded_tyiyn: int
    started_at: datetime | None
    stopped_at: datetime | None
    stop_reason: str | None
    created_at: datetime | None = None
    # What the meter check found: why the session is `needs_review` (implausible_step,
    # implausible_total, reset_without_samples, unit_mismatch), or `register_reset` when the
    # energy was rebuilt from the samples. None: the readings were billed as they stand.
    meter_note: str | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def review_reason(self) -> str | None:
        return self.meter_note if self.state == "needs_review" else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def currency(self) -> str:
        return CURRENCY

    @computed_field  # type: ignore[prop-decorator]
    @property
    def reserved(self) -> str:
        return format_som(self.reserved_tyiyn)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def cost(self) -> str:
        return format_som(self.cost_tyiyn)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def refunded(self) -> str:
        return format_som(self.refunded_tyiyn)


class ChargingSessionPage(BaseModel):
    items: list[ChargingSession]
    next_cursor: str | None  # pass as `cursor` for the next (older) page


class SessionProgress(ChargingSession):
    """One message of `WS /charging/{session_id}/stream`: the session as `GET` shows it, the
    newest power the charger reported, and what is left of the reservation. `type` is
    `session` while it runs and `final` for the settled session, the last message."""

    type: str
    power_w: int | None  # None: no power reported (yet), or the session is over
    remaining_tyiyn: int  # reserved minus the cost so far; 0 once settled

    @computed_field  # type: ignore[prop-decorator]
    @property
    def remaining(self) -> str:
        return format_som(self.remaining_tyiyn)
