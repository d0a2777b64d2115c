"""make db-backup includes Redis: `redis-cli --rdb` as the admin user of REDIS_URL, a 0600 RDB in
the 0700 backups folder, pruned like the dumps; a Redis that cannot be dumped is a clear error
without its password."""

from __future__ import annotations

import secrets
import stat
from pathlib import Path

import pytest
from redis.asyncio import Redis

from scripts.backup import BackupError, dump_redis, prune_redis
from tests.ops.conftest import Fleet, run_cli


def _files(folder: Path, pattern: str) -> list[Path]:
    return list(folder.glob(pattern))


async def test_the_rdb_holds_the_keys_and_is_private(redis_url: str, tmp_path: Path) -> None:
    key = f"bk{secrets.token_hex(4)}"  # short: stored uncompressed in the RDB
    client = Redis.from_url(redis_url)
    try:
        await client.set(key, "kept", ex=600)
        folder = tmp_path / "backups"
        path = await dump_redis(redis_url, folder)
    finally:
        await client.delete(key)
        await client.aclose()
    assert path.parent == folder and path.name.startswith("redis-") and path.suffix == ".rdb"
    data = path.read_bytes()
    assert data.startswith(b"REDIS") and key.encode() in data
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert not list(folder.glob("*.partial"))


async def test_a_redis_that_refuses_is_an_error_without_the_password(tmp_path: Path) -> None:
    password = f"pw-{secrets.token_hex(8)}"
    with pytest.raises(BackupError) as failed:
        await dump_redis(f"redis://default:{password}@127.0.0.1:9/0", tmp_path / "b", limit=30)
    assert "redis-cli --rdb failed" in str(failed.value)
    assert password not in str(failed.value)
    assert not list((tmp_path / "b").iterdir())


def test_prune_keeps_the_newest(tmp_path: Path) -> None:
    names = [f"redis-2030010{i}T000000000000Z.rdb" for i in range(1, 6)]
    for name in [*names, "botfleet-20300101T000000000000Z.dump"]:
        (tmp_path / name).write_bytes(b"x")
    removed = prune_redis(tmp_path, 2)
    assert sorted(p.name for p in removed) == names[:3]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "botfleet-20300101T000000000000Z.dump",
        *names[3:],
    ]


async def test_make_db_backup_dumps_redis_beside_the_database(
    fleet: Fleet, redis_url: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": fleet.dsn, "REDIS_URL": redis_url}
    for _ in range(2):
        done = await run_cli(
            "scripts.backup", "dump", "--dir", str(tmp_path), "--keep", "1", env=env
        )
        assert done.returncode == 0, done.stderr
    assert "redis:  " in done.stdout
    assert len(_files(tmp_path, "redis-*.rdb")) == 1  # pruned like the dumps
    skipped = await run_cli(
        "scripts.backup", "dump", "--dir", str(tmp_path / "pg"), "--no-redis", env=env
    )
    assert skipped.returncode == 0 and not _files(tmp_path / "pg", "*.rdb")
    # Redis down: the database backup still succeeds, and the operator is told.
    down = {**env, "REDIS_URL": "redis://127.0.0.1:9/0"}
    partial = await run_cli("scripts.backup", "dump", "--dir", str(tmp_path / "nr"), env=down)
    assert partial.returncode == 0 and _files(tmp_path / "nr", "*.dump")
    assert "WARNING: Redis not backed up" in partial.stderr
