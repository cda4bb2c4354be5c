"""validate_submission gives exactly CommentSubmitSerializer's results.

Every case runs through both; the outcomes are compared with types, key order
and error codes (ErrorDetail equality alone ignores order and ReturnDict vs dict).
No database is needed.
"""

from __future__ import annotations

import random
from typing import Any
from urllib.parse import urlencode

import pytest
from django.http import QueryDict
from django.utils import translation
from rest_framework import fields as drf_fields
from rest_framework.exceptions import ValidationError

from comments.serializers import BODY_MAX_LENGTH, MAX_ID, CommentSubmitSerializer
from comments.submit_input import SUBMISSION_FIELDS, validate_submission
from tests.parity import forbid_drf_fields, outcome, serializer_validation

MISSING = object()

VALID = {
    "author_name": "Ada Lovelace",
    "author_email": "ada@example.com",
    "body": "A thoughtful comment.",
}
EMAIL_254 = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 57 + ".com"
EMAIL_255 = "a" * 64 + "@" + "b" * 63 + "." + "c" * 63 + "." + "d" * 58 + ".com"
URL_200 = "https://example.com/" + "p" * 180

# Values every field is tried with: absence, null, blanks and each JSON type.
COMMON_VALUES: list[tuple[str, Any]] = [
    ("missing", MISSING),
    ("null", None),
    ("empty", ""),
    ("spaces", "   "),
    ("whitespace-mix", "\t\n \r"),
    ("unicode-space", "\u2003\u00a0"),
    ("true", True),
    ("false", False),
    ("zero", 0),
    ("one", 1),
    ("negative", -1),
    ("float", 1.5),
    ("float-integral", 1.0),
    ("empty-list", []),
    ("list", ["x"]),
    ("empty-dict", {}),
    ("dict", {"a": 1}),
]

FIELD_VALUES: dict[str, list[Any]] = {
    "author_name": [
        "  Ada  ",
        "\u2003Ada\u00a0",
        "\u200bAda",  # zero-width space is not whitespace to str.strip
        "\x1c",  # a separator str.strip removes: blank
        "A" * 100,
        "A" * 101,
        " " + "A" * 100 + " ",
        "é" * 101,
        "Zoë 👩‍💻",
        "\ud800",
        "a\ud800b\udfff",
        "a\x00b",
        "\x00",
        "a\x00\ud800",
        12345,
        1e20,
        -3.25,
        10**30,
        10**5000,  # str() refuses it: both raise ValueError
    ],
    "author_email": [
        "Ada@Example.COM",
        "  ADA@EXAMPLE.COM ",
        "not-an-email",
        "a@b",
        "a@localhost",
        "a@[127.0.0.1]",
        "user+tag@example.co.uk",
        "user@@example.com",
        '"quoted"@example.com',
        "ada@exämple.com",
        "İnci@Example.com",
        "ÅSA@EXAMPLE.SE",
        EMAIL_254,
        EMAIL_255,
        EMAIL_255.upper(),
        "a" * 400 + "@example.com",
        "ada@example.com\x00",
        "ada@exa\ud800mple.com",
        "ada@example.com\ud800",
        "ada @example.com",
        "ada@example..com",
        12345,
        3.5,
    ],
    "author_url": [
        "https://example.com",
        "http://example.com/path?q=1#frag",
        "HTTPS://EXAMPLE.COM/A",
        "  https://example.com/trimmed  ",
        "ftp://example.com",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "example.com",
        "https://exa mple.com",
        'https://example.com/"onmouseover="x',
        "https://example.com/'x'",
        "https://example.com/<b>",
        "https://example.com/`x`",
        "https://example.com/\u200b",
        "https://example.com/\u202e",
        "https://例え.jp/パス",
        "https://example.com/\ud800",
        "https://example.com/\x00",
        URL_200,
        URL_200 + "q",
        "javascript:" + "a" * 200,
        "https://" + "a" * 300 + ".com",
        "https://localhost:8000/x",
        "https://[::1]/",
        12345,
    ],
    "body": [
        "x" * BODY_MAX_LENGTH,
        "x" * (BODY_MAX_LENGTH + 1),
        "é" * (BODY_MAX_LENGTH + 1),
        " " * 20 + "x" * BODY_MAX_LENGTH + " " * 20,
        "  padded body \n",
        "<script>alert(1)</script>",
        "multi\nline\n\nbody",
        "emoji 😀 and ünïcödé",
        "\ud83d",
        "lone \udc00 surrogate",
        "nul\x00byte",
        "x" * (BODY_MAX_LENGTH + 1) + "\x00\ud800",
        42,
        4.2,
        float("inf"),
    ],
    "parent": [
        1,
        7,
        "1",
        " 7 ",
        "1.0",
        "1.",
        "1.000  ",
        "1.5",
        "1e3",
        1.0,
        1.5,
        1e20,
        float("inf"),
        float("nan"),
        0,
        -1,
        "0",
        "-5",
        MAX_ID,
        MAX_ID + 1,
        str(MAX_ID + 1),
        f"{MAX_ID}.0",
        10**30,
        10**5000,  # too long for str(): DRF's int() parse refuses it
        "1" * 1000,
        "1" * 1001,
        "abc",
        "0x10",
        "1_000",
        "+5",
        "٣",
        "١٠",
    ],
    "form_token": [
        "tok-123",
        "  tok  ",
        "x" * 300,
        "x" * 301,
        "\ud800",
        "tok\x00",
        123,
        4.5,
    ],
    "website": [
        "https://spam.example",
        "  ",
        "x" * 500,
        "x" * 501,
        "é" * 501,
        "\udfff",
        "\x00",
        99,
    ],
    "notify_replies": [
        *("t", "T", "y", "Y", "yes", "Yes", "YES", "true", "True", "TRUE", "on", "On", "1"),
        *("f", "F", "n", "N", "no", "No", "false", "False", "FALSE", "off", "OFF", "0"),
        -0.0,
        0.0,
        *("null", "None", "none", "2", "yes ", " true", "tru", "ja", "∞"),
        2,
        0.5,
        float("nan"),
    ],
}


