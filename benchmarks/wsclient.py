"""A deliberately cheap websocket client for load: raw asyncio protocol, pre-built frames.

A load client written on a full websocket library spends more CPU per message than the
server it measures, and on a 2-core machine both share the cores. This one writes
ready-made masked frames (mask key 0: XOR is a no-op, servers do not check the key) and
only finds frame boundaries in what comes back, so it costs a few microseconds a message.
It answers pings, because both servers close connections that never pong.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
from collections.abc import Callable

ZERO_MASK = b"\x00\x00\x00\x00"
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def client_frame(payload: bytes, opcode: int = OP_TEXT) -> bytes:
    length = len(payload)
    if length < 126:
        header = bytes((0x80 | opcode, 0x80 | length))
    elif length < 65536:
        header = bytes((0x80 | opcode, 0x80 | 126)) + length.to_bytes(2, "big")
    else:
        header = bytes((0x80 | opcode, 0x80 | 127)) + length.to_bytes(8, "big")
    return header + ZERO_MASK + payload


def upgrade_request(
    host: str, port: int, path: str, *, deflate: bool, user: str | None, password: str | None
) -> bytes:
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {host}:{port}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: ZXZwb3dlci1sb2FkLWtleQ==",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: ocpp1.6",
    ]
    if deflate:
        lines.append("Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits")
    if user is not None and password is not None:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        lines.append(f"Authorization: Basic {token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


class UpgradeRefused(ConnectionError):
    """The server answered the upgrade with something else than 101."""

    def __init__(self, head: str) -> None:
        status_line, *header_lines = head.split("\r\n")
        super().__init__(status_line)
        parts = status_line.split(" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
        self.retry_after_s: float | None = None
        for line in header_lines:
            name, _, value = line.partition(":")
            if name.strip().lower() == "retry-after":
                with contextlib.suppress(ValueError):
                    self.retry_after_s = float(value.strip())


class RawConnection(asyncio.Protocol):
    """One charger. `on_message(payload, t_received)` is called for every data message."""

    __slots__ = (
        "_buffer",
        "_handshake",
        "closed",
        "compressed",
        "deflate_negotiated",
        "on_message",
        "opened",
        "transport",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self._buffer = bytearray()
        self._handshake = True
        self.opened: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.on_message: Callable[[bytes, float], None] | None = None
        self.deflate_negotiated = False
        self.compressed = 0  # messages that arrived compressed (RSV1)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.opened.done():
            self.opened.set_exception(ConnectionError(f"closed during handshake: {exc}"))
        if not self.closed.done():
            self.closed.set_result(None)

    def send(self, frame: bytes) -> None:
        assert self.transport is not None
        self.transport.write(frame)

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        buffer = self._buffer
        buffer += data
        if self._handshake:
            end = buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = bytes(buffer[:end]).decode("latin-1")
            del buffer[: end + 4]
            self._handshake = False
            if not head.startswith("HTTP/1.1 101"):
                self.opened.set_exception(UpgradeRefused(head))
                assert self.transport is not None
                self.transport.close()
                return
            self.deflate_negotiated = "permessage-deflate" in head.lower()
            self.opened.set_result(None)
        self._frames(buffer, now)

    def _frames(self, buffer: bytearray, now: float) -> None:
        while len(buffer) >= 2:
            first, second = buffer[0], buffer[1]
            length = second & 0x7F
            offset = 2
            if length == 126:
                if len(buffer) < 4:
                    return
                length = int.from_bytes(buffer[2:4], "big")
                offset = 4
            elif length == 127:
                if len(buffer) < 10:
                    return
                length = int.from_bytes(buffer[2:10], "big")
                offset = 10
            if second & 0x80:  # a server never masks, but be exact about the size
                offset += 4
            end = offset + length
            if len(buffer) < end:
                return
            payload = bytes(buffer[offset:end])
            del buffer[:end]
            opcode = first & 0x0F
            if opcode == OP_PING:
                self.send(client_frame(payload, OP_PONG))
            elif opcode == OP_CLOSE:
                assert self.transport is not None
                self.transport.close()
                return
            elif first & 0x80 and opcode in (OP_TEXT, OP_BINARY, OP_CONTINUATION):
                if first & 0x40:
                    self.compressed += 1
                if self.on_message is not None:
                    self.on_message(payload, now)


async def open_connection(
    host: str,
    port: int,
    path: str,
    *,
    deflate: bool = False,
    user: str | None = None,
    password: str | None = None,
    timeout_s: float = 60.0,
) -> RawConnection:
    loop = asyncio.get_running_loop()
    _, connection = await asyncio.wait_for(
        loop.create_connection(RawConnection, host, port), timeout_s
    )
    connection.send(
        upgrade_request(host, port, path, deflate=deflate, user=user, password=password)
    )
    await asyncio.wait_for(asyncio.shield(connection.opened), timeout_s)
    return connection
