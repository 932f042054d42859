"""Charger keys for the gateway: the scheme itself lives in domain/charger_keys.py, so the
API (which registers stations and rotates keys) and the gateway share one implementation."""

from __future__ import annotations

from domain.charger_keys import (
    LEGACY_SCHEME,
    MIN_PEPPER_BYTES,
    SCHEME,
    ChargerKeys,
    KeyCheck,
    generate_key,
    legacy_hash,
    verify_legacy,
)

__all__ = [
    "LEGACY_SCHEME",
    "MIN_PEPPER_BYTES",
    "SCHEME",
    "ChargerKeys",
    "KeyCheck",
    "generate_key",
    "legacy_hash",
    "verify_legacy",
]
