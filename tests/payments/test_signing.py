"""O!Dengi signatures: the documented request vector, webhook vectors, and what must not verify."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from payments.provider import PayStatus
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
    assert (notice.trans_id, notice.amount_tyiyn, notice.test) == ("t1", 1234, False)


def test_signed_but_non_integer_amount_is_malformed_not_forged() -> None:
    fields = {**WEBHOOK, "amount": "250.00"}
    fields["hash"] = webhook_hash(fields, "secret")
    with pytest.raises(InvalidNotice) as caught:
        verify_and_parse(fields, "secret")
    assert not caught.value.signature
