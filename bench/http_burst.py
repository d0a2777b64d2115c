"""A burst of HTTP POSTs, each on its own fresh connection, all at once — the load generator of
`bench_webhook`, run as its own process so the server under test keeps its event loop.

    python -m bench.http_burst URL [--source 127.0.0.2] < bodies.json   # a JSON list of strings

Prints one JSON object: `started` (wall clock, s, when the first connection was opened) and
`latencies` (s per request, from opening its connection to the last byte of a 200 answer).
Any other status or a dropped connection fails the run.

Raw asyncio, no HTTP client library and no project imports: the sender shares this machine's two
cores with the server it measures, and a client library's own per-request work (hundreds of µs
each, serialised in one event loop) would be counted as the server's latency.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from urllib.parse import urlsplit


class _Exchange(asyncio.Protocol):
    """One request on one connection: write it once connected, finish on the whole answer."""

    def __init__(self, request: bytes) -> None:
        self.request = request
        self.started = time.perf_counter()
        self.buffer = b""
        self.done: asyncio.Future[float] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.WriteTransport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        head, sep, body = self.buffer.partition(b"\r\n\r\n")
        if not sep or self.done.done():
            return
        fields = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line)
        length = int({k.strip().lower(): v for k, v in fields.items()}[b"content-length"])
        if len(body) < length:
            return
        status = int(head.split(b" ", 2)[1])
        if status == 200:
            self.done.set_result(time.perf_counter() - self.started)
        else:
            self.done.set_exception(AssertionError(f"answered {status}: {body[:200]!r}"))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_exception(exc or ConnectionError("closed before the whole answer"))


def build_requests(url: str, bodies: list[bytes]) -> tuple[str, int, list[bytes]]:
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname or not parts.port:
        raise SystemExit(f"http_burst: expected http://host:port/path, got {url!r}")
    head = (
        f"POST {parts.path or '/'} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Content-Type: application/json\r\nConnection: close\r\n"
    )
    requests = [f"{head}Content-Length: {len(b)}\r\n\r\n".encode() + b for b in bodies]
    return parts.hostname, parts.port, requests


async def burst(url: str, bodies: list[bytes], source: str) -> tuple[float, list[float]]:
    """Open one connection per body from `source`, all at once; (wall start, latencies)."""
    host, port, requests = build_requests(url, bodies)
    loop = asyncio.get_running_loop()

    async def one(request: bytes) -> float:
        exchange = _Exchange(request)
        transport, _ = await loop.create_connection(
            lambda: exchange, host, port, local_addr=(source, 0)
        )
        try:
            return await exchange.done
        finally:
            transport.close()

    started = time.time()
    latencies = await asyncio.gather(*(one(r) for r in requests))
    return started, list(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("url")
    parser.add_argument("--source", default="127.0.0.2", help="local address to send from")
    args = parser.parse_args()
    bodies = [b.encode() for b in json.load(sys.stdin)]
    started, latencies = asyncio.run(burst(args.url, bodies, args.source))
    print(json.dumps({"started": started, "latencies": latencies}))


if __name__ == "__main__":
    main()
