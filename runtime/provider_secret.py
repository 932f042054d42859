"""The payment provider's signing key as every process sees it (the simulator's: per data dir).

With O!Dengi the key is ODENGI_PASSWORD. The simulated provider needs one too (it signs the
webhooks that credit balances), and a key written in the source would let anyone who can
reach a SIMULATED system's webhook credit themselves: each data dir gets its own random key,
shared by the processes that use that data dir (api, worker, `evpower dev`).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from payments.config import ProviderSettings
from payments.provider import ProviderName
from runtime.settings import Settings

SECRET_FILE = "simulator-odengi.secret"  # noqa: S105 - a file name, not a secret


def provider_settings(settings: Settings) -> ProviderSettings:
    """The payment provider as every process is told it (api, worker): one builder."""
    return ProviderSettings(
        provider=settings.payment_provider,
        public_base_url=settings.public_base_url,
        merchant_id=settings.odengi_merchant_id,
        password=provider_password(settings),
        api_url=settings.odengi_api_url,
        h2h_url=settings.odengi_h2h_url,
        contract=settings.odengi_contract,
    )


def provider_password(settings: Settings) -> str | None:
    """ODENGI_PASSWORD when set; the data dir's simulator key for SIMULATED; else None."""
    if settings.odengi_password:
        return settings.odengi_password
    if settings.payment_provider is ProviderName.SIMULATED:
        return simulator_secret(settings.evpower_data_dir)
    return None


def simulator_secret(data_dir: Path) -> str:
    """Read the key, or create it once (exclusively, owner-only) when the data dir has none."""
    path = data_dir / SECRET_FILE
    existing = _read(path)
    if existing:
        return existing
    data_dir.mkdir(parents=True, exist_ok=True)
    secret = secrets.token_urlsafe(32)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process of this data dir made it first
        return _read(path) or secret
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secret)
    return secret


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except FileNotFoundError:
        return None
