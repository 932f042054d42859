"""Builds the payment provider from explicit settings values (the composition root passes them)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from payments.contract import DEFAULT_CONTRACT, OdengiContract
from payments.odengi import OdengiClient
from payments.provider import ProviderName

SIMULATOR_PREFIX = "/simulator/odengi"
SIMULATOR_API_PATH = f"{SIMULATOR_PREFIX}/api/json/json.php"
SIMULATOR_H2H_PATH = f"{SIMULATOR_PREFIX}/h2h"
WEBHOOK_PATH = "/api/v1/payment/webhook"

# The simulated merchant's id when none is configured (an id, not a secret).
SIMULATED_MERCHANT_ID = "1000000001"
# The simulator's signing key when none is configured: made at start, so it is nowhere in the
# source. Processes that must agree on it (api and worker of one system) are given the data
# dir's key by the composition root (runtime/provider_secret.py).
SIMULATED_PASSWORD = secrets.token_urlsafe(32)


@dataclass(frozen=True)
class ProviderSettings:
    provider: ProviderName
    public_base_url: str
    merchant_id: str | None = None
    password: str | None = None
    api_url: str = ""
    h2h_url: str | None = None
    test: bool | None = None  # None: derived from the API URL (the test endpoint has "test" in it)
    contract: OdengiContract = DEFAULT_CONTRACT

    @property
    def base_url(self) -> str:
        return self.public_base_url.rstrip("/")

    @property
    def webhook_url(self) -> str:
        return f"{self.base_url}{WEBHOOK_PATH}"

    @property
    def effective_merchant_id(self) -> str:
        return self._credential(self.merchant_id, SIMULATED_MERCHANT_ID, "ODENGI_MERCHANT_ID")

    @property
    def effective_password(self) -> str:
        """The key of request and webhook signatures."""
        return self._credential(self.password, SIMULATED_PASSWORD, "ODENGI_PASSWORD")

    def _credential(self, configured: str | None, simulated: str, variable: str) -> str:
        """The configured value; the simulator's own for the simulated provider; otherwise
        O!Dengi cannot be used without it."""
        if configured:
            return configured
        if self.provider is ProviderName.SIMULATED:
            return simulated
        raise ValueError(f"{variable} is required when PAYMENT_PROVIDER=ODENGI")

    @property
    def effective_api_url(self) -> str:
        if self.provider is ProviderName.SIMULATED:
            return f"{self.base_url}{SIMULATOR_API_PATH}"
        return self.api_url

    @property
    def effective_h2h_url(self) -> str | None:
        if self.provider is ProviderName.SIMULATED:
            return f"{self.base_url}{SIMULATOR_H2H_PATH}"
        return self.h2h_url or None

    @property
    def test_mode(self) -> bool:
        if self.test is not None:
            return self.test
        if self.provider is ProviderName.SIMULATED:
            return True
        return "test" in (urlsplit(self.api_url).hostname or "")


def build_provider(
    settings: ProviderSettings,
    *,
    timeout_s: float = 10.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> OdengiClient:
    """O!Dengi itself, or the same client pointed at the simulator this app serves."""
    return OdengiClient(
        name=settings.provider,
        merchant_id=settings.effective_merchant_id,
        password=settings.effective_password,
        api_url=settings.effective_api_url,
        h2h_url=settings.effective_h2h_url,
        result_url=settings.webhook_url,
        test=settings.test_mode,
        timeout_s=timeout_s,
        transport=transport,
        contract=settings.contract,
    )
