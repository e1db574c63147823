"""Test target for Elasticsearch.

By default the connector talks to ``tests/support/es_server.py`` over real HTTP (no
Elasticsearch can run here). With ``ANALYTICS_TEST_ELASTICSEARCH_URL`` set
(``http://user:password@host:9200``) the real-server tier in tests/integration/test_elasticsearch.py
runs against that cluster too.
"""
from __future__ import annotations

import json
import os
import socket
from urllib.parse import urlsplit

import pytest

from shared.connectors.base import ColumnType
from shared.connectors.elasticsearch import ElasticsearchConnector
from shared.dialects import Driver
from tests.support.es_server import ESServer
from tests.support.targets.base import ConnectorTarget

USER, PASSWORD = "analytics", "s3cret-pass"
API_KEY = "VnVhQ2ZHY0JDZGJrUW0tZTVhT3g6dWkybHAyYXhUTm1zeWFrdzl0dk5udw=="
TOKEN_HEADER, TOKEN = "X-Auth-Token", "tok-123456"
INDEX = "analytics-docs"
ROWS = 200_000  # documents with a field n = 0..ROWS-1, for row counts and truncation

TYPED_DOC = {
    "_id": "typed-1",
    "kind": "typed",
    "count": 42,
    "big": 9007199254740993,
    "ratio": 1.5,
    "active": True,
    "name": "héllo",
    "day": "2024-02-29",
    "seen_at": "2024-01-02T03:04:05.123Z",
    "tags": ["a", "b"],
    "user": {"name": "ada", "address": {"city": "Paris"}},
    "nothing": None,
}

TYPED_QUERY = json.dumps({"query": {"term": {"kind": "typed"}}})

EXPECTED = {
    "_id": (ColumnType.STRING, "typed-1"),
    "_index": (ColumnType.STRING, INDEX),
    "_score": (ColumnType.FLOAT, 1.0),
    "kind": (ColumnType.STRING, "typed"),
    "count": (ColumnType.INTEGER, 42),
    "big": (ColumnType.INTEGER, 9007199254740993),
    "ratio": (ColumnType.FLOAT, 1.5),
    "active": (ColumnType.BOOLEAN, True),
    "name": (ColumnType.STRING, "héllo"),
    "day": (ColumnType.DATE, "2024-02-29"),
    "seen_at": (ColumnType.DATETIME, "2024-01-02T03:04:05.123Z"),
    "tags": (ColumnType.ARRAY, ["a", "b"]),
    "user.name": (ColumnType.STRING, "ada"),
    "user.address.city": (ColumnType.STRING, "Paris"),
    "nothing": (ColumnType.UNKNOWN, None),
}

SLOW_QUERY = json.dumps({"query": {"match": {"slow_marker": "wait"}}})


def rows_query(n: int) -> str:
    return json.dumps({"query": {"range": {"n": {"lt": n}}}})


def closed_port() -> int:
    """A port nothing listens on: bound then released (the kernel does not hand it out again soon)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def es_config(server: ESServer, **overrides) -> dict:
    config = {
        "host": "127.0.0.1", "port": server.port, "scheme": "http", "index": INDEX,
        "username": USER, "password": PASSWORD, "verify_certs": False, "max_result_rows": 10000,
    }
    config.update(overrides)
    return {k: v for k, v in config.items() if v is not None}


@pytest.fixture(scope="session")
def es_server():
    """The Elasticsearch stand-in: ``.url``, ``.requests``, ``.add_documents(index, docs)``."""
    server = ESServer(users={USER: PASSWORD}, api_keys={API_KEY}, header_tokens={TOKEN_HEADER: TOKEN}).start()
    server.add_documents(INDEX, [TYPED_DOC])
    server.add_documents(INDEX, [{"_id": f"n-{i}", "n": i} for i in range(ROWS)])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def elasticsearch_target(es_server):
    return ConnectorTarget(
        driver=Driver.ELASTICSEARCH,
        make=ElasticsearchConnector,
        config=es_config(es_server),
        bad_credentials=es_config(es_server, password="wrong-password"),
        unreachable=es_config(es_server, port=closed_port()),
        typed_query=TYPED_QUERY,
        expected=EXPECTED,
        rows_query=rows_query,
        slow_query=SLOW_QUERY,
        write_query=None,  # the connector can only call _search: there is no write path
        is_running=es_server.is_running,
    )


def real_server_config() -> dict | None:
    """Config for the cluster at ANALYTICS_TEST_ELASTICSEARCH_URL, or None."""
    url = os.environ.get("ANALYTICS_TEST_ELASTICSEARCH_URL")
    if not url:
        return None
    parts = urlsplit(url)
    return {
        "host": parts.hostname, "port": parts.port or 9200, "scheme": parts.scheme or "http",
        "username": parts.username, "password": parts.password, "index": "analytics-test-*",
        "verify_certs": os.environ.get("ANALYTICS_TEST_ELASTICSEARCH_VERIFY", "1") == "1",
    }


__all__ = ["es_server", "elasticsearch_target"]
