"""`make logs TENANT=client_001`: the last lines of one client bot's log, from the master's
deploy backend (Docker: the container's log; process: clients/<tenant>/bot.log).

    python -m scripts.logs client_001 [--lines 200] [--follow]

Secrets (bot tokens, DSN passwords) are redacted as in the master's API. `--follow` hands over
to `docker logs -f` or `tail -F`, which print the raw stream.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys

from core.logs import redact
from core.tenant_id import validate_tenant_id
from master_bot.deploy.base import DeployError
from scripts.stats import backend_from_settings


async def tail(tenant_id: str, lines: int) -> int:
    backend, error = backend_from_settings()
    if backend is None:
        print(f"no deploy backend: {error}", file=sys.stderr)
        return 1
    try:
        text = await backend.logs(tenant_id, lines)
    except DeployError as exc:
        print(f"cannot read the log of {tenant_id}: {exc}", file=sys.stderr)
        return 1
    finally:
        await backend.close()
    sys.stdout.write(redact(text))
    return 0


def follow(tenant_id: str, lines: int) -> int:
    backend = os.environ.get("DEPLOY_BACKEND", "docker")
    if backend == "docker":
        binary = shutil.which("docker")
        argv = ["docker", "logs", "--follow", "--tail", str(lines), f"botfleet-{tenant_id}"]
    else:
        binary = shutil.which("tail")
        path = os.path.join(os.environ.get("CLIENTS_DIR", "clients"), tenant_id, "bot.log")
        argv = ["tail", "-n", str(lines), "-F", path]
    if binary is None:
        print(f"{argv[0]} is not installed", file=sys.stderr)
        return 1
    os.execv(binary, argv)  # noqa: S606 - a fixed program, arguments from validated values
    return 0  # pragma: no cover


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.logs", description=__doc__)
    parser.add_argument("tenant", type=validate_tenant_id)
    parser.add_argument("--lines", type=int, default=200)
    parser.add_argument("--follow", action="store_true")
    args = parser.parse_args(argv)
    if args.follow:
        return follow(args.tenant, args.lines)
    return asyncio.run(tail(args.tenant, args.lines))


if __name__ == "__main__":
    raise SystemExit(main())
