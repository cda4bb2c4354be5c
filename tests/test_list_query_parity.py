"""validate_list_query gives exactly CommentListQuerySerializer's results.

Every case runs through both; the outcomes are compared with types, key order
and error codes (ErrorDetail equality alone ignores order and codes). The cases
are mostly query strings, read into a QueryDict as the view gets them. No
database is needed.
"""

from __future__ import annotations

import enum
import random
from typing import Any
from urllib.parse import quote

import pytest
from django.http import QueryDict
from django.utils import translation
from rest_framework import fields as drf_fields
from rest_framework.exceptions import ValidationError

from comments.list_query import LIST_QUERY_FIELDS, validate_list_query
from comments.serializers import CommentListQuerySerializer
from tests.parity import forbid_drf_fields, outcome, serializer_validation

LONG_DIGITS = "9" * 1000

QUERY_STRINGS: dict[str, list[str]] = {
    "missing-or-empty": [
        "",
        "&",
        "&&",
        "limit",
        "limit=",
        "order=",
        "cursor=",
        "limit=&order=&cursor=",
        "limit&order&cursor",
    ],
    "whitespace": [
        "limit=%20",
        "limit=+",
        "limit=%09",
        "order=%20",
        "order=++",
        "cursor=%20",
        "cursor=%20%09%0A%0D",
        "cursor=%E2%80%83%C2%A0",  # em space, no-break space: blank once stripped
        "cursor=%E2%80%8B",  # zero-width space is not whitespace to str.strip
        "cursor=%1C",  # a separator str.strip removes
    ],
    "limit": [
        "limit=0",
        "limit=1",
        "limit=50",
        "limit=99",
        "limit=100",
        "limit=101",
        "limit=-1",
        "limit=-0",
        "limit=+5",
        "limit=05",
        "limit=0100",
        "limit=00000000001",
        "limit=1.0",
        "limit=1.",
        "limit=100.0",
        "limit=101.0",
        "limit=0.0",
        "limit=1.000%20%20",
        "limit=1.0%20x",
        "limit=1.5",
        "limit=.5",
        "limit=.0",
        "limit=1e2",
        "limit=1_0",
        "limit=1__0",
        "limit=0x10",
        "limit=abc",
        "limit=%205%20",
        "limit=%095%0A",
        "limit=%205.0%20",
        "limit=5%00",
        "limit=%00",
        "limit=%D9%A5",  # Arabic-Indic five
        "limit=%EF%BC%95",  # fullwidth five
        "limit=%C2%B2",  # superscript two: a digit, not a decimal
        "limit=%ED%A0%80",
        "limit=inf",
        "limit=nan",
        "limit=True",
        "limit=99999999999999999999",
        "limit=-99999999999999999999",
        f"limit={LONG_DIGITS}",
        f"limit={LONG_DIGITS}9",
        f"limit={'0' * 998}50",
        f"limit=5.{'0' * 996}",
        f"limit=5.{'0' * 997}",
    ],
    "order": [
        "order=oldest",
        "order=newest",
        "order=Oldest",
        "order=NEWEST",
        "order=%20newest",
        "order=newest%20",
        "order=random",
        "order=0",
        "order=%00",
        "order=newest%00",
        "order=%ED%A0%80",
        "order=%22quoted%22",
        "order={input}",
        "order=%C3%A9",
    ],
    "cursor": [
        "cursor=abc",
        "cursor=%20abc%20",
        "cursor=cD0yMDI0LTAxLTAx",
        "cursor=a+b",
        "cursor=%2B",
        "cursor=0",
        "cursor=" + "a" * 500,
        "cursor=" + "a" * 501,
        "cursor=%20" + "a" * 500 + "%20",
        "cursor=" + quote("é" * 500),
        "cursor=" + quote("é" * 501),
        "cursor=" + quote("👩‍💻"),
        "cursor=%00",
        "cursor=a%00b",
        "cursor=%ED%A0%80",  # decoded with replacement characters, not a surrogate
        "cursor=%ED%BF%BF%ED%A0%80",
        "cursor=%FF",
        "cursor=" + "a" * 499 + "%ED%A0%80",
        "cursor=" + "a" * 501 + "%00",
    ],
    "repeated": [
        "limit=5&limit=7",
        "limit=5&limit=",
        "limit=&limit=5",
        "limit=abc&limit=5",
        "limit=5&limit=abc",
        "limit=5&limit=0&limit=100",
        "order=oldest&order=newest",
        "order=newest&order=",
        "order=bogus&order=oldest",
        "order=oldest&order=bogus",
        "cursor=a&cursor=b",
        "cursor=a&cursor=",
        "cursor=&cursor=%20",
        "cursor=" + "a" * 501 + "&cursor=ok",
        "limit=5&limit=7&order=newest",
    ],
    "unknown": [
        "foo=bar",
        "page=2&limit=5",
        "Limit=5&ORDER=newest&Cursor=x",
        "limit[]=5",
        "limit%00=5",
        "=5",
        "format=json&limit=5",
    ],
    "combined": [
        "limit=20&order=newest&cursor=abc",
        "cursor=abc&order=oldest&limit=1",
        "limit=0&order=sideways&cursor=" + "x" * 501,
        "cursor=%00&order=&limit=101",
        "limit=abc&order=%20&cursor=%20",
        "limit=-1&limit=100&order=x&order=newest&cursor=&cursor=z",
    ],
}


