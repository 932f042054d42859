"""`evpower pay INVOICE_ID`: pay an invoice of the simulated O!Dengi of a running system.

It asks the running app's simulator to pay, which sends the signed webhook exactly as the
provider would; paying the same invoice again sends the webhook again, like a provider retry.
"""

from __future__ import annotations

import argparse
import json
import sys

import httpx

from payments.config import SIMULATOR_PREFIX
from payments.provider import ProviderName
from runtime.settings import get_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "pay", help="pay a simulated O!Dengi invoice (PAYMENT_PROVIDER=SIMULATED)"
    )
    parser.add_argument("invoice_id", metavar="INVOICE_ID", help="invoice id from a top-up")
    parser.add_argument(
        "--base-url", default=None, help="the running app (default: PUBLIC_BASE_URL)"
    )
    parser.set_defaults(handler=run)


async def run(args: argparse.Namespace) -> int:
    settings = get_settings()
    if settings.payment_provider is not ProviderName.SIMULATED:
        print("evpower pay: only with PAYMENT_PROVIDER=SIMULATED", file=sys.stderr)  # noqa: T201
        return 2
    base = (args.base_url or settings.public_base_url).rstrip("/")
    url = f"{base}{SIMULATOR_PREFIX}/invoices/{args.invoice_id}/pay"
    try:
        async with httpx.AsyncClient(timeout=20.0) as http:
            response = await http.post(url)
    except httpx.HTTPError as exc:
        print(f"evpower pay: cannot reach {base}: {type(exc).__name__}", file=sys.stderr)  # noqa: T201
        return 1
    try:
        body = response.json()
    except ValueError:
        body = {"error": {"code": "bad_response", "message": response.text[:200]}}
    print(json.dumps(body, indent=2))  # noqa: T201
    if response.status_code != 200:
        return 1
    return 0 if body.get("webhook_status") == 200 else 1
