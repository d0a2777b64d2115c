"""Redis with every whole-database dump: a point-in-time RDB over the replication protocol."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from pathlib import Path

from core.files import PRIVATE_UMASK, ensure_private_dir
from core.logs import redact
from scripts.backup.common import PARTIAL, STAMP_RE, BackupError, stamp

REDIS_PREFIX = "redis"


async def dump_redis(url: str, folder: Path, *, limit: float = 900) -> Path:
    """`redis-cli --rdb` into `<folder>/redis-<stamp>.rdb` (0600, written as `.partial`)."""
    from scripts.redis_cli import command

    if shutil.which("redis-cli") is None:
        raise BackupError("redis-cli is not installed (Debian/Ubuntu: apt-get install redis-tools)")
    ensure_private_dir(folder)
    target = folder / f"{REDIS_PREFIX}-{stamp()}.rdb"
    partial = target.with_name(target.name + PARTIAL)
    argv, env = command(url, ["--rdb", str(partial)])
    process = await asyncio.create_subprocess_exec(
        *argv,
        env={**os.environ, **env},
        umask=PRIVATE_UMASK,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), limit)
    except TimeoutError:
        process.kill()
        await process.wait()
        partial.unlink(missing_ok=True)
        raise BackupError(f"redis-cli --rdb took longer than {limit:.0f} s") from None
    if process.returncode != 0 or not partial.is_file():
        partial.unlink(missing_ok=True)
        reason = redact((err or out).decode(errors="replace").strip(), list(env.values()))
        raise BackupError(f"redis-cli --rdb failed: {reason[-500:]}")
    partial.chmod(0o600)
    partial.rename(target)
    return target


def prune_redis(folder: Path, keep: int) -> list[Path]:
    """Delete all but the `keep` newest `redis-<stamp>.rdb`."""
    if keep <= 0 or not folder.is_dir():
        return []
    pattern = re.compile(rf"^{REDIS_PREFIX}-({STAMP_RE})\.rdb$")
    found = sorted(p.name for p in folder.iterdir() if pattern.match(p.name))
    removed = [folder / name for name in found[:-keep]]
    for path in removed:
        path.unlink()
    return removed
