"""A hostile client bot for tests/security/test_container_attacks.py, run by ProcessBackend as
`python -m tests.security.hostile_bot`: it reads every /proc/<pid>/environ it can and prints a
`LEAK` line for the master's secrets (ENCRYPTION_KEYS, MASTER_API_TOKEN, a DATABASE_URL or
REDIS_URL that is not its own) or another tenant's environment; names only, never values.
Standard library only, so it runs on any Python 3.11.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def main() -> None:
    """What a hostile client bot would do: read every environment it can."""
    own_pid, own_tenant = os.getpid(), os.environ.get("TENANT_ID", "")
    groups = [g for g in os.getgroups() if g != os.getgid()]
    print(f"probe uid={os.getuid()} gid={os.getgid()} groups={len(groups)}", flush=True)
    print("own env: " + ",".join(sorted(os.environ)), flush=True)
    seen: set[tuple[str, str]] = set()
    while True:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == own_pid:
                continue
            try:
                data = (entry / "environ").read_bytes()
            except OSError:
                continue
            env = dict(item.split(b"=", 1) for item in data.split(b"\0") if b"=" in item)
            tenant = env.get(b"TENANT_ID", b"").decode(errors="replace")
            found = []
            if b"ENCRYPTION_KEYS" in env or b"MASTER_API_TOKEN" in env:
                found.append("the master's secrets")
            for name in (b"DATABASE_URL", b"REDIS_URL"):
                if name in env and env[name].decode(errors="replace") != os.environ.get(
                    name.decode()
                ):
                    found.append(f"another {name.decode()}")
            if tenant and tenant != own_tenant:
                found.append(f"the environment of {tenant}")
            for what in found:
                if (what, entry.name) not in seen:
                    seen.add((what, entry.name))
                    print(f"LEAK pid {entry.name}: {what}", flush=True)
        print("scan done", flush=True)
        time.sleep(0.3)


if __name__ == "__main__":
    main()
