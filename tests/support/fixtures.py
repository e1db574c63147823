"""Fixtures for the platform: Flask app and client, tenants, apps and users with tokens,
and the real API server and Celery worker processes used by the end-to-end tests."""
from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from shared.db import make_engine, make_session_factory, session_scope
from shared.services.tenants import create_app as create_app_row
from shared.services.tenants import create_tenant
from shared.services.users import create_user

REPO = Path(__file__).resolve().parents[2]
_counter = itertools.count(1)


@pytest.fixture(scope="session")
def sessions(settings):
    from shared.crypto import SecretBox

    engine = make_engine(settings.database_url, pool_size=2, max_overflow=2)
    factory = make_session_factory(engine)
    # make_account() needs the key box; the factory carries it so tests pass one fixture.
    factory.kw["info"] = {"box": SecretBox(settings.secret_keys)}
    yield factory
    engine.dispose()


@pytest.fixture(scope="session")
def flask_app(settings):
    from api.app import create_app

    app = create_app(settings, {"TESTING": True})
    yield app
    app.extensions["analytics"].engine.dispose()


@pytest.fixture()
def client(flask_app):
    return flask_app.test_client()


@dataclass
class Account:
    """A tenant with one app and one user: what a test needs to call the API."""

    tenant: str
    schema: str
    reader_role: str
    app: str
    username: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def url(self, path: str) -> str:
        return f"/api/apps/{self.app}/{path.lstrip('/')}"


def make_account(sessions, prefix: str = "t", box=None) -> Account:
    n = next(_counter)
    slug = f"{prefix}{n}-{os.getpid()}"
    with session_scope(sessions) as session:
        tenant = create_tenant(session, slug, box=box or sessions.kw["info"]["box"]).tenant
        create_app_row(session, slug, "main")
        _, token = create_user(session, slug, f"user{n}", email=f"user{n}@example.com", first_name="Ada")
        return Account(slug, tenant.schema_name, tenant.reader_role, "main", f"user{n}", token)


@pytest.fixture()
def account(sessions) -> Account:
    return make_account(sessions)


@pytest.fixture()
def other_account(sessions) -> Account:
    return make_account(sessions, "o")


@pytest.fixture()
def api(client, account):
    """Call the API as ``account``: api.get("secrets/") -> (status, json)."""

    class Caller:
        def __init__(self, acct: Account):
            self.account = acct

        def request(self, method: str, path: str, json: Any = None, **kwargs):
            response = client.open(self.account.url(path), method=method, json=json, headers=self.account.headers, **kwargs)
            return response.status_code, response.get_json(silent=True)

        def get(self, path, **kw):
            return self.request("GET", path, **kw)

        def post(self, path, json=None, **kw):
            return self.request("POST", path, json, **kw)

        def put(self, path, json=None, **kw):
            return self.request("PUT", path, json, **kw)

        def patch(self, path, json=None, **kw):
            return self.request("PATCH", path, json, **kw)

        def delete(self, path, **kw):
            return self.request("DELETE", path, **kw)

    return Caller(account)


# -- processes ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli() -> list[str]:
    return [sys.executable, "-m", "api.cli"]


class Process:
    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log = log
        self._file = open(log, "wb")
        self.proc = subprocess.Popen(
            args, env={**os.environ, **env}, cwd=REPO, stdout=self._file, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self._file.close()

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@pytest.fixture(scope="session")
def worker_process(env, tmp_path_factory):
    """A real Celery worker on every queue (2 processes, so one query can run while another
    is cancelled)."""
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    proc = Process(_cli() + ["worker", "--concurrency", "2", "--loglevel", "INFO"], env, log)
    deadline = time.time() + 60
    while "ready." not in proc.output():
        if proc.proc.poll() is not None or time.time() > deadline:
            proc.stop()
            pytest.fail("worker did not start:\n" + proc.output()[-3000:])
        time.sleep(0.2)
    yield proc
    proc.stop()


@pytest.fixture(scope="session")
def api_server(env, tmp_path_factory):
    """The HTTP API under gunicorn, as `analytics serve` runs it."""
    port = free_port()
    log = tmp_path_factory.mktemp("api") / "api.log"
    proc = Process(_cli() + ["serve", "--port", str(port), "--workers", "1", "--threads", "16"], env, log)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while True:
        try:
            if requests.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        if proc.proc.poll() is not None or time.time() > deadline:
            proc.stop()
            pytest.fail("API did not start:\n" + proc.output()[-3000:])
        time.sleep(0.2)
    yield base
    proc.stop()


@pytest.fixture(scope="session")
def live(api_server, worker_process):
    """Base URL of a running API with a running worker behind it."""
    return api_server


class HttpCaller:
    def __init__(self, base: str, account: Account):
        self.base = base
        self.account = account
        self.http = requests.Session()
        self.http.headers.update(account.headers)

    def request(self, method: str, path: str, json: Any = None, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 90)
        url = path if path.startswith("http") else self.base + self.account.url(path)
        return self.http.request(method, url, json=json, **kwargs)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.request("POST", path, json, **kw)

    def put(self, path, json=None, **kw):
        return self.request("PUT", path, json, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


@pytest.fixture()
def http(live, account) -> HttpCaller:
    return HttpCaller(live, account)
