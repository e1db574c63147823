"""External MySQL/MariaDB: a throw-away database and an ordinary user (SELECT and EXECUTE on
that database only), created as the local root (setup only), holding the corpus fixture objects."""
from __future__ import annotations

import os
import secrets
from contextlib import contextmanager, suppress
from decimal import Decimal

import MySQLdb
import pytest

from shared.connectors.base import ColumnType
from shared.connectors.mysql import MySQLConnector
from shared.dialects import Driver
from tests.support.databases import run_id
from tests.support.targets.base import ConnectorTarget

MYSQL_HOST = os.environ.get("ANALYTICS_TEST_MYSQL_HOST", "127.0.0.1")
MYSQL_PORT = int(os.environ.get("ANALYTICS_TEST_MYSQL_PORT", "3306"))
MYSQL_ADMIN_USER = os.environ.get("ANALYTICS_TEST_MYSQL_ADMIN_USER", "root")
MYSQL_ADMIN_PASSWORD = os.environ.get("ANALYTICS_TEST_MYSQL_ADMIN_PASSWORD", "")

# The corpus fixture objects (../shared/corpus/README.md), one statement per entry. The
# function is created by root and runs with its rights (SQL SECURITY DEFINER), so only the
# read-only transaction can stop its DELETE. DETERMINISTIC is a white lie that lets it be
# created even where binary logging requires it (log_bin_trust_function_creators=0).
FIXTURE_STATEMENTS = [
    "CREATE TABLE accept_canary (id INT PRIMARY KEY, note TEXT) ENGINE=InnoDB",
    "INSERT INTO accept_canary VALUES (1, 'alpha'), (2, 'beta'), (3, 'gamma')",
    "CREATE VIEW accept_mv AS SELECT * FROM accept_canary",
    "CREATE PROCEDURE accept_wipe_canary() MODIFIES SQL DATA DELETE FROM accept_canary",
    "CREATE FUNCTION accept_wipe_canary_fn() RETURNS INT DETERMINISTIC MODIFIES SQL DATA SQL SECURITY DEFINER "
    "BEGIN DELETE FROM accept_canary; RETURN 1; END",
    "CREATE TABLE orders (id INT PRIMARY KEY, customer TEXT, status TEXT, total DECIMAL(12,2)) ENGINE=InnoDB",
]
ORDERS = [
    (1, "ada", "paid", Decimal("10.50")),
    (2, "bob", "it's complicated", Decimal("20.00")),
    (3, "cy", "pending", Decimal("30.25")),
    (4, "di", "back\\slash", Decimal("40.00")),
    (5, "ed", "paid", Decimal("50.75")),
]

TYPED_QUERY = """
SELECT 42 AS i, 9007199254740993 AS big, 1.5e0 AS f,
       CAST('12345678901234567890.1234567890' AS DECIMAL(38,10)) AS n, 'héllo' AS s,
       'case' COLLATE utf8mb4_bin AS s_bin, DATE '2024-02-29' AS d,
       TIMESTAMP '2024-01-02 03:04:05.123456' AS ts, TIME '10:11:12' AS t, X'00FF10' AS bin,
       CAST(NULL AS CHAR) AS nothing
"""

EXPECTED = {
    "i": (ColumnType.INTEGER, 42),
    "big": (ColumnType.INTEGER, 9007199254740993),
    "f": (ColumnType.FLOAT, 1.5),
    "n": (ColumnType.DECIMAL, Decimal("12345678901234567890.1234567890")),
    "s": (ColumnType.STRING, "héllo"),
    "s_bin": (ColumnType.STRING, "case"),  # BINARY flag from the collation, yet text
    "d": (ColumnType.DATE, "2024-02-29"),
    "ts": (ColumnType.DATETIME, "2024-01-02T03:04:05.123456"),
    "t": (ColumnType.TIME, "10:11:12"),
    "bin": (ColumnType.BINARY, "AP8Q"),
    "nothing": (ColumnType.STRING, None),
}

