"""The API's settings in groups, by what reads them. Field names are the environment variables'
(lower case): runtime/settings.py's `Settings` inherits every group, so each setting and its
validation is written once, and the composition root hands the groups over whole."""

from __future__ import annotations

from typing import Annotated

from limits import parse
from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode

from domain.operators import check_claim_path


class HttpSettings(BaseModel):
    enable_swagger: bool = False
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    max_request_bytes: int = Field(default=64 * 1024, ge=1024)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip() for origin in value.split(",") if origin.strip()]
        return value


class AuthSettings(BaseModel):
    supabase_url: str | None = None
    supabase_jwt_secret: str | None = None
    supabase_jwt_audience: str = "authenticated"
    # Where an operator's role sits in the token's claims, as a dotted path: Supabase keeps
    # what only the project may set in `app_metadata` (users cannot edit it).
    operator_role_claim: str = "app_metadata.role"

    @field_validator("operator_role_claim")
    @classmethod
    def _claim_path(cls, value: str) -> str:
        return check_claim_path(value)


class RateLimitSettings(BaseModel):
    rate_limit_storage_uri: str = "memory://"
    # Budgets per caller ("N/second|minute|hour"): money-moving POSTs, reads and the rest,
    # the payment webhook per payment. Raised for a fuzz or load run, never to 0.
    rate_limit_money: str = "10/minute"
    rate_limit_default: str = "60/minute"
    rate_limit_webhook: str = "30/minute"
    rate_limit_ops: str = "120/minute"  # per operator, every route under /api/v1/ops/

    @field_validator(
        "rate_limit_money", "rate_limit_default", "rate_limit_webhook", "rate_limit_ops"
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError:
            raise ValueError("must be like 10/minute") from None
        return value


class AmountLimits(BaseModel):
    topup_min_tyiyn: int = Field(default=1_000, ge=1)
    topup_max_tyiyn: int = Field(default=5_000_000, ge=1)
    charge_min_tyiyn: int = Field(default=1_000, ge=1)
    charge_max_tyiyn: int = Field(default=1_000_000, ge=1)


class OpsSettings(BaseModel):
    # How long POST /api/v1/ops/stations/{id}/commands/... waits for the charger's answer
    # before it answers 202 with the workflow id to poll.
    ops_command_wait_s: float = Field(default=15.0, gt=0, le=120)
    # How long a station's key keeps logging in after a rotation (POST .../rotate-key).
    ocpp_key_rotation_grace_s: int = Field(default=86_400, ge=0, le=30 * 86_400)
