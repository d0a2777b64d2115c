"""Who a request comes from, for throttling: the peer, or behind a reverse proxy the last
`X-Forwarded-For` hop not added by a trusted proxy (WEB_TRUSTED_PROXIES). The header is read only
when the peer itself is a trusted proxy, so nobody else can claim an address; without this,
every browser behind the proxy would share the proxy's address and its login limit."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def _address(value: str) -> Address | None:
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class ClientAddress:
    def __init__(self, trusted_proxies: Iterable[str]) -> None:
        self.proxies = tuple(ipaddress.ip_network(n, strict=False) for n in trusted_proxies)

    def _trusted(self, address: Address) -> bool:
        return any(address.version == n.version and address in n for n in self.proxies)

    def of(self, peer: str | None, forwarded_for: str | None) -> str:
        address = _address(peer or "")
        if address is None:
            return peer or "unknown"
        if not forwarded_for or not self._trusted(address):
            return str(address)
        for hop in reversed(forwarded_for.split(",")):
            hop_address = _address(hop)
            if hop_address is None:
                return str(address)  # a malformed hop: the proxy's own address, never a claim
            if not self._trusted(hop_address):
                return str(hop_address)
        return str(address)
