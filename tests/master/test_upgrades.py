"""Operator-driven fleet upgrades (master_bot/upgrades.py) through the REST API, with real
processes: a "client image" of the process backend is a release's Python interpreter, here a
wrapper that marks its bots with BOTFLEET_RELEASE (and, for the broken release, makes the
stand-in bot exit 3 at start). Real PostgreSQL (tenant migrations first), Redis, the Telegram
emulator, and a real hub process for shared tenants."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from database.roles import owner_role
from master_bot.deploy.docker import DockerBackend
from master_bot.deploy.hub import HUB_RE, HubBackend, PlacedBackend
from master_bot.deploy.process import ProcessBackend
from master_bot.rollout import RolloutPolicy
from master_bot.upgrades import Upgrades
from tests.docker_support import (  # noqa: F401 - pytest fixtures
    DockerEnv,
    fixture_docker_api,
    fixture_docker_env,
    fixture_make_backend,
)
from tests.master.conftest import API_TOKEN, FAKE_BOT, Harness
from tests.master.procs import processes_of

pytestmark = pytest.mark.engine  # shares the Docker Engine: one worker runs these in turn

ROOT = Path(__file__).resolve().parents[2]
FAKE_HUB = "tests.master.fake_hub"
POLICY = RolloutPolicy(first_batch=1, batch_size=2, max_batch=4, settle=0.4, timeout=2.5)


def release(tmp: Path, name: str, *, broken: bool = False) -> str:
    """A release's interpreter: the test's Python behind a wrapper that names the release."""
    path = tmp / f"python-{name}"
    crash = "export FAKE_BOT_CRASH=1\n" if broken else ""
    path.write_text(
        f'#!/bin/sh\nexport BOTFLEET_RELEASE={name}\n{crash}exec {sys.executable} "$@"\n'
    )
    path.chmod(0o755)
    return str(path)


def releases(needle: str) -> list[str]:
    """BOTFLEET_RELEASE of every live process whose environment holds `needle` ("-": none)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            env = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if needle.encode() in env:
            marks = [e for e in env if e.startswith(b"BOTFLEET_RELEASE=")]
            found.append(marks[0].split(b"=", 1)[1].decode() if marks else "-")
    return found


async def provision(harness: Harness, n: int) -> list[str]:
    tids = []
    for _ in range(n):
        reply = await harness.api.provision(await harness.new_bot())
        assert reply.status == 201, reply.body
        tids.append(reply.body["tenant_id"])
    return tids


async def until(harness: Harness, *states: str, timeout: float = 20.0) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    async def done() -> bool:
        reply = await harness.api.call("GET", "/api/v1/upgrades/current")
        assert reply.status == 200, reply.body
        seen.update(reply.body)
        return reply.body["state"] in states

    await harness.wait_for(done, timeout)
    return seen


def fast(harness: Harness) -> None:
    harness.master.upgrades.policy = POLICY
    harness.master.upgrades.poll = 0.1


