"""Encryption at rest and API tokens."""
from __future__ import annotations

import base64
from decimal import Decimal

import pytest
from cryptography.fernet import Fernet

from shared.crypto import SecretBox, SecretKeyError, hash_token, new_execution_key, new_token


def test_values_round_trip_and_ciphertext_holds_no_plaintext():
    box = SecretBox((Fernet.generate_key().decode(),))
    value = {"host": "db.internal", "password": "hunter2-plaintext", "port": 5432, "nested": {"ü": [1, None]}}
    ciphertext = box.encrypt_json(value)
    assert "hunter2-plaintext" not in ciphertext
    assert "db.internal" not in ciphertext
    assert box.decrypt_json(ciphertext) == value
    assert box.encrypt_json(value) != ciphertext  # random IV: equal values do not give equal tokens


def test_generic_values_of_any_json_type_round_trip():
    box = SecretBox((Fernet.generate_key().decode(),))
    for value in ("plain", 42, 1.5, True, None, [1, "a", {"b": []}]):
        assert box.decrypt_json(box.encrypt_json(value)) == value


def test_a_wrong_key_gives_a_project_error_not_a_driver_error():
    ciphertext = SecretBox((Fernet.generate_key().decode(),)).encrypt_json({"password": "x"})
    with pytest.raises(SecretKeyError) as info:
        SecretBox((Fernet.generate_key().decode(),)).decrypt_json(ciphertext)
    assert info.value.code == "ConfigError"
    assert "could not be decrypted" in info.value.message


@pytest.mark.parametrize("keys", [("not-a-key",), ("",), (base64.urlsafe_b64encode(b"short").decode(),), ()])
def test_invalid_keys_are_refused(keys):
    with pytest.raises(SecretKeyError):
        SecretBox(keys)


def test_rotate_re_encrypts_with_the_first_key():
    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    ciphertext = SecretBox((old_key,)).encrypt_json({"password": "p"})
    rotated = SecretBox((new_key, old_key)).rotate(ciphertext)
    assert SecretBox((new_key,)).decrypt_json(rotated) == {"password": "p"}
    with pytest.raises(SecretKeyError):
        SecretBox((old_key,)).decrypt_json(rotated)


def test_tokens_are_random_long_and_stored_as_a_hash():
    tokens = {new_token() for _ in range(200)}
    assert len(tokens) == 200
    for token in list(tokens)[:5]:
        assert len(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))) >= 16  # >= 128 bits
        digest = hash_token(token)
        assert digest == hash_token(token)
        assert len(digest) == 64 and token not in digest
    assert hash_token("a") != hash_token("b")


def test_execution_keys_are_prefixed_and_unique():
    keys = {new_execution_key() for _ in range(200)}
    assert len(keys) == 200
    assert all(k.startswith("exec_") and len(k) <= 64 for k in keys)


def test_values_parsed_with_exact_decimals_can_be_encrypted():
    # Request bodies are parsed with decimals kept exact; such a value must encrypt, not crash.
    box = SecretBox((Fernet.generate_key().decode(),))
    plain = box.decrypt_json(box.encrypt_json({"ratio": Decimal("1.25"), "big": 9007199254740993}))
    assert plain == {"ratio": 1.25, "big": 9007199254740993}
