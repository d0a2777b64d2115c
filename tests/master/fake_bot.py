"""A stand-in client bot for the master's tests: starts in milliseconds, runs until SIGTERM.

It prints the NAMES of its environment variables (never values), so tests can check that a
client bot receives exactly the environment contract.
"""

from __future__ import annotations

import os
import signal
import sys
import time


def main() -> None:
    print(f"fake bot {os.environ.get('TENANT_ID')} started", flush=True)
    print("env: " + ",".join(sorted(os.environ)), flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if os.environ.get("FAKE_BOT_CRASH"):
        sys.exit(3)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
