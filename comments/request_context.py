"""What the spam check needs to know about the request that carried a comment."""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


@lru_cache(maxsize=8)
def _trusted(setting: str) -> int | tuple[Network, ...]:
    """COMMENTS_TRUSTED_PROXIES: a number of proxy hops, or the proxies' networks."""
    setting = str(setting).strip()
    if setting.isdigit() or setting == "":
        return int(setting or 0)
    return tuple(
        ipaddress.ip_network(part.strip(), strict=False)
        for part in setting.split(",")
        if part.strip()
    )


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, trusting X-Forwarded-For only through our own proxies.

    With N trusted hops, the N-th address from the right of X-Forwarded-For is
    the one our outermost proxy saw. With networks, addresses are peeled off
    from the right while they belong to a trusted proxy. Anything further left
    was written by the client and is never believed.
    """
    remote = _valid_ip(request.META.get("REMOTE_ADDR", ""))
    trusted = _trusted(str(settings.COMMENTS_TRUSTED_PROXIES))
    if not trusted or remote is None:
        return remote
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if isinstance(trusted, int):
        if len(forwarded) < trusted:
            return remote
        return _valid_ip(forwarded[-trusted]) or remote
    current = remote
    for hop in reversed(forwarded):
        if not any(ipaddress.ip_address(current) in network for network in trusted):
            return current
        candidate = _valid_ip(hop)
        if candidate is None:
            return current
        current = candidate
    return current
