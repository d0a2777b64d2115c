"""Finding client-bot processes by their environment, to count them the way `ps` would."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def processes_of(tenant_id: str) -> list[int]:
    """Pids of live (not zombie) processes whose environment has TENANT_ID=<tenant_id>."""
    needle = f"TENANT_ID={tenant_id}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state = stat[stat.rfind(")") + 2 :].split()[0]
        if state != "Z" and needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return sorted(found)


def kill_all(tenant_id: str) -> None:
    import signal

    for pid in processes_of(tenant_id):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
