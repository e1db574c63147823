"""Latency of a sync `SELECT 1` through HTTP, next to the raw parts measured in the same run.

Starts its own platform database, API (gunicorn) and worker, like the end-to-end tests, and
prints a table of median and p95 in milliseconds. It asserts nothing about time.

    .venv/bin/python benchmarks/execute_latency.py [--n 200]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg2
import redis
import requests
from cryptography.fernet import Fernet

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared.config import Settings  # noqa: E402
from shared.crypto import SecretBox  # noqa: E402
from shared.db import make_engine, make_session_factory, session_scope  # noqa: E402
from shared.jobs import PING_TASK, Enqueuer, Queue  # noqa: E402
from shared.migrate import upgrade  # noqa: E402
from shared.services.queries import create_query  # noqa: E402
from shared.services.secrets import create_secret  # noqa: E402
from shared.services.tenants import create_app, create_tenant  # noqa: E402
from shared.services.users import create_user  # noqa: E402
from tests.support.databases import create_database, drop_database  # noqa: E402
from tests.support.fixtures import Process, free_port  # noqa: E402


def measure(fn, n: int, warmup: int = 10) -> tuple[float, float]:
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    args = parser.parse_args()

    platform = create_database("analytics_bench", createrole=True)
    external = create_database("analytics_bench_ext")
    env = {
        "ANALYTICS_ENV": "test",
        "ANALYTICS_DATABASE_URL": platform.sqlalchemy_url,
        "ANALYTICS_REDIS_URL": "redis://127.0.0.1:6379/12",
        "ANALYTICS_SECRET_KEY": Fernet.generate_key().decode(),
        "ANALYTICS_LOG_LEVEL": "WARNING",
    }
    settings = Settings.from_env(env)
    redis.Redis.from_url(settings.redis_url).flushdb()
    upgrade(platform.sqlalchemy_url)
    box = SecretBox(settings.secret_keys)
    sessions = make_session_factory(make_engine(settings.database_url))
    with session_scope(sessions) as s:
        tenant = create_tenant(s, "bench", box=box).tenant
        app = create_app(s, "bench", "main")
        _, token = create_user(s, "bench", "bench")
        create_secret(
            s, box, app, key="pg", type_slug="analytics-postgres",
            value={"host": "127.0.0.1", "port": 5432, "database": external.name, "user": external.role,
                   "password": external.password, "sslmode": "disable"},
        )
        for name, extra in (("internal", {"connection_type": "internal"}), ("external", {"secret_key": "pg"})):
            create_query(s, app, tenant, {"name": name, "query_text": "SELECT 1 AS one", **extra}, max_timeout=300)

    logs = Path(tempfile.mkdtemp(prefix="bench-"))
    port = free_port()
    cli = [sys.executable, "-m", "api.cli"]
    api = Process(cli + ["serve", "--port", str(port), "--workers", "2", "--threads", "8"], env, logs / "api.log")
    worker = Process(cli + ["worker", "--concurrency", "2", "--loglevel", "INFO"], env, logs / "worker.log")
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                if requests.get(base + "/healthz", timeout=1).ok and "ready" in worker.output():
                    break
            except requests.RequestException:
                pass
            if time.time() > deadline:
                raise SystemExit("services did not start; logs in " + str(logs))
            time.sleep(0.2)
        time.sleep(1)
        http = requests.Session()
        http.headers["Authorization"] = f"Bearer {token}"

        def execute(slug: str):
            def call():
                r = http.post(f"{base}/api/apps/main/analytics/queries/{slug}/execute/", json={"params": {}})
                assert r.status_code == 200, r.text

            return call

        conn = psycopg2.connect(external.dsn())
        cur = conn.cursor()

        def raw_pg():
            cur.execute("SELECT 1")
            cur.fetchone()

        enqueuer = Enqueuer(settings.broker_url)
        client = redis.Redis.from_url(settings.redis_url)

        def celery_round_trip():
            reply = f"bench:pong:{uuid.uuid4().hex}"
            enqueuer.celery.send_task(PING_TASK, args=[reply], queue=Queue.INTERNAL.value)
            assert client.blpop([reply], timeout=10) is not None

        def empty_http():
            http.get(base + "/healthz")

        rows = [
            ("sync SELECT 1 via HTTP, internal", execute("internal")),
            ("sync SELECT 1 via HTTP, external PostgreSQL", execute("external")),
            ("psycopg2 SELECT 1 on an open connection", raw_pg),
            ("no-op Celery round trip (send + Redis reply)", celery_round_trip),
            ("empty HTTP request (GET /healthz)", empty_http),
        ]
        print(f"n={args.n} per row, {os.cpu_count()} cores")
        print(f"{'what':<48} {'median ms':>10} {'p95 ms':>10}")
        for name, fn in rows:
            median, p95 = measure(fn, args.n)
            print(f"{name:<48} {median:>10.2f} {p95:>10.2f}")
    finally:
        api.stop()
        worker.stop()
        sessions.kw["bind"].dispose()
        drop_database(external)
        suffix = __import__("shared.services.tenants", fromlist=["x"]).reader_role_name(platform.name, "x").rsplit("_", 1)[1]
        drop_database(platform, extra_roles_like=f"%\\_{suffix}")


if __name__ == "__main__":
    main()
