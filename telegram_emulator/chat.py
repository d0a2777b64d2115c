"""A terminal chat with a bot in the emulator, to play a journey by hand.

    python -m telegram_emulator.chat --token <bot token> [--url http://127.0.0.1:8081] [--user 1001]

Type a message and press Enter to send it. Inline buttons of the bot's messages are numbered:
`:3` presses button 3 of the latest message that has buttons (a link button, shown with ↗,
prints its link to open in a browser: Telegram sends the bot nothing for it). Other commands:
`:contact +79001234567` shares a phone number, `:bot <token>` talks to another bot, `:quit`.
The same chats in a browser: the emulator's own page, e.g. http://127.0.0.1:8081/.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from dataclasses import dataclass, field
from typing import NamedTuple

from telegram_emulator.driver import EmulatorClient, EmulatorControlError, SentMessage


class Button(NamedTuple):
    message_id: int
    text: str
    url: str | None  # a link button: opened, never sent to the bot


@dataclass
class Session:
    client: EmulatorClient
    token: str
    user_id: int
    name: str
    shown: dict[int, int] = field(default_factory=dict)  # message id -> edits already shown
    buttons: list[Button] = field(default_factory=list)


def inline_buttons(message: SentMessage) -> list[list[Button]]:
    rows = (message.reply_markup or {}).get("inline_keyboard") or []
    return [
        [Button(message.message_id, str(b.get("text")), b.get("url") or None) for b in row]
        for row in rows
    ]


def render(message: SentMessage, first_number: int) -> tuple[str, list[Button]]:
    """A bot message as terminal text, its inline buttons numbered from `first_number`
    (link buttons marked ↗)."""
    lines = [f"🤖 {message.plain_text}"]
    rows = inline_buttons(message)
    number = first_number
    for row in rows:
        cells = []
        for button in row:
            cells.append(f"[{number}] {button.text}{' ↗' if button.url else ''}")
            number += 1
        lines.append("   " + "  ".join(cells))
    if message.reply_buttons():
        lines.append(
            "   keyboard: " + " | ".join(t for row in message.reply_buttons() for t in row)
        )
    if message.document:
        lines.append(f"   📎 {message.document.get('file_name', 'document')}")
    return "\n".join(lines), [button for row in rows for button in row]


def parse(line: str) -> tuple[str, str]:
    """`:3` -> ("press", "3"); `:contact +7…` -> ("contact", "+7…"); text -> ("send", text)."""
    stripped = line.strip()
    if stripped.startswith(":") and len(stripped) > 1:
        command, _, rest = stripped[1:].partition(" ")
        if command.isdigit():
            return "press", command
        return command, rest.strip()
    return "send", line.rstrip("\n")


async def show_new(session: Session) -> None:
    for message in await session.client.messages(session.token, session.user_id):
        seen = session.shown.get(message.message_id)
        if message.deleted or seen == len(message.edits):
            continue
        session.shown[message.message_id] = len(message.edits)
        if message.buttons():
            session.buttons = []
        text, buttons = render(message, len(session.buttons) + 1)
        session.buttons += buttons
        print(("✏️ " if seen is not None else "") + text, flush=True)


async def act(session: Session, line: str) -> bool:
    """Carry out one input line; False to quit."""
    command, arg = parse(line)
    if command == "quit":
        return False
    if command == "send" and arg:
        await session.client.send_message(
            session.token, session.user_id, arg, first_name=session.name
        )
    elif command == "press":
        index = int(arg) - 1
        if not 0 <= index < len(session.buttons):
            print(f"no button {arg}")
        else:
            button = session.buttons[index]
            if button.url:
                print(f"🔗 {button.text}: {button.url}  (open it in a browser)", flush=True)
            else:
                await session.client.click(
                    session.token, session.user_id, button.message_id, text=button.text
                )
    elif command == "contact":
        await session.client.send_contact(
            session.token, session.user_id, arg, first_name=session.name
        )
    elif command == "bot":
        session.token, session.shown, session.buttons = arg, {}, []
    else:
        print(__doc__)
    return True


async def main(args: argparse.Namespace) -> None:
    async with EmulatorClient(args.url) as client:
        session = Session(client, args.token, args.user, args.name)
        loop = asyncio.get_running_loop()
        print(f"talking to bot {args.token.split(':')[0]} as user {args.user}; :quit to leave")
        reader = loop.run_in_executor(None, sys.stdin.readline)
        while True:
            done, _ = await asyncio.wait({reader}, timeout=0.3)
            await show_new(session)
            if done:
                line = reader.result()
                try:
                    if not line or not await act(session, line):
                        break
                except EmulatorControlError as exc:  # e.g. a button of a deleted message
                    print(f"emulator: {exc.description}", flush=True)
                await asyncio.sleep(0.3)
                reader = loop.run_in_executor(None, sys.stdin.readline)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m telegram_emulator.chat", description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8081")
    parser.add_argument("--token", required=True)
    parser.add_argument("--user", type=int, default=1001)
    parser.add_argument("--name", default="Owner")
    asyncio.run(main(parser.parse_args()))
