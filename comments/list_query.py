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

from django.core.validators import MaxValueValidator, MinValueValidator
from rest_framework import fields as drf_fields
from rest_framework.exceptions import ValidationError
from rest_framework.utils.formatting import lazy_format

from comments.submit_input import (
    _EMPTY,
    _FIELD_MESSAGES,
    _INTEGER_DECIMAL_SUFFIX,
    _INTEGER_MAX_STRING_LENGTH,
    _INTEGER_MESSAGES,
    _collect,
    _fail,
    _text,
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
    if type(value) is str and value.isdecimal() and len(value) <= 3:
        number = int(value)  # the usual "50": nothing for the regex to strip
    else:
        if isinstance(value, str) and len(value) > _INTEGER_MAX_STRING_LENGTH:
            raise _fail(_INTEGER_MESSAGES["max_string_length"], "max_string_length")
        try:
            number = int(_INTEGER_DECIMAL_SUFFIX.sub("", str(value)))
        except (ValueError, TypeError):
            raise _fail(_INTEGER_MESSAGES["invalid"], "invalid") from None
    if LIMIT_MIN <= number <= LIMIT_MAX:
        return number
    errors: list[Any] = []
    if number > LIMIT_MAX:
        message = lazy_format(_INTEGER_MESSAGES["max_value"], max_value=LIMIT_MAX)
        _collect(MaxValueValidator(LIMIT_MAX, message=message), number, errors)
    if number < LIMIT_MIN:
        message = lazy_format(_INTEGER_MESSAGES["min_value"], min_value=LIMIT_MIN)
        _collect(MinValueValidator(LIMIT_MIN, message=message), number, errors)
    raise ValidationError(errors)


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
