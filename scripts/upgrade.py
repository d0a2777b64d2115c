"""Roll a client image over the fleet through the master's REST API, with a progress bar.

python -m scripts.upgrade IMAGE [--no-migrate]     start an upgrade and follow it
python -m scripts.upgrade --follow                 follow the current one
python -m scripts.upgrade --pause | --resume | --rollback   (then follow it)

The master is reached at MASTER_API_URL (default http://127.0.0.1:8000) with MASTER_API_TOKEN,
from the environment or .env. Exit code 0 when the upgrade finished, 1 when it halted (what
failed is printed) or was rolled back, 2 when the master refused the request. Ctrl-C stops
following only: the upgrade goes on in the master (`--follow` again).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from dotenv import dotenv_values
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

ROOT = Path(__file__).resolve().parents[1]
BASE = "/api/v1/upgrades"
ENDED = {"finished": 0, "halted": 1, "rolled_back": 1}


class ApiFailure(Exception):
    def __init__(self, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(f"HTTP {status}: {error.get('code', '')}: {error.get('message', body)}")
        self.status = status


class Master:
    def __init__(self, url: str, token: str, timeout: float = 30.0) -> None:
        self.url = url.rstrip("/")
        self.token = token
        self.timeout = timeout

    def call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the operator's own master
            self.url + path, data=data, method=method
        )
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:  # noqa: S310
                answer: dict[str, Any] = json.load(resp)
                return answer
        except urllib.error.HTTPError as exc:
            try:
                payload: Any = json.load(exc)
            except ValueError:
                payload = exc.reason
            raise ApiFailure(exc.code, payload) from None


def settings() -> tuple[str, str]:
    env = {**dotenv_values(ROOT / ".env"), **os.environ} if (ROOT / ".env").exists() else os.environ
    url = env.get("MASTER_API_URL") or "http://127.0.0.1:8000"
    token = env.get("MASTER_API_TOKEN") or ""
    return url, token


def describe(p: dict[str, Any]) -> str:
    state = p["state"]
    if state == "migrating":
        m = p["migrations"][0] if p["migrations"] else {"done": 0, "total": 0}
        return f"migrations {m['done']}/{m['total']} schemas"
    if state in ("rolling_back", "rolled_back"):
        return f"{state}: {p['rollback']['done']}/{p['rollback']['total']}"
    flight = f", {len(p['in_flight'])} in flight" if p["in_flight"] else ""
    failed = f", {len(p['failed'])} failed" if p["failed"] else ""
    return f"{state} (batch {p['batches']}{flight}{failed})"


def follow(master: Master, console: Console, interval: float) -> int:
    p = master.call("GET", f"{BASE}/current")
    console.print(f"upgrade {p['id']}: {p['previous_image']} -> {p['image']}")
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(describe(p), total=max(1, p["total"]))
        while True:
            if p["state"] in ("migrating",):
                m = p["migrations"][0] if p["migrations"] else {"done": 0, "total": 1}
                bar.update(task, total=max(1, m["total"]), completed=m["done"])
            elif p["state"] in ("rolling_back", "rolled_back"):
                r = p["rollback"]
                bar.update(task, total=max(1, r["total"]), completed=r["done"])
            else:
                bar.update(task, total=max(1, p["total"]), completed=p["done"])
            bar.update(task, description=describe(p))
            if p["state"] in ENDED:
                break
            time.sleep(interval)
            p = master.call("GET", f"{BASE}/current")
    return report(p, console)


def report(p: dict[str, Any], console: Console) -> int:
    state = p["state"]
    if state == "finished":
        console.print(f"finished: {p['done']} of {p['total']} unit(s) on {p['image']}")
    elif state == "rolled_back":
        console.print(f"rolled back: {p['rollback']['done']} unit(s) back on {p['previous_image']}")
    else:
        console.print(f"HALTED: {p['halted']}", style="bold red", markup=False)
        for unit, why in sorted(p["failed"].items()):
            console.print(f"  {unit}: {why}", markup=False)
        for m in p["migrations"]:
            for tid, why in sorted(m["failed"].items()):
                console.print(f"  {tid} (migration on {m['server']}): {why}", markup=False)
        console.print(
            "resume: python -m scripts.upgrade --resume; roll back: python -m scripts.upgrade"
            " --rollback"
        )
    return ENDED[state]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.upgrade", description=__doc__)
    parser.add_argument("image", nargs="?", help="the client image to roll out")
    parser.add_argument("--no-migrate", action="store_true", help="skip tenant migrations")
    action = parser.add_mutually_exclusive_group()
    for name in ("follow", "pause", "resume", "rollback"):
        action.add_argument(f"--{name}", action="store_true")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    args = parser.parse_args(argv)
    url, token = settings()
    if not token:
        print("MASTER_API_TOKEN is not set (environment or .env)", file=sys.stderr)
        return 2
    master = Master(url, token)
    console = Console(stderr=False)
    try:
        if args.image and not (args.follow or args.pause or args.resume or args.rollback):
            master.call("POST", BASE, {"image": args.image, "migrate": not args.no_migrate})
        elif args.pause or args.resume or args.rollback:
            verb = "pause" if args.pause else "resume" if args.resume else "rollback"
            master.call("POST", f"{BASE}/current/{verb}")
            if args.pause:
                console.print("paused: the batch in flight settles, no new batch starts")
                return 0
        elif not args.follow:
            parser.error("give an IMAGE, or --follow/--pause/--resume/--rollback")
        return follow(master, console, args.interval)
    except ApiFailure as exc:
        print(f"the master refused: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cannot reach the master at {url}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\nstopped following; the upgrade goes on (python -m scripts.upgrade --follow)")
        return 130


if __name__ == "__main__":
    sys.exit(main())
