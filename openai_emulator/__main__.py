"""`python -m openai_emulator [--port 8089]`: a local OpenAI-compatible server for sandbox runs.

Every chat completion answers the `--reply` text (no tool calls), every transcription the
`--transcript` text; any API key is accepted. Point a client bot at it with
OPENAI_BASE_URL=http://127.0.0.1:<port>/v1.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib

from openai_emulator.server import OpenAIEmulator


async def serve(port: int, reply: str, transcript: str) -> None:
    emulator = OpenAIEmulator(api_key=None, default_reply=reply, default_transcript=transcript)
    url = await emulator.start(port=port)
    print(f"OpenAI emulator at {url}", flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await emulator.stop()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m openai_emulator")
    parser.add_argument("--port", type=int, default=8089)
    parser.add_argument("--reply", default="Hello! How can I help you?")
    parser.add_argument("--transcript", default="Hello")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(args.port, args.reply, args.transcript))


if __name__ == "__main__":
    main()
