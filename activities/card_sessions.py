"""The two-step admission of a card-started session: the card, the connector and the owner's
balance checked and the connector and the card claimed with a `pending` row; the reservation
was the workflow's next activity. Sessions admitted since take one step (`admit_session`,
activities/admission.py); this stays for the histories that took two.

The charger has already started its transaction when this runs (StartTransaction with the
card's tag), so the station's connection and the connector's status are not checked. The amount
to reserve is the configured one capped by what is available.
"""

from __future__ import annotations

from dataclasses import dataclass

from temporalio import activity

from activities.admission import Admissions, CardClaim
from activities.refusals import refusing
from domain.contracts.charging import SessionClaim

OPEN_CARD_SESSION = "open_card_session"


@dataclass(frozen=True)
class OpenCardSession(SessionClaim):
    """`client_id` is the card's owner when the gateway looked (checked again here)."""

    id_tag: str  # the card's stored tag
    most_tyiyn: int  # reserve this much at most
    min_balance_tyiyn: int


@dataclass(frozen=True)
class OpenedCardSession:
    """The tariff snapshot, the amount to reserve and where the charger's commands go."""

    price_tyiyn_per_kwh: int
    reserved_tyiyn: int
    gateway_queue: str | None
    max_power_w: int
    card_id: int


class CardSessionActivities:
    def __init__(self, admissions: Admissions) -> None:
        self._admissions = admissions

    async def _open(self, request: OpenCardSession) -> OpenedCardSession:
        claimed = await self._admissions.claim(
            request, request.most_tyiyn, CardClaim(request.id_tag, request.min_balance_tyiyn)
        )
        assert claimed.card_id is not None
        return OpenedCardSession(
            claimed.price_tyiyn_per_kwh,
            claimed.reserved_tyiyn,
            claimed.gateway_queue,
            claimed.max_power_w,
            claimed.card_id,
        )

    @activity.defn(name=OPEN_CARD_SESSION)
    async def open_card_session(self, request: OpenCardSession) -> OpenedCardSession:
        return await refusing(self._open(request))
