"""A stand-in hub (`python -m client_bot.hub`) for the master's tests: starts in milliseconds.

Like the real hub it reads its tenants' contracts from HUB_DIR/tenants/<id>.env and reports in
HUB_DIR/status.json: a tenant is "starting" until its getMe answered (against the
TELEGRAM_API_URL of its contract), then "running"; "token_refused" when Telegram refuses the
token. It runs until SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def read_env(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition("=")
        env[key] = value[1:-1].replace("\\'", "'").replace("\\\\", "\\")
    return env


def get_me(env: dict[str, str]) -> str:
    url = f"{env['TELEGRAM_API_URL'].rstrip('/')}/bot{env['BOT_TOKEN']}/getMe"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:  # noqa: S310 - the emulator
            return "running" if json.load(resp).get("ok") else "starting"
    except urllib.error.HTTPError as exc:
        return "token_refused" if exc.code in (401, 404) else "starting"
    except OSError:
        return "starting"


def main() -> None:
    folder = Path(os.environ["HUB_DIR"])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    states: dict[str, str] = {}
    while True:
        files = {p.name.removesuffix(".env"): p for p in (folder / "tenants").glob("*.env")}
        states = {tid: s for tid, s in states.items() if tid in files}
        for tid, path in files.items():
            if states.get(tid) != "running":
                states[tid] = get_me(read_env(path))
        report = {t: {"state": s, "detail": "", "username": ""} for t, s in states.items()}
        tmp = folder / "status.tmp"
        tmp.write_text(json.dumps({"pid": os.getpid(), "tenants": report}))
        os.replace(tmp, folder / "status.json")
        time.sleep(0.1)


if __name__ == "__main__":
    main()
