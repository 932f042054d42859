"""Request and response bodies of `/charging`."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt, computed_field

from api.response_shapes import response_dataclass
from domain.contracts.session_record import SessionRecord, record_fields
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


@response_dataclass
class ChargingSession(SessionRecord):
    """A session as the driver sees it. Money in integer tyiyn plus display strings in som.
    `meter_note`: what the meter check found — why the session is `needs_review`
    (implausible_step, implausible_total, reset_without_samples, unit_mismatch), or
    `register_reset` when the energy was rebuilt from the samples; null when the readings
    were billed as they stand."""

    # The session record's fields (domain.contracts.session_record) but the owner's own id
    # and the charger's transaction id, plus the row's creation time.
    client_id: str = Field(exclude=True)
    transaction_id: int | None = Field(default=None, exclude=True)
    created_at: datetime | None = None

    @classmethod
    def of(cls, record: SessionRecord, created_at: datetime | None) -> ChargingSession:
        return cls(**record_fields(record), created_at=created_at)

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


@response_dataclass
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
