"""The O!Dengi client against a stand-in server: signed requests, answers, failure kinds."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from payments.odengi import OdengiClient, parse_status
from payments.provider import (
    InvoiceRequest,
    PayStatus,
    ProviderError,
    ProviderName,
    ProviderRejected,
)
from tests.payments.fake_odengi import API_URL, MERCHANT_ID, PASSWORD, FakeOdengi

REQUEST = InvoiceRequest(
    order_id="topup1",
    description="Пополнение",
    amount_tyiyn=25_000,
    currency="KGS",
    expires_at=datetime(2026, 11, 25, 12, 0, tzinfo=UTC),
)


def client_for(fake: FakeOdengi, password: str = PASSWORD) -> OdengiClient:
    return OdengiClient(
        name=ProviderName.ODENGI,
        merchant_id=MERCHANT_ID,
        password=password,
        api_url=API_URL,
        result_url="https://evpower.test/api/v1/payment/webhook",
        transport=fake.transport(),
        clock=lambda: 1_700_000_000.123,
    )


async def test_create_invoice_is_signed_and_parsed() -> None:
    fake = FakeOdengi()
    client = client_for(fake)
    invoice = await client.create_invoice(REQUEST)
    assert fake.bad_signatures == 0
    assert invoice.invoice_id == fake.invoices["topup1"].invoice_id
    assert invoice.qr_image_url and invoice.qr_url and invoice.app_link and invoice.site_pay
    assert fake.invoices["topup1"].amount == 25_000
    await client.aclose()


def test_envelope_fields_in_the_documented_order() -> None:
    client = client_for(FakeOdengi())
    envelope = client.envelope("statusPayment", {"invoice_id": "1"})
    assert list(envelope) == ["cmd", "version", "sid", "mktime", "lang", "data"]
    assert envelope["version"] == 1005 and envelope["mktime"] == "1700000000123"


async def test_wrong_password_is_a_provider_rejection() -> None:
    client = client_for(FakeOdengi(), password="wrong")
    with pytest.raises(ProviderRejected):
        await client.create_invoice(REQUEST)


async def test_timeouts_and_5xx_are_retryable_errors() -> None:
    fake = FakeOdengi(faults={"createInvoice": ["timeout", "503"]})
    client = client_for(fake)
    for _ in range(2):
        with pytest.raises(ProviderError) as caught:
            await client.create_invoice(REQUEST)
        assert not isinstance(caught.value, ProviderRejected)
    assert (await client.create_invoice(REQUEST)).invoice_id


async def test_status_paid_and_cancel_refused_when_paid() -> None:
    fake = FakeOdengi()
    client = client_for(fake)
    invoice = await client.create_invoice(REQUEST)
    assert (await client.payment_status(invoice.invoice_id, "topup1")).status is PayStatus.AWAITING
    fake.pay("topup1", trans_id="t-9")
    status = await client.payment_status(invoice.invoice_id, "topup1")
    assert (status.status, status.trans_id, status.amount_tyiyn) == (PayStatus.PAID, "t-9", 25_000)
    with pytest.raises(ProviderRejected):
        await client.cancel_invoice(invoice.invoice_id)


def test_parse_status_variants() -> None:
    assert parse_status("1", {"status": "canceled"}).status is PayStatus.CANCELLED
    assert parse_status("1", {"status_pay": 3, "trans_id": "x", "amount": "10"}).amount_tyiyn == 10
    declined_only = parse_status(
        "1", {"payments": [{"status": "declined"}], "status": "processing"}
    )
    assert declined_only.status is PayStatus.AWAITING and declined_only.unreadable is None


@pytest.mark.parametrize(
    "data",
    [
        {"payments": [{"status": "declined"}]},  # no invoice status at all
        {"status": "hold"},  # a word nobody told us about
        {"status_pay": -2},  # the other public reading's "expired"
        {"status": "approved", "amount": 100},  # paid, but which transaction?
        {"payments": [{"status": "approved", "trans_id": "t", "amount": "1.50"}]},
    ],
)
def test_a_status_answer_we_cannot_read_says_so(data: dict[str, object]) -> None:
    """Unreadable is not "awaiting": the workflow sends it to review, never to expired."""
    assert parse_status("1", data).unreadable