async def test_upgrade_pause_resume_halt_and_rollback_of_dedicated_bots(
    harness: Harness, tmp_path: Path
) -> None:
    fast(harness)
    tids = await provision(harness, 4)
    v2, broken = release(tmp_path, "v2"), release(tmp_path, "v3", broken=True)
    before = {t: processes_of(t) for t in tids}
    assert all(len(p) == 1 for p in before.values())

    # The reconciler's own rollout (after make up) halted: no upgrade over it.
    harness.master.reconciler.rollout.halted = "batch 1: client_x did not come up"
    reply = await harness.api.call("POST", "/api/v1/upgrades", json={"image": v2})
    assert reply.status == 409 and "make rollback" in reply.body["error"]["message"]
    harness.master.reconciler.rollout.halted = None

    # An image the engine does not have: 422, and nothing touched.
    for image in ("/nonexistent/python", "relative/python", str(tmp_path)):
        reply = await harness.api.call("POST", "/api/v1/upgrades", json={"image": image})
        assert reply.status == 422 and reply.error_code == "unknown_image", reply.body
    reply = await harness.api.call("POST", "/api/v1/upgrades", json={"image": "a b"})
    assert reply.status == 422
    assert (await harness.api.call("GET", "/api/v1/upgrades/current")).status == 404
    assert {t: processes_of(t) for t in tids} == before

    # A schema the migrations refuse halts the upgrade before any bot is touched.
    owner = owner_role(tids[2])
    conn_rows = await harness.fetch("SELECT current_user AS me")
    await harness.fetch(f'ALTER SCHEMA "{tids[2]}" OWNER TO "{conn_rows[0]["me"]}"')
    try:
        reply = await harness.api.call("POST", "/api/v1/upgrades", json={"image": v2})
        assert reply.status == 202, reply.body
        halted = await until(harness, "halted")
        assert "migrations failed on 1 schema(s)" in halted["halted"]
        assert tids[2] in halted["migrations"][0]["failed"]
        assert halted["migrations"][0]["total"] >= 4 and halted["done"] == 0
        assert {t: processes_of(t) for t in tids} == before
        reply = await harness.api.call("POST", "/api/v1/upgrades/current/rollback")
        assert reply.status == 200, reply.body
        assert (await until(harness, "rolled_back"))["rollback"] == {"total": 0, "done": 0}
    finally:
        await harness.fetch(f'ALTER SCHEMA "{tids[2]}" OWNER TO "{owner}"')

    # A good release: paused before the canary, resumed, finished in batches 1, 2, 1.
    reply = await harness.api.call("POST", "/api/v1/upgrades", json={"image": v2})
    assert reply.status == 202 and reply.body["state"] == "migrating", reply.body
    again = await harness.api.call("POST", "/api/v1/upgrades", json={"image": v2})
    assert again.status == 409 and again.error_code == "upgrade_conflict"
    paused = await harness.api.call("POST", "/api/v1/upgrades/current/pause")
    assert paused.status == 200 and paused.body["state"] == "paused", paused.body
    await asyncio.sleep(0.5)
    still = await until(harness, "paused")
    assert still["done"] == 0 and still["in_flight"] == [] and still["total"] == 4
    assert still["migrations"][0]["done"] == still["migrations"][0]["total"]
    resumed = await harness.api.call("POST", "/api/v1/upgrades/current/resume")
    assert resumed.status == 200 and resumed.body["state"] == "running"
    finished = await until(harness, "finished")
    assert finished["done"] == 4 and finished["failed"] == {} and finished["batches"] == 3
    assert finished["previous_image"] == sys.executable and finished["image"] == v2
    for tid in tids:
        assert releases(f"TENANT_ID={tid}") == ["v2"], tid  # one process, on the new release

    # A broken release: the canary does not come up, the rollout halts, the rest keep v2.
    # ... started with `make upgrade` (scripts/upgrade.py): it follows it and exits 1, saying why.
    script = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "scripts.upgrade", broken, "--no-migrate", "--interval", "0.2"),
        env={**os.environ, "MASTER_API_URL": harness.api.base_url, "MASTER_API_TOKEN": API_TOKEN},
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out = (await asyncio.wait_for(script.communicate(), 30))[0].decode()
    assert script.returncode == 1, out
    assert "HALTED: batch 1: 1 bot(s) did not come up healthy" in out, out
    assert f"  {tids[0]}: not settled within" in out, out
    halted = await until(harness, "halted")
    assert list(halted["failed"]) == [tids[0]] and halted["done"] == 0
    assert "1 bot(s) did not come up healthy" in halted["halted"]
    assert "3 bot(s) left on their current version" in halted["halted"]
    for tid in tids[1:]:
        assert releases(f"TENANT_ID={tid}") == ["v2"], tid
    assert (await harness.api.call("POST", "/api/v1/upgrades/current/pause")).status == 409
    back = await harness.api.call("POST", "/api/v1/upgrades/current/rollback")
    assert back.status == 200 and back.body["state"] == "rolling_back"
    done = await until(harness, "rolled_back")
    assert done["rollback"] == {"total": 1, "done": 1} and done["state"] == "rolled_back"
    for tid in tids:
        assert releases(f"TENANT_ID={tid}") == ["v2"], tid
    audit = await harness.fetch(
        "SELECT action FROM control.audit_log WHERE action LIKE 'upgrade.%' ORDER BY id"
    )
    actions = [r["action"] for r in audit]
    assert actions.count("upgrade.halted") == 2 and "upgrade.finished" in actions
    assert actions[-1] == "upgrade.rolled_back"
    await harness.master.upgrades.close()


