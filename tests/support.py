"""Small helpers shared by the tests: a free port, and waiting for a condition."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable


def free_port() -> int:
    """A free TCP port on 127.0.0.1, for a server a test starts later (or never: "nothing
    listens there")."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


async def wait_until(predicate: Callable[[], Awaitable[bool]], timeout: float = 15.0) -> None:
    """Poll `predicate` every 50 ms until it holds; AssertionError after `timeout` seconds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not await predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)
