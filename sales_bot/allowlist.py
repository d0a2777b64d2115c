"""Who may call the webhook: YooKassa's published networks, or the configured override.

The list shipped with the SDK (`SecurityHelper.YOOKASSA_NETWORKS`) is the default;
`YOOKASSA_TRUSTED_NETWORKS` replaces it. Behind a reverse proxy the sender is the last
`X-Forwarded-For` hop not added by a trusted proxy — the header is read only when the peer
itself is a configured trusted proxy, so nobody else can claim an address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def yookassa_networks() -> list[str]:
    """YooKassa's notification networks as the official SDK lists them."""
    from yookassa.domain.common.security_helper import SecurityHelper

    return list(SecurityHelper.YOOKASSA_NETWORKS)


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    networks = []
    for value in values:
        try:
            networks.append(ipaddress.ip_network(value.strip(), strict=False))
        except ValueError:
            raise ValueError(f"{value!r} is not an IP address or CIDR network") from None
    return tuple(networks)


def _address(value: str) -> Address | None:
    try:
        address = ipaddress.ip_address(value.strip().strip("[]"))
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


class SenderPolicy:
    def __init__(self, allowed: Sequence[str], trusted_proxies: Sequence[str] = ()) -> None:
        self.allowed = parse_networks(allowed or yookassa_networks())
        self.proxies = parse_networks(trusted_proxies)

    @staticmethod
    def _within(address: Address, networks: tuple[Network, ...]) -> bool:
        return any(address.version == n.version and address in n for n in networks)

    def sender(self, peer: str | None, forwarded_for: str | None) -> Address | None:
        """The address the request really comes from, or None when it cannot be told."""
        address = _address(peer or "")
        if address is None or not forwarded_for or not self._within(address, self.proxies):
            return address
        for hop in reversed(forwarded_for.split(",")):
            hop_address = _address(hop)
            if hop_address is None:
                return None
            if not self._within(hop_address, self.proxies):
                return hop_address
        return address

    def allows(self, address: Address | None) -> bool:
        return address is not None and self._within(address, self.allowed)
