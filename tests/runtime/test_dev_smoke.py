"""`evpower dev` from an empty data dir: healthy, a working token, and nothing left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil
import pytest

from runtime.embedded import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

START_TIMEOUT_S = 120


@dataclass
class DevProcess:
    process: subprocess.Popen[str]
    base_url: str
    data_dir: Path
    output: Path

    def family(self) -> list[psutil.Process]:
        """Everything `evpower dev` started: its descendants and the detached postmaster."""
        parent = psutil.Process(self.process.pid)
        members = parent.children(recursive=True)
        pid_file = self.data_dir / "postgres" / "postmaster.pid"
        if pid_file.exists():
            members.append(psutil.Process(int(pid_file.read_text().splitlines()[0])))
        return members

    def token(self) -> str:
        for line in self.output.read_text().splitlines():
            if "EVPOWER_TOKEN=" in line:
                return line.split("EVPOWER_TOKEN=", 1)[1].strip()
        raise AssertionError("no demo token printed")


def _alive(processes: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in processes if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def _wait_gone(processes: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout_s
    while _alive(processes) and time.monotonic() < deadline:
        time.sleep(0.2)
    return _alive(processes)


@pytest.fixture
def dev(tmp_path: Path) -> Iterator[DevProcess]:
    port = free_port()
    env = {
        **os.environ,
        "EVPOWER_DATA_DIR": str(tmp_path / "data"),
        "PORT": str(port),
        "TEMPORAL_UI_PORT": str(free_port()),
        "EMBEDDED_TEMPORAL_PORT": str(free_port()),
        "LOG_FORMAT": "json",
    }
    for name in ("DATABASE_URL", "TEMPORAL_ADDRESS"):
        env.pop(name, None)
    output = tmp_path / "dev.log"
    with output.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "runtime.cli", "dev"],
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    handle = DevProcess(process, f"http://127.0.0.1:{port}", tmp_path / "data", output)
    try:
        _wait_healthy(handle)
        yield handle
    finally:
        if process.poll() is None:
            family = handle.family()
            process.kill()
            for member in _wait_gone(family, 15):
                member.kill()


def _wait_healthy(dev: DevProcess) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if dev.process.poll() is not None:
            raise AssertionError(f"evpower dev exited:\n{dev.output.read_text()[-3000:]}")
        try:
            healthy = httpx.get(dev.base_url + "/health", timeout=2).status_code == 200
            if healthy and "EVPOWER_TOKEN=" in dev.output.read_text():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"not healthy in {START_TIMEOUT_S}s:\n{dev.output.read_text()[-3000:]}")


def test_dev_is_healthy_and_ctrl_c_leaves_nothing_running(dev: DevProcess) -> None:
    health = httpx.get(dev.base_url + "/health").json()
    assert health == {"status": "ok", "database": "ok", "temporal": "ok", "missing": []}
    balance = httpx.get(
        dev.base_url + "/api/v1/balance/current",
        headers={"Authorization": f"Bearer {dev.token()}"},
    )
    assert balance.status_code == 200, balance.text
    assert balance.json()["available_tyiyn"] == 50_000  # the demo client's 500 som

    family = dev.family()
    assert len(family) >= 2  # Temporal and PostgreSQL at least
    os.killpg(dev.process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    assert dev.process.wait(60) == 0
    assert _wait_gone(family, 30) == []


def test_a_killed_dev_process_takes_its_servers_down(dev: DevProcess) -> None:
    family = dev.family()
    dev.process.kill()  # no chance to clean up: the watchdog must
    dev.process.wait(10)
    assert _wait_gone(family, 30) == []
