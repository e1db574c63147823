"""shared.validation.params: parameter declarations and the checks before enqueueing."""
from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal

import pytest

from shared.errors import ValidationError
from shared.validation.params import ParamSpec, ParamType, coerce_params, parse_declarations

DECLARATIONS = [
    {"name": "status", "type": "enum", "values": ["paid", "open", 10, True]},
    {"name": "limit", "type": "integer", "default": 100},
    {"name": "ratio", "type": "number"},
    {"name": "active", "type": "boolean"},
    {"name": "day", "type": "date", "required": True},
    {"name": "since", "type": "datetime"},
    {"name": "note", "type": "text"},
    {"name": "col", "type": "identifier", "values": ["created_at", "total"]},
    {"name": "ids", "type": "list", "item_type": "integer"},
    {"name": "cols", "type": "list", "item_type": "identifier", "values": ["a", "b"]},
]


def _specs() -> dict[str, ParamSpec]:
    return parse_declarations(DECLARATIONS)


def _invalid_declaration(raw: list) -> dict[str, list[str]]:
    with pytest.raises(ValidationError) as caught:
        parse_declarations(raw)
    assert caught.value.message == "Invalid parameter declarations"
    return caught.value.details


def _invalid_params(params: dict) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        coerce_params({"day": "2024-01-31", **params}, _specs())
    return caught.value


# --------------------------------------------------------------------------- declarations


def test_parse_declarations():
    specs = _specs()
    assert list(specs) == [item["name"] for item in DECLARATIONS]
    assert specs["status"] == ParamSpec("status", ParamType.ENUM, values=("paid", "open", 10, True))
    assert specs["limit"].default == 100
    assert specs["day"].required is True
    assert specs["ids"].item_type is ParamType.INTEGER
    assert specs["cols"].item_spec() == ParamSpec("cols", ParamType.IDENTIFIER, values=("a", "b"))
    assert parse_declarations(None) == {} and parse_declarations([]) == {}
    hash(specs["cols"])


def test_list_default_is_kept_hashable_and_returned_as_list():
    specs = parse_declarations([{"name": "ids", "type": "list", "item_type": "integer", "default": [1, "2"]}])
    assert specs["ids"].default == (1, 2)
    assert coerce_params({}, specs) == {"ids": [1, 2]}
    assert specs["ids"].to_dict() == {"name": "ids", "type": "list", "required": False, "default": [1, 2], "item_type": "integer"}


@pytest.mark.parametrize(
    ("raw", "field"),
    [
        ({"name": "1abc", "type": "text"}, "name"),
        ({"name": "a-b", "type": "text"}, "name"),
        ({"name": "secret", "type": "text"}, "name"),
        ({"name": "class", "type": "text"}, "name"),
        ({"name": "true", "type": "text"}, "name"),
        ({"name": "", "type": "text"}, "name"),
        ({"name": 5, "type": "text"}, "name"),
        ({"type": "text"}, "name"),
        ({"name": "a", "type": "json"}, "type"),
        ({"name": "a"}, "type"),
        ({"name": "a", "type": "enum"}, "values"),
        ({"name": "a", "type": "enum", "values": []}, "values"),
        ({"name": "a", "type": "enum", "values": [None]}, "values"),
        ({"name": "a", "type": "enum", "values": [{"x": 1}]}, "values"),
        ({"name": "a", "type": "enum", "values": ["x", "x"]}, "values"),
        ({"name": "a", "type": "identifier"}, "values"),
        ({"name": "a", "type": "identifier", "values": [""]}, "values"),
        ({"name": "a", "type": "identifier", "values": [1]}, "values"),
        ({"name": "a", "type": "identifier", "values": ["a\x00b"]}, "values"),
        ({"name": "a", "type": "text", "values": ["x"]}, "values"),
        ({"name": "a", "type": "list"}, "item_type"),
        ({"name": "a", "type": "list", "item_type": "list"}, "item_type"),
        ({"name": "a", "type": "list", "item_type": "nope"}, "item_type"),
        ({"name": "a", "type": "text", "item_type": "text"}, "item_type"),
        ({"name": "a", "type": "list", "item_type": "enum"}, "values"),
        ({"name": "a", "type": "text", "required": "yes"}, "required"),
        ({"name": "a", "type": "integer", "default": "ten"}, "default"),
        ({"name": "a", "type": "enum", "values": ["x"], "default": "y"}, "default"),
        ({"name": "a", "type": "date", "default": "31/01/2024"}, "default"),
        ({"name": "a", "type": "list", "item_type": "integer", "default": [1, "x"]}, "default"),
        ({"name": "a", "type": "text", "color": "red"}, "color"),
    ],
)
def test_bad_declarations(raw, field):
    details = _invalid_declaration([{"name": "ok", "type": "text"}, raw])
    assert f"parameters.1.{field}" in details
    assert "parameters.0.name" not in details


