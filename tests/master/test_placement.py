"""Placements through the master's REST API, with real processes: the real client bot as a
dedicated process, and a real hub process (`python -m client_bot.hub`) for shared tenants.

A tenant moved dedicated → shared → dedicated in the middle of a booking dialog continues where
it was (its FSM state is in Redis under the same prefix, its data in the same schema), and at
every moment exactly one runtime serves its token.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import asyncpg
import pytest

from client_bot.store import Store
from core.plans import Catalog, PlansError, parse_plans
from master_bot.deploy.base import ClientSpec, DeployError, RuntimeState, RuntimeStatus
from master_bot.deploy.docker import HUB_UID_BASE, DockerBackend, DockerHubs
from master_bot.deploy.hub import HUB_RE, HubBackend, PlacedBackend, render_env, with_docker_hubs
from master_bot.deploy.memory import MemoryBackend
from master_bot.deploy.process import ProcessBackend
from tests.client.conftest import Customer, seed_business
from tests.master.conftest import Harness
from tests.master.procs import processes_of

CUSTOMER = 515151


def placed(clients: Path) -> PlacedBackend:
    dedicated = ProcessBackend(clients, module="client_bot", stop_timeout=5)
    hubs = HubBackend(
        clients,
        capacity=2,
        scan_interval=0.2,
        processes=ProcessBackend(clients, names=HUB_RE, stop_timeout=5),
    )
    return PlacedBackend(dedicated, hubs)


async def seed(pg_dsn: str, tenant_id: str) -> None:
    """The salon's services and hours, written as the platform (the schema is the tenant id)."""
    pool = await asyncpg.create_pool(
        pg_dsn, min_size=1, max_size=1, server_settings={"search_path": tenant_id}
    )
    try:
        await seed_business(Store(pool))
    finally:
        await pool.close()


def hub_reports(clients: Path) -> dict[str, str]:
    """tenant id -> state, as every hub reports it in its status.json."""
    found: dict[str, str] = {}
    for status in (clients / "hubs").glob("hub-*/status.json"):
        for tid, entry in json.loads(status.read_text())["tenants"].items():
            found[tid] = entry["state"]
    return found


async def move(harness: Harness, tid: str, to: str) -> dict[str, object]:
    reply = await harness.api.call(
        "POST", f"/api/v1/tenants/{tid}/placement", json={"placement": to}
    )
    assert reply.status == 200, reply.body
    assert reply.body["placement"] == to
    assert reply.body["runtime"]["state"] == "running", reply.body
    return dict(reply.body)


async def test_a_move_in_the_middle_of_a_booking_continues_where_it_was(
    make_harness: Callable[..., Awaitable[Harness]], tmp_path: Path
) -> None:
    harness = await make_harness(backend=placed(tmp_path / "clients"))
    clients = tmp_path / "clients"
    token = await harness.new_bot("moving_salon_bot")
    reply = await harness.api.provision(token, business_name="Салон «Ромашка»")
    assert reply.status == 201, reply.body
    tid = reply.body["tenant_id"]
    await seed(harness.pg_dsn, tid)
    (pid,) = processes_of(tid)  # dedicated: a process of its own
    anna = Customer(harness.tg, token, CUSTOMER, "Анна")
    # Running is not yet polling: importing aiogram takes seconds on a loaded machine.
    await harness.tg.wait_for_calls(token, "getUpdates", timeout=90)

    menu = await anna.ask("/start", "Добро пожаловать")
    services = await anna.press(menu, "📅 Записаться", "Выберите услугу")
    button = next(b for row in services.buttons() for b in row if b.startswith("Стрижка"))
    calendar = await anna.press(services, button, "Выберите день")
    day = [b for row in calendar.buttons() for b in row if b.isdigit()][-1]
    slots = await anna.press(calendar, day, "Выберите время")
    slot = next(b for row in slots.buttons() for b in row if ":" in b)
    await anna.press(slots, slot, "Поделитесь номером телефона")  # FSM: waiting for a phone

    moved = await move(harness, tid, "shared")
    assert processes_of(tid) == []  # the dedicated process is gone, confirmed before the hub
    assert hub_reports(clients) == {tid: "running"}
    assert "hub-1" in str(moved["runtime"])
    # The hub continues (generous waits: a runtime that has just started may still import
    # aiogram on a loaded machine, and the update waits for it in Telegram's queue).
    seen = await anna.seen()
    await anna.send("+7 900 123-45-67")
    summary = await anna.wait("Проверьте запись", after=seen, timeout=90)
    assert "Стрижка" in summary.plain_text and "+79001234567" in summary.plain_text

    await move(harness, tid, "dedicated")
    assert hub_reports(clients) == {}  # the hub let it go, and (empty) was stopped
    (new_pid,) = processes_of(tid)
    assert new_pid != pid
    seen = await anna.seen()
    await anna.click(summary, "✅ Подтвердить")
    await anna.wait("Вы записаны", after=seen, timeout=90)
    rows = await harness.fetch(f'SELECT status FROM "{tid}".bookings')
    assert [r["status"] for r in rows] == ["confirmed"]
    audit = await harness.fetch(
        "SELECT details FROM control.audit_log WHERE tenant_id = $1 AND action = $2 ORDER BY at",
        tid,
        "tenant.placement",
    )
    assert [json.loads(r["details"])["to"] for r in audit] == ["shared", "dedicated"]


