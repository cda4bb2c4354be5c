"""CommentListQuerySerializer's validation in plain Python, for the comment list.

The public list is the hottest read path and is mostly answered from the page
cache, so building the serializer (a deep copy of each declared field) was a
large share of a cached hit. `validate_list_query` makes the same checks in the
same order, with the same results, messages and error codes, reading the query
string as DRF's Field.get_value does. tests/test_list_query_parity.py keeps the
two identical; the serializer stays as the documented (OpenAPI) shape.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

from rest_framework import fields as drf_fields
from rest_framework.exceptions import ValidationError

from comments.submit_input import (
    _EMPTY,
    _FIELD_MESSAGES,
    _fail,
    _text,
    integer_in_range,
    require_mapping,
)

LIMIT_MIN = 1
LIMIT_MAX = 100
ORDER_CHOICES = ("oldest", "newest")
CURSOR_MAX_LENGTH = 500

_INVALID_CHOICE = drf_fields.ChoiceField.default_error_messages["invalid_choice"]
# ChoiceField.choice_strings_to_values.
_ORDER_BY_STRING = {str(choice): choice for choice in ORDER_CHOICES}


def validate_list_query(query_params: object) -> dict[str, Any]:
    """`CommentListQuerySerializer(data=query_params).validated_data`, or its
    `.errors` as the `detail` of a raised ValidationError."""
    data = query_params
    require_mapping(data)
    # Form input (a QueryDict): Field.get_value reads the last of repeated keys
    # and, as every field here is optional and not nullable, takes "" as absent.
    html = hasattr(data, "getlist")  # rest_framework.utils.html.is_html_input

    validated: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for name, parse in _PARSERS:
        if html:
            if name not in data:
                continue
            value = data[name]
            if value == "":
                continue
        else:
            value = data.get(name, _EMPTY)
            if value is _EMPTY:
                continue
        try:
            validated[name] = parse(value)
        except ValidationError as exc:
            errors[name] = exc.detail
    if errors:
        raise ValidationError(errors)
    return validated


def _limit(value: Any) -> int:
    """IntegerField(min_value=LIMIT_MIN, max_value=LIMIT_MAX), given a value."""
    if value is None:
        raise _fail(_FIELD_MESSAGES["null"], "null")
    return integer_in_range(value, LIMIT_MIN, LIMIT_MAX)


def _order(value: Any) -> str:
    """ChoiceField(ORDER_CHOICES), given a value."""
    if type(value) is str:
        choice = _ORDER_BY_STRING.get(value)
        if choice is not None:
            return choice
    if value is None:
        raise _fail(_FIELD_MESSAGES["null"], "null")
    if isinstance(value, Enum) and str(value) != str(value.value):
        value = value.value
    try:
        return _ORDER_BY_STRING[str(value)]
    except KeyError:
        raise _fail(_INVALID_CHOICE, "invalid_choice", input=value) from None


def _cursor(value: Any) -> str:
    """CharField(max_length=CURSOR_MAX_LENGTH), given a value (trimmed, not blank)."""
    return _text(value, max_length=CURSOR_MAX_LENGTH, required=False)


_PARSERS: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("limit", _limit),
    ("order", _order),
    ("cursor", _cursor),
)
# The query's parameters, in CommentListQuerySerializer's order (errors are keyed in it).
LIST_QUERY_FIELDS = tuple(name for name, _ in _PARSERS)
