"""The seeded secret types: their JSON schemas and the check of a value (CONTRACT section 5)."""
from __future__ import annotations

import pytest

from shared.errors import ValidationError
from shared.secret_types import SEED_TYPES, check_secret_value

SCHEMAS = {spec.slug: spec.json_schema() for spec in SEED_TYPES}
PG = {"host": "db", "user": "u", "database": "d"}


def check(slug, value):
    return check_secret_value(SCHEMAS[slug], value)


def field_errors(slug, value) -> dict:
    with pytest.raises(ValidationError) as info:
        check(slug, value)
    assert info.value.code == "ValidationError"
    return info.value.details


def test_the_six_seeded_types():
    assert [s.slug for s in SEED_TYPES] == [
        "analytics-postgres", "analytics-mysql", "analytics-redshift",
        "analytics-elasticsearch", "analytics-clickhouse", "generic",
    ]
    drivers = {s.slug: (s.driver.value if s.driver else None) for s in SEED_TYPES}
    assert drivers == {
        "analytics-postgres": "postgres", "analytics-mysql": "mysql", "analytics-redshift": "redshift",
        "analytics-elasticsearch": "elasticsearch", "analytics-clickhouse": "clickhouse", "generic": None,
    }


def test_json_schemas_declare_fields_required_and_defaults():
    pg = SCHEMAS["analytics-postgres"]
    assert pg["type"] == "object" and pg["additionalProperties"] is False
    assert set(pg["required"]) == {"host", "user", "database"}
    assert pg["properties"]["port"] == {"type": "integer", "default": 5432, "minimum": 1, "maximum": 65535}
    assert SCHEMAS["analytics-mysql"]["properties"]["port"]["default"] == 3306
    assert SCHEMAS["analytics-redshift"]["properties"]["port"]["default"] == 5439
    es = SCHEMAS["analytics-elasticsearch"]
    assert es["properties"]["port"]["default"] == 9200
    assert es["properties"]["max_result_rows"]["default"] == 10000
    assert set(es["required"]) == {"host", "index"}
    ch = SCHEMAS["analytics-clickhouse"]
    assert ch["properties"]["secure"] == {"type": "boolean", "default": True}
    assert ch["required"] == ["host"]
    assert "type" not in SCHEMAS["generic"]


def test_a_valid_value_gets_its_defaults():
    assert check("analytics-postgres", PG) == {
        **PG, "password": "", "port": 5432, "sslmode": "prefer", "connect_timeout": 10,
    }
    es = check("analytics-elasticsearch", {"host": "es", "index": "logs-*", "headers": {"X-Auth": "t"}})
    assert es["port"] == 9200 and es["max_result_rows"] == 10000 and es["scheme"] == "https"
    assert es["headers"] == {"X-Auth": "t"}
    assert "username" not in es  # no default: not invented
    ch = check("analytics-clickhouse", {"host": "ch"})
    assert ch["secure"] is True and ch["username"] == "default" and "port" not in ch
    assert check("analytics-postgres", {**PG, "port": 6543})["port"] == 6543  # a given value wins


def test_missing_required_fields_are_named():
    assert field_errors("analytics-postgres", {"user": "u"}) == {
        "value.host": ["Missing data for required field."],
        "value.database": ["Missing data for required field."],
    }


@pytest.mark.parametrize(
    "value, field",
    [
        ({**PG, "port": "5432"}, "value.port"),
        ({**PG, "port": 5432.5}, "value.port"),
        ({**PG, "port": True}, "value.port"),
        ({**PG, "port": 0}, "value.port"),
        ({**PG, "port": 70000}, "value.port"),
        ({**PG, "host": 5}, "value.host"),
        ({**PG, "host": None}, "value.host"),
        ({**PG, "host": "   "}, "value.host"),
        ({**PG, "host": ""}, "value.host"),
        ({**PG, "connect_timeout": "ten"}, "value.connect_timeout"),
        ({**PG, "bogus": 1}, "value.bogus"),
    ],
)
def test_wrong_types_and_unknown_fields_are_refused(value, field):
    assert list(field_errors("analytics-postgres", value)) == [field]


def test_typed_fields_of_other_types():
    assert list(field_errors("analytics-mysql", {**PG, "ssl": "maybe"})) == ["value.ssl"]
    assert list(field_errors("analytics-elasticsearch", {"host": "h", "index": "i", "headers": "x"})) == [
        "value.headers"
    ]
    assert list(field_errors("analytics-clickhouse", {"host": "h", "secure": "perhaps"})) == ["value.secure"]


@pytest.mark.parametrize("value", [[PG], "host=db", 5, None])
def test_a_typed_value_must_be_an_object(value):
    assert field_errors("analytics-postgres", value) == {"value": ["Must be an object."]}


@pytest.mark.parametrize("value", [{"any": {"nested": [1, 2]}}, [1, "a"], "plain", 3, True])
def test_generic_accepts_any_json(value):
    assert check("generic", value) == value


def test_checking_does_not_modify_the_input():
    value = dict(PG)
    check("analytics-postgres", value)
    assert value == PG
