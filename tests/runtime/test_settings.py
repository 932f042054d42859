"""Bad configuration fails at start with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from runtime.settings import ConfigError, PaymentProvider, load_settings


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("PORT", "not-a-port"),
        ("PORT", "70000"),
        ("DATABASE_URL", "mysql://localhost/db"),
        ("TEMPORAL_ADDRESS", "no-port"),
        ("PAYMENT_PROVIDER", "PAYPAL"),
        ("ENABLE_SWAGGER", "maybe"),
        ("LOG_LEVEL", "LOUD"),
    ],
)
def test_an_invalid_variable_is_named(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError, match=f"^invalid setting {variable}: "):
        load_settings()


def test_odengi_needs_its_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAYMENT_PROVIDER", "ODENGI")
    monkeypatch.delenv("ODENGI_MERCHANT_ID", raising=False)
    with pytest.raises(ConfigError, match="ODENGI_MERCHANT_ID"):
        load_settings()
    monkeypatch.setenv("ODENGI_MERCHANT_ID", "m1")
    monkeypatch.setenv("ODENGI_PASSWORD", "p1")
    assert load_settings().payment_provider is PaymentProvider.ODENGI


def test_unset_urls_mean_embedded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setenv("TEMPORAL_ADDRESS", "")
    settings = load_settings()
    assert settings.embedded_database and settings.embedded_temporal


def test_the_cli_prints_one_line_and_exits_2() -> None:
    env = {**os.environ, "PORT": "abc"}
    result = subprocess.run(
        [sys.executable, "-m", "runtime.cli", "serve"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "evpower: configuration error: invalid setting PORT: "
        "Input should be a valid integer, unable to parse string as an integer"
    ]
