"""The O!Dengi contract suite: `evpower payments check` against the simulated provider on a
loopback port (always), and against the provider's real test endpoint when ODENGI_TEST_MERCHANT_ID
and ODENGI_TEST_PASSWORD are set (ODENGI_TEST_API_URL optional; skipped otherwise)."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.testing import WorkflowEnvironment

from payments.config import SIMULATOR_API_PATH
from payments.contract import DEFAULT_CONTRACT, OdengiContract
from payments.contract_check import CheckTarget, ContractCheck
from payments.contract_report import HELD, NOT_HELD
from payments.simulator import SimulatedOdengi, SimulatorError, status_view
from runtime.commands.payments import target_from, with_listener
from runtime.embedded import free_port
from runtime.provider_secret import simulator_secret
from runtime.settings import ODENGI_TEST_API_URL, get_settings
from tests.payments.live import live_system
from tests.payments.sim_server import MERCHANT_ID, PASSWORD, SimServer, sim_server


def target(
    server: SimServer, contract: OdengiContract = DEFAULT_CONTRACT, **kw: Any
) -> CheckTarget:
    values: dict[str, Any] = {
        "merchant_id": MERCHANT_ID,
        "password": PASSWORD,
        "api_url": server.api_url,
        "result_url": "http://127.0.0.1:9/unused",
        "amount_tyiyn": 1_000,
        "contract": contract,
    }
    values.update(kw)
    return CheckTarget(**values)


async def check(server: SimServer, contract: OdengiContract = DEFAULT_CONTRACT) -> tuple[Any, str]:
    lines: list[str] = []
    runner = ContractCheck(target(server, contract), lines.append)
    try:
        report = await runner.run()
    finally:
        await runner.aclose()
    return report, "\n".join(lines)


async def test_the_command_against_the_simulator_finds_our_reading_holds() -> None:
    """The real CLI, as an operator runs it: every step printed, secrets masked, exit 0."""
    async with sim_server() as server:
        env = {
            **os.environ,
            "ODENGI_MERCHANT_ID": MERCHANT_ID,
            "ODENGI_PASSWORD": PASSWORD,
            "ODENGI_API_URL": server.api_url,
            "PAYMENT_PROVIDER": "ODENGI",
        }
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "runtime.cli",
            "payments",
            "check",
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=120)
        invoices = list(server.invoices.by_id.values())
    output = stdout.decode()
    assert process.returncode == 0, output + stderr.decode()
    for cmd in ("createInvoice", "statusPayment", "invoiceCancel"):
        assert f"-> {cmd}: POST {server.api_url}" in output
    assert output.count("-> createInvoice") == 2 and output.count("-> statusPayment") == 2
    assert NOT_HELD not in output and f"{HELD}  createInvoice with a known order_id" in output
    assert "nothing to change" in output
    assert PASSWORD not in output and MERCHANT_ID not in output
    assert '"hash": "***"' in output
    # One invoice (the second createInvoice found it), for the minimum amount, test flag on,
    # cancelled: nothing was paid.
    assert [(i.amount_tyiyn, i.test, i.status.name) for i in invoices] == [
        (1_000, True, "CANCELLED")
    ]


class OtherReading(SimulatedOdengi):
    """A provider that answers the other public reading (0 pending, -1 cancelled), states
    amounts in som and makes a new invoice for a known order_id."""

    async def _status(self, data: dict[str, Any]) -> dict[str, Any]:
        view = status_view(await self._invoice(data))
        code = {"processing": 0, "canceled": -1, "approved": 1}[view.pop("status")]
        som = f"{view['amount'] // 100}.{view['amount'] % 100:02d}"  # and amounts in som
        return {**view, "status_pay": code, "amount": som}

    async def _create_invoice(self, data: dict[str, Any]) -> dict[str, Any]:
        fresh = f"{data['order_id']}-{secrets.token_hex(4)}"
        return await super()._create_invoice({**data, "order_id": fresh})


async def test_another_reading_is_reported_with_the_settings_that_fix_it() -> None:
    async with sim_server(OtherReading) as server:
        report, output = await check(server)
        assert report.failed
        assert f"{NOT_HELD}  an invoice that is awaiting reads as awaiting" in output
        assert f"{NOT_HELD}  createInvoice with a known order_id returns the same invoice" in output
        assert (
            "[DID NOT HOLD] statusPayment states the invoice amount at 'amount', in tyiyn: '10.00'"
            in output
        )
        suggested = report.suggested()
        codes = json.loads(suggested["ODENGI_STATUS_CODES"])
        assert (codes["0"], codes["-1"]) == ("awaiting", "cancelled")
        assert f"ODENGI_STATUS_CODES='{suggested['ODENGI_STATUS_CODES']}'" in output
        # Both invoices cancelled: the check leaves nothing payable behind.
        assert {i.status.name for i in server.invoices.by_id.values()} == {"CANCELLED"}

        # The operator sets what was suggested and runs it again: the status reading holds.
        fixed = OdengiContract(status_codes=codes)
        again, _ = await check(server, fixed)
        status_findings = [f for f in again.findings if "reads as" in f.assumption]
        assert status_findings and all(f.held for f in status_findings)
        assert "ODENGI_STATUS_CODES" not in again.suggested()


class UnixDateLife(SimulatedOdengi):
    """A provider that wants date_life as epoch seconds."""

    async def _create_invoice(self, data: dict[str, Any]) -> dict[str, Any]:
        if not str(data.get("date_life", "")).isdigit():
            raise SimulatorError("bad_date_life", "date_life must be a unix time")
        return await super()._create_invoice({**data, "date_life": None})


async def test_a_refused_date_life_is_retried_in_other_formats_and_the_one_taken_reported() -> None:
    async with sim_server(UnixDateLife) as server:
        report, output = await check(server)
    assert report.suggested()["ODENGI_DATE_LIFE_FORMAT"] == "unix"
    assert "bad_date_life" in output
    assert f"{HELD}  an invoice that is cancelled reads as cancelled" in output


async def test_webhook_mode_shows_how_a_real_test_payment_is_read() -> None:
    """The listener gets the simulator's signed notice once the invoice is paid."""
    port = free_port()
    webhook_url = f"http://127.0.0.1:{port}/notice"
    lines: list[str] = []
    async with sim_server() as server:
        runner = ContractCheck(target(server, result_url=webhook_url), lines.append)
        args = argparse.Namespace(webhook_url=webhook_url, listen=f"127.0.0.1:{port}", wait=60.0)
        checking = asyncio.create_task(with_listener(args, runner))
        while not server.invoices.by_id:  # the operator pays the invoice the check printed
            assert not checking.done(), "\n".join(lines)
            await asyncio.sleep(0.05)
        invoice_id = next(iter(server.invoices.by_id))
        while not any(line.startswith("\n== 3. waiting") for line in lines):
            assert not checking.done(), "\n".join(lines)
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient() as http:  # someone else's payment on the test account
            other = await http.post(webhook_url, data={"order_id": "other", "hash": "x"})
        assert other.status_code == 200
        outcome = await server.simulator.pay(invoice_id)
        assert outcome.webhook_status == 200
        report = await asyncio.wait_for(checking, timeout=60)
        await runner.aclose()
    output = "\n".join(lines)
    assert not report.failed, output
    assert "a notice for another order, skipped" in output
    assert f"{HELD}  a paid notice reads as paid" in output
    assert f"{HELD}  the notice's hash verifies with ODENGI_PASSWORD" in output
    assert f"{HELD}  an invoice that is paid reads as paid" in output
    assert f"{HELD}  statusPayment lists the paid amount in tyiyn" in output


