"""`make redis-restore`: an RDB of `make db-backup` put back into a Redis volume is what the
compose Redis (appendonly on) serves after a restart — Redis 7 with AOF on would ignore a bare
dump.rdb. Real engine, the stack's Redis image (scripts/docker_engine.sh stack, cached)."""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import time
from pathlib import Path

import docker
import pytest

from tests.docker_support import RUN_ID, RUN_LABEL, run_engine_script

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.engine, pytest.mark.timeout(1800)]


def _redis(api: docker.DockerClient, image: str, volume: str) -> docker.models.containers.Container:
    container = api.containers.run(
        image,
        ["redis-server", "--appendonly", "yes"],
        volumes={volume: {"bind": "/data", "mode": "rw"}},
        network_mode="none",
        labels={RUN_LABEL: RUN_ID},
        detach=True,
    )
    for _ in range(100):
        if container.exec_run(["redis-cli", "ping"]).output.strip() == b"PONG":
            return container
        time.sleep(0.1)
    pytest.fail(f"redis in {image} did not answer: {container.logs()[-500:]!r}", pytrace=False)


def test_an_rdb_restored_into_the_volume_is_served_with_aof_on(tmp_path: Path) -> None:
    exports = run_engine_script("stack", 1800, "the stack's Redis image cannot be built here")
    image = exports["BOTFLEET_REDIS_IMAGE"]
    api = docker.DockerClient(base_url=exports.get("DOCKER_HOST") or None, timeout=120)
    source, target = (f"bf-restore-{secrets.token_hex(4)}" for _ in range(2))
    containers = []
    try:
        # A backup: a key in one Redis, its RDB taken out as `make db-backup` would have it.
        first = _redis(api, image, source)
        containers.append(first)
        assert first.exec_run(["redis-cli", "set", "client_001:fsm:1", "kept"]).exit_code == 0
        assert first.exec_run(["redis-cli", "save"]).exit_code == 0
        bits, _ = first.get_archive("/data/dump.rdb")
        tar = tmp_path / "dump.tar"
        tar.write_bytes(b"".join(bits))
        subprocess.run(["tar", "-xf", str(tar), "-C", str(tmp_path)], check=True)
        rdb = tmp_path / "redis-20300101T000000000000Z.rdb"
        (tmp_path / "dump.rdb").rename(rdb)
        # The volume being restored into has other (newer) data and an AOF of its own.
        second = _redis(api, image, target)
        second.exec_run(["redis-cli", "set", "client_001:fsm:1", "newer"])
        second.exec_run(["redis-cli", "set", "other", "gone after the restore"])
        second.stop(timeout=10)
        second.remove()

        result = subprocess.run(
            [
                "bash",
                str(ROOT / "scripts" / "stack.sh"),
                "restore-redis-volume",
                image,
                target,
                str(rdb),
            ],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert "keys loaded: 1" in result.stderr

        # Started as compose starts it (appendonly on): the backup's data, and it stays.
        third = _redis(api, image, target)
        containers.append(third)
        assert third.exec_run(["redis-cli", "get", "client_001:fsm:1"]).output.strip() == b"kept"
        assert third.exec_run(["redis-cli", "exists", "other"]).output.strip() == b"0"
        third.restart(timeout=10)
        for _ in range(100):
            if third.exec_run(["redis-cli", "ping"]).output.strip() == b"PONG":
                break
            time.sleep(0.1)
        assert third.exec_run(["redis-cli", "get", "client_001:fsm:1"]).output.strip() == b"kept"
    finally:
        for container in containers:
            with contextlib.suppress(docker.errors.APIError):
                container.remove(force=True)
        for name in (source, target):
            with contextlib.suppress(docker.errors.APIError):
                api.volumes.get(name).remove(force=True)
        api.close()
