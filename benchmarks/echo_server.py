"""The baseline: a bare `websockets` echo server, configured like the gateway's uvicorn.

Run as `python -m benchmarks.echo_server --port P [--deflate]`; prints `ready` when listening.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys

from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol


async def echo(ws: ServerConnection) -> None:
    async for message in ws:
        await ws.send(message)


async def main(port: int, deflate: bool, max_size: int) -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    async with serve(
        echo,
        "127.0.0.1",
        port,
        subprotocols=[Subprotocol("ocpp1.6")],
        compression="deflate" if deflate else None,
        max_size=max_size,
        ping_interval=30,
        ping_timeout=30,
        backlog=4096,
    ) as server:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--deflate", action="store_true")
    parser.add_argument("--max-size", type=int, default=64 * 1024)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop (as evpower does)")
    args = parser.parse_args()
    if args.uvloop:
        import uvloop

        uvloop.run(main(args.port, args.deflate, args.max_size))
    else:
        asyncio.run(main(args.port, args.deflate, args.max_size))
