"""Comparing a plain validator with the DRF serializer it stands in for: the outcome
of each, with every value type, key order, message and error code kept."""

from __future__ import annotations

from typing import Any

from rest_framework import fields
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.serializers import Serializer


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return ("dict", [(key, shape(item)) for key, item in value.items()])
    if isinstance(value, list):
        return ("list", [shape(item) for item in value])
    if isinstance(value, ErrorDetail):
        return ("error", str(value), value.code)
    return (type(value).__name__, value)


def outcome(validate: Any, data: Any) -> tuple[Any, ...]:
    """("valid", data) or ("invalid", errors), or what was raised."""
    try:
        return ("valid", shape(validate(data)))
    except ValidationError as exc:
        return ("invalid", shape(exc.detail))
    except Exception as exc:  # the serializer may raise too: compare that
        return ("raised", type(exc).__name__, str(exc))


def serializer_validation(serializer_class: type[Serializer]) -> Any:
    """The serializer as a validator: validated_data, or its errors raised."""

    def validate(data: Any) -> Any:
        serializer = serializer_class(data=data)
        if serializer.is_valid():
            return serializer.validated_data
        raise ValidationError(serializer.errors)

    return validate


def forbid_drf_fields(monkeypatch: Any) -> None:
    """Make building or copying any DRF field fail the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a DRF field was built")

    monkeypatch.setattr(fields.Field, "__init__", refuse)
    monkeypatch.setattr(fields.Field, "__deepcopy__", refuse)
