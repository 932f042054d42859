"""`GET /charging/{session_id}/receipt`: a settled session's receipt, JSON or an HTML page."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query
from fastapi.responses import HTMLResponse

from api.auth import CurrentClient
from api.deps import Context
from api.openapi import AUTHENTICATED, errors
from api.v1.receipt_page import receipt_response
from api.v1.receipt_schemas import ChargingReceipt
from api.v1.receipt_service import load_receipt
from domain.identifiers import SessionId

router = APIRouter(prefix="/charging", tags=["charging"])

Format = Literal["json", "html"]


def _quality(accept: str, wanted: str) -> float:
    """The q-value `accept` gives `wanted` (type/subtype), wildcards counted; 0 when absent."""
    main = wanted.split("/", 1)[0]
    best, best_rank = 0.0, -1
    for item in accept.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        media = media.lower()
        rank = {wanted: 2, f"{main}/*": 1, "*/*": 0}.get(media)
        if rank is None or rank < best_rank:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        best, best_rank = quality, rank
    return best


def wants_html(accept: str | None, output: Format | None) -> bool:
    """`?format=` decides; otherwise HTML only when the Accept header prefers it to JSON (a
    browser's navigation does; `*/*` or no header gets JSON)."""
    if output is not None:
        return output == "html"
    if not accept:
        return False
    return _quality(accept, "text/html") > _quality(accept, "application/json")


@router.get(
    "/{session_id}/receipt",
    response_model=ChargingReceipt,
    responses={
        **AUTHENTICATED,
        **errors(404, 409),
        200: {"content": {"text/html": {"schema": {"type": "string"}}}},
    },
)
async def get_receipt(
    session_id: Annotated[SessionId, Path()],
    client: CurrentClient,
    context: Context,
    output: Annotated[Format | None, Query(alias="format")] = None,
    accept: Annotated[str | None, Header(max_length=1000)] = None,
) -> ChargingReceipt | HTMLResponse:
    """The receipt of a settled session: station and address, connector, start and stop
    (Asia/Bishkek and UTC), energy, tariff, and the money as the ledger moved it (reserved,
    cost = captured, refunded = released) with the ledger entry ids. JSON by default; an HTML
    page with `Accept: text/html` or `?format=html`. 404 for an unknown or someone else's
    session; 409 `session_not_final` while it runs."""
    receipt = await load_receipt(context.db_sessions, client.client_id, session_id)
    if wants_html(accept, output):
        return receipt_response(receipt)
    return receipt
