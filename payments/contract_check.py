"""`evpower payments check`: the O!Dengi contract, run once against a merchant's endpoint.

createInvoice for a small amount with the test flag on, createInvoice again with the same
order_id (idempotent?), statusPayment before payment, invoiceCancel, statusPayment after the
cancel. Every request and raw answer is printed (signatures masked) and each answer compared
with our reading (payments.contract). Nobody pays, so nothing costs anything; with a
`--webhook-url`, the check waits for a real test payment's notice instead of cancelling and
shows how the webhook reads it. The requests are built by the same OdengiClient the top-up
activities use, so what is checked is what production sends.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from payments.contract import UNIX_FORMATS, OdengiContract
from payments.contract_report import Report, paths_to, shown
from payments.odengi import OdengiClient, as_tyiyn, parse_status
from payments.provider import InvoiceRequest, PaymentNotice, PayStatus, ProviderName
from payments.signing import signed_request_body
from payments.webhook import InvalidNotice, verify_and_parse

# Other date_life formats to try when createInvoice refuses ours.
DATE_LIFE_ALTERNATIVES = ("unix", "unix_ms", "%Y-%m-%dT%H:%M:%S", "%d.%m.%Y %H:%M:%S")
READING_OF = {PayStatus.AWAITING: "awaiting", PayStatus.CANCELLED: "cancelled"}


@dataclass(frozen=True)
class CheckTarget:
    merchant_id: str
    password: str
    api_url: str
    result_url: str  # where a notice would go (the --webhook-url, or the app's webhook)
    amount_tyiyn: int
    contract: OdengiContract
    transport: httpx.AsyncBaseTransport | None = None


class ContractCheck:
    def __init__(self, target: CheckTarget, out: Callable[[str], None] = print) -> None:
        self._target = target
        self._out = out
        self.report = Report(target.contract, out)
        self._http = httpx.AsyncClient(timeout=20.0, transport=target.transport)
        self._contract = target.contract
        self._clients: dict[str, OdengiClient] = {}
        self._skipped: list[dict[str, object]] = []  # notices for other orders

    async def aclose(self) -> None:
        await self._http.aclose()
        for client in self._clients.values():
            await client.aclose()

    def _client(self, contract: OdengiContract) -> OdengiClient:
        """The production client, used to build requests only (test flag on)."""
        key = contract.model_dump_json()
        if key not in self._clients:
            self._clients[key] = self._new_client(contract)
        return self._clients[key]

    def _new_client(self, contract: OdengiContract) -> OdengiClient:
        return OdengiClient(
            name=ProviderName.ODENGI,
            merchant_id=self._target.merchant_id,
            password=self._target.password,
            api_url=self._target.api_url,
            result_url=self._target.result_url,
            test=True,
            contract=contract,
        )

    async def call(
        self, cmd: str, data: Mapping[str, Any], contract: OdengiContract | None = None
    ) -> dict[str, Any] | None:
        """POST one signed command; print it and the raw answer. None: no JSON answer."""
        client = self._client(contract or self._contract)
        body = signed_request_body(client.envelope(cmd, data), self._target.password)
        self._out(f"-> {cmd}: POST {self._target.api_url}")
        self._out(f"   request {shown(json.loads(body))}")
        try:
            response = await self._http.post(
                self._target.api_url,
                content=body.encode(),
                headers={"Content-Type": "application/json; charset=utf-8"},
            )
        except httpx.HTTPError as exc:
            self._out(f"<- no answer: {type(exc).__name__}: {exc}")
            return None
        self._out(f"<- HTTP {response.status_code} {response.text[:4000]}")
        try:
            payload = response.json()
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None

    @staticmethod
    def refusal(payload: dict[str, Any] | None) -> str | None:
        """The provider's error, or why the answer is no answer."""
        if payload is None:
            return "no JSON answer"
        data = payload.get("data")
        if not isinstance(data, dict):
            return "the answer has no data object"
        if data.get("error") not in (None, "", 0, "0"):
            return f"error {data.get('error')}: {data.get('desc') or ''}".strip()
        return None

    # ---- the steps ----------------------------------------------------------------------------

    def _invoice_request(self, order_id: str) -> InvoiceRequest:
        return InvoiceRequest(
            order_id=order_id,
            description="EvPower contract check (test, never paid)",
            amount_tyiyn=self._target.amount_tyiyn,
            currency="KGS",
            expires_at=datetime.now(UTC) + timedelta(minutes=10),
        )

    async def create_invoice(self) -> tuple[str, str] | None:
        """Step 1: (order_id, invoice_id), trying other date_life formats if ours is refused."""
        self._out("\n== 1. createInvoice (test flag on, nobody pays it)")
        order_id = f"check{secrets.token_hex(6)}"
        request = self._invoice_request(order_id)
        data = self._client(self._contract).invoice_data(request)
        answer = await self.call("createInvoice", data)
        refused = self.refusal(answer)
        accepted = self.report.add(
            "createInvoice accepts our request (HMAC-MD5 signature, version 1005, date_life "
            f"as {self._contract.date_life_format!r} at {self._contract.date_life_tz})",
            refused is None,
            refused or "",
        )
        if not accepted:
            return await self._other_date_life(answer)
        assert answer is not None
        return self._invoice_answer(order_id, answer["data"])

    async def _other_date_life(self, first: dict[str, Any] | None) -> tuple[str, str] | None:
        if first is None:
            return None  # nothing answered: another format will not help
        for fmt in DATE_LIFE_ALTERNATIVES:
            if fmt == self._contract.date_life_format:
                continue
            contract = self._contract.model_copy(update={"date_life_format": fmt})
            order_id = f"check{secrets.token_hex(6)}"
            self._out(f"   trying date_life as {fmt!r}")
            data = self._client(contract).invoice_data(self._invoice_request(order_id))
            answer = await self.call("createInvoice", data, contract)
            if self.refusal(answer) is None and answer is not None:
                self.report.add(
                    f"createInvoice accepts date_life as {fmt!r}",
                    True,
                    advice=f"set ODENGI_DATE_LIFE_FORMAT={fmt}",
                )
                self.report.settings["ODENGI_DATE_LIFE_FORMAT"] = fmt
                if fmt in UNIX_FORMATS:
                    self.report.settings.pop("ODENGI_DATE_LIFE_TZ", None)
                self._contract = contract
                return self._invoice_answer(order_id, answer["data"])
        self.report.add(
            "createInvoice accepts some date_life format",
            False,
            "refused with every format tried",
            "check ODENGI_MERCHANT_ID, ODENGI_PASSWORD and ODENGI_API_URL; the error above says",
        )
        return None

    def _invoice_answer(self, order_id: str, data: dict[str, Any]) -> tuple[str, str] | None:
        invoice_id = data.get("invoice_id")
        self.report.add(
            "the answer carries data.invoice_id", invoice_id not in (None, ""), str(invoice_id)
        )
        names = ("qr", "qr_url", "emv_qr", "link_app", "site_pay")
        links = [name for name in names if data.get(name)]
        self.report.add(
            "the answer carries payment links (qr, qr_url or emv_qr, link_app, site_pay)",
            bool(links),
            f"present: {', '.join(links) or 'none'}",
        )
        if "date_life" in data:
            self._out(f"   the provider echoes date_life {data['date_life']!r}")
        return (order_id, str(invoice_id)) if invoice_id not in (None, "") else None

    async def create_again(self, order_id: str, invoice_id: str) -> str | None:
        """Step 2: the same order_id again. Returns a second invoice to cancel, if any."""
        self._out("\n== 2. createInvoice again with the same order_id")
        data = self._client(self._contract).invoice_data(self._invoice_request(order_id))
        answer = await self.call("createInvoice", data)
        refused = self.refusal(answer)
        if refused is not None:
            self.report.add(
                "createInvoice with a known order_id returns the same invoice",
                False,
                f"refused ({refused})",
                "no setting changes this: a createInvoice retried after a lost answer fails "
                "the top-up instead of finding its invoice; tell the EvPower maintainers",
            )
            return None
        assert answer is not None
        again = str(answer["data"].get("invoice_id"))
        same = again == invoice_id
        self.report.add(
            "createInvoice with a known order_id returns the same invoice",
            same,
            f"invoice_id {again}" + ("" if same else f", not {invoice_id}"),
            ""
            if same
            else "no setting changes this: a retried createInvoice makes a second invoice "
            "(a payment on it is still reconciled by order_id); tell the EvPower maintainers",
        )
        return None if same else again

    async def status(self, invoice_id: str, order_id: str, expect: PayStatus) -> dict[str, Any]:
        """statusPayment, read as the activities read it; returns the answer's data."""
        answer = await self.call("statusPayment", OdengiClient.status_data(invoice_id, order_id))
        refused = self.refusal(answer)
        if refused is not None or answer is None:
            self.report.add(
                f"statusPayment answers for an invoice ({expect.name.lower()})",
                False,
                refused or "",
            )
            return {}
        data: dict[str, Any] = answer["data"]
        contract = self._contract
        where = contract.status_paths["status"]
        raw = contract.field(data, "status")
        if raw is None:
            candidates = list(paths_to(data, ("status", "state")))
            advice = f"candidates: {', '.join(candidates) or 'none'}"
            if candidates:
                advice += f'; set ODENGI_STATUS_PATHS to {{"status": "{candidates[0]}"}}'
                self.report.paths["status"] = candidates[0]
                paths = {**contract.status_paths, "status": candidates[0]}
                contract = contract.model_copy(update={"status_paths": paths})
                raw = contract.field(data, "status")
            self.report.add(
                f"statusPayment keeps the invoice status at {where!r}", False, "nothing", advice
            )
        else:
            self.report.add(f"statusPayment keeps the invoice status at {where!r}", True, repr(raw))
        read = parse_status(invoice_id, data, contract)
        reading = READING_OF.get(expect, "paid")
        if expect is PayStatus.AWAITING:
            self._amount(data, contract)
        if read.unreadable is not None and read.status is PayStatus.PAID:
            fields = list(paths_to(data, ("trans", "amount", "sum")))
            self.report.add(
                "a paid invoice names its trans_id and its amount in tyiyn",
                False,
                read.unreadable,
                f"fields seen: {', '.join(fields) or 'none'}; point ODENGI_STATUS_PATHS "
                "(payment_trans_id, payment_amount, trans_id, amount) at them",
            )
            return data
        held = read.unreadable is None and read.status is expect
        outcome = f"unreadable ({read.unreadable})" if read.unreadable else read.status.name.lower()
        self.report.add(
            f"an invoice that is {reading} reads as {reading}",
            held,
            f"status {raw!r} reads as {outcome}",
            "" if held or raw is None else f"map {raw!r} to {reading} in ODENGI_STATUS_CODES",
        )
        if not held and raw is not None:
            self.report.status_code(raw, reading)
        return data

    def _amount(self, data: Mapping[str, Any], contract: OdengiContract) -> None:
        where = contract.status_paths["amount"]
        amount = contract.field(data, "amount")
        if amount is None:
            self.report.add(f"statusPayment states the invoice amount at {where!r}", None, "absent")
            return
        held = as_tyiyn(amount) == self._target.amount_tyiyn
        self.report.add(
            f"statusPayment states the invoice amount at {where!r}, in tyiyn",
            held,
            repr(amount),
            ""
            if held
            else "not the invoice's amount in whole tyiyn: a paid answer read from these fields "
            "would go to review as a mismatch; point ODENGI_STATUS_PATHS amount elsewhere or "
            "tell the EvPower maintainers",
        )

    async def cancel(self, invoice_id: str) -> bool:
        self._out("\n== 4. invoiceCancel")
        answer = await self.call("invoiceCancel", OdengiClient.cancel_data(invoice_id))
        refused = self.refusal(answer)
        return self.report.add(
            "invoiceCancel cancels an unpaid invoice", refused is None, refused or ""
        )

    # ---- the whole check --------------------------------------------------------------------

    async def run(self) -> Report:
        created = await self.create_invoice()
        if created is None:
            self.report.add("the remaining steps", None, "no invoice to check them with")
            self.report.summary()
            return self.report
        order_id, invoice_id = created
        second = await self.create_again(order_id, invoice_id)
        self._out("\n== 3. statusPayment before payment")
        await self.status(invoice_id, order_id, PayStatus.AWAITING)
        if await self.cancel(invoice_id):
            self._out("\n== 5. statusPayment after the cancel")
            await self.status(invoice_id, order_id, PayStatus.CANCELLED)
        if second is not None:
            self._out("\n== cleanup: cancel the second invoice")
            await self.call("invoiceCancel", OdengiClient.cancel_data(second))
        self.report.summary()
        return self.report

    async def run_with_payment(
        self, notices: asyncio.Queue[dict[str, object]], wait_s: float
    ) -> Report:
        """--webhook-url: an invoice to pay with a test card or wallet, then its notice."""
        created = await self.create_invoice()
        if created is None:
            self.report.summary()
            return self.report
        order_id, invoice_id = created
        self._out("\n== 2. statusPayment before payment")
        await self.status(invoice_id, order_id, PayStatus.AWAITING)
        self._out(
            f"\n== 3. waiting up to {wait_s:.0f} s for the notice at {self._target.result_url}:"
            f" pay invoice {invoice_id} ({self._target.amount_tyiyn} tyiyn) with a test card"
            " or wallet, using a link above"
        )
        try:
            fields = await asyncio.wait_for(self._ours(notices, order_id), timeout=wait_s)
        except TimeoutError:
            if not self._skipped:
                self.report.add(
                    "a notice reaches the webhook URL", False, f"none in {wait_s:.0f} s"
                )
                await self.cancel(invoice_id)
                self.report.summary()
                return self.report
            fields = self._skipped[0]  # none named our order_id: read the first that came
        self.read_notice(fields, order_id)
        self._out("\n== 4. statusPayment after payment")
        data = await self.status(invoice_id, order_id, PayStatus.PAID)
        paid = parse_status(invoice_id, data, self._contract) if data else None
        if paid is not None and paid.status is PayStatus.PAID and not paid.unreadable:
            self.report.add(
                "statusPayment lists the paid amount in tyiyn",
                paid.amount_tyiyn == self._target.amount_tyiyn,
                f"{paid.amount_tyiyn} (trans_id {paid.trans_id})",
            )
        self.report.summary()
        return self.report

    async def _ours(
        self, notices: asyncio.Queue[dict[str, object]], order_id: str
    ) -> dict[str, object]:
        """The first notice for this invoice's order; others (another payment on the same test
        account) are shown and skipped."""
        while True:
            fields = await notices.get()
            if str(fields.get("order_id", "")) == order_id:
                return fields
            self._skipped.append(fields)
            self._out(f"<- a notice for another order, skipped: {shown(fields)}")

    def read_notice(self, fields: Mapping[str, object], order_id: str) -> None:
        self._out(f"<- notice {shown(dict(fields))}")
        try:
            notice = verify_and_parse(fields, self._target.password, self._contract)
        except InvalidNotice:
            self.report.add(
                "the notice's hash is HMAC-MD5 of trans_id:::status_pay:::site_id:::order_id"
                ":::amount:::currency:::mktime:::test with ODENGI_PASSWORD",
                False,
                "it does not verify",
                "no setting changes this; tell the EvPower maintainers (the webhook answers 401)",
            )
            return
        self.report.add("the notice's hash verifies with ODENGI_PASSWORD", True)
        raw_status = fields.get("status_pay")
        if not isinstance(notice, PaymentNotice):
            self.report.add("the notice reads as a payment", False, notice.reason)
            if "status_pay" in notice.reason:
                self.report.status_code(raw_status, "paid")
            return
        self.report.add(
            "a paid notice reads as paid",
            notice.status is PayStatus.PAID,
            f"status_pay {raw_status!r} reads as {notice.status.name.lower()}",
        )
        if notice.status is not PayStatus.PAID:
            self.report.status_code(raw_status, "paid")
        self.report.add("order_id is the invoice's", notice.order_id == order_id, notice.order_id)
        amount = as_tyiyn(fields.get("amount"))
        self.report.add(
            "amount is the invoice's, in tyiyn", amount == self._target.amount_tyiyn, str(amount)
        )
        merchant = notice.site_id == self._target.merchant_id
        self.report.add("site_id is ODENGI_MERCHANT_ID", merchant, notice.site_id)
        self.report.add("the test flag is 1", notice.test, str(fields.get("test")))
