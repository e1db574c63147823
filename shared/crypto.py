"""Encryption of secret values at rest (Fernet; MultiFernet for key rotation).

The first key encrypts; every key decrypts, so operators rotate by prepending a new key,
re-encrypting (``SecretBox.rotate``), then dropping the old one.
"""
from __future__ import annotations

import hashlib
import json
import secrets
from typing import Any

import simplejson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from shared.errors import AnalyticsError


class SecretKeyError(AnalyticsError):
    code = "ConfigError"
    default_message = "ANALYTICS_SECRET_KEY is not a valid Fernet key"


class SecretBox:
    def __init__(self, keys: tuple[str, ...] | list[str]):
        try:
            self._fernet = MultiFernet([Fernet(k.encode() if isinstance(k, str) else k) for k in keys])
        except (ValueError, TypeError):
            raise SecretKeyError(
                "ANALYTICS_SECRET_KEY must be one or more comma-separated Fernet keys "
                "(32 url-safe base64-encoded bytes)"
            ) from None

    def encrypt_json(self, value: Any) -> str:
        # Request bodies are parsed with exact decimals, so the value may hold Decimal numbers.
        return self._fernet.encrypt(simplejson.dumps(value, separators=(",", ":"), use_decimal=True).encode()).decode()

    def decrypt_json(self, token: str) -> Any:
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise SecretKeyError("A secret could not be decrypted with the configured keys") from None

    def rotate(self, token: str) -> str:
        return self._fernet.rotate(token.encode()).decode()


def new_token() -> str:
    """An API token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    # Tokens are high-entropy random strings, so a fast hash is enough (no salt or KDF needed).
    return hashlib.sha256(token.encode()).hexdigest()


def new_execution_key() -> str:
    return "exec_" + secrets.token_urlsafe(24)  # 192 random bits
