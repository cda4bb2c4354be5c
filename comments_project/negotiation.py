"""Content negotiation without parsing the common API client's Accept header."""

from __future__ import annotations

from typing import Any

from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request

# What API clients and the widget send (no header counts as */*, as in DRF; an empty
# one does not); DRF answers each with the first renderer.
_PLAIN_ACCEPT = frozenset({"*/*", "application/json"})


class JsonFirstNegotiation(DefaultContentNegotiation):
    """DRF's negotiation, except that a request accepting anything or JSON gets the
    JSON renderer at once: parsing the header cost 8 % of a public read (issue 7).
    Any other Accept header (a browser asking for the browsable API) and any
    `?format=` take DRF's own path, so the answer is always DRF's."""

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: Any = None
    ) -> tuple[BaseRenderer, str]:
        first = renderers[0]
        if (
            format_suffix is None
            and first.media_type == "application/json"
            and request.META.get("HTTP_ACCEPT", "*/*") in _PLAIN_ACCEPT
            and self.settings.URL_FORMAT_OVERRIDE not in request._request.GET
        ):
            return first, first.media_type
        return super().select_renderer(request, renderers, format_suffix)