async def test_bad_placement_requests_get_a_clear_4xx(
    make_harness: Callable[..., Awaitable[Harness]],
) -> None:
    harness = await make_harness(backend=MemoryBackend())
    token = await harness.new_bot()
    tid = (await harness.api.provision(token)).body["tenant_id"]
    path = f"/api/v1/tenants/{tid}/placement"
    for body in ({"placement": "cloud"}, {}, {"placement": 1}, {"placement": "shared", "x": 1}):
        reply = await harness.api.call("POST", path, json=body)
        assert reply.status == 422, (body, reply.status, reply.body)
    reply = await harness.api.call("POST", path, data="{", headers={"Content-Type": "text/plain"})
    assert 400 <= reply.status < 500
    missing = await harness.api.call(
        "POST", "/api/v1/tenants/client_999999999/placement", json={"placement": "shared"}
    )
    assert missing.status == 404
    # A master whose backend runs no hubs refuses the shared placement, and records nothing.
    refused = await harness.api.call("POST", path, json={"placement": "shared"})
    assert refused.status == 409 and refused.error_code == "no_hubs"
    rows = await harness.fetch("SELECT placement FROM control.tenants WHERE tenant_id = $1", tid)
    assert rows[0]["placement"] is None


class HubStub(ProcessBackend):
    """Hub "processes" that report every assigned tenant running at once (no interpreter)."""

    def __init__(self, clients: Path) -> None:
        super().__init__(clients, names=HUB_RE)
        self.running: set[str] = set()

    def scan(self, hub: str) -> None:
        """What a hub's scan does: report the tenants whose files are there."""
        folder = self.runtime_dir / "hubs" / hub
        tenants = {p.name.removesuffix(".env") for p in (folder / "tenants").glob("*.env")}
        report = {t: {"state": "running", "detail": ""} for t in tenants}
        (folder / "status.json").write_text(json.dumps({"pid": 0, "tenants": report}))

    async def deploy(self, spec: ClientSpec) -> RuntimeStatus:
        self.scan(spec.tenant_id)
        self.running.add(spec.tenant_id)
        return RuntimeStatus(spec.tenant_id, RuntimeState.RUNNING)

    async def status(self, tenant_id: str) -> RuntimeStatus:
        if tenant_id in self.running:
            self.scan(tenant_id)
        state = RuntimeState.RUNNING if tenant_id in self.running else RuntimeState.MISSING
        return RuntimeStatus(tenant_id, state)

    def _status(self, tenant_id: str) -> RuntimeStatus:
        state = RuntimeState.RUNNING if tenant_id in self.running else RuntimeState.MISSING
        return RuntimeStatus(tenant_id, state)

    async def remove(self, tenant_id: str) -> None:
        self.running.discard(tenant_id)


