"""The public address of the chaos topology (Traefik's place in compose), with payment faults.

Every client call, the simulated provider's merchant API (which the worker calls at
PUBLIC_BASE_URL) and the provider's webhook (which the api posts to PUBLIC_BASE_URL) pass
through here, so the proxy can make the provider slow or failing and replay its webhooks
without any change to the product."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn

from payments.config import SIMULATOR_API_PATH
from runtime.embedded import free_port

WEBHOOK_PATH = "/api/v1/payment/webhook"
HOP_HEADERS = frozenset({"host", "content-length", "connection", "transfer-encoding"})


@dataclass
class PaymentFaults:
    """Probabilities per call of the provider's merchant API, and webhook replays."""

    provider_5xx: float = 0.15
    provider_timeout: float = 0.1
    # Longer than the worker's provider client waits (payments.odengi: 10 s).
    provider_timeout_s: float = 11.0
    webhook_concurrent_replays: int = 2
    webhook_late_replay_s: tuple[float, float] = (1.0, 8.0)


class PublicProxy:
    def __init__(
        self,
        upstreams: Callable[[], list[str]],
        faults: PaymentFaults,
        rng: random.Random,
    ) -> None:
        self._upstreams = upstreams
        self.faults = faults
        self._rng = rng
        self.port = free_port()
        self.stats: Counter[str] = Counter()
        self._http = httpx.AsyncClient(timeout=60)
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[Any]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        config = uvicorn.Config(
            self, host="127.0.0.1", port=self.port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        for _ in range(600):
            if self._server.started:
                return
            await asyncio.sleep(0.05)
        raise RuntimeError("the public proxy did not start")

    async def stop(self) -> None:
        for task in list(self._background):
            task.cancel()
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await self._task
        await self._http.aclose()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _forward(
        self, method: str, path_qs: str, headers: list[tuple[str, str]], body: bytes
    ) -> httpx.Response | None:
        """To a live upstream; None when none answered (every api process down)."""
        upstreams = self._upstreams()
        self._rng.shuffle(upstreams)
        for base in upstreams:
            try:
                return await self._http.request(
                    method, base + path_qs, headers=headers, content=body
                )
            except httpx.HTTPError:
                continue
        return None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        path = scope["path"]
        query = scope.get("query_string", b"").decode()
        path_qs = path + (f"?{query}" if query else "")
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in scope["headers"]
            if k.decode("latin-1").lower() not in HOP_HEADERS
        ]
        method = scope["method"]
        status, out_headers, content = await self._handle(method, path, path_qs, headers, body)
        await send({"type": "http.response.start", "status": status, "headers": out_headers})
        await send({"type": "http.response.body", "body": content})

    async def _handle(
        self, method: str, path: str, path_qs: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if path == SIMULATOR_API_PATH:
            self.stats["provider calls"] += 1
            draw = self._rng.random()
            if draw < self.faults.provider_5xx:
                self.stats["provider 5xx injected"] += 1
                return 502, [(b"content-type", b"text/plain")], b"bad gateway (chaos)"
            if draw < self.faults.provider_5xx + self.faults.provider_timeout:
                self.stats["provider timeouts injected"] += 1
                # Half of them after the provider did the work: the caller never hears of it.
                if self._rng.random() < 0.5:
                    await self._forward(method, path_qs, headers, body)
                await asyncio.sleep(self.faults.provider_timeout_s)
                return 504, [(b"content-type", b"text/plain")], b"timeout (chaos)"
        if path == WEBHOOK_PATH and method == "POST":
            self.stats["webhooks"] += 1
            for _ in range(self.faults.webhook_concurrent_replays):
                self._spawn(self._replay(method, path_qs, headers, body, 0.0))
            low, high = self.faults.webhook_late_replay_s
            self._spawn(self._replay(method, path_qs, headers, body, self._rng.uniform(low, high)))
        response = await self._forward(method, path_qs, headers, body)
        if response is None:
            return 502, [(b"content-type", b"text/plain")], b"no upstream (chaos)"
        out = [
            (k.encode("latin-1"), v.encode("latin-1"))
            for k, v in response.headers.items()
            if k.lower() not in HOP_HEADERS and k.lower() != "content-encoding"
        ]
        return response.status_code, out, response.content

    async def _replay(
        self, method: str, path_qs: str, headers: list[tuple[str, str]], body: bytes, delay: float
    ) -> None:
        await asyncio.sleep(delay)
        response = await self._forward(method, path_qs, headers, body)
        self.stats["webhook replays"] += 1
        if response is not None and response.status_code >= 500:
            self.stats[f"webhook replay answered {response.status_code}"] += 1