def test_duplicate_names():
    details = _invalid_declaration([{"name": "a", "type": "text"}, {"name": "a", "type": "integer"}])
    assert details == {"parameters.1.name": ["Duplicate parameter name 'a'"]}


def test_declarations_not_a_list():
    assert _invalid_declaration({"name": "a"}) == {"parameters": ["Must be a list of parameter declarations"]}
    assert _invalid_declaration(["x"]) == {"parameters.0": ["Must be an object"]}
    assert _invalid_declaration(5) == {"parameters": ["Must be a list of parameter declarations"]}


# --------------------------------------------------------------------------- values


def test_coerce_valid_values():
    result = coerce_params(
        {
            "status": "10",
            "ratio": "0.10",
            "active": "true",
            "day": "2024-01-31",
            "since": "2024-01-31T10:00:00Z",
            "note": "it's",
            "col": "total",
            "ids": [1, "2", 3.0],
            "cols": ["b"],
            "extra": {"any": ["thing"]},
        },
        _specs(),
    )
    assert result == {
        "status": 10,
        "ratio": "0.10",
        "active": True,
        "day": "2024-01-31",
        "since": "2024-01-31T10:00:00Z",
        "note": "it's",
        "col": "total",
        "ids": [1, 2, 3],
        "cols": ["b"],
        "extra": {"any": ["thing"]},
        "limit": 100,
    }
    assert json.loads(json.dumps(result)) == result


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("limit", "12", 12),
        ("limit", -3, -3),
        ("limit", 7.0, 7),
        ("limit", Decimal("8"), 8),
        ("ratio", 1.5, 1.5),
        ("ratio", 2, 2),
        ("ratio", "-1e3", "-1e3"),
        ("ratio", Decimal("0.30"), "0.30"),
        ("active", False, False),
        ("active", "false", False),
        ("status", "paid", "paid"),
        ("status", True, True),
        ("status", "true", True),
        ("day", date(2024, 2, 29), "2024-02-29"),
        ("since", "2024-01-31", "2024-01-31"),
        ("since", "2024-01-31 10:00", "2024-01-31 10:00"),
        ("since", "2024-01-31T10:00:00.123456+02:00", "2024-01-31T10:00:00.123456+02:00"),
        ("since", datetime(2024, 1, 31, 10), "2024-01-31T10:00:00"),
    ],
)
def test_coerce_types(name, value, expected):
    result = coerce_params({"day": "2024-01-31", name: value}, _specs())
    assert result[name] == expected
    json.dumps(result)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("limit", "12.5"),
        ("limit", 12.5),
        ("limit", True),
        ("limit", "1e3"),
        ("limit", " 12"),
        ("limit", "١٢"),
        ("limit", [1]),
        ("ratio", "NaN"),
        ("ratio", float("inf")),
        ("ratio", Decimal("NaN")),
        ("ratio", "1,5"),
        ("ratio", False),
        ("active", "yes"),
        ("active", 1),
        ("active", "True"),
        ("day", "2024-02-30"),
        ("day", "20240131"),
        ("day", "2024-01-31T10:00"),
        ("day", datetime(2024, 1, 31)),
        ("since", "yesterday"),
        ("since", "2024-W05-3"),
        ("note", 5),
        ("note", "a\x00b"),
        ("status", "closed"),
        ("status", 1),
        ("col", "id; DROP TABLE t"),
        ("col", "Total"),
        ("ids", "1,2"),
        ("ids", [1, "x"]),
        ("ids", [1, None]),
        ("cols", ["c"]),
    ],
)
def test_coerce_rejects(name, value):
    error = _invalid_params({name: value})
    assert error.message.startswith(f"Invalid parameter '{name}': ")
    assert list(error.details) == [f"params.{name}"]