def _query_cases() -> list[Any]:
    return [
        pytest.param(query, id=f"{group}-{index}")
        for group, queries in QUERY_STRINGS.items()
        for index, query in enumerate(queries)
    ]


def _mutated(pairs: list[tuple[str, list[Any]]]) -> QueryDict:
    """A QueryDict no query string gives (set by code): empty lists, non-strings."""
    query = QueryDict(mutable=True)
    for key, values in pairs:
        query.setlist(key, values)
    return query


class Order(enum.Enum):
    NEWEST = "newest"


class MixedOrder(str, enum.Enum):  # noqa: UP042 (its str() is "MixedOrder.OLDEST")
    OLDEST = "oldest"


class StrOrder(enum.StrEnum):
    OLDEST = "oldest"


QUERY_DICTS = [
    pytest.param(QueryDict("cursor=\ud800"), id="cursor-lone-surrogate"),
    pytest.param(QueryDict("cursor=a\udfffb&limit=\ud800"), id="surrogates-in-two"),
    pytest.param(QueryDict("order=\ud800"), id="order-surrogate"),
    pytest.param(QueryDict("cursor=" + "a" * 501 + "\x00\ud800"), id="cursor-every-error"),
    pytest.param(QueryDict(b"limit=5&cursor=%C3%A9"), id="bytes-query"),
    pytest.param(QueryDict("limit=5", mutable=True), id="mutable"),
    pytest.param(_mutated([("limit", []), ("order", []), ("cursor", [])]), id="empty-lists"),
    pytest.param(_mutated([("limit", [None]), ("order", [None])]), id="null-values"),
    pytest.param(_mutated([("cursor", [None])]), id="null-cursor"),
    pytest.param(_mutated([("limit", [5]), ("order", ["newest"]), ("cursor", [7])]), id="ints"),
    pytest.param(_mutated([("limit", [5.0]), ("cursor", [1.5])]), id="floats"),
    pytest.param(_mutated([("limit", [True]), ("cursor", [False])]), id="bools"),
    pytest.param(_mutated([("order", [Order.NEWEST])]), id="enum"),
    pytest.param(_mutated([("order", [MixedOrder.OLDEST])]), id="str-mixin-enum"),
    pytest.param(_mutated([("order", [StrOrder.OLDEST])]), id="str-enum"),
    pytest.param(_mutated([("cursor", [["x"]]), ("order", [["newest"]])]), id="lists"),
]

# Not what the view passes, but the validator takes any data as the serializer does.
OTHER_DATA = [
    pytest.param({}, id="dict-empty"),
    pytest.param({"limit": 5, "order": "newest", "cursor": "c"}, id="dict-valid"),
    pytest.param({"limit": "", "order": "", "cursor": ""}, id="dict-empty-strings"),
    pytest.param({"limit": None, "order": None, "cursor": None}, id="dict-nulls"),
    pytest.param({"limit": "  ", "order": " ", "cursor": " "}, id="dict-spaces"),
    pytest.param({"limit": 1.5, "order": 1, "cursor": 2.5}, id="dict-numbers"),
    pytest.param({"limit": 100.0, "order": True, "cursor": True}, id="dict-bools"),
    pytest.param({"limit": 10**30, "order": {}, "cursor": []}, id="dict-containers"),
    pytest.param({"limit": -(10**5000)}, id="dict-int-too-long-for-str"),
    pytest.param({"limit": float("inf"), "order": Order.NEWEST}, id="dict-inf-enum"),
    pytest.param({"limit": [5], "order": ["oldest"], "cursor": {"a": 1}}, id="dict-lists"),
    pytest.param([], id="list"),
    pytest.param("limit=5", id="string"),
    pytest.param(5, id="int"),
    pytest.param(None, id="null"),
]


by_serializer = serializer_validation(CommentListQuerySerializer)


def assert_same_outcome(data: Any) -> tuple[Any, ...]:
    expected = outcome(by_serializer, data)
    assert outcome(validate_list_query, data) == expected
    return expected


@pytest.mark.parametrize("query", _query_cases())
def test_validator_matches_the_serializer_for_each_query_string(query: str) -> None:
    assert_same_outcome(QueryDict(query))


@pytest.mark.parametrize("data", QUERY_DICTS + OTHER_DATA)
def test_validator_matches_the_serializer_for_other_input(data: Any) -> None:
    assert_same_outcome(data)