async def test_a_hub_is_upgraded_as_one_unit_once_its_tenants_answer_getme_again(
    make_harness: Callable[..., Awaitable[Harness]], tmp_path: Path
) -> None:
    clients = tmp_path / "clients"
    hub_processes = ProcessBackend(clients, names=HUB_RE, stop_timeout=5)
    backend = PlacedBackend(
        ProcessBackend(clients, module=FAKE_BOT, stop_timeout=5),
        HubBackend(clients, capacity=4, scan_interval=0.2, processes=hub_processes),
    )
    hub_processes.module = FAKE_HUB  # the real hub: tests/master/test_placement.py
    harness = await make_harness(backend=backend)
    fast(harness)
    tids = await provision(harness, 3)
    for tid in tids[1:]:
        reply = await harness.api.call(
            "POST", f"/api/v1/tenants/{tid}/placement", json={"placement": "shared"}
        )
        assert reply.status == 200, reply.body
    hub_dir = f"HUB_DIR={(clients / 'hubs' / 'hub-1').resolve()}"
    assert releases(hub_dir) == ["-"]
    v2 = release(tmp_path, "v2")
    reply = await harness.api.call("POST", "/api/v1/upgrades", json={"image": v2, "migrate": False})
    assert reply.status == 202 and reply.body["state"] == "running", reply.body
    finished = await until(harness, "finished")
    assert finished["total"] == 2 and finished["done"] == 2, finished  # one bot, one hub
    assert releases(hub_dir) == ["v2"]
    assert releases(f"TENANT_ID={tids[0]}") == ["v2"]
    status = await backend.hubs.hub_status()
    assert {t: e["state"] for t, e in status["hub-1"]["reported"].items()} == {
        tids[1]: "running",
        tids[2]: "running",
    }
    # The reconciler's own rollout was held meanwhile and is free again.
    assert harness.master.reconciler.rollout.held_by is None
    await harness.master.upgrades.close()


async def test_operators_see_one_progress_message_and_roll_back_from_the_halt_alert(
    harness: Harness, tmp_path: Path
) -> None:
    from tests.master.test_operator import open_desk

    fast(harness)
    harness.master.upgrades.policy = RolloutPolicy(settle=0.3, timeout=1.5)
    tids = await provision(harness, 2)
    broken = release(tmp_path, "v3", broken=True)
    async with open_desk(harness) as desk:
        op = desk.op
        reply = await harness.api.call("POST", "/api/v1/upgrades", json={"image": broken})
        assert reply.status == 202, reply.body
        await op.wait("Начато обновление клиентов #1")
        alert = await op.wait("⛔ Обновление ботов остановлено")
        progress = [m for m in await op.messages() if "Обновление #1" in m.plain_text]
        assert len(progress) == 1 and progress[0].edits, [m.describe() for m in progress]
        assert "Готово: 0 из 2 · в работе: 0 · ошибок: 1" in progress[0].plain_text
        assert tids[0] in alert.plain_text
        assert labels_of(alert) == ["▶️ Продолжить", "↩️ Откатить"]
        await op.press(alert, "↩️ Откатить", "Откатываю обновлённых клиентов")
        await op.wait("Состояние: откачено ↩️")
        progress = [m for m in await op.messages() if "Обновление #1" in m.plain_text]
        assert len(progress) == 1 and "Откат: 1 из 1" in progress[0].plain_text
        await op.ask("/upgrade", "Обновление #1")
        # The buttons went with the press: the halt cannot be acted on twice.
        (pressed,) = [m for m in await op.messages() if m.message_id == alert.message_id]
        assert labels_of(pressed) == []
        assert harness.master.upgrades.snapshot().state.value == "rolled_back"
        assert releases(f"TENANT_ID={tids[0]}") == ["-"]  # back on the test's own Python
        assert releases(f"TENANT_ID={tids[1]}") == ["-"]
        await desk.bot.upgrades.drain()
    await harness.master.upgrades.close()


def labels_of(message: Any) -> list[str]:
    return [label for row in message.buttons() for label in row]


async def test_docker_refuses_an_image_the_engine_does_not_have(
    make_harness: Callable[..., Awaitable[Harness]],
    make_backend: Callable[..., DockerBackend],
    docker_env: DockerEnv,
) -> None:
    harness = await make_harness(backend=make_backend())
    fast(harness)
    reply = await harness.api.call(
        "POST", "/api/v1/upgrades", json={"image": f"botfleet-client:absent-{os.getpid()}"}
    )
    assert reply.status == 422 and reply.error_code == "unknown_image", reply.body
    assert "is not on the Docker Engine" in reply.body["error"]["message"]
    assert (await harness.api.call("GET", "/api/v1/upgrades/current")).status == 404
    reply = await harness.api.call(
        "POST", "/api/v1/upgrades", json={"image": docker_env.image, "migrate": False}
    )
    assert reply.status == 202, reply.body
    done = await until(harness, "finished")
    assert done["previous_image"] == docker_env.idle_image and done["total"] == 0
    backend = harness.backend
    assert isinstance(backend, DockerBackend) and backend.image == docker_env.image
    # A master restart runs the upgraded image again, unless CLIENT_IMAGE changed meanwhile.
    backend.image = docker_env.idle_image
    assert Upgrades(harness.master.deps).restore() == docker_env.image
    assert backend.image == docker_env.image
    backend.image = "botfleet-client:configured-later"
    assert Upgrades(harness.master.deps).restore() is None
    assert backend.image == "botfleet-client:configured-later"
    await harness.master.upgrades.close()
