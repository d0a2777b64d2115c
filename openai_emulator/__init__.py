"""A local OpenAI-compatible server for tests and sandbox runs (aiohttp).

The real `openai` SDK reaches it through its base URL (`OpenAIEmulator.base_url`, ends in
`/v1`). Each endpoint answers from a queue a test scripts — plain answers, tool calls, HTTP
errors (429 with Retry-After, 500…), transcripts — and falls back to a default answer when the
queue is empty. Every request is recorded, so tests can assert on the system prompt, the tools
offered and the tool results sent back.
"""

from openai_emulator.server import (
    ChatRequest,
    OpenAIEmulator,
    ScriptedError,
    ScriptedReply,
    TranscriptionRequest,
)

__all__ = [
    "ChatRequest",
    "OpenAIEmulator",
    "ScriptedError",
    "ScriptedReply",
    "TranscriptionRequest",
]
