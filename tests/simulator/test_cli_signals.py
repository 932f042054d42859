"""`evpower simulate` as a person runs it: a real process stopped with Ctrl-C (SIGINT), whether
its chargers are connected, reconnecting to a gateway that is gone, or still closing."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
from collections.abc import AsyncIterator

import pytest
from websockets.utils import accept_key

from tests.simulator.csms import MiniCsms

pytestmark = pytest.mark.integration

SAFETY_S = 60.0  # only a safety net: every wait below ends on an outcome


class Simulate:
    """`evpower simulate` in a subprocess, its log read line by line."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.log: list[str] = []

    async def wait_for_line(self, text: str) -> str:
        async with asyncio.timeout(SAFETY_S):
            while True:
                assert self.process.stderr is not None
                raw = await self.process.stderr.readline()
                if not raw:
                    raise AssertionError(f"exited before {text!r}:\n" + "".join(self.log))
                line = raw.decode()
                self.log.append(line)
                if text in line:
                    return line

    async def interrupt_and_wait(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return await self.wait()

    async def wait(self) -> int:
        assert self.process.stderr is not None
        async with asyncio.timeout(SAFETY_S):
            rest = await self.process.stderr.read()
            self.log.append(rest.decode())
            return await self.process.wait()


@contextlib.asynccontextmanager
async def simulate(url: str, *stations: str, background: bool = False) -> AsyncIterator[Simulate]:
    """`background`: started as a shell starts `evpower simulate ... &`, SIGINT ignored."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "runtime.cli",
        "simulate",
        "--stations",
        ",".join(stations),
        "--url",
        url,
        stderr=asyncio.subprocess.PIPE,
        preexec_fn=_ignore_sigint if background else None,
    )
    try:
        yield Simulate(process)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def _ignore_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_first_ctrl_c_closes_every_connection_and_exits() -> None:
    csms = MiniCsms(heartbeat_interval=300)
    url = await csms.start()
    try:
        async with simulate(url, "SIG-1", "SIG-2") as sim:
            await csms.wait_for("BootNotification", 2, SAFETY_S)
            assert await sim.interrupt_and_wait() == 0
            await csms.changes.wait_until(lambda: len(csms.close_codes) == 2, SAFETY_S)
    finally:
        await csms.stop()
    # A close frame (1000), not a dropped TCP connection (1006).
    assert csms.close_codes == {"SIG-1": 1000, "SIG-2": 1000}
    assert "stopped" in sim.log[-1]


@pytest.mark.parametrize("background", [False, True], ids=["foreground", "background"])
async def test_first_ctrl_c_stops_it_while_reconnecting_to_a_gateway_that_is_gone(
    background: bool,
) -> None:
    async with simulate(
        f"ws://127.0.0.1:{closed_port()}/ws", "SIG-3", background=background
    ) as sim:
        await sim.wait_for_line("connect failed")
        assert await sim.interrupt_and_wait() == 0


async def test_second_ctrl_c_exits_at_once_while_the_first_still_closes() -> None:
    """A gateway that completes the handshake and then never answers: closing waits for its
    close frame, and a second Ctrl-C does not wait with it."""
    held: list[asyncio.StreamWriter] = []

    async def mute_gateway(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Protocol: ocpp1.6\r\nSec-WebSocket-Accept: "
            + accept_key(key.decode()).encode()
            + b"\r\n\r\n"
        )
        held.append(writer)  # and never read or answer again

    server = await asyncio.start_server(mute_gateway, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with simulate(f"ws://127.0.0.1:{port}/ws", "SIG-4") as sim:
            await sim.wait_for_line("connected to")
            sim.process.send_signal(signal.SIGINT)
            await sim.wait_for_line("closing the connections")
            assert await sim.interrupt_and_wait() == 130
    finally:
        for writer in held:
            writer.close()
        server.close()
    assert not any(line.rstrip().endswith("INFO stopped") for line in sim.log)
