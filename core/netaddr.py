"""Who a request really comes from: the peer, or behind trusted reverse proxies the last
`X-Forwarded-For` hop not added by one of them. The header is read only when the peer itself is
a trusted proxy, so nobody else can claim an address. Used by the sales bot's YooKassa webhook
allowlist (sales_bot/allowlist.py) and the web's per-browser throttling (web/clientip.py)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_address(value: str) -> Address | None:
    """An IP address (brackets allowed, IPv4-mapped IPv6 as IPv4), or None when it is not one."""
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def within(address: Address, networks: Iterable[Network]) -> bool:
    return any(address.version == n.version and address in n for n in networks)


def behind_proxies(
    peer: Address, forwarded_for: str | None, proxies: Iterable[Network]
) -> Address | None:
    """The client: the last `forwarded_for` hop not added by a trusted proxy when `peer` is one,
    else `peer` itself; None when a hop that must be read is not an address."""
    proxies = tuple(proxies)
    if not forwarded_for or not within(peer, proxies):
        return peer
    for hop in reversed(forwarded_for.split(",")):
        address = parse_address(hop)
        if address is None:
            return None
        if not within(address, proxies):
            return address
    return peer
