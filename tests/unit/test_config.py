"""Settings from the environment (CONTRACT section 3)."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from shared.config import ConfigError, Environment, Settings
from shared.crypto import SecretBox, SecretKeyError

KEY = Fernet.generate_key().decode()


def test_missing_secret_key_outside_development_stops_with_a_clear_message():
    for environ in ({}, {"ANALYTICS_ENV": "production"}, {"ANALYTICS_ENV": "test"}, {"ANALYTICS_SECRET_KEY": " , "}):
        with pytest.raises(ConfigError) as info:
            Settings.from_env(environ)
        assert "ANALYTICS_SECRET_KEY is required outside development" in info.value.message
        assert "Fernet.generate_key()" in info.value.message  # says how to make one


def test_production_is_the_default_environment():
    assert Settings.from_env({"ANALYTICS_SECRET_KEY": KEY}).environment is Environment.PRODUCTION


def test_development_starts_without_a_key_and_with_the_documented_defaults():
    settings = Settings.from_env({"ANALYTICS_ENV": "Development"})
    assert settings.environment is Environment.DEVELOPMENT
    assert len(settings.secret_keys) == 1
    SecretBox(settings.secret_keys).encrypt_json({"a": 1})  # the development key is a usable key
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.broker_url == settings.redis_url
    assert (settings.result_ttl, settings.sync_wait, settings.max_wait) == (3600, 10.0, 60.0)
    assert (settings.max_rows, settings.query_timeout) == (10000, 300)
    assert (settings.max_body_bytes, settings.tenant_concurrency) == (1048576, 20)
    assert settings.database_url.endswith("/analytics")


def test_values_are_read_from_the_environment():
    settings = Settings.from_env(
        {
            "ANALYTICS_ENV": "test",
            "ANALYTICS_SECRET_KEY": KEY,
            "ANALYTICS_DATABASE_URL": "postgresql+psycopg2://u:p@db:5432/x",
            "ANALYTICS_REDIS_URL": "redis://cache:6379/3",
            "ANALYTICS_RESULT_TTL": "60",
            "ANALYTICS_SYNC_WAIT": "0",
            "ANALYTICS_MAX_WAIT": "2.5",
            "ANALYTICS_MAX_ROWS": "7",
            "ANALYTICS_QUERY_TIMEOUT": "9",
            "ANALYTICS_MAX_BODY_BYTES": "1024",
            "ANALYTICS_TENANT_CONCURRENCY": "3",
        }
    )
    assert settings.database_url == "postgresql+psycopg2://u:p@db:5432/x"
    assert settings.redis_url == "redis://cache:6379/3"
    assert settings.broker_url == "redis://cache:6379/3"  # the broker defaults to the Redis URL
    assert (settings.result_ttl, settings.sync_wait, settings.max_wait) == (60, 0.0, 2.5)
    assert (settings.max_rows, settings.query_timeout, settings.max_body_bytes, settings.tenant_concurrency) == (
        7, 9, 1024, 3,
    )
    explicit = Settings.from_env({"ANALYTICS_SECRET_KEY": KEY, "ANALYTICS_BROKER_URL": "redis://broker:6379/5"})
    assert explicit.broker_url == "redis://broker:6379/5"


@pytest.mark.parametrize(
    "name, raw, words",
    [
        ("ANALYTICS_MAX_ROWS", "ten", "must be a whole number"),
        ("ANALYTICS_MAX_ROWS", "1.5", "must be a whole number"),
        ("ANALYTICS_MAX_ROWS", "0", "must be at least 1"),
        ("ANALYTICS_RESULT_TTL", "-5", "must be at least 1"),
        ("ANALYTICS_MAX_BODY_BYTES", "1MB", "must be a whole number"),
        ("ANALYTICS_TENANT_CONCURRENCY", "0", "must be at least 1"),
        ("ANALYTICS_QUERY_TIMEOUT", "abc", "must be a whole number"),
        ("ANALYTICS_SYNC_WAIT", "soon", "must be a number"),
        ("ANALYTICS_SYNC_WAIT", "-1", "must be at least 0"),
        ("ANALYTICS_MAX_WAIT", "nan", "ANALYTICS_MAX_WAIT"),
        ("ANALYTICS_MAX_WAIT", "inf", "ANALYTICS_MAX_WAIT"),
        ("ANALYTICS_ENV", "staging", "must be one of development, test, production"),
        ("ANALYTICS_LOG_LEVEL", "chatty", "ANALYTICS_LOG_LEVEL"),
    ],
)
def test_bad_values_stop_with_a_message_naming_the_variable(name, raw, words):
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"ANALYTICS_SECRET_KEY": KEY, name: raw})
    assert name in info.value.message
    assert words in info.value.message


def test_a_key_that_is_not_a_fernet_key_is_refused_at_start():
    with pytest.raises(SecretKeyError) as info:
        Settings.from_env({"ANALYTICS_SECRET_KEY": "not-a-key"})
    assert info.value.code == "ConfigError"
    assert "Fernet" in info.value.message
    assert "not-a-key" not in info.value.message


def test_comma_separated_keys_rotate():
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    before = Settings.from_env({"ANALYTICS_SECRET_KEY": old_key})
    ciphertext = SecretBox(before.secret_keys).encrypt_json({"password": "s3cret"})

    after = Settings.from_env({"ANALYTICS_SECRET_KEY": f" {new_key} , {old_key} ,"})
    assert after.secret_keys == (new_key, old_key)
    box = SecretBox(after.secret_keys)
    assert box.decrypt_json(ciphertext) == {"password": "s3cret"}  # old ciphertext still decrypts

    fresh = box.encrypt_json({"password": "s3cret"})
    assert SecretBox((new_key,)).decrypt_json(fresh) == {"password": "s3cret"}  # first key encrypts
    with pytest.raises(SecretKeyError):
        SecretBox((old_key,)).decrypt_json(fresh)


def test_settings_are_frozen_and_do_not_show_keys():
    settings = Settings.from_env({"ANALYTICS_SECRET_KEY": KEY})
    assert KEY not in repr(settings)
    with pytest.raises(AttributeError):
        settings.max_rows = 1  # type: ignore[misc]


def test_postgres_scheme_is_accepted():
    from shared.config import Settings

    settings = Settings.from_env({"ANALYTICS_ENV": "development", "ANALYTICS_DATABASE_URL": "postgres://u:p@h:5432/d"})
    assert settings.database_url == "postgresql://u:p@h:5432/d"
