"""The receipt as a page a person keeps: one self-contained HTML document (no script, no
external asset, one hashed style block), every recorded value escaped."""

from __future__ import annotations

from datetime import datetime
from html import escape

from fastapi.responses import HTMLResponse

from api.page_policy import page_policy, source_hash
from api.v1.receipt_schemas import ChargingReceipt, ReceiptTime

RECEIPT_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; color: #111; margin: 2rem auto; max-width: 34rem; }
h1 { font-size: 1.3rem; margin: 0 0 .2rem; }
.muted { color: #555; }
table { width: 100%; border-collapse: collapse; margin: 1rem 0; }
th, td { text-align: left; padding: .3rem .4rem; border-bottom: 1px solid #ddd; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 600; border-top: 2px solid #111; }
h2 { font-size: 1rem; margin: 1.4rem 0 .2rem; }
@media print { body { margin: 0; max-width: none; } .noprint { display: none; } }
"""

RECEIPT_PAGE_CSP = page_policy(style=[source_hash(RECEIPT_STYLE)])


def _when(moment: ReceiptTime | None) -> str:
    if moment is None:
        return "—"
    return f"{_stamp(moment.local)} <span class='muted'>({_stamp(moment.utc)})</span>"


def _stamp(moment: datetime) -> str:
    return escape(moment.strftime("%Y-%m-%d %H:%M:%S %Z").strip())


def _row(label: str, value: str, *, num: bool = False) -> str:
    cell = "<td class='num'>" if num else "<td>"
    return f"<tr><th>{escape(label)}</th>{cell}{value}</td></tr>"


def receipt_page(receipt: ChargingReceipt) -> str:
    """The HTML document. Values come from the database and the charger (a station's name is
    an operator's text), so each is escaped where it is placed."""
    currency = escape(receipt.currency)
    station = receipt.station
    place = [escape(part) for part in (station.location, station.address) if part]
    details = "".join(
        [
            _row(
                "Station",
                f"{escape(station.name)} <span class='muted'>({escape(station.station_id)})</span>",
            ),
            _row("Where", "<br>".join(place) or "—"),
            _row("Connector", escape(str(receipt.connector_id))),
            _row(f"Started ({escape(receipt.time_zone)})", _when(receipt.started_at)),
            _row(f"Stopped ({escape(receipt.time_zone)})", _when(receipt.stopped_at)),
            _row("State", escape(receipt.state)),
            _row("Stop reason", escape(receipt.stop_reason or "—")),
        ]
    )
    money = "".join(
        [
            _row("Energy", f"{escape(receipt.energy_kwh)} kWh", num=True),
            _row(
                "Tariff",
                f"{escape(receipt.tariff.price_per_kwh)} {currency} per kWh",
                num=True,
            ),
            _row("Reserved", f"{escape(receipt.reserved)} {currency}", num=True),
            _row("Refunded", f"{escape(receipt.refunded)} {currency}", num=True),
        ]
    )
    total = (
        f"<tr class='total'><td>Paid</td><td class='num'>{escape(receipt.cost)} "
        f"{currency}</td></tr>"
    )
    entries = "".join(
        f"<tr><td>{escape(str(entry.entry_id))}</td><td>{escape(entry.operation)}</td>"
        f"<td class='num'>{escape(entry.amount)} {currency}</td></tr>"
        for entry in receipt.ledger_entries
    )
    return (
        "<!doctype html>\n"
        "<html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>EvPower receipt {escape(receipt.session_id)}</title>"
        f"<style>{RECEIPT_STYLE}</style></head><body>"
        "<h1>EvPower charging receipt</h1>"
        f"<p class='muted'>Session {escape(receipt.session_id)}</p>"
        f"<table>{details}</table>"
        f"<table>{money}{total}</table>"
        "<h2>Ledger entries</h2>"
        "<table><tr><th>Entry</th><th>Movement</th><th>Amount</th></tr>"
        f"{entries}</table>"
        "</body></html>\n"
    )


def receipt_response(receipt: ChargingReceipt) -> HTMLResponse:
    return HTMLResponse(
        receipt_page(receipt), headers={"content-security-policy": RECEIPT_PAGE_CSP}
    )