def test_the_case_table_covers_valid_and_invalid_outcomes() -> None:
    results = [outcome(by_serializer, QueryDict(case.values[0])) for case in _query_cases()]
    codes = {
        code
        for result in results
        if result[0] == "invalid"
        for _, (_, errors) in result[1][1]
        for _, _, code in errors
    }
    assert sum(result[0] == "valid" for result in results) > 50
    assert sum(result[0] == "invalid" for result in results) > 50
    assert codes == {
        "blank",
        "invalid",
        "invalid_choice",
        "max_length",
        "max_string_length",
        "max_value",
        "min_value",
        "null_characters_not_allowed",
    }
    surrogate = outcome(by_serializer, QueryDict("cursor=\ud800"))
    assert surrogate[1][1][0][1][1][0][2] == "surrogate_characters_not_allowed"


def test_query_is_read_last_value_wins_and_empty_means_absent() -> None:
    assert validate_list_query(QueryDict("limit=5&limit=7&order=newest")) == {
        "limit": 7,
        "order": "newest",
    }
    assert validate_list_query(QueryDict("limit=5&limit=&order=&cursor=")) == {}
    assert validate_list_query(QueryDict("cursor=%20abc%20&limit=%205%20")) == {
        "limit": 5,
        "cursor": "abc",
    }
    with pytest.raises(ValidationError) as caught:
        validate_list_query(QueryDict("limit=0&order=Newest&cursor=%20"))
    assert list(caught.value.detail) == ["limit", "order", "cursor"]
    assert caught.value.detail["order"] == ['"Newest" is not a valid choice.']
    assert [e.code for e in caught.value.detail.values() for e in e] == [
        "min_value",
        "invalid_choice",
        "blank",
    ]


def test_random_combinations_match_the_serializer() -> None:
    rng = random.Random(20240612)
    pools = {
        "limit": ["", "+", "0", "1", "7", "100", "101", "-1", "1.0", "1.5", "abc", "%205%20",
                  "%D9%A5", "1_0", "99999999999999999999", LONG_DIGITS, LONG_DIGITS + "9"],
        "order": ["", "+", "oldest", "newest", "Newest", "x", "%00", "%ED%A0%80"],
        "cursor": ["", "+", "abc", "%20a%20", "a" * 500, "a" * 501, "%00", "%ED%A0%80",
                   quote("é" * 501), "%E2%80%83"],
        "page": ["1", ""],
        "Limit": ["5"],
        "limit[]": ["5"],
    }  # fmt: skip
    keys = list(pools)
    for _ in range(500):
        pairs = []
        for _ in range(rng.randint(0, 6)):
            key = rng.choice(keys)
            value = rng.choice(pools[key])
            pairs.append(key if not value and rng.random() < 0.3 else f"{key}={value}")
        query = QueryDict("&".join(pairs))
        assert_same_outcome(query)


@pytest.mark.parametrize("language", ["fr", "de"])
def test_messages_follow_the_active_language_like_the_serializer(language: str) -> None:
    query = QueryDict("limit=0&order=x&cursor=" + "a" * 501)
    with translation.override(language):
        translated = assert_same_outcome(query)
        assert_same_outcome(QueryDict("limit=101&cursor=%20"))
        assert_same_outcome(QueryDict("limit=" + LONG_DIGITS + "9&cursor=%00"))
        assert_same_outcome([])
    assert translated != outcome(by_serializer, query)


def test_validation_instantiates_no_drf_field(monkeypatch: pytest.MonkeyPatch) -> None:
    forbid_drf_fields(monkeypatch)
    assert validate_list_query(QueryDict("limit=50&order=oldest&cursor=c")) == {
        "limit": 50,
        "order": "oldest",
        "cursor": "c",
    }
    with pytest.raises(ValidationError):
        validate_list_query(QueryDict("limit=0&order=x&cursor=%00"))


def _declaration(field: drf_fields.Field) -> tuple[Any, ...]:
    return (
        type(field).__name__,
        field.required,
        field.allow_null,
        getattr(field, "allow_blank", None),
        getattr(field, "trim_whitespace", None),
        None if field.default is drf_fields.empty else field.default,
        getattr(field, "choices", None),
        [type(v).__name__ for v in field.validators],
        [getattr(v, "limit_value", None) for v in field.validators],
        sorted(field.error_messages),
    )


def test_serializer_declaration_is_the_one_the_validator_copies() -> None:
    """Changing CommentListQuerySerializer's fields needs the same change in
    comments/list_query.py (then update this table)."""
    declared = {name: _declaration(f) for name, f in CommentListQuerySerializer().fields.items()}
    assert tuple(declared) == LIST_QUERY_FIELDS
    assert declared == {
        "limit": ("IntegerField", False, False, None, None, None, None,
                  ["MaxValueValidator", "MinValueValidator"], [100, 1],
                  ["invalid", "max_string_length", "max_value", "min_value", "null",
                   "required"]),
        "order": ("ChoiceField", False, False, False, None, None,
                  {"oldest": "oldest", "newest": "newest"}, [], [],
                  ["invalid_choice", "null", "required"]),
        "cursor": ("CharField", False, False, False, True, None, None,
                   ["MaxLengthValidator", "ProhibitNullCharactersValidator",
                    "ProhibitSurrogateCharactersValidator"], [500, None, None],
                   ["blank", "invalid", "max_length", "min_length", "null", "required"]),
    }  # fmt: skip
