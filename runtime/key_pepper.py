"""The server-side secret charger key hashes are keyed with (OCPP_KEY_PEPPER).

Its lifetime must match the database's: every stored key hash is only as good as the
pepper it was made with. So the embedded database (`evpower dev`, or any command without
DATABASE_URL) keeps a pepper generated once in the same data dir; an external database
means production, and there it must be configured, the same on every gateway and for
`evpower stations add`, or the process refuses to start with one line.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from gateway.auth import MIN_PEPPER_BYTES
from runtime.settings import ConfigError, Settings

PEPPER_FILE = "ocpp-key-pepper"


def data_dir_pepper(data_dir: Path) -> str:
    """The data dir's pepper, generated (readable by the owner only) on first use."""
    path = data_dir / PEPPER_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text(encoding="ascii").strip()
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(secrets.token_hex(32) + "\n")
    return path.read_text(encoding="ascii").strip()


def key_pepper(settings: Settings) -> bytes:
    """OCPP_KEY_PEPPER, else the data dir's own when the database is embedded."""
    if settings.ocpp_key_pepper is not None:
        value = settings.ocpp_key_pepper.get_secret_value()
    elif settings.embedded_database:
        value = data_dir_pepper(settings.evpower_data_dir)
    else:
        raise ConfigError(
            "OCPP_KEY_PEPPER is required with an external DATABASE_URL "
            f"(a random secret of at least {MIN_PEPPER_BYTES} characters, "
            "the same for every gateway and `evpower stations add`)"
        )
    pepper = value.encode("utf-8")
    if len(pepper) < MIN_PEPPER_BYTES:
        raise ConfigError(f"OCPP_KEY_PEPPER must be at least {MIN_PEPPER_BYTES} characters")
    return pepper


def optional_key_pepper(settings: Settings) -> bytes | None:
    """The pepper when one is available (configured, or the embedded data dir's); None for an
    api-only process without OCPP_KEY_PEPPER, which then cannot register stations."""
    if settings.ocpp_key_pepper is None and not settings.embedded_database:
        return None
    return key_pepper(settings)
