"""Run the emulator standalone: ``python -m telegram_emulator --host 127.0.0.1 --port 8081``.

Besides the Bot API and the control API it serves a chat view for a browser at its root URL
(choose a bot and a user, read and send messages, press inline and reply buttons, open links).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal

from telegram_emulator.server import EmulatorServer

log = logging.getLogger("telegram_emulator")


def _parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m telegram_emulator", description="Local Telegram Bot API emulator"
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8081, help="port (0 = any free port)")
    parser.add_argument(
        "--auto-register",
        action="store_true",
        help="accept any well-formed token without registering it first",
    )
    parser.add_argument(
        "--bot",
        action="append",
        default=[],
        metavar="TOKEN[=USERNAME]",
        help="register a bot at startup (repeatable)",
    )
    parser.add_argument("--access-log", action="store_true", help="log every HTTP request")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


async def _run(args: argparse.Namespace) -> None:
    server = EmulatorServer(auto_register=args.auto_register, access_log=args.access_log)
    for spec in args.bot:
        token, _, username = spec.partition("=")
        server.state.register_bot(token, username or None)
    base_url = await server.start(args.host, args.port)
    log.info("Telegram emulator listening on %s (control API: %s/_emulator/)", base_url, base_url)
    log.info("chat view for a browser: %s/", base_url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        log.info("stopping Telegram emulator")
        await server.stop()


def main(argv: list[str] | None = None) -> None:
    args = _parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    asyncio.run(_run(args))


if __name__ == "__main__":
    main()
