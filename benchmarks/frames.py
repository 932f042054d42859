"""OCPP 1.6J frames for the load client, serialized up front or with one cheap format."""

from __future__ import annotations

import json
import time

from benchmarks.wsclient import client_frame

BOOT = client_frame(
    b'[2,"boot","BootNotification",{"chargePointVendor":"EvPowerBench","chargePointModel":"Load"}]'
)
STATUS = client_frame(
    b'[2,"status","StatusNotification",'
    b'{"connectorId":1,"errorCode":"NoError","status":"Available"}]'
)
_START = (
    '[2,"start","StartTransaction",'
    '{{"connectorId":1,"idTag":"{id_tag}","meterStart":0,"timestamp":"{timestamp}"}}]'
)
_HEARTBEAT = '[2,"h{seq}","Heartbeat",{{}}]'
_METER = (
    '[2,"m{seq}","MeterValues",{{"connectorId":1,"transactionId":{tx},"meterValue":'
    '[{{"timestamp":"{timestamp}","sampledValue":['
    '{{"value":"{wh}","context":"Sample.Periodic","measurand":"Energy.Active.Import.Register",'
    '"location":"Outlet","unit":"Wh"}},'
    '{{"value":"22000","context":"Sample.Periodic","measurand":"Power.Active.Import",'
    '"location":"Outlet","unit":"W"}}]}}]}}]'
)


class _Clock:
    """UTC now with milliseconds; the seconds part is formatted once per second."""

    second = 0
    text = ""

    def __call__(self) -> str:
        now = time.time()
        second = int(now)
        if second != self.second:
            self.second = second
            self.text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self.text}.{int((now - second) * 1000):03d}Z"


timestamp = _Clock()


def start_transaction(id_tag: str) -> bytes:
    return client_frame(_START.format(id_tag=id_tag, timestamp=timestamp()).encode())


def heartbeat(seq: int) -> bytes:
    return client_frame(_HEARTBEAT.format(seq=seq).encode())


def meter_values(seq: int, transaction_id: int, energy_wh: int) -> bytes:
    text = _METER.format(seq=seq, tx=transaction_id, timestamp=timestamp(), wh=energy_wh)
    return client_frame(text.encode())


def transaction_id(reply: bytes) -> int | None:
    """transactionId from a StartTransaction CallResult; None for anything else (an echo)."""
    try:
        message = json.loads(reply)
    except ValueError:
        return None
    if isinstance(message, list) and len(message) == 3 and message[0] == 3:
        value = message[2].get("transactionId") if isinstance(message[2], dict) else None
        return value if isinstance(value, int) else None
    return None


def call_result(message_id: str, payload: dict[str, object]) -> bytes:
    """A charger's CallResult to a command of the central system."""
    return client_frame(json.dumps([3, message_id, payload]).encode())
