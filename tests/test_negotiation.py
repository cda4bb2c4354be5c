"""JsonFirstNegotiation picks exactly the renderer and media type DRF's own
negotiation picks, for every kind of Accept header and format override."""

from __future__ import annotations

import pytest
from django.http import Http404
from rest_framework.exceptions import NotAcceptable
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BrowsableAPIRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from comments_project.negotiation import JsonFirstNegotiation

ACCEPTS = [
    None,
    "",
    "*/*",
    "application/json",
    "application/json; indent=4",
    "text/html",
    "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "application/*",
    "text/plain",
    "application/json, text/html",
    "image/png",
]
RENDERER_SETS = [[JSONRenderer()], [JSONRenderer(), BrowsableAPIRenderer()]]


def outcome(negotiation, request, renderers, suffix):
    try:
        renderer, media_type = negotiation.select_renderer(request, renderers, suffix)
    except NotAcceptable as exc:
        return ("not acceptable", str(exc.detail))
    except Http404:  # a format no renderer has
        return ("not found",)
    return (type(renderer), media_type)


@pytest.mark.parametrize("renderers", RENDERER_SETS, ids=["json", "json+browsable"])
@pytest.mark.parametrize("query", ["", "?format=json", "?format=api", "?format=xml"])
@pytest.mark.parametrize("suffix", [None, "json", "api"])
@pytest.mark.parametrize("accept", ACCEPTS)
def test_the_fast_negotiation_answers_as_drf_does(renderers, query, suffix, accept):
    headers = {} if accept is None else {"HTTP_ACCEPT": accept}
    request = Request(APIRequestFactory().get("/api/v1/articles/" + query, **headers))
    assert outcome(JsonFirstNegotiation(), request, renderers, suffix) == outcome(
        DefaultContentNegotiation(), request, renderers, suffix
    )
