"""Small helpers for end-to-end tests that drive the real API and worker over HTTP."""
from __future__ import annotations

import json
import time
from decimal import Decimal
from typing import Any

import requests

from tests.support.fixtures import HttpCaller


def body(response: requests.Response) -> dict[str, Any]:
    """JSON with exact decimals (a NUMERIC(38,10) must round-trip)."""
    return json.loads(response.text, parse_float=Decimal)


def create_secret(http: HttpCaller, key: str, type_slug: str, value: Any) -> None:
    r = http.post("secrets/", {"key": key, "type_slug": type_slug, "value": value})
    assert r.status_code == 201, r.text


def create_query(http: HttpCaller, name: str, query_text: str, *, expect: int = 201, **fields: Any) -> dict:
    payload = {"name": name, "query_text": query_text, **fields}
    r = http.post("analytics/queries/", payload)
    assert r.status_code == expect, r.text
    return r.json()


def execute(http: HttpCaller, slug: str, params: dict | None = None, **fields: Any) -> requests.Response:
    return http.post(f"analytics/queries/{slug}/execute/", {"params": params or {}, **fields})


def poll(http: HttpCaller, key: str, wait: float | None = None) -> requests.Response:
    suffix = f"?wait={wait}" if wait is not None else ""
    return http.get(f"analytics/executions/{key}/{suffix}")


def wait_for_state(http: HttpCaller, key: str, states: set[str], timeout: float = 30) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        data = poll(http, key).json()
        if data.get("state") in states:
            return data
        if time.monotonic() > deadline:
            raise AssertionError(f"execution {key} never reached {states}: {data}")
        time.sleep(0.1)


def wait_until(predicate, message: str, timeout: float = 15, describe=None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(message + (f": {describe()}" if describe else ""))
        time.sleep(0.1)
