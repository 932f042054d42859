"""`evpower payments check`: run the O!Dengi contract once and say which of our assumptions hold.

It needs merchant credentials (ODENGI_MERCHANT_ID, ODENGI_PASSWORD) and the provider's test
endpoint (ODENGI_API_URL, the default), and nothing else: no database, no Temporal. Without
credentials and with PAYMENT_PROVIDER=SIMULATED it checks the simulator of the app running at
PUBLIC_BASE_URL. With `--webhook-url` it serves a small listener (`--listen`) that the URL must
reach, and waits for a real test payment's notice. See docs/payments.md.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import replace
from urllib.parse import urlsplit

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from payments.contract_check import CheckTarget, ContractCheck
from payments.contract_report import Report
from payments.provider import ProviderName
from runtime.provider_secret import provider_settings
from runtime.settings import ConfigError, get_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("payments", help="payment provider tools")
    commands = parser.add_subparsers(dest="payments_command", required=True, metavar="COMMAND")
    check = commands.add_parser(
        "check",
        help="run the O!Dengi contract once against its test endpoint and compare the answers "
        "with our reading (createInvoice x2, statusPayment, invoiceCancel, statusPayment)",
    )
    check.add_argument("--api-url", default=None, help="the merchant API (default ODENGI_API_URL)")
    check.add_argument(
        "--amount", type=int, default=None, help="invoice amount in tyiyn (default TOPUP_MIN_TYIYN)"
    )
    check.add_argument(
        "--webhook-url",
        default=None,
        help="public URL that reaches --listen: create an invoice with it as result_url, wait "
        "for a real test payment's notice and show how it is read",
    )
    check.add_argument(
        "--listen", default="127.0.0.1:8099", help="HOST:PORT of the notice listener"
    )
    check.add_argument("--wait", type=float, default=600.0, help="seconds to wait for the notice")
    check.set_defaults(handler=run)


def target_from(args: argparse.Namespace) -> CheckTarget:
    settings = get_settings()
    use_simulator = not (settings.odengi_merchant_id and settings.odengi_password)
    if use_simulator and settings.payment_provider is not ProviderName.SIMULATED:
        raise ConfigError("ODENGI_MERCHANT_ID and ODENGI_PASSWORD are required for the check")
    provider = provider_settings(settings)
    if not use_simulator:  # credentials given: the real provider, whatever the app runs
        provider = replace(provider, provider=ProviderName.ODENGI)
    amount = args.amount if args.amount is not None else settings.topup_min_tyiyn
    if amount < 1:
        raise ConfigError("--amount must be a positive number of tyiyn")
    return CheckTarget(
        merchant_id=provider.effective_merchant_id,
        password=provider.effective_password,
        api_url=args.api_url or provider.effective_api_url,
        result_url=args.webhook_url or provider.webhook_url,
        amount_tyiyn=amount,
        contract=settings.odengi_contract,
    )


def listener(path: str, notices: asyncio.Queue[dict[str, object]]) -> Starlette:
    """Takes the provider's notices (JSON or form) and answers 200 so it stops retrying."""

    async def notice(request: Request) -> JSONResponse:
        content_type = request.headers.get("content-type", "")
        try:
            if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form")):
                form = await request.form()
                fields: object = {k: v for k, v in form.items() if isinstance(v, str)}
            else:
                fields = await request.json()
        except ValueError:
            return JSONResponse({"status": "error", "message": "not JSON nor a form"}, 400)
        if not isinstance(fields, dict):
            return JSONResponse({"status": "error", "message": "not an object"}, 400)
        notices.put_nowait(fields)
        return JSONResponse({"status": "ok"})

    return Starlette(routes=[Route(path or "/", notice, methods=["POST"])])


async def run(args: argparse.Namespace) -> int:
    target = target_from(args)
    out = print
    out(f"evpower payments check: {target.api_url} as merchant {target.merchant_id[:2]}***")
    host = urlsplit(target.api_url).hostname or ""
    if "test" not in host and host not in {"127.0.0.1", "localhost", "::1"}:
        out("note: this does not look like the test endpoint; invoices carry test=1 all the same")
    check = ContractCheck(target, out)
    try:
        if args.webhook_url is None:
            report = await check.run()
        else:
            report = await with_listener(args, check)
    finally:
        await check.aclose()
    return 1 if report.failed else 0


async def with_listener(args: argparse.Namespace, check: ContractCheck) -> Report:
    listen_host, _, listen_port = str(args.listen).rpartition(":")
    if not listen_host or not listen_port.isdigit():
        raise ConfigError("--listen must be HOST:PORT")
    notices: asyncio.Queue[dict[str, object]] = asyncio.Queue()
    app = listener(urlsplit(args.webhook_url).path, notices)
    server = uvicorn.Server(
        uvicorn.Config(
            app, host=listen_host, port=int(listen_port), lifespan="off", log_level="warning"
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            serving.result()
            print("evpower payments check: the listener did not start", file=sys.stderr)  # noqa: T201
            return check.report
        await asyncio.sleep(0.05)
    try:
        return await check.run_with_payment(notices, args.wait)
    finally:
        server.should_exit = True
        await serving