def test_list_item_error_names_the_position():
    error = _invalid_params({"ids": [1, 2, "x"]})
    assert error.details == {"params.ids": ["Item 2: Must be an integer"]}


def test_required_and_defaults():
    with pytest.raises(ValidationError) as caught:
        coerce_params({}, _specs())
    assert caught.value.message == "Invalid parameter 'day': Missing required parameter"
    assert caught.value.details == {"params.day": ["Missing required parameter"]}
    # null counts as not given: the default applies, a required one is missing
    assert coerce_params({"day": "2024-01-31", "limit": None}, _specs())["limit"] == 100
    with pytest.raises(ValidationError):
        coerce_params({"day": None}, _specs())


def test_every_bad_value_is_reported():
    error = _invalid_params({"limit": "x", "active": "maybe"})
    assert set(error.details) == {"params.limit", "params.active"}


def test_undeclared_params_pass_through_unchanged():
    value = {"nested": [1, {"a": None}]}
    assert coerce_params({"x": value, "y": None}, {}) == {"x": value, "y": None}
    assert coerce_params(None, {}) == {}


@pytest.mark.parametrize("name", ["secret", "1x", "a-b", "for", "none", ""])
def test_parameter_names(name):
    with pytest.raises(ValidationError) as caught:
        coerce_params({name: 1}, {})
    assert f"params.{name}" in caught.value.details
    if name == "secret":
        assert "reserved" in caught.value.message


def test_params_must_be_an_object():
    with pytest.raises(ValidationError) as caught:
        coerce_params(["a"], {})
    assert caught.value.details == {"params": ["Must be an object"]}


# --------------------------------------------------------------------------- red team


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("limit", 10**100),
        ("limit", -(10**100)),
        ("limit", Decimal("1E+999999")),
        ("ratio", 10**100),
        ("ratio", "1" * 101),
        ("note", "a\ud800b"),
        ("note", "\udfff"),
        ("ids", [1, 10**200]),
    ],
)
def test_values_nothing_could_store_or_send_are_refused_before_enqueueing(name, value):
    error = _invalid_params({name: value})
    assert list(error.details) == [f"params.{name}"]


@pytest.mark.parametrize("value", ["a\ud800", ["x", "\udc00"], {"k": "\ud83d"}, {"\ud83d": 1}])
def test_undeclared_values_must_be_valid_text(value):
    error = _invalid_params({"free": value})
    assert error.details == {"params.free": ["Must be valid text (no unpaired surrogate)"]}


def test_paired_surrogates_are_text():
    assert coerce_params({"day": "2024-01-31", "note": "\U0001f600"}, _specs())["note"] == "\U0001f600"


def test_number_enums_match_across_float_and_decimal():
    # The API reads JSON numbers with a fraction as Decimal; a stored declaration comes back
    # from the database with floats. Both sides must still match.
    from_api = parse_declarations([{"name": "r", "type": "enum", "values": [Decimal("1.5"), 2]}])
    from_db = parse_declarations([{"name": "r", "type": "enum", "values": [1.5, 2]}])
    for specs in (from_api, from_db):
        for given in (1.5, Decimal("1.5"), Decimal("1.50"), "1.5"):
            assert coerce_params({"r": given}, specs)["r"] == Decimal("1.5")
        assert coerce_params({"r": Decimal("2.0")}, specs)["r"] == 2
        with pytest.raises(ValidationError):
            coerce_params({"r": Decimal("1.6")}, specs)
    with pytest.raises(ValidationError):
        coerce_params({"r": True}, from_db)  # a boolean is not the number 1


def test_declared_text_default_must_be_valid_text():
    details = _invalid_declaration([{"name": "t", "type": "text", "default": "a\ud800"}])
    assert "parameters.0.default" in details
