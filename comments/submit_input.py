"""CommentSubmitSerializer's validation in plain Python, for the submit endpoint.

DRF deep-copies every declared field per serializer instance and runs each value
through several layers of generic machinery; on the CPU-bound submit path that
cost more than the checks themselves. `validate_submission` makes the same checks
in the same order, with the same results, messages and error codes. The messages
and the boolean spellings are read from DRF's own field classes and the
validators are Django's, DRF's and ours, so translations and wording stay
DRF's. tests/test_submit_input_parity.py keeps the two identical; the serializer
stays as the documented (OpenAPI) shape of the request.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Mapping
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import (
    EmailValidator,
    MaxLengthValidator,
    MaxValueValidator,
    MinLengthValidator,
    MinValueValidator,
    ProhibitNullCharactersValidator,
)
from rest_framework import fields as drf_fields
from rest_framework import serializers as drf_serializers
from rest_framework.exceptions import ErrorDetail, ValidationError
from rest_framework.fields import get_error_detail
from rest_framework.settings import api_settings
from rest_framework.utils.formatting import lazy_format
from rest_framework.utils.html import is_html_input
from rest_framework.validators import ProhibitSurrogateCharactersValidator

from comments.serializers import (
    BODY_MAX_LENGTH,
    MAX_ID,
    reject_unencodable_text,
    validate_web_url,
)

# Lazy (translated when used), exactly the objects DRF formats.
_FIELD_MESSAGES = drf_fields.Field.default_error_messages
_CHAR_MESSAGES = drf_fields.CharField.default_error_messages
_EMAIL_INVALID = drf_fields.EmailField.default_error_messages["invalid"]
_INTEGER_MESSAGES = drf_fields.IntegerField.default_error_messages
_BOOLEAN_INVALID = drf_fields.BooleanField.default_error_messages["invalid"]
_NOT_A_MAPPING = drf_serializers.Serializer.default_error_messages["invalid"]

_INTEGER_MAX_STRING_LENGTH = drf_fields.IntegerField.MAX_STRING_LENGTH
_INTEGER_DECIMAL_SUFFIX = drf_fields.IntegerField.re_decimal  # "1.0" is 1, "1.2" is not
_TRUE_VALUES = drf_fields.BooleanField.TRUE_VALUES
_FALSE_VALUES = drf_fields.BooleanField.FALSE_VALUES

# Stateless, so shared; each is only called when its cheap pre-check fails, so
# its error (message, code) is the validator's own.
_EMAIL_VALIDATOR = EmailValidator(message=_EMAIL_INVALID)
_PROHIBIT_NULL = ProhibitNullCharactersValidator()
_PROHIBIT_SURROGATES = ProhibitSurrogateCharactersValidator()
_SURROGATE = re.compile("[\ud800-\udfff]")


class _Empty:
    """No value in the request (DRF's `empty`)."""


_EMPTY = _Empty()
_SKIP = object()  # the field is left out of the validated data (DRF's SkipField)

Validator = Callable[[Any], object]


def require_mapping(data: object) -> None:
    """Refuse what is not a mapping as a Serializer refuses it (its errors, its codes)."""
    if isinstance(data, Mapping):
        return
    if data is None:
        # Serializer.errors' own wording for no data (not translated there either).
        detail = ErrorDetail("No data provided", code="null")
    else:
        detail = _NOT_A_MAPPING.format(datatype=type(data).__name__)
    raise ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [detail]}, code="invalid")


def validate_submission(data: object) -> dict[str, Any]:
    """`CommentSubmitSerializer(data=data).validated_data`, or its `.errors` as
    the `detail` of a raised ValidationError."""
    require_mapping(data)
    if is_html_input(data):
        data = _html_form_values(data)

    get = data.get
    validated: dict[str, Any] = {}
    errors: dict[str, Any] = {}
    for name, parse in _PARSERS:
        try:
            value = parse(get(name, _EMPTY))
        except ValidationError as exc:
            errors[name] = exc.detail
        else:
            if value is not _SKIP:
                validated[name] = value
    if errors:
        raise ValidationError(errors)
    return validated


