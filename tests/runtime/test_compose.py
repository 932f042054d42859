"""docker-compose.yml checked statically (no Docker engine runs here)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def test_every_role_and_dependency_is_a_service() -> None:
    services = _compose()["services"]
    assert {"postgres", "temporal", "api", "worker", "migrate"} <= set(services)
    assert services["api"]["command"][:2] == ["evpower", "serve"]
    assert services["worker"]["command"] == ["evpower", "worker"]
    for name, service in services.items():
        for dependency in service.get("depends_on", []):
            assert dependency in services, f"{name} depends on unknown {dependency}"


def test_the_app_environment_names_only_real_settings() -> None:
    env = _compose()["x-evpower-env"]
    known = {name.upper() for name in Settings.model_fields}
    assert set(env) <= known, set(env) - known
    assert "DATABASE_URL" in env and "TEMPORAL_ADDRESS" in env


def test_dockerfile_copies_every_package() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in (
        "domain",
        "db",
        "activities",
        "workflows",
        "gateway",
        "api",
        "payments",
        "runtime",
        "simulator",
    ):
        assert f"COPY {package} ./{package}" in dockerfile
