"""`make redis-cli`: redis-cli logged in as the admin user of REDIS_URL (environment or .env).

    python -m scripts.redis_cli [redis-cli arguments...]
    python -m scripts.redis_cli --print      # the command line, without the password

The password goes through REDISCLI_AUTH, never on the command line (where `ps` shows it).
"""

from __future__ import annotations

import os
import shutil
import sys
from urllib.parse import unquote, urlsplit

from core.settings import RedisSettings, load_settings


def command(url: str, extra: list[str]) -> tuple[list[str], dict[str, str]]:
    """redis-cli's argv and the environment entries it needs for `url`."""
    parts = urlsplit(url)
    argv = ["redis-cli"]
    env: dict[str, str] = {}
    if parts.scheme == "unix":
        argv += ["-s", parts.path]
    else:
        argv += ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 6379)]
        if parts.scheme == "rediss":
            argv.append("--tls")
    db = parts.path.lstrip("/") if parts.scheme != "unix" else ""
    if db.isdigit() and db != "0":
        argv += ["-n", db]
    if parts.username:
        argv += ["--user", unquote(parts.username)]
    if parts.password:
        env["REDISCLI_AUTH"] = unquote(parts.password)
    return argv + extra, env


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    url = load_settings(RedisSettings).redis_url.get_secret_value()
    show = "--print" in args
    if show:
        args.remove("--print")
    cli, env = command(url, args)
    if show:
        print(" ".join(cli))
        return 0
    binary = shutil.which("redis-cli")
    if binary is None:
        print(
            "redis-cli is not installed (Debian/Ubuntu: apt-get install redis-tools)",
            file=sys.stderr,
        )
        return 1
    os.execve(binary, [binary, *cli[1:]], {**os.environ, **env})  # noqa: S606 - our own CLI
    return 0  # pragma: no cover - execve does not return


if __name__ == "__main__":
    raise SystemExit(main())
