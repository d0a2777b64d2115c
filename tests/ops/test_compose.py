"""docker-compose.yml: the whole platform, checked structurally (always) and by the compose CLI
when one is installed (`docker compose` v2 or `docker-compose` v1)."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.docker_support import compose_cli

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
LONG_RUNNING = {"postgres", "redis", "master", "sales", "web"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(data, dict)
    return data


def test_services_and_their_order(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == {
        "postgres",
        "redis",
        "migrate",
        "client-image",
        "master",
        "sales",
        "caddy",
        "web",
    }
    # The webhook ingress runs only with its profile (`--profile webhooks`, docs/scaling.md).
    assert services["caddy"]["profiles"] == ["webhooks"]
    master = services["master"]["depends_on"]
    assert master["migrate"] == {"condition": "service_completed_successfully"}
    assert master["client-image"] == {"condition": "service_completed_successfully"}
    assert master["postgres"] == {"condition": "service_healthy"}
    assert services["sales"]["depends_on"]["master"] == {"condition": "service_healthy"}
    assert services["migrate"]["restart"] == "no"
    web = services["web"]
    assert web["depends_on"]["migrate"] == {"condition": "service_completed_successfully"}
    assert web["command"] == ["python", "-m", "web"]
    # Tenants' data only as each tenant's role: the web gets the servers, not a tenant login.
    assert web["environment"]["TENANT_REDIS_URL"] == "redis://redis:6379/0"
    assert "docker.sock" not in str(web.get("volumes", []))


def test_only_the_master_has_the_docker_socket(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        mounts = " ".join(str(v) for v in service.get("volumes", []))
        assert ("docker.sock" in mounts) == (name == "master"), name


def test_ports_are_on_loopback_and_services_are_watched(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if name == "caddy":  # the public ingress: Telegram reaches it on 80/443 (and TLS)
            assert service["ports"] == ["${CADDY_HTTP_PORT:-80}:80", "${CADDY_HTTPS_PORT:-443}:443"]
            continue
        for port in service.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), (name, port)
        if name in LONG_RUNNING:
            assert service["restart"] == "unless-stopped", name
            assert service["healthcheck"]["test"], name
    assert compose["services"]["sales"]["ports"] == ["127.0.0.1:${WEBHOOK_PORT:-8080}:8080"]
    assert compose["services"]["web"]["ports"] == ["127.0.0.1:${WEB_PORT:-8070}:8070"]
    postgres = " ".join(compose["services"]["postgres"]["command"])
    assert "max_locks_per_transaction=1024" in postgres


def test_images_are_built_from_the_project(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for name in ("migrate", "master", "sales", "web"):
        build = services[name]["build"]
        assert (ROOT / build["dockerfile"]).is_file()
        assert services[name]["image"] == "${PLATFORM_IMAGE:-botfleet-platform:latest}"
    assert (ROOT / services["client-image"]["build"]["dockerfile"]).is_file()
    # The official images by default; stand-ins built here (`make up OFFLINE=1`) by variable.
    assert services["postgres"]["image"] == "${POSTGRES_IMAGE:-postgres:15}"
    assert services["redis"]["image"] == "${REDIS_IMAGE:-redis:7}"
    for standin in ("postgres", "redis"):
        assert (ROOT / "docker-images" / standin / "Dockerfile").is_file()
        assert os.access(ROOT / "docker-images" / standin / "docker-entrypoint.sh", os.X_OK)
    assert services["client-image"]["image"] == services["master"]["environment"]["CLIENT_IMAGE"]
    platform = (ROOT / "platform.Dockerfile").read_text()
    assert "postgresql-client" in platform and "USER 10001:10001" in platform
    # `python -m X` of every service exists.
    for name, service in services.items():
        command = service.get("command", [])
        if command[:2] == ["python", "-m"]:
            assert importlib.util.find_spec(command[2]) is not None, name


_IMPORTS_SCRIPT = """
import ast, json, pathlib, sys
root, package = pathlib.Path(sys.argv[1]), sys.argv[2]
local = {p.name for p in root.iterdir() if (p / "__init__.py").exists()}
found = set()
for path in (root / package).rglob("*.py"):
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module]
        else:
            continue
        found |= {n.split(".")[0] for n in names} & local
print(json.dumps(sorted(found)))
"""


def _local_imports(package: str) -> set[str]:
    """The project's own packages that `package` imports. Parsed in a fresh interpreter:
    CPython 3.11.7's ast.parse can fail with "AST constructor recursion depth mismatch" in a
    process where an earlier parse hit a RecursionError (fixed in 3.11.8)."""
    run = subprocess.run(
        [sys.executable, "-c", _IMPORTS_SCRIPT, str(ROOT), package],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return set(json.loads(run.stdout))


def test_platform_build_context_has_every_package_it_imports() -> None:
    allowed = {
        line[1:].strip("/")
        for line in (ROOT / "platform.Dockerfile.dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    for package in ("master_bot", "sales_bot", "scripts", "web"):
        assert package in allowed
        missing = _local_imports(package) - allowed
        assert not missing, f"{package} imports {missing}, not in the platform build context"


def test_every_variable_without_a_default_is_required_with_a_message() -> None:
    text = COMPOSE.read_text()
    for match in re.finditer(r"\$\{([A-Z_]+)([^}]*)\}", text):
        name, rest = match.groups()
        assert rest.startswith((":-", ":?")), f"${{{name}}} needs a default or a :? message"


def test_compose_config_when_a_compose_cli_is_installed(tmp_path: Path) -> None:
    cli = compose_cli()
    # A copy beside its own .env (env_file is relative to the compose file).
    (tmp_path / ".env").write_text("POSTGRES_PASSWORD=pw\nREDIS_PASSWORD=rpw\n")
    copy = tmp_path / "docker-compose.yml"
    copy.write_text(COMPOSE.read_text())
    result = subprocess.run(
        [*cli, "-p", "botfleet", "-f", str(copy), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    master = config["services"]["master"]
    assert master["environment"]["REDIS_URL"] == "redis://default:rpw@redis:6379/0"
    assert (
        master["environment"]["DATABASE_URL"] == "postgresql://botfleet:pw@postgres:5432/botfleet"
    )
