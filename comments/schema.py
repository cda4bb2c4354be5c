"""OpenAPI post-processing: document the error responses the API really returns.

drf-spectacular documents the success response of each operation; DRF and our
middleware answer errors on top of it. This hook adds them, in DRF's shape
(`{"detail": "..."}` or `{"field": ["message"]}`), to the operations that can
return them, without touching a response an operation already documents:

- 400: every operation (a malformed Content-Length is refused before the view;
  bodies and query parameters are validated);
- 401: every operation (an invalid `Authorization: Token …` header is refused by
  TokenAuthentication even on public endpoints);
- 403: every unsafe method (CSRF for session-authenticated callers, closed
  articles, missing edit tokens, missing permissions) and every operation whose
  view requires more than AllowAny;
- 404: operations with path parameters or page/cursor parameters;
- 409: operations whose domain rule can refuse the current state (CONFLICTS);
- 413 and 415: operations with a request body;
- 429: operations whose view is throttled (with `Retry-After`).

Register it after drf-spectacular's default hook:
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "comments.schema.add_error_responses",
    ],
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework.permissions import AllowAny
from rest_framework.settings import api_settings

ERROR_DETAIL = "ErrorDetail"
VALIDATION_ERRORS = "ValidationErrors"
SAFE_METHODS = {"get", "head", "options"}
BODY_METHODS = {"post", "put", "patch"}
# (method, path regex): the domain can answer 409 (a state change not allowed now,
# or a duplicate comment).
CONFLICTS = (
    ("post", re.compile(r"/articles/\{[^}]+\}/comments/$")),
    ("patch", re.compile(r"/comments/\{[^}]+\}/$")),
    ("post", re.compile(r"/moderation/comments/\{[^}]+\}/(approve|reject|spam)/$")),
)
DESCRIPTIONS = {
    "400": "Invalid input: errors by field, or a detail message.",
    "401": "Authentication credentials were missing where required, or invalid.",
    "403": "Not allowed: missing permission or edit token, closed comments, or CSRF.",
    "404": "No such resource (unpublished comments look the same), or an invalid page.",
    "409": "Not allowed in the resource's current state, or a duplicate.",
    "413": "The request body is larger than the server accepts.",
    "415": "The request body is not JSON.",
    "429": "Too many requests; retry after the number of seconds in Retry-After.",
}
COMPONENTS = {
    ERROR_DETAIL: {
        "type": "object",
        "description": "DRF's error shape for errors not tied to one field.",
        "properties": {"detail": {"type": "string"}},
        "required": ["detail"],
    },
    VALIDATION_ERRORS: {
        "type": "object",
        "description": (
            'DRF\'s validation errors: {"field": ["message", …]} (nested for nested '
            'fields), or {"detail": "message"} when the body could not be parsed.'
        ),
        "additionalProperties": {},
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


_PARAMETER = re.compile(r"\{[^}]*\}")


def _shape(path: str) -> str:
    """A path with its parameter names blanked ({pk} is renamed {id} in the schema)."""
    return _PARAMETER.sub("{}", path)


def _views_by_operation(generator: Any) -> dict[tuple[str, str], Any]:
    """(path shape, method) → (view class, initkwargs), from the generator's endpoints."""
    views = {}
    for path, _regex, method, callback in getattr(generator, "endpoints", None) or []:
        views[(_shape(path), method.lower())] = (
            getattr(callback, "cls", None),
            getattr(callback, "initkwargs", {}) or {},
        )
    return views


def _restricted(view_cls: Any, initkwargs: dict[str, Any], method: str) -> bool:
    """Whether the view's permissions can refuse this method (…OrReadOnly ones never
    refuse a safe method)."""
    classes = initkwargs.get("permission_classes", getattr(view_cls, "permission_classes", None))
    if classes is None:
        classes = api_settings.DEFAULT_PERMISSION_CLASSES
    for cls in classes:
        if cls is AllowAny:
            continue
        if method in SAFE_METHODS and getattr(cls, "__name__", "").endswith("ReadOnly"):
            continue
        return True
    return False


def _throttled(view_cls: Any, initkwargs: dict[str, Any]) -> bool:
    classes = initkwargs.get("throttle_classes", getattr(view_cls, "throttle_classes", None))
    if classes is None:
        classes = api_settings.DEFAULT_THROTTLE_CLASSES
    return bool(classes)


def error_statuses(path: str, method: str, operation: dict, view: tuple | None) -> list[str]:
    view_cls, initkwargs = view if view else (None, {})
    parameters = operation.get("parameters", [])
    statuses = ["400", "401"]
    if method not in SAFE_METHODS or (
        view_cls is not None and _restricted(view_cls, initkwargs, method)
    ):
        statuses.append("403")
    if any(p.get("in") == "path" for p in parameters) or any(
        p.get("in") == "query" and p.get("name") in ("page", "cursor") for p in parameters
    ):
        statuses.append("404")
    if any(method == m and pattern.search(path) for m, pattern in CONFLICTS):
        statuses.append("409")
    if method in BODY_METHODS:
        statuses += ["413", "415"]
    if view_cls is not None and _throttled(view_cls, initkwargs):
        statuses.append("429")
    return statuses


def _response(status: str) -> dict[str, Any]:
    schema = _ref(VALIDATION_ERRORS if status == "400" else ERROR_DETAIL)
    response: dict[str, Any] = {
        "description": DESCRIPTIONS[status],
        "content": {"application/json": {"schema": schema}},
    }
    if status == "429":
        response["headers"] = {
            "Retry-After": {
                "schema": {"type": "integer"},
                "description": "Seconds to wait before trying again.",
            }
        }
    return response


def add_error_responses(result: dict, generator: Any, **kwargs: Any) -> dict:
    """drf-spectacular POSTPROCESSING_HOOKS entry point."""
    views = _views_by_operation(generator)
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in COMPONENTS.items():
        schemas.setdefault(name, schema)
    for path, operations in result.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            responses = operation["responses"]
            for status in error_statuses(
                path, method, operation, views.get((_shape(path), method))
            ):
                responses.setdefault(status, _response(status))
    return result
