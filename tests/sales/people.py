"""A Telegram user talking to a bot through the emulator: send, click, read (story-style)."""

from __future__ import annotations

import asyncio

from telegram_emulator import EmulatorClient, SentMessage


class Person:
    def __init__(
        self, client: EmulatorClient, token: str, user_id: int, *, language: str | None = None
    ) -> None:
        self.client, self.token, self.id, self.language = client, token, user_id, language

    async def seen(self) -> int:
        return len(await self.client.messages(self.token, self.id))

    async def wait(self, contains: str, *, after: int = 0, timeout: float = 15) -> SentMessage:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            messages = await self.client.messages(self.token, self.id)
            for message in messages[after:]:
                if contains in message.plain_text:
                    return message
            if asyncio.get_running_loop().time() > deadline:
                last = "\n---\n".join(m.plain_text for m in messages[-5:])
                raise AssertionError(f"no message containing {contains!r}; last ones:\n{last}")
            await asyncio.sleep(0.05)

    async def ask(self, text: str, expect: str, *, timeout: float = 15) -> SentMessage:
        before = await self.seen()
        await self.client.send_message(
            self.token, self.id, text, first_name="Owner", language_code=self.language
        )
        return await self.wait(expect, after=before, timeout=timeout)

    async def press(self, message: SentMessage, button: str, expect: str) -> SentMessage:
        before = await self.seen()
        await self.client.click(self.token, self.id, message.message_id, text=button)
        return await self.wait(expect, after=before)

    async def press_for_alert(self, message: SentMessage, button: str) -> str:
        query_id = await self.client.click(self.token, self.id, message.message_id, text=button)
        answer = await self.client.wait_for_callback_answer(self.token, query_id)
        return answer.text or ""