async def test_a_full_hub_means_a_new_hub_and_an_empty_one_is_stopped(tmp_path: Path) -> None:
    clients = tmp_path / "clients"
    stub = HubStub(clients)
    hubs = HubBackend(clients, capacity=2, processes=stub, confirm_timeout=5)
    tids = ["client_101", "client_102", "client_103"]
    for tid in tids:
        env = {"TENANT_ID": tid, "BOT_TOKEN": f"1:{'a' * 30}", "BUSINESS_NAME": "x' \nY=1"}
        status = await hubs.deploy(ClientSpec(tid, env))
        assert status.state is RuntimeState.RUNNING
    where = {
        t: f
        for t in tids
        for f in ("hub-1", "hub-2")
        if (clients / "hubs" / f / "tenants" / f"{t}.env").exists()
    }
    assert where == {"client_101": "hub-1", "client_102": "hub-1", "client_103": "hub-2"}
    path = clients / "hubs" / "hub-2" / "tenants" / "client_103.env"
    assert path.stat().st_mode & 0o777 == 0o600
    assert (clients / "hubs" / "hub-2").stat().st_mode & 0o777 == 0o700
    assert stub.running == {"hub-1", "hub-2"}
    # Deploying again changes nothing (the file is not rewritten: the hub would restart it).
    mtime = path.stat().st_mtime_ns
    await hubs.deploy(
        ClientSpec(
            "client_103",
            {"TENANT_ID": "client_103", "BOT_TOKEN": f"1:{'a' * 30}", "BUSINESS_NAME": "x' \nY=1"},
        )
    )
    assert path.stat().st_mtime_ns == mtime
    await hubs.remove("client_103")
    assert stub.running == {"hub-1"}  # hub-2 had no tenant left
    assert set(await hubs.list()) == {"client_101", "client_102"}
    with pytest.raises(DeployError, match="platform-wide"):
        await hubs.deploy(
            ClientSpec("client_104", {"TENANT_ID": "client_104", "ENCRYPTION_KEYS": "k"})
        )


def test_hub_names_fill_gaps_and_the_hubs_backend_names_hubs(tmp_path: Path) -> None:
    clients = tmp_path / "clients"
    hubs = HubBackend(clients, capacity=2, processes=ProcessBackend(clients, names=HUB_RE))
    names = [hubs._new_name([]), hubs._new_name(["hub-1"]), hubs._new_name(["hub-1", "hub-3"])]
    assert names == ["hub-1", "hub-2", "hub-2"]
    with pytest.raises(ValueError, match="names=HUB_RE"):
        HubBackend(clients, processes=ProcessBackend(clients))


def test_plans_choose_the_default_placement() -> None:
    plans = Catalog(
        parse_plans(
            '{"plans": [{"id": "lite", "title": "Лайт", "price_rub": "490.00",'
            ' "period_days": 30, "placement": "shared"},'
            ' {"id": "pro", "title": "Про", "price_rub": "990.00", "period_days": 30}]}'
        )
    )
    assert (plans.placement("lite"), plans.placement("pro")) == ("shared", "dedicated")
    assert plans.placement("unknown") == "dedicated"
    with pytest.raises(PlansError, match="placement"):
        parse_plans(
            '{"plans": [{"id": "x", "title": "X", "price_rub": "1.00", "period_days": 1,'
            ' "placement": "cloud"}]}'
        )


def test_a_tenant_env_file_reads_back_exactly() -> None:
    env = {"BUSINESS_NAME": 'It\'s \\ $HOME ${X} "q"\nБарбершоп', "LOCALE": "ru"}
    text = render_env(env)
    from io import StringIO

    from dotenv import dotenv_values

    assert dotenv_values(stream=StringIO(text), interpolate=False) == env
    with pytest.raises(DeployError, match="not an environment variable name"):
        render_env({"A=B": "x"})


