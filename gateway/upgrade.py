"""The websocket upgrade: station id from the path, subprotocol, HTTP Basic (security profile 1)."""

from __future__ import annotations

import base64
import binascii
import ipaddress
from collections.abc import Iterable, Sequence

from domain.identifiers import is_station_id

SUBPROTOCOL = "ocpp1.6"
# The websocket paths chargers connect to; runtime/asgi.py routes these to the gateway.
OCPP_PATH_PREFIXES = ("/ws/", "/ocpp/")


def station_id_from_path(path: str) -> str | None:
    """`/ws/{id}` or `/ocpp/{id}` -> id; None for anything else: nested paths, and ids that
    are not a domain.identifiers.STATION_ID (NUL, controls, non-ASCII, over 64 characters)
    are refused before anything looks them up."""
    for prefix in OCPP_PATH_PREFIXES:
        if path.startswith(prefix):
            station_id = path[len(prefix) :]
            return station_id if is_station_id(station_id) else None
    return None


def client_address(client: Sequence[object] | None) -> tuple[str | None, str | None]:
    """(ip, "ip:port") of the peer, or (None, None) when it is not an IP address.

    Behind a trusted proxy uvicorn takes the host from X-Forwarded-For as sent, which may
    be any text; only an IP literal is used for throttling, logs and the connection row
    (a String(128) column), so such text can neither fail the connect nor pose as another
    address."""
    if not client:
        return None, None
    host = str(client[0])
    try:
        ip = str(ipaddress.ip_address(host))
    except ValueError:
        return None, None
    port = client[1] if len(client) > 1 else None
    return ip, f"{ip}:{port}" if isinstance(port, int) else ip


def choose_subprotocol(offered: Iterable[str]) -> tuple[bool, str | None]:
    """(acceptable, subprotocol to answer). No offer at all is taken as 1.6: many chargers
    send none. An offer of other versions only is refused."""
    offers = [item.strip().lower() for item in offered]
    if not offers:
        return True, None
    if SUBPROTOCOL in offers:
        return True, SUBPROTOCOL
    return False, None


def basic_credentials(headers: Iterable[tuple[bytes, bytes]]) -> tuple[str, str] | None:
    """(user, password) from an `Authorization: Basic` header, if there is a well-formed one."""
    for name, value in headers:
        if name.lower() != b"authorization":
            continue
        scheme, _, encoded = value.decode("latin-1").partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        return (user, password) if sep else None
    return None
