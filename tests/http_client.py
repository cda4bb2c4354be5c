"""A test client whose requests meet what a served request meets first.

Deployed, every request passes comments_project.fastpath before Django; DRF's
APIClient calls Django's handler directly. ServedAPIClient sends each POST
through the fast path first, so every test that submits through the `api`
fixture proves the fast path accepts, and hands on to Django, exactly what it
should. (GETs keep Django's handler: the cached-read fast path has its own
byte-for-byte tests in tests/test_read_cache.py.)
"""

from __future__ import annotations

from django.core.handlers.wsgi import WSGIRequest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.http import HttpResponse
from django.test import RequestFactory
from rest_framework.test import APIClient, ForceAuthClientHandler

from comments_project.fastpath import FastPathApp


def _never_called(environ, start_response):
    raise AssertionError("the fast path answers or returns None; it never calls Django itself")


class _FastPathFirst(ForceAuthClientHandler):
    """DRF's test handler (force_authenticate keeps working) behind the submit fast path."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.front = FastPathApp(_never_called)
        self.answered: list[str] = []  # paths the fast path answered itself

    def __call__(self, environ: dict) -> HttpResponse:
        if environ["REQUEST_METHOD"] != "POST":
            return super().__call__(environ)
        # As Django's test handler does: the test's transaction keeps its connection.
        request_started.disconnect(close_old_connections)
        request_finished.disconnect(close_old_connections)
        try:
            answer = self.front._submit(environ)
        finally:
            request_started.connect(close_old_connections)
            request_finished.connect(close_old_connections)
        if answer is None:
            return super().__call__(environ)  # with the body the fast path put back
        status, headers, body = answer
        assert not status.startswith("500"), body  # a bug in the fast path: fail loudly
        self.answered.append(environ["PATH_INFO"])
        response = HttpResponse(body, status=int(status.split()[0]))
        for name, value in headers:
            response[name] = value
        response.wsgi_request = WSGIRequest(environ)
        return response


class ServedAPIClient(APIClient):
    """APIClient with the submit fast path in front, as in a served request."""

    def __init__(self, enforce_csrf_checks: bool = False, **defaults) -> None:
        super().__init__(enforce_csrf_checks, **defaults)
        self.handler = _FastPathFirst(enforce_csrf_checks)

    @property
    def fast_answers(self) -> list[str]:
        return self.handler.answered


# --- calling a WSGI app as a server does -------------------------------------------


def wsgi_call(app, environ: dict) -> tuple[str, dict[str, str], bytes]:
    """Call a WSGI app as a server would, keeping the test's database connection open
    (as Django's test client does: a server closes it after each request)."""
    captured = {}

    def start_response(status, headers, exc_info=None):
        captured["status"] = status
        captured["headers"] = headers

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        result = app(environ, start_response)
        body = b"".join(result)
        if hasattr(result, "close"):
            result.close()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return captured["status"], dict(captured["headers"]), body


def environ_for(
    path: str, method: str = "GET", body: bytes = b"", content_type: str = "", **headers: str
) -> dict:
    """The WSGI environ of a request (a POST's body readable once, as a server's)."""
    kwargs = {"content_type": content_type} if content_type else {}
    request = RequestFactory().generic(method, path, body, **kwargs, **headers)
    return dict(request.environ)


def refuse(environ, start_response):
    raise AssertionError(f"the fast path passed {environ['PATH_INFO']} to Django")
