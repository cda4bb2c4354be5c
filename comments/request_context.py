"""What the spam check needs to know about the request that carried a comment."""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, trusting X-Forwarded-For only through our own proxies.

    With N trusted proxies, the N-th address from the right of X-Forwarded-For
    is the one our outermost proxy saw; anything left of it is client-supplied.
    """
    remote = _valid_ip(request.META.get("REMOTE_ADDR", ""))
    hops = settings.COMMENTS_TRUSTED_PROXIES
    if hops <= 0:
        return remote
    forwarded = [part for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part.strip() for part in forwarded if part.strip()]
    if len(forwarded) < hops:
        return remote
    return _valid_ip(forwarded[-hops]) or remote