def payload_with(field: str, value: Any) -> dict[str, Any]:
    payload = dict(VALID)
    if value is MISSING:
        payload.pop(field, None)
    else:
        payload[field] = value
    return payload


def _field_cases() -> list[Any]:
    cases = []
    for field in SUBMISSION_FIELDS:
        for label, value in COMMON_VALUES:
            cases.append(pytest.param(payload_with(field, value), id=f"{field}-{label}"))
        for index, value in enumerate(FIELD_VALUES[field]):
            cases.append(pytest.param(payload_with(field, value), id=f"{field}-{index}"))
    return cases


WHOLE_PAYLOADS = [
    pytest.param(VALID, id="minimal-valid"),
    pytest.param(
        {
            **VALID,
            "author_url": "https://ada.example/",
            "parent": 3,
            "form_token": "token",
            "website": "",
            "notify_replies": True,
        },
        id="every-field-valid",
    ),
    pytest.param(
        {**VALID, "unknown": 1, "id": 5, "status": "published", "author_ip": "1.2.3.4"},
        id="extra-keys-ignored",
    ),
    pytest.param({}, id="empty-object"),
    pytest.param({field: None for field in SUBMISSION_FIELDS}, id="all-null"),
    pytest.param({field: "" for field in SUBMISSION_FIELDS}, id="all-empty"),
    pytest.param({field: [] for field in SUBMISSION_FIELDS}, id="all-lists"),
    pytest.param(
        {
            "author_name": "A" * 101,
            "author_email": "nope",
            "author_url": "javascript:x",
            "body": "",
            "parent": 0,
            "form_token": "x" * 301,
            "website": {},
            "notify_replies": "maybe",
        },
        id="every-field-invalid",
    ),
    pytest.param([], id="body-empty-list"),
    pytest.param([VALID], id="body-list"),
    pytest.param("text", id="body-string"),
    pytest.param("", id="body-empty-string"),
    pytest.param(3, id="body-int"),
    pytest.param(1.5, id="body-float"),
    pytest.param(True, id="body-bool"),
    pytest.param(None, id="body-null"),
]


by_serializer = serializer_validation(CommentSubmitSerializer)


def assert_same_outcome(data: Any) -> tuple[str, Any]:
    expected = outcome(by_serializer, data)
    assert outcome(validate_submission, data) == expected
    return expected


@pytest.mark.parametrize("data", _field_cases() + WHOLE_PAYLOADS)
def test_validator_matches_the_serializer_for_each_case(data: Any) -> None:
    assert_same_outcome(data)


def test_the_case_table_covers_valid_and_invalid_outcomes() -> None:
    results = [outcome(by_serializer, case.values[0]) for case in _field_cases() + WHOLE_PAYLOADS]
    assert len(results) > 300
    assert sum(result[0] == "valid" for result in results) > 80
    assert sum(result[0] == "invalid" for result in results) > 150


def test_valid_submission_is_trimmed_typed_and_defaulted() -> None:
    data = validate_submission(
        {
            "author_name": "  Ada ",
            "author_email": "Ada@Example.COM",
            "author_url": None,
            "body": 42,
            "parent": "3.0",
            "notify_replies": "Yes",
        }
    )
    assert data == {
        "author_name": "Ada",
        "author_email": "ada@example.com",
        "author_url": "",
        "body": "42",
        "parent": 3,
        "notify_replies": True,
    }
    assert "form_token" not in validate_submission(VALID)
    assert validate_submission(VALID)["notify_replies"] is False


def test_non_object_body_is_refused_with_the_serializers_error() -> None:
    with pytest.raises(ValidationError) as caught:
        validate_submission([1])
    assert caught.value.detail == {
        "non_field_errors": ["Invalid data. Expected a dictionary, but got list."]
    }
    assert caught.value.detail["non_field_errors"][0].code == "invalid"
    assert assert_same_outcome(None)[1] == (
        "dict",
        [("non_field_errors", ("list", [("error", "No data provided", "null")]))],
    )


