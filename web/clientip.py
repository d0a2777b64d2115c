"""Who a request comes from, for throttling: the peer, or behind a reverse proxy the last
`X-Forwarded-For` hop not added by a trusted proxy (WEB_TRUSTED_PROXIES). The header is read only
when the peer itself is a trusted proxy, so nobody else can claim an address; without this,
every browser behind the proxy would share the proxy's address and its login limit."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from core.netaddr import behind_proxies, parse_address


class ClientAddress:
    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self.proxies = tuple(ipaddress.ip_network(n, strict=False) for n in trusted_proxies)

    def of(self, peer: str | None, forwarded_for: str | None) -> str:
        address = parse_address(peer or "")
        if address is None:
            return peer or "unknown"
        client = behind_proxies(address, forwarded_for, self.proxies)
        # A malformed hop: the proxy's own address, never a claim.
        return str(client if client is not None else address)