def _fail(message: Any, code: str, **kwargs: Any) -> ValidationError:
    """As Field.fail."""
    return ValidationError(message.format(**kwargs), code=code)


def _collect(validator: Validator, value: Any, errors: list[Any]) -> None:
    """One step of Field.run_validators: every validator's errors are kept."""
    try:
        validator(value)
    except ValidationError as exc:
        if isinstance(exc.detail, dict):
            raise
        errors.extend(exc.detail)
    except DjangoValidationError as exc:
        errors.extend(get_error_detail(exc))


def _text(
    value: Any,
    *,
    max_length: int,
    min_length: int | None = None,
    required: bool = True,
    allow_null: bool = False,
    allow_blank: bool = False,
    invalid_message: Any = _CHAR_MESSAGES["invalid"],
    validators_first: tuple[Validator, ...] = (),
    validators_last: tuple[Validator, ...] = (),
) -> Any:
    """CharField.run_validation (trim_whitespace on). `validators_first` are those
    given to the field (they run before its length checks), `validators_last`
    those appended by subclasses (TextField, EmailField)."""
    if value is _EMPTY:
        if required:
            raise _fail(_FIELD_MESSAGES["required"], "required")
        return _SKIP
    if value is None:
        if allow_null:
            return None
        raise _fail(_FIELD_MESSAGES["null"], "null")
    # Blank is tested before the type, as DRF does (so "  " is blank, not invalid).
    text = str(value).strip()
    if value == "" or text == "":
        if allow_blank:
            return ""
        raise _fail(_CHAR_MESSAGES["blank"], "blank")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _fail(invalid_message, "invalid")

    errors: list[Any] = []
    for validator in validators_first:
        _collect(validator, text, errors)
    if len(text) > max_length:
        message = lazy_format(_CHAR_MESSAGES["max_length"], max_length=max_length)
        _collect(MaxLengthValidator(max_length, message=message), text, errors)
    if min_length is not None and len(text) < min_length:
        message = lazy_format(_CHAR_MESSAGES["min_length"], min_length=min_length)
        _collect(MinLengthValidator(min_length, message=message), text, errors)
    if "\x00" in text:
        _collect(_PROHIBIT_NULL, text, errors)
    if not text.isascii() and _SURROGATE.search(text):
        _collect(_PROHIBIT_SURROGATES, text, errors)
    for validator in validators_last:
        _collect(validator, text, errors)
    if errors:
        raise ValidationError(errors)
    return text


def _author_name(value: Any) -> Any:
    return _text(value, min_length=1, max_length=100, validators_last=(reject_unencodable_text,))


def _author_email(value: Any) -> Any:
    email = _text(
        value,
        max_length=254,
        invalid_message=_EMAIL_INVALID,
        validators_last=(_EMAIL_VALIDATOR,),
    )
    return email.lower()  # CommentSubmitSerializer.validate_author_email


def _author_url(value: Any) -> Any:
    url = _text(
        value,
        max_length=200,
        required=False,
        allow_null=True,
        allow_blank=True,
        validators_first=(validate_web_url,),
        validators_last=(reject_unencodable_text,),
    )
    if url is _SKIP:
        return _SKIP
    return url or ""  # CommentSubmitSerializer.validate_author_url


def _body(value: Any) -> Any:
    return _text(
        value,
        min_length=1,
        max_length=BODY_MAX_LENGTH,
        validators_last=(reject_unencodable_text,),
    )


def _form_token(value: Any) -> Any:
    return _text(value, max_length=300, required=False, allow_blank=True)


def _website(value: Any) -> Any:
    return _text(value, max_length=500, required=False, allow_blank=True)


