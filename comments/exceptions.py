"""Map domain errors to HTTP in one place."""

from __future__ import annotations

from typing import Any

from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from comments.moderation import ModerationError


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, ModerationError):
        return Response(
            {"detail": str(exc), "status": exc.current}, status=status.HTTP_409_CONFLICT
        )
    return exception_handler(exc, context)
