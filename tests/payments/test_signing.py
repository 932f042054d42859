"""O!Dengi signatures: the documented request vector, webhook vectors, and what must not verify."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from domain.identifiers import is_provider_id
from payments.contract import OdengiContract
from payments.provider import PaymentNotice, PayStatus, UnreadNotice
from payments.signing import compact_json, request_hash, signed_request_body, webhook_hash
from payments.webhook import InvalidNotice, signed_notice_fields, verify_and_parse

# The example in O!Dengi's merchant API documentation ("Формирование hash").
DOC_REQUEST = {
    "cmd": "getOTP",
    "version": 1005,
    "sid": "1000000001",
    "mktime": "1487602271287",
    "lang": "ru",
    "data": {"return_url": None},
}
DOC_PASSWORD = "Z@(K0APS@B~MW1Q"
DOC_HASH = "72d4a48dc7fe890af8beb00cd440c12d"


def test_documented_request_vector() -> None:
    assert (
        compact_json(DOC_REQUEST)
        == '{"cmd":"getOTP","version":1005,"sid":"1000000001","mktime":"1487602271287",'
        '"lang":"ru","data":{"return_url":null}}'
    )
    assert request_hash(DOC_REQUEST, DOC_PASSWORD) == DOC_HASH


def test_hash_field_is_excluded_and_appended_last() -> None:
    body = signed_request_body({**DOC_REQUEST, "hash": "stale"}, DOC_PASSWORD)
    parsed = json.loads(body)
    assert list(parsed) == [*DOC_REQUEST, "hash"]
    assert parsed["hash"] == DOC_HASH


def test_unicode_and_slashes_are_hashed_unescaped() -> None:
    payload = {
        "cmd": "createInvoice",
        "data": {"desc": "Пополнение баланса", "result_url": "https://evpower.kg/api/v1/x"},
    }
    text = compact_json(payload)
    assert "Пополнение баланса" in text and "https://evpower.kg/api/v1/x" in text
    assert "\\u" not in text and "\\/" not in text
    expected = hmac.new(b"pw", text.encode("utf-8"), hashlib.md5).hexdigest()
    assert request_hash(payload, "pw") == expected


def test_key_order_changes_the_hash() -> None:
    reordered = dict(reversed(list(DOC_REQUEST.items())))
    assert request_hash(reordered, DOC_PASSWORD) != DOC_HASH


WEBHOOK = {
    "trans_id": "771234",
    "invoice_id": "900100200300",
    "status_pay": "3",
    "site_id": "1000000001",
    "order_id": "topup42",
    "amount": "25000",
    "currency": "KGS",
    "mktime": "1700000000",
    "test": "1",
}


def test_webhook_vector() -> None:
    message = "771234:::3:::1000000001:::topup42:::25000:::KGS:::1700000000:::1"
    expected = hmac.new(b"secret", message.encode(), hashlib.md5).hexdigest()
    assert webhook_hash(WEBHOOK, "secret") == expected
    # invoice_id is not part of the signed string
    assert webhook_hash({**WEBHOOK, "invoice_id": "other"}, "secret") == expected
    # numbers in a JSON body hash like their text in a form body
    as_json = {**WEBHOOK, "status_pay": 3, "amount": 25000, "test": 1}
    assert webhook_hash(as_json, "secret") == expected


def test_verified_notice_fields() -> None:
    fields = {**WEBHOOK, "hash": webhook_hash(WEBHOOK, "secret").upper()}
    notice = verify_and_parse(fields, "secret")
    assert isinstance(notice, PaymentNotice)
    assert notice.trans_id == "771234"
    assert notice.status is PayStatus.PAID
    assert notice.amount_tyiyn == 25000
    assert notice.order_id == "topup42"
    assert notice.invoice_id == "900100200300"
    assert notice.test is True


@pytest.mark.parametrize(
    "tamper",
    [
        {"amount": "2500000"},
        {"status_pay": "2"},
        {"order_id": "someone-else"},
        {"hash": "0" * 32},
        {"hash": ""},
    ],
)
def test_tampered_notice_is_refused(tamper: dict[str, str]) -> None:
    fields = {**WEBHOOK, "hash": webhook_hash(WEBHOOK, "secret"), **tamper}
    with pytest.raises(InvalidNotice) as caught:
        verify_and_parse(fields, "secret")
    assert caught.value.signature


def test_other_password_is_refused() -> None:
    fields = {**WEBHOOK, "hash": webhook_hash(WEBHOOK, "secret")}
    with pytest.raises(InvalidNotice):
        verify_and_parse(fields, "not-the-secret")


def test_missing_hash_is_refused() -> None:
    with pytest.raises(InvalidNotice) as caught:
        verify_and_parse(dict(WEBHOOK), "secret")
    assert caught.value.signature


def test_signed_notice_round_trip() -> None:
    fields = signed_notice_fields(
        trans_id="t1",
        invoice_id="i1",
        order_id="o1",
        status=PayStatus.PAID,
        amount_tyiyn=1234,
        currency="KGS",
        site_id="s",
        mktime="1",
        test=False,
        password="pw",
    )
    notice = verify_and_parse(fields, "pw")
    assert isinstance(notice, PaymentNotice)
    assert (notice.trans_id, notice.amount_tyiyn, notice.test) == ("t1", 1234, False)


@pytest.mark.parametrize(
    ("change", "why"),
    [
        ({"amount": "250.00"}, "amount '250.00' is not whole tyiyn"),
        ({"status_pay": "-2"}, "status_pay '-2' is not in the table"),
        ({"status_pay": "0"}, "status_pay '0' is not in the table"),
        ({"order_id": ""}, "lacks order_id"),
        ({"trans_id": ""}, "lacks trans_id"),
        ({"trans_id": "x" * 65}, "trans_id is not an identifier"),
        ({"order_id": "a b"}, "order_id is not an identifier"),
    ],
)
def test_signed_but_unreadable_notice_is_kept_not_refused(change: dict[str, str], why: str) -> None:
    """Nothing signed is dropped: what we cannot interpret comes back as an UnreadNotice."""
    fields = {**WEBHOOK, **change}
    fields["hash"] = webhook_hash(fields, "secret")
    notice = verify_and_parse(fields, "secret")
    assert isinstance(notice, UnreadNotice)
    assert why in notice.reason
    assert is_provider_id(notice.trans_id)
    # The provider's retry of the same notice lands on the same key.
    again = verify_and_parse(dict(fields), "secret")
    assert isinstance(again, UnreadNotice) and again.trans_id == notice.trans_id


def test_the_status_table_is_configuration() -> None:
    """The other public reading: 0 pending, 1 paid, -1 cancelled, -2 expired."""
    other = OdengiContract(
        status_codes={"0": "awaiting", "1": "paid", "-1": "cancelled", "-2": "expired"}
    )
    fields = {**WEBHOOK, "status_pay": "1"}
    fields["hash"] = webhook_hash(fields, "secret")
    notice = verify_and_parse(fields, "secret", other)
    assert isinstance(notice, PaymentNotice) and notice.status is PayStatus.PAID
    today = verify_and_parse(fields, "secret")
    assert isinstance(today, PaymentNotice) and today.status is PayStatus.AWAITING