def _parent(value: Any) -> Any:
    """IntegerField(required=False, allow_null=True, min_value=1, max_value=MAX_ID)."""
    if value is _EMPTY:
        return _SKIP
    if value is None:
        return None
    return integer_in_range(value, 1, MAX_ID)


def integer_in_range(value: Any, minimum: int, maximum: int) -> int:
    """IntegerField(min_value=minimum, max_value=maximum) given a value that is not
    null: DRF's parsing ("1.0" is 1, "1.2" is not), its messages and codes."""
    if type(value) is str and value.isdecimal() and len(value) <= 3:
        number = int(value)  # the usual "50": nothing for the regex to strip
    else:
        if isinstance(value, str) and len(value) > _INTEGER_MAX_STRING_LENGTH:
            raise _fail(_INTEGER_MESSAGES["max_string_length"], "max_string_length")
        try:
            number = int(_INTEGER_DECIMAL_SUFFIX.sub("", str(value)))
        except (ValueError, TypeError):
            raise _fail(_INTEGER_MESSAGES["invalid"], "invalid") from None
    if minimum <= number <= maximum:
        return number
    errors: list[Any] = []
    if number > maximum:
        message = lazy_format(_INTEGER_MESSAGES["max_value"], max_value=maximum)
        _collect(MaxValueValidator(maximum, message=message), number, errors)
    if number < minimum:
        message = lazy_format(_INTEGER_MESSAGES["min_value"], min_value=minimum)
        _collect(MinValueValidator(minimum, message=message), number, errors)
    raise ValidationError(errors)


def _notify_replies(value: Any) -> Any:
    """BooleanField(default=False): no null, DRF's true/false spellings."""
    if value is _EMPTY:
        return False
    if value is None:
        raise _fail(_FIELD_MESSAGES["null"], "null")
    with contextlib.suppress(TypeError):  # unhashable (a list, a dict)
        key = value.lower() if isinstance(value, str) else value
        if key in _TRUE_VALUES:
            return True
        if key in _FALSE_VALUES:
            return False
    raise _fail(_BOOLEAN_INVALID, "invalid", input=value)


_PARSERS: tuple[tuple[str, Callable[[Any], Any]], ...] = (
    ("author_name", _author_name),
    ("author_email", _author_email),
    ("author_url", _author_url),
    ("body", _body),
    ("parent", _parent),
    ("form_token", _form_token),
    ("website", _website),
    ("notify_replies", _notify_replies),
)
# The request's fields, in CommentSubmitSerializer's order (errors are keyed in it).
SUBMISSION_FIELDS = tuple(name for name, _ in _PARSERS)

# Field.get_value for form input: (required, allow_null, allow_blank, value when absent).
_HTML_RULES: dict[str, tuple[bool, bool, bool, Any]] = {
    "author_name": (True, False, False, _EMPTY),
    "author_email": (True, False, False, _EMPTY),
    "author_url": (False, True, True, _EMPTY),
    "body": (True, False, False, _EMPTY),
    "parent": (False, True, False, _EMPTY),
    "form_token": (False, False, True, _EMPTY),
    "website": (False, False, True, _EMPTY),
    "notify_replies": (False, False, False, False),  # BooleanField's default_empty_html
}


def _html_form_values(data: Mapping[str, Any]) -> dict[str, Any]:
    """The values DRF's Field.get_value reads from form input (a QueryDict): the
    last of repeated keys, and "" taken as null or as absent where allowed. The
    JSON-only API can still get one: an empty body sent as a form gives an empty
    QueryDict."""
    values: dict[str, Any] = {}
    for name, (required, allow_null, allow_blank, absent) in _HTML_RULES.items():
        if name not in data:
            value = absent
        else:
            value = data[name]
            if value == "" and allow_null:
                value = "" if allow_blank else None
            elif value == "" and not required:
                value = "" if allow_blank else _EMPTY
        if value is not _EMPTY:
            values[name] = value
    return values