# The Sequence engine (MariaDB) makes rows without a table; 10^11 of them never finish.
# (BENCHMARK() returns 0 quietly when interrupted, recursive CTEs stop at 1000 iterations.)
SLOW_QUERY = "SELECT COUNT(*) AS slow_marker FROM seq_1_to_1000000 a JOIN seq_1_to_100000 b"


def rows_query(n: int) -> str:
    return f"SELECT seq AS n FROM seq_1_to_{int(n)} ORDER BY seq"


def q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


@contextmanager
def admin_cursor(database: str | None = None):
    conn = MySQLdb.connect(
        host=MYSQL_HOST, port=MYSQL_PORT, user=MYSQL_ADMIN_USER, password=MYSQL_ADMIN_PASSWORD,
        database=database or "", charset="utf8mb4", autocommit=True,
    )
    try:
        with conn.cursor() as cur:
            yield cur
    finally:
        conn.close()


def is_running(marker: str = "slow_marker") -> bool:
    """Does the server still run a statement whose text holds ``marker``?"""
    with admin_cursor() as cur:
        cur.execute(
            "SELECT COUNT(*) FROM information_schema.PROCESSLIST "
            "WHERE INFO LIKE %s AND COMMAND <> 'Sleep' AND ID <> CONNECTION_ID()",
            (f"%{marker}%",),
        )
        return cur.fetchone()[0] > 0


def database_state(database: str) -> list:
    """The canary's rows and the names of the database's objects: "nothing changed" compares these."""
    with admin_cursor(database) as cur:
        cur.execute("SELECT id, note FROM accept_canary ORDER BY id")
        canary = cur.fetchall()
        cur.execute(
            "SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s ORDER BY 1",
            (database,),
        )
        tables = cur.fetchall()
        cur.execute(
            "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES WHERE ROUTINE_SCHEMA = %s ORDER BY 1",
            (database,),
        )
        return [canary, tables, cur.fetchall()]


@pytest.fixture(scope="session")
def ext_mysql():
    """An external MySQL/MariaDB database with the fixture objects, and an ordinary user that
    may only read it and run its routines: {host, port, database, user, password}."""
    name = f"analytics_ext_{run_id()}"
    password = secrets.token_urlsafe(12)
    with admin_cursor() as cur:
        cur.execute(f"CREATE DATABASE {q(name)} CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
        cur.execute("CREATE USER %s@'%%' IDENTIFIED BY %s", (name, password))
        cur.execute(f"GRANT SELECT, EXECUTE ON {q(name)}.* TO %s@'%%'", (name,))
    with admin_cursor(name) as cur:
        for statement in FIXTURE_STATEMENTS:
            cur.execute(statement)
        cur.executemany("INSERT INTO orders VALUES (%s, %s, %s, %s)", ORDERS)
    yield {"host": MYSQL_HOST, "port": MYSQL_PORT, "database": name, "user": name, "password": password}
    with admin_cursor() as cur:
        cur.execute(
            "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s AND ID <> CONNECTION_ID()", (name,)
        )
        for (thread_id,) in cur.fetchall():
            with suppress(MySQLdb.OperationalError):  # it may have ended meanwhile
                cur.execute("KILL %s", (int(thread_id),))
        cur.execute(f"DROP DATABASE IF EXISTS {q(name)}")
        cur.execute("DROP USER IF EXISTS %s@'%%'", (name,))


def mysql_config(ext: dict, **overrides) -> dict:
    config = {**ext, "ssl": False, "connect_timeout": 5}
    config.update(overrides)
    return config


@pytest.fixture(scope="session")
def mysql_target(ext_mysql):
    return ConnectorTarget(
        driver=Driver.MYSQL,
        make=MySQLConnector,
        config=mysql_config(ext_mysql),
        bad_credentials=mysql_config(ext_mysql, password="wrong-password"),
        unreachable=mysql_config(ext_mysql, port=1),
        typed_query=TYPED_QUERY,
        expected=EXPECTED,
        rows_query=rows_query,
        slow_query=SLOW_QUERY,
        write_query="SELECT accept_wipe_canary_fn()",
        write_check=lambda: database_state(ext_mysql["database"]),
        is_running=is_running,
    )


__all__ = ["ext_mysql", "mysql_target"]
