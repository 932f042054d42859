"""Every setting EvPower reads, from environment variables, validated once at start."""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_core import PydanticKnownError
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from api.config import AmountLimits, AuthSettings, HttpSettings, OpsSettings, RateLimitSettings
from domain.contracts.task_queues import DEFAULT_TASK_QUEUE
from gateway.config import GatewaySettings
from payments.contract import (
    DEFAULT_DATE_LIFE_FORMAT,
    DEFAULT_DATE_LIFE_TZ,
    DEFAULT_STATUS_CODES,
    DateLifeFormat,
    DateLifeZone,
    OdengiContract,
    StatusCodes,
    StatusPaths,
)
from payments.provider import ProviderName


class LogFormat(StrEnum):
    JSON = "json"
    PRETTY = "pretty"


class ConfigError(Exception):
    """A setting is missing or invalid; the message is one line naming the variable."""


# O!Dengi's documented test endpoint; production sets ODENGI_API_URL explicitly.
ODENGI_TEST_API_URL = "https://mw-api-test.dengi.kg/api/json/json.php"

DEV_JWT_SECRET = "evpower-dev-secret-not-for-production-use-0123456789"  # noqa: S105


class Settings(
    HttpSettings,
    AuthSettings,
    RateLimitSettings,
    AmountLimits,
    OpsSettings,
    GatewaySettings,
    BaseSettings,
):
    """EvPower configuration. Unset DATABASE_URL / TEMPORAL_ADDRESS mean 'embedded'. The
    API's settings are its groups (api/config.py) and the gateway's its group
    (gateway/config.py), inherited: one environment variable each."""

    model_config = SettingsConfigDict(env_prefix="", case_sensitive=False, extra="ignore")

    database_url: str | None = None
    temporal_address: str | None = None
    temporal_namespace: str = "default"
    temporal_task_queue: str = DEFAULT_TASK_QUEUE
    # Workflows a worker keeps in memory between their tasks (about 0.3 MB each). A session
    # lives for its whole charge, so a worker needs room for every session it runs at once:
    # past the cache, each task of an evicted session replays its whole history. The SDK's
    # default, 1,000, was full in benchmarks/e2e.py's open loop with 1,000 sessions held.
    temporal_max_cached_workflows: int = Field(default=10_000, ge=100, le=1_000_000)
    temporal_ui_port: int = Field(default=8233, ge=1, le=65535)
    # Where operators open the Temporal UI (the ops API links each session to it); unset:
    # the embedded UI on 127.0.0.1:TEMPORAL_UI_PORT, or no links with an external Temporal.
    temporal_ui_url: str | None = None
    # gRPC port of the embedded Temporal dev server (only when TEMPORAL_ADDRESS is unset)
    embedded_temporal_port: int = Field(default=7233, ge=1, le=65535)
    # TLS and auth of an external Temporal (mTLS for a self-hosted cluster or Temporal Cloud,
    # or an API key for Temporal Cloud). Files are PEM; TLS is on when any of them is set.
    temporal_tls: bool = False
    temporal_tls_client_cert: Path | None = None
    temporal_tls_client_key: Path | None = None
    temporal_tls_server_ca_cert: Path | None = None
    temporal_tls_server_name: str | None = None
    temporal_api_key: str | None = None
    # How long a starting process waits for PostgreSQL and Temporal before giving up
    # (0: for ever). Backoff between attempts grows to 10 s.
    dependency_wait_s: float = Field(default=300.0, ge=0)

    payment_provider: ProviderName = ProviderName.SIMULATED
    odengi_merchant_id: str | None = None
    odengi_password: str | None = None
    odengi_api_url: str = ODENGI_TEST_API_URL
    odengi_h2h_url: str | None = None
    # Our reading of the unconfirmed parts of the O!Dengi contract (payments/contract.py,
    # docs/payments.md); `evpower payments check` says which values a merchant needs.
    odengi_status_codes: Annotated[StatusCodes, NoDecode] = Field(
        default_factory=lambda: dict(DEFAULT_STATUS_CODES)
    )
    odengi_date_life_format: DateLifeFormat = DEFAULT_DATE_LIFE_FORMAT
    odengi_date_life_tz: DateLifeZone = DEFAULT_DATE_LIFE_TZ
    odengi_status_paths: Annotated[StatusPaths, NoDecode] = Field(default_factory=dict)
    # Where the provider reaches our webhook; unset: this process's own HOST and PORT.
    public_base_url: str = ""

    host: str = "127.0.0.1"
    port: int = Field(default=9210, ge=1, le=65535)
    # Proxies (comma-separated IPs/CIDRs, or *) whose X-Forwarded-For/-Proto uvicorn trusts,
    # so rate limits and logs see the real client behind Traefik, not the proxy.
    forwarded_allow_ips: str = "127.0.0.1"

    # Keys every charger key hash (runtime/key_pepper.py); unset: generated in the data dir,
    # which only an embedded database may rely on.
    ocpp_key_pepper: SecretStr | None = None

    evpower_data_dir: Path = Path(".evpower")
    log_format: LogFormat = LogFormat.JSON
    log_level: str = "INFO"

    @property
    def odengi_contract(self) -> OdengiContract:
        return OdengiContract(
            status_codes=self.odengi_status_codes,
            date_life_format=self.odengi_date_life_format,
            date_life_tz=self.odengi_date_life_tz,
            status_paths=self.odengi_status_paths,
        )

    @field_validator("database_url")
    @classmethod
    def _postgres_only(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        if not value.startswith(("postgresql://", "postgresql+asyncpg://", "postgres://")):
            raise ValueError("must be a postgresql:// URL")
        return value

    @field_validator("temporal_address")
    @classmethod
    def _host_port(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("must be host:port")
        return value

    @field_validator(
        "temporal_tls_client_cert", "temporal_tls_client_key", "temporal_tls_server_ca_cert"
    )
    @classmethod
    def _readable_file(cls, value: Path | None) -> Path | None:
        if value is None or str(value) == "":
            return None
        if not value.is_file():
            raise ValueError(f"no such file: {value}")
        return value

    @field_validator("temporal_ui_url")
    @classmethod
    def _ui_url(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")) or any(c.isspace() for c in value):
            raise ValueError("must be an http:// or https:// URL")
        return value.rstrip("/")

    @property
    def temporal_ui_base_url(self) -> str | None:
        if self.temporal_ui_url is not None:
            return self.temporal_ui_url
        if self.temporal_address is None:
            return f"http://127.0.0.1:{self.temporal_ui_port}"
        return None

    @field_validator("temporal_api_key", "temporal_tls_server_name")
    @classmethod
    def _empty_is_unset(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("heartbeat_interval_s")
    @classmethod
    def _heartbeat_floor(cls, value: int) -> int:
        # The gateway itself takes 1 s (its tests do); a deployment tells chargers 10 s or more,
        # so a fleet's Heartbeats do not crowd out the traffic that matters.
        if value < 10:
            raise PydanticKnownError("greater_than_equal", {"ge": 10})
        return value

    @field_validator("log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR")
        return level

    @property
    def embedded_database(self) -> bool:
        return self.database_url is None

    @property
    def embedded_temporal(self) -> bool:
        return self.temporal_address is None

    @property
    def temporal_uses_tls(self) -> bool:
        return self.temporal_tls or any(
            (
                self.temporal_tls_client_cert,
                self.temporal_tls_server_ca_cert,
                self.temporal_tls_server_name,
                self.temporal_api_key,
            )
        )

    @model_validator(mode="after")
    def _default_public_base_url(self) -> Settings:
        if not self.public_base_url:
            host = "127.0.0.1" if self.host in {"0.0.0.0", "::", ""} else self.host  # noqa: S104
            self.public_base_url = f"http://{host}:{self.port}"
        self.public_base_url = self.public_base_url.rstrip("/")
        return self

    def require_explicit_provider(self) -> None:
        """Processes that can move money (serve, worker) start only when told which provider
        is real: a forgotten variable must not quietly run the simulator, whose payments
        always succeed. `evpower dev` sets SIMULATED itself; tests build settings directly."""
        if "payment_provider" not in self.model_fields_set:
            raise ConfigError(
                "PAYMENT_PROVIDER must be set: ODENGI in production, SIMULATED for a demo"
            )

    def check_consistency(self) -> None:
        """Cross-field rules that a single field validator cannot see."""
        if self.payment_provider is ProviderName.ODENGI:
            for name in ("odengi_merchant_id", "odengi_password"):
                if not getattr(self, name):
                    raise ConfigError(f"{name.upper()} is required when PAYMENT_PROVIDER=ODENGI")
        if (self.temporal_tls_client_cert is None) != (self.temporal_tls_client_key is None):
            missing = "KEY" if self.temporal_tls_client_key is None else "CERT"
            raise ConfigError(
                f"TEMPORAL_TLS_CLIENT_{missing} is required with the other half of the client "
                "certificate pair"
            )
        if self.embedded_temporal and (self.temporal_uses_tls or self.temporal_api_key):
            raise ConfigError("TEMPORAL_ADDRESS is required with TEMPORAL_TLS_* / TEMPORAL_API_KEY")
        if self.topup_min_tyiyn > self.topup_max_tyiyn:
            raise ConfigError("TOPUP_MIN_TYIYN must not exceed TOPUP_MAX_TYIYN")
        if self.charge_min_tyiyn > self.charge_max_tyiyn:
            raise ConfigError("CHARGE_MIN_TYIYN must not exceed CHARGE_MAX_TYIYN")


def load_settings(**overrides: object) -> Settings:
    """Read settings from the environment; raise ConfigError with one line on bad input."""
    try:
        settings = Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        variable = str(first["loc"][0]).upper() if first["loc"] else "settings"
        raise ConfigError(f"invalid setting {variable}: {first['msg']}") from None
    settings.check_consistency()
    return settings


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return load_settings()
