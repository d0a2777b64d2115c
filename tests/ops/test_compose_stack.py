"""docker-compose.yml started for real: `compose up` of the whole platform on the Docker Engine of
`scripts/docker_engine.sh`, then what an operator and a user would notice.

The stack is docker-compose.yml as `make up` runs it, with only these differences:

- images: no registry is reachable here, so `scripts/docker_engine.sh stack` builds them (the
  platform image from platform.Dockerfile, the client image, and stand-ins for postgres:15 and
  redis:7 from docker-images/postgres and docker-images/redis, all cached by a source hash) and
  compose runs `up --no-build` with PLATFORM_IMAGE / CLIENT_IMAGE / POSTGRES_IMAGE / REDIS_IMAGE pointing at
  them, as `make up OFFLINE=1` does;
- names and ports of its own: a unique project (-p), network (BOTFLEET_NETWORK, a free /24) and
  free 127.0.0.1 ports, so that it cannot clash with a real `make up` on the same machine;
- trial mode: docker-compose.trial.yml, the file of `make up TRIAL=1` itself, adds the project's
  Telegram emulator and YooKassa fake as services `telegram` and `yookassa` of the same network,
  so that the test talks to the bots and pays like an operator trying the platform does.

Every server listens inside the containers or on 127.0.0.1 (published ports); the OpenAI URL
points at a closed local port, so nothing leaves the machine.

The master of this stack has the Docker socket and, like any master, removes client-bot
containers (label botfleet.managed=true) that have no tenant in its database. So the test
refuses to start while such containers of someone else run on this engine (a real fleet, a
benchmark): it fails with that reason rather than destroy them.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import aiohttp
import asyncpg
import docker
import pytest
from cryptography.fernet import Fernet
from redis.asyncio import Redis
from redis.exceptions import AuthenticationError, ResponseError

from telegram_emulator.driver import EmulatorClient
from tests.docker_support import RUN_ID, RUN_LABEL, compose_cli, run_engine_script
from tests.sales.people import Person
from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
BUILD_TIMEOUT = 1800  # a clean machine: debootstrap, then four image builds
UP_TIMEOUT = 300  # `up -d` waits for the healthchecks the services depend on
HEALTHY_WITHIN = 180
LONG_RUNNING = ("postgres", "redis", "master", "sales", "telegram", "yookassa", "web")
COMPOSE_FILES = ("docker-compose.yml", "docker-compose.trial.yml")
ONE_SHOTS = ("migrate", "client-image")
OWNER = 7001
CUSTOMER = 424242
# Timeouts of the module-scoped stack are counted in the first test that uses it.
pytestmark = [
    pytest.mark.engine,
    pytest.mark.timeout(BUILD_TIMEOUT + UP_TIMEOUT + HEALTHY_WITHIN + 300),
]


def _build_images() -> dict[str, str]:
    """Engine, base and the four images of the stack via the script; fails with its reason."""
    started = time.monotonic()
    exports = run_engine_script(
        "stack", BUILD_TIMEOUT, "the images of docker-compose.yml cannot be built here"
    )
    print(f"stack images ready in {time.monotonic() - started:.1f} s")  # shown with -s
    return exports


def _free_subnet(api: docker.DockerClient) -> ipaddress.IPv4Network:
    """A /24 of 172.31.0.0/16 that no Docker network and no route of this host uses."""
    taken: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
    for network in api.networks.list():
        for config in (network.attrs.get("IPAM") or {}).get("Config") or []:
            with contextlib.suppress(KeyError, ValueError):
                taken.append(ipaddress.ip_network(config["Subnet"], strict=False))
    with contextlib.suppress(OSError):
        for line in Path("/proc/net/route").read_text().splitlines()[1:]:
            fields = line.split()
            dest, mask = (int(fields[1], 16), int(fields[7], 16))
            if mask:  # not the default route
                addr = ipaddress.IPv4Address(dest.to_bytes(4, "little"))
                bits = bin(mask).count("1")
                taken.append(ipaddress.ip_network(f"{addr}/{bits}", strict=False))
    for _ in range(200):
        candidate = ipaddress.IPv4Network(f"172.31.{100 + secrets.randbelow(155)}.0/24")
        if not any(candidate.overlaps(t) for t in taken):
            return candidate
    pytest.fail("no free /24 in 172.31.0.0/16 for the test stack's network", pytrace=False)


def _made_up_token() -> str:
    # The shape of a bot token (digits:secret) without the look of a real one.
    return f"{1000 + secrets.randbelow(9000)}:made-up-{secrets.token_hex(12)}"


@dataclass
class Stack:
    cli: list[str]
    project: str
    workdir: Path
    env: dict[str, str]
    api: docker.DockerClient
    network: str
    ports: dict[str, int]
    sales_token: str
    tenant_token: str
    seconds_to_healthy: float = 0.0
    values: dict[str, str] = field(default_factory=dict)

    @property
    def master_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['master']}"

    @property
    def sales_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['sales']}"

    @property
    def emulator_url(self) -> str:
        return f"http://127.0.0.1:{self.ports['telegram']}"

    @property
    def pg_dsn(self) -> str:
        user, password, db = (
            self.values[k] for k in ("POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB")
        )
        return f"postgresql://{user}:{password}@127.0.0.1:{self.ports['postgres']}/{db}"

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.values['MASTER_API_TOKEN']}"}

    def compose(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        files = [arg for name in COMPOSE_FILES for arg in ("-f", name)]
        return subprocess.run(
            [*self.cli, "-p", self.project, *files, *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            cwd=self.workdir,
            env=self.env,
        )

    def containers(self, service: str) -> list[Any]:
        return list(
            self.api.containers.list(
                all=True,
                filters={
                    "label": [
                        f"com.docker.compose.project={self.project}",
                        f"com.docker.compose.service={service}",
                    ]
                },
            )
        )

    def state(self, service: str) -> dict[str, Any]:
        found = self.containers(service)
        if not found:
            return {}
        found[0].reload()
        state: dict[str, Any] = found[0].attrs["State"]
        return state

    def logs(self, tail: int = 80) -> str:
        with contextlib.suppress(subprocess.TimeoutExpired):
            result = self.compose("logs", "--no-color", f"--tail={tail}", timeout=60)
            return result.stdout + result.stderr
        return "(compose logs timed out)"

    def fail(self, message: str) -> NoReturn:
        pytest.fail(f"{message}\n--- compose logs ---\n{self.logs()}", pytrace=False)


def _foreign_client_containers(api: docker.DockerClient) -> list[str]:
    found = api.containers.list(all=True, filters={"label": "botfleet.managed=true"})
    return [c.name for c in found if c.labels.get(RUN_LABEL) != RUN_ID]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    cli = compose_cli()
    exports = _build_images()
    env = {**os.environ, **{k: v for k, v in exports.items() if k == "DOCKER_HOST"}}
    api = docker.DockerClient(base_url=env.get("DOCKER_HOST") or None, timeout=120)
    foreign = _foreign_client_containers(api)
    if foreign:
        api.close()
        pytest.fail(
            f"client-bot containers run on this Docker Engine ({', '.join(foreign[:5])}): the "
            "test stack's master would remove them as orphans. Stop that fleet (or benchmark), "
            "or run this test against another engine (DOCKER_HOST).",
            pytrace=False,
        )
    project = f"bfstack{secrets.token_hex(4)}"
    subnet = _free_subnet(api)
    gateway = str(next(subnet.hosts()))
    # The group of the Docker socket, for the master's group_add (as `make up` passes it).
    socket_path = Path(
        (env.get("DOCKER_HOST") or "unix:///var/run/docker.sock").removeprefix("unix://")
    )
    docker_gid = str(socket_path.stat().st_gid) if socket_path.exists() else "999"
    ports = {
        name: free_port()
        for name in ("postgres", "redis", "master", "sales", "telegram", "yookassa", "web")
    }
    sales_token, tenant_token = _made_up_token(), _made_up_token()
    network = f"{project}-net"
    values = {
        # docker-compose.yml's own variables
        "POSTGRES_USER": "botfleet",
        "POSTGRES_DB": "botfleet",
        "POSTGRES_PASSWORD": f"pg-{secrets.token_hex(8)}",
        "REDIS_PASSWORD": f"redis-{secrets.token_hex(8)}",
        "POSTGRES_IMAGE": exports["BOTFLEET_POSTGRES_IMAGE"],
        "REDIS_IMAGE": exports["BOTFLEET_REDIS_IMAGE"],
        "PLATFORM_IMAGE": exports["BOTFLEET_PLATFORM_IMAGE"],
        "CLIENT_IMAGE": exports["BOTFLEET_CLIENT_IMAGE"],
        "BOTFLEET_NETWORK": network,
        "CLIENT_NETWORK": network,
        "BOTFLEET_SUBNET": str(subnet),
        "BOTFLEET_GATEWAY": gateway,
        "WEBHOOK_TRUSTED_PROXIES": f"{gateway}/32",
        "POSTGRES_PORT": str(ports["postgres"]),
        "REDIS_PORT": str(ports["redis"]),
        "MASTER_API_PORT": str(ports["master"]),
        "WEBHOOK_PORT": str(ports["sales"]),
        "WEB_PORT": str(ports["web"]),
        "TELEGRAM_PORT": str(ports["telegram"]),
        "YOOKASSA_PORT": str(ports["yookassa"]),
        "DOCKER_GID": docker_gid,
        "HEALTH_INTERVAL": "2s",  # healthy sooner: compose up and this test wait for the checks
        # docker-compose.trial.yml's: the emulators' source, the sales bot's token
        "BOTFLEET_SOURCE": str(ROOT),
        "TRIAL_SALES_BOT_TOKEN": sales_token,
        # the processes' settings (.env is their env_file)
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "MASTER_API_TOKEN": f"master-{secrets.token_hex(16)}",
        "WEB_JWT_KEYS": secrets.token_urlsafe(48),
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "LOG_LEVEL": "INFO",
    }
    workdir = tmp_path_factory.mktemp("compose-stack")
    # Copies beside their own .env (env_file and build paths are relative to the project).
    for name in COMPOSE_FILES:
        (workdir / name).write_text((ROOT / name).read_text())
    (workdir / ".env").write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    # The shell wins over .env in compose's interpolation: give it the same values.
    stack = Stack(
        cli=cli,
        project=project,
        workdir=workdir,
        env={**env, **values},
        api=api,
        network=network,
        ports=ports,
        sales_token=sales_token,
        tenant_token=tenant_token,
        values=values,
    )
    try:
        started = time.monotonic()
        try:
            up = stack.compose("up", "-d", "--no-build", timeout=UP_TIMEOUT)
        except subprocess.TimeoutExpired:
            stack.fail(f"`compose up -d` did not return within {UP_TIMEOUT} s")
        if up.returncode != 0:
            stack.fail(f"`compose up -d --no-build` exited {up.returncode}:\n{up.stderr[-3000:]}")
        deadline = started + HEALTHY_WITHIN
        while True:
            health = {s: (stack.state(s).get("Health") or {}).get("Status") for s in LONG_RUNNING}
            if all(h == "healthy" for h in health.values()):
                break
            if time.monotonic() > deadline:
                stack.fail(f"not healthy within {HEALTHY_WITHIN} s: {health}")
            time.sleep(1)
        stack.seconds_to_healthy = time.monotonic() - started
        print(f"compose stack healthy {stack.seconds_to_healthy:.1f} s after `up`")  # with -s
        yield stack
    finally:
        # Client bots the stack's master started are not compose's: remove them first (the
        # network cannot go while they are attached).
        for container in api.containers.list(
            all=True, filters={"label": "botfleet.managed=true", "network": network}
        ):
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
        down = stack.compose("down", "-v", "--remove-orphans", timeout=180)
        api.close()
        assert down.returncode == 0, down.stderr


def test_every_service_is_up_and_the_one_shots_succeeded(stack: Stack) -> None:
    for service in LONG_RUNNING:
        state = stack.state(service)
        assert state.get("Running") and state.get("Restarting") is False, (service, state)
    for service in ONE_SHOTS:
        state = stack.state(service)
        if state.get("Status") != "exited" or state.get("ExitCode") != 0:
            stack.fail(f"{service} did not exit 0: {state}")
    # Only the master has the Docker socket, and the platform runs as the non-root user.
    for service in ("migrate", "master", "sales", "web"):
        (container,) = stack.containers(service)
        mounts = [m.get("Source") or "" for m in container.attrs["Mounts"]]
        assert any("docker.sock" in m for m in mounts) == (service == "master"), service
        assert container.attrs["Config"]["User"] == "10001:10001", service


async def test_health_of_master_and_sales_answers(stack: Stack) -> None:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
        async with http.get(f"{stack.master_url}/health") as response:
            body = await response.json()
            if response.status != 200:
                stack.fail(f"master /health: {response.status} {body}")
        # PostgreSQL, Redis and the Docker Engine (the socket, through group_add) all answer.
        assert body["status"] == "ok"
        assert set(body["checks"]) == {"postgres", "redis", "deploy_backend:docker"}
        assert all(check["ok"] for check in body["checks"].values()), body
        async with http.get(f"{stack.sales_url}/health") as response:
            if response.status != 200:
                stack.fail(f"sales /health: {response.status} {await response.text()}")
        # The owners' web: its PostgreSQL and Redis answer, and its own pages are served.
        web_url = f"http://127.0.0.1:{stack.ports['web']}"
        async with http.get(f"{web_url}/health") as response:
            body = await response.json()
            if response.status != 200:
                stack.fail(f"web /health: {response.status} {body}")
        assert body == {"status": "ok", "postgres": True, "redis": True}
        async with http.get(f"{web_url}/dashboard") as response:
            assert response.status == 200 and "/static/dashboard.js" in await response.text()


async def test_master_api_answers_with_its_token_only(stack: Stack) -> None:
    url = f"{stack.master_url}/api/v1/tenants"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=15)) as http:
        async with http.get(url) as response:
            assert response.status == 401
        async with http.get(url, headers={"Authorization": "Bearer wrong"}) as response:
            assert response.status == 401
        async with http.get(url, headers=stack.auth) as response:
            page = await response.json()
            if response.status != 200:
                stack.fail(f"GET /api/v1/tenants: {response.status} {page}")
    assert page["total"] == 0 and page["items"] == []


async def test_the_stack_postgres_and_redis_hold_the_platform(stack: Stack) -> None:
    conn = await asyncpg.connect(stack.pg_dsn)
    try:
        applied = await conn.fetchval("SELECT count(*) FROM control.schema_migrations")
        tables = {
            r["table_name"]
            for r in await conn.fetch(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'control'"
            )
        }
        locks = await conn.fetchval("SHOW max_locks_per_transaction")
    finally:
        await conn.close()
    assert applied >= 4
    assert {"tenants", "audit_log", "sales_orders"} <= tables
    assert locks == "1024"  # the compose command reached the server
    with pytest.raises(asyncpg.InvalidPasswordError):
        await asyncpg.connect(stack.pg_dsn.replace(stack.values["POSTGRES_PASSWORD"], "wrong"))

    admin = Redis(
        host="127.0.0.1", port=stack.ports["redis"], password=stack.values["REDIS_PASSWORD"]
    )
    anonymous = Redis(host="127.0.0.1", port=stack.ports["redis"])
    try:
        assert await admin.ping()
        assert "appendonly" in str(await admin.config_get("appendonly"))
        with pytest.raises((AuthenticationError, ResponseError)):
            await anonymous.get("anything")
    finally:
        await admin.aclose()
        await anonymous.aclose()


async def test_the_sales_bot_answers_start(stack: Stack) -> None:
    async with EmulatorClient(stack.emulator_url) as tg:
        await tg.send_message(stack.sales_token, CUSTOMER, "/start", first_name="Ольга")
        try:
            answer = await tg.wait_for_message(stack.sales_token, CUSTOMER, timeout=60)
        except TimeoutError:
            stack.fail("the sales bot did not answer /start within 60 s")
    assert answer.plain_text


async def test_the_master_runs_a_client_bot_on_the_compose_network(stack: Stack) -> None:
    """Provisioning through the API: a client container beside the stack, reaching PostgreSQL,
    Redis and Telegram by their service names; /start answered; deleting it removes it."""
    body = {
        "plan": "basic",
        "period_days": 30,
        "business_name": "Салон в compose",
        "bot_token": stack.tenant_token,
        "owner_telegram_id": OWNER,
        "locale": "ru",
        "timezone": "Europe/Moscow",
    }
    headers = {**stack.auth, "Idempotency-Key": f"order-{secrets.token_hex(6)}"}
    url = f"{stack.master_url}/api/v1/tenants"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as http:
        async with http.post(url, json=body, headers=headers) as response:
            tenant = await response.json()
            if response.status != 201:
                stack.fail(f"provisioning: {response.status} {json.dumps(tenant)}")
        tid = tenant["tenant_id"]
        (container,) = stack.api.containers.list(
            all=True, filters={"label": f"botfleet.tenant={tid}"}
        )
        assert list(container.attrs["NetworkSettings"]["Networks"]) == [stack.network]
        assert container.attrs["Config"]["User"] not in ("", "0", "root")
        async with EmulatorClient(stack.emulator_url) as tg:
            await tg.send_message(stack.tenant_token, CUSTOMER, "/start", first_name="Анна")
            try:
                answer = await tg.wait_for_message(stack.tenant_token, CUSTOMER, timeout=120)
            except TimeoutError:
                logs = container.logs(tail=60).decode(errors="replace")
                stack.fail(f"the client bot {tid} did not answer /start:\n{logs}")
        assert answer.plain_text
        async with http.delete(f"{url}/{tid}?backup=false", headers=stack.auth) as response:
            assert response.status in (200, 204), await response.text()
    assert stack.api.containers.list(all=True, filters={"label": f"botfleet.tenant={tid}"}) == []


async def test_the_trial_journey_buy_pay_and_the_new_bot_answers(stack: Stack) -> None:
    """What docs/operations.md's "Trial" has an operator play: the sales dialog in the emulator,
    the payment on the YooKassa fake's checkout page (its webhook crosses the stack's network),
    the master provisioning a container, and the owner's new bot answering /start."""
    owner_id = OWNER + 1
    bot = _made_up_token()  # auto-registered by the emulator when the sales bot checks it
    async with (
        EmulatorClient(stack.emulator_url) as tg,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http,
    ):
        owner = Person(tg, stack.sales_token, owner_id)
        try:
            home = await owner.ask("/start", "Botfleet", timeout=60)
            plans = await owner.press(home, "🛒 Купить бота", "Выберите тариф")
            await owner.press(plans, plans.buttons()[0][0], "Как называется ваш бизнес")
            kinds = await owner.ask("Пробный салон", "Чем занимается")
            zones = await owner.press(kinds, kinds.buttons()[0][0], "часовом поясе")
            await owner.press(zones, zones.buttons()[0][0], "@BotFather")
            confirm = await owner.ask(bot, "Нашёл вашего бота", timeout=30)
            await owner.press(confirm, "Да, это мой бот", "email для чека")
            consent = await owner.ask("owner@example.com", "автопродление?", timeout=30)
            pay = await owner.press(consent, "Оплатить один раз, без автопродления", "Оплатить")
        except AssertionError as exc:
            stack.fail(f"the sales dialog went astray: {exc}")
        link = pay.reply_markup["inline_keyboard"][0][0]["url"]  # type: ignore[index]
        assert link.startswith(f"http://127.0.0.1:{stack.ports['yookassa']}/checkout/"), link
        # "Pay" on the checkout page, as the trial's instructions say: curl -X POST <link>.
        async with http.post(link, allow_redirects=False) as response:
            assert response.status == 302, await response.text()
        try:
            live = await owner.wait("запущен", timeout=180)
        except AssertionError as exc:
            stack.fail(f"the owner did not hear that the bot is live: {exc}")
        assert "/admin" in live.plain_text
        customer = Person(tg, bot, CUSTOMER + 1)
        try:
            welcome = await customer.ask("/start", "", timeout=120)
        except AssertionError as exc:
            stack.fail(f"the new bot did not answer /start: {exc}")
        assert welcome.plain_text
        async with http.get(f"{stack.master_url}/api/v1/tenants", headers=stack.auth) as response:
            page = await response.json()
        [tenant] = [t for t in page["items"] if t["owner_telegram_id"] == owner_id]
        assert tenant["status"] == "active"
        url = f"{stack.master_url}/api/v1/tenants/{tenant['tenant_id']}?backup=false"
        async with http.delete(url, headers=stack.auth) as response:
            assert response.status in (200, 204), await response.text()