def test_every_error_of_a_field_is_reported_in_the_serializers_order() -> None:
    expected = assert_same_outcome(payload_with("body", "x" * (BODY_MAX_LENGTH + 1) + "\x00\ud800"))
    codes = [code for _, _, code in dict(expected[1][1])["body"][1]]
    assert codes == [
        "max_length",
        "null_characters_not_allowed",
        "surrogate_characters_not_allowed",
        "invalid",
    ]


FORM_BODIES = [
    "",
    urlencode(VALID),
    urlencode({**VALID, "parent": "", "author_url": "", "form_token": "", "website": ""}),
    urlencode({**VALID, "notify_replies": ""}),
    urlencode({**VALID, "notify_replies": "on", "parent": "4"}),
    urlencode({**VALID, "author_name": ""}),
    urlencode([*VALID.items(), ("author_name", "Second"), ("parent", "2"), ("parent", "x")]),
]


@pytest.mark.parametrize("body", FORM_BODIES)
def test_form_input_is_read_as_the_serializer_reads_it(body: str) -> None:
    """An empty body sent as a form reaches the JSON-only view as an empty QueryDict."""
    assert_same_outcome(QueryDict(body))


def test_random_combinations_match_the_serializer() -> None:
    rng = random.Random(20240611)
    pools = {
        field: [value for _, value in COMMON_VALUES] + FIELD_VALUES[field] + [VALID.get(field)]
        for field in SUBMISSION_FIELDS
    }
    for _ in range(400):
        data: dict[str, Any] = {}
        for field, pool in pools.items():
            value = rng.choice(pool)
            if value is not MISSING and not (value is None and rng.random() < 0.5):
                data[field] = value
        assert_same_outcome(data)


@pytest.mark.parametrize("language", ["fr", "de"])
def test_messages_follow_the_active_language_like_the_serializer(language: str) -> None:
    invalid = {
        "author_email": "nope",
        "author_url": "ftp://x",
        "body": "x" * (BODY_MAX_LENGTH + 1),
        "parent": 0,
        "notify_replies": [],
    }
    with translation.override(language):
        translated = assert_same_outcome(invalid)
        assert_same_outcome([])
    assert translated != outcome(by_serializer, invalid)


def test_validation_instantiates_no_drf_field(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_drf_fields(monkeypatch)
    validate_submission(dict(VALID, parent=2, author_url="https://x.example", website=""))
    with pytest.raises(ValidationError):
        validate_submission({"author_name": None, "parent": "x", "notify_replies": "?"})


def _declaration(field: drf_fields.Field) -> tuple[Any, ...]:
    return (
        type(field).__name__,
        field.required,
        field.allow_null,
        getattr(field, "allow_blank", None),
        getattr(field, "trim_whitespace", None),
        None if field.default is drf_fields.empty else field.default,
        [getattr(v, "__name__", None) or type(v).__name__ for v in field.validators],
        [getattr(v, "limit_value", None) for v in field.validators],
        sorted(field.error_messages),
    )


def test_serializer_declaration_is_the_one_the_validator_copies() -> None:
    """Changing CommentSubmitSerializer's fields needs the same change in
    comments/submit_input.py (then update this table)."""
    declared = {name: _declaration(f) for name, f in CommentSubmitSerializer().fields.items()}
    char = ["blank", "invalid", "max_length", "min_length", "null", "required"]
    plain = ["MaxLengthValidator", "ProhibitNullCharactersValidator"]
    plain += ["ProhibitSurrogateCharactersValidator"]
    text = ["MaxLengthValidator", "MinLengthValidator", "ProhibitNullCharactersValidator"]
    text += ["ProhibitSurrogateCharactersValidator", "reject_unencodable_text"]
    url = ["validate_web_url", *plain, "reject_unencodable_text"]
    integer = ["invalid", "max_string_length", "max_value", "min_value", "null", "required"]
    assert tuple(declared) == SUBMISSION_FIELDS
    assert declared == {
        "author_name": ("TextField", True, False, False, True, None, text,
                        [100, 1, None, None, None], char),
        "author_email": ("EmailField", True, False, False, True, None,
                         [*plain, "EmailValidator"], [254, None, None, None], char),
        "author_url": ("TextField", False, True, True, True, None, url,
                       [None, 200, None, None, None], char),
        "body": ("TextField", True, False, False, True, None, text,
                 [BODY_MAX_LENGTH, 1, None, None, None], char),
        "parent": ("IntegerField", False, True, None, None, None,
                   ["MaxValueValidator", "MinValueValidator"], [MAX_ID, 1], integer),
        "form_token": ("CharField", False, False, True, True, None, plain,
                       [300, None, None], char),
        "website": ("CharField", False, False, True, True, None, plain, [500, None, None], char),
        "notify_replies": ("BooleanField", False, False, None, None, False, [], [],
                           ["invalid", "null", "required"]),
    }  # fmt: skip
