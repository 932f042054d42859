"""Bad configuration fails at start with one line naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

from payments.provider import PayStatus, ProviderName
from runtime.settings import ConfigError, load_settings


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
        ("ODENGI_STATUS_CODES", "1=paid"),
        ("ODENGI_STATUS_CODES", '{"1": "pending"}'),
        ("ODENGI_STATUS_CODES", '{"1": "awaiting"}'),
        ("ODENGI_DATE_LIFE_FORMAT", "%H:%M"),
        ("ODENGI_DATE_LIFE_FORMAT", "tomorrow"),
        ("ODENGI_DATE_LIFE_TZ", "Bishkek"),
        ("ODENGI_DATE_LIFE_TZ", "+25:00"),
        ("ODENGI_STATUS_PATHS", '{"status": "data..status"}'),
        ("ODENGI_STATUS_PATHS", '{"state": "status"}'),
        ("OCPP_ADMISSION_POOL_SIZE", "0"),
        ("OCPP_ADMISSION_POOL_SIZE", "500"),
        ("TEMPORAL_MAX_CACHED_WORKFLOWS", "10"),
        ("TEMPORAL_MAX_CACHED_WORKFLOWS", "many"),
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
    assert load_settings().payment_provider is ProviderName.ODENGI


def test_the_odengi_contract_defaults_to_todays_reading_and_takes_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    default = load_settings().odengi_contract
    assert default.status_of("3") is PayStatus.PAID and default.status_of("0") is None
    assert default.date_life(datetime(2026, 1, 1, 0, 0, tzinfo=UTC)) == "2026-01-01 06:00:00"
    monkeypatch.setenv(
        "ODENGI_STATUS_CODES", '{"0": "awaiting", "1": "paid", "-1": "cancelled", "-2": "expired"}'
    )
    monkeypatch.setenv("ODENGI_DATE_LIFE_FORMAT", "unix")
    monkeypatch.setenv("ODENGI_DATE_LIFE_TZ", "Asia/Bishkek")
    monkeypatch.setenv("ODENGI_STATUS_PATHS", '{"status": "invoice.state"}')
    other = load_settings().odengi_contract
    assert other.status_of(1) is PayStatus.PAID and other.status_of("-2") is PayStatus.CANCELLED
    assert other.status_of("3") is None
    assert other.date_life(datetime(2026, 1, 1, tzinfo=UTC)) == "1767225600"
    assert other.field({"invoice": {"state": "1"}}, "status") == "1"
    assert other.status_paths["trans_id"] == "trans_id"  # the names not set keep their default


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
