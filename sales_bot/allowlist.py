"""Who may call the webhook: YooKassa's published networks, or the configured override.

The list shipped with the SDK (`SecurityHelper.YOOKASSA_NETWORKS`) is the default;
`YOOKASSA_TRUSTED_NETWORKS` replaces it. Behind a reverse proxy the sender is the last
`X-Forwarded-For` hop not added by a trusted proxy — the header is read only when the peer
itself is a configured trusted proxy, so nobody else can claim an address.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

from core.netaddr import Address, Network, behind_proxies, parse_address, within


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


class SenderPolicy:
    def __init__(self, allowed: Sequence[str], trusted_proxies: Sequence[str] = ()) -> None:
        self.allowed = parse_networks(allowed or yookassa_networks())
        self.proxies = parse_networks(trusted_proxies)

    def sender(self, peer: str | None, forwarded_for: str | None) -> Address | None:
        """The address the request really comes from, or None when it cannot be told."""
        address = parse_address(peer or "")
        if address is None:
            return None
        return behind_proxies(address, forwarded_for, self.proxies)

    def allows(self, address: Address | None) -> bool:
        return address is not None and within(address, self.allowed)
