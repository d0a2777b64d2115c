"""`python -m yookassa_emulator`: the YooKassa fake on a local port, for sandbox runs."""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from yookassa_emulator.server import YooKassaFake


async def _serve(args: argparse.Namespace) -> None:
    fake = YooKassaFake(args.shop_id, args.secret_key)
    fake.webhook_url = args.webhook or None
    fake.notify_source = args.notify_source or None
    await fake.start(args.host, args.port)
    print(f"YooKassa fake: YOOKASSA_API_URL={fake.api_url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m yookassa_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    parser.add_argument("--shop-id", default="100500")
    parser.add_argument("--secret-key", default="test_fake_secret")
    parser.add_argument("--webhook", default="", help="sales bot webhook URL for checkout 'Pay'")
    parser.add_argument(
        "--notify-source",
        default="127.0.0.1",
        help="local address notifications leave from ('' = any: in a container)",
    )
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))


if __name__ == "__main__":
    main()