async def test_a_move_cut_short_is_finished_and_a_dead_hub_restarted_by_the_reconciler(
    make_harness: Callable[..., Awaitable[Harness]], tmp_path: Path
) -> None:
    clients = tmp_path / "clients"
    first = await make_harness(backend=placed(clients))
    token = await first.new_bot("cut_short_salon_bot")
    reply = await first.api.provision(token, business_name="Салон «Ромашка»")
    assert reply.status == 201, reply.body
    tid = reply.body["tenant_id"]
    assert len(processes_of(tid)) == 1
    # The master recorded the move and died before touching the runtime.
    rows = await first.fetch(
        "UPDATE control.tenants SET placement = 'shared' WHERE tenant_id = $1 RETURNING 1", tid
    )
    assert len(rows) == 1

    second = await make_harness(backend=placed(clients))  # the master, restarted
    actions = await second.master.reconciler.run_once()
    assert [(a.act.value, a.tenant_id) for a in actions] == [("deploy", tid)], actions
    assert processes_of(tid) == []  # exactly one runtime: the hub's
    assert hub_reports(clients) == {tid: "running"}
    anna = Customer(second.tg, token, CUSTOMER, "Анна")
    await anna.ask("/start", "Ромашка")
    assert await second.master.reconciler.run_once() == []  # settled

    # The hub process dies: its tenant is crashed, and the reconciler starts the hub again.
    pid = json.loads((clients / "hubs" / "hub-1" / "status.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    await second.wait_for(lambda: _gone(pid))
    assert (await second.backend.status(tid)).state.value == "crashed"
    actions = await second.master.reconciler.run_once()
    assert [a.tenant_id for a in actions] == [tid]
    assert hub_reports(clients) == {tid: "running"}
    await anna.ask("/start", "Ромашка")


async def _gone(pid: int) -> bool:
    return await asyncio.to_thread(_dead, pid)


def _dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state == "Z"


def test_hub_containers_are_named_mounted_and_routed_per_hub(tmp_path: Path) -> None:
    """DEPLOY_BACKEND=docker with hubs (no engine needed here; tests/master/
    test_hub_containers.py runs them): each hub its own name, folder, uid and route."""
    clients = tmp_path / "clients"
    placed = with_docker_hubs(
        DockerBackend("botfleet-client:test", fleet="blue"), clients, webhooks=True
    )
    hubs = placed.hubs.processes
    assert isinstance(hubs, DockerHubs)
    assert hubs._name("hub-3") == "botfleet-blue-hub-3"
    with pytest.raises(DeployError, match="invalid hub name"):
        hubs._name("client_7")  # the hubs' backend never runs a tenant's own container
    folder = (clients / "hubs" / "hub-3").resolve()
    assert hubs._mounts("hub-3") == [
        {"Target": "/hub", "Source": str(folder), "Type": "bind", "ReadOnly": False}
    ]
    env = placed.hubs._hub_spec("hub-3").env
    assert env["HUB_DIR"] == "/hub" and env["HUB_WEBHOOK_LISTEN"] == "0.0.0.0:8080"
    assert set(env) == {"HUB_DIR", "HUB_CAPACITY", "HUB_SCAN_INTERVAL", "HUB_WEBHOOK_LISTEN"}
    if os.geteuid() == 0:  # each hub a uid of its own, never root
        assert hubs._user_for("hub-3", "10001:10001") == f"{HUB_UID_BASE + 3}:{HUB_UID_BASE + 3}"
    assert hubs._user_for("hub-3", "") not in ("0:0", "")
    # A spec cannot make a client container pass for a hub (or the reverse) by its labels.
    labels = placed.dedicated._labels(ClientSpec("client_7", {}, {"botfleet.hub": "hub-3"}))  # type: ignore[attr-defined]
    assert "botfleet.hub" not in labels and labels["botfleet.tenant"] == "client_7"
    # The proxy's routes: a hub's tenants to their own hub's webhook server; stopped ones none.
    for hub, tid, suffix in (("hub-3", "client_7", ".env"), ("hub-4", "client_8", ".env"),
                             ("hub-4", "client_9", ".env.stopped")):  # fmt: skip
        (clients / "hubs" / hub / "tenants").mkdir(parents=True, exist_ok=True)
        (clients / "hubs" / hub / "tenants" / f"{tid}{suffix}").write_text("")
    assert placed.webhook_upstreams() == {
        "client_7": "botfleet-blue-hub-3:8080",
        "client_8": "botfleet-blue-hub-4:8080",
    }
    with pytest.raises(ValueError, match="root="):
        HubBackend(clients, processes=DockerHubs("botfleet-client:test", root=tmp_path / "x"))