REAL = {name: os.environ.get(f"ODENGI_TEST_{name}") for name in ("MERCHANT_ID", "PASSWORD")}


@pytest.mark.skipif(
    not all(REAL.values()), reason="ODENGI_TEST_MERCHANT_ID and ODENGI_TEST_PASSWORD not set"
)
async def test_the_real_test_endpoint_confirms_our_reading() -> None:
    """Against O!Dengi's test endpoint: createInvoice x2, statusPayment, invoiceCancel,
    statusPayment. Nothing is paid, so nothing costs anything."""
    lines: list[str] = []
    runner = ContractCheck(
        CheckTarget(
            merchant_id=str(REAL["MERCHANT_ID"]),
            password=str(REAL["PASSWORD"]),
            api_url=os.environ.get("ODENGI_TEST_API_URL") or ODENGI_TEST_API_URL,
            result_url="https://example.invalid/api/v1/payment/webhook",
            amount_tyiyn=int(os.environ.get("ODENGI_TEST_AMOUNT_TYIYN") or 1_000),
            contract=DEFAULT_CONTRACT,
        ),
        lines.append,
    )
    try:
        report = await runner.run()
    finally:
        await runner.aclose()
    assert not report.failed, "\n".join(lines)


async def test_the_simulator_follows_another_date_life_setting() -> None:
    """A merchant who set ODENGI_DATE_LIFE_FORMAT=unix can still run against the simulator."""
    async with sim_server() as server:
        report, output = await check(server, OdengiContract(date_life_format="unix"))
        invoice = next(iter(server.invoices.by_id.values()))
    assert not report.failed, output
    assert invoice.expires_at is not None and invoice.expires_at.tzinfo is not None


@pytest.mark.integration
async def test_the_check_against_the_apps_own_simulator(
    temporal_env: WorkflowEnvironment,
    db_sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    """Without credentials and with PAYMENT_PROVIDER=SIMULATED, the command checks the simulator
    the running app mounts (routes, PostgreSQL invoices, the data dir's key): what `evpower dev`
    users get."""
    key = simulator_secret(tmp_path)
    async with live_system(temporal_env.client, db_sessions, provider={"password": key}) as live:
        for name in ("ODENGI_MERCHANT_ID", "ODENGI_PASSWORD", "ODENGI_API_URL"):
            monkeypatch.delenv(name, raising=False)
        monkeypatch.setenv("PAYMENT_PROVIDER", "SIMULATED")
        monkeypatch.setenv("EVPOWER_DATA_DIR", str(tmp_path))
        monkeypatch.setenv("PUBLIC_BASE_URL", live.base_url)
        get_settings.cache_clear()
        try:
            made = target_from(argparse.Namespace(api_url=None, amount=None, webhook_url=None))
        finally:
            get_settings.cache_clear()
        assert made.api_url == f"{live.base_url}{SIMULATOR_API_PATH}"
        lines: list[str] = []
        runner = ContractCheck(made, lines.append)
        try:
            report = await runner.run()
        finally:
            await runner.aclose()
    assert not report.failed, "\n".join(lines)
