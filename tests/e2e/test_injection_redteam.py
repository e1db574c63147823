"""Red team, end to end (real API, worker, PostgreSQL and MySQL/MariaDB): siblings of the public
param_quoted, param_unquoted and ssti corpora (shared with tests/unit/test_templating.py), and
secrets that the database could transform, probe or read back (tests/unit/test_secret_use.py).

* A value used as ``'{{ v }}'`` comes back verbatim (or 400), and ``status = '{{ v }}'`` counts
  exactly the rows a bound parameter counts, computed with the driver itself.
* A value used outside quotes is refused unless it is a number or a boolean.
* Template injection is refused or inert, and no response ever holds a secret or a transform
  of one (reversed, re-cased, hashed, encoded, a piece of it).
"""
from __future__ import annotations

import base64
import hashlib
import time
from decimal import Decimal

import pytest

from tests.e2e.helpers import create_query, create_secret, execute
from tests.support.fixtures import HttpCaller, make_account
from tests.support.targets import mysql as mysql_target
from tests.support.targets.postgres import canary_state, pg_config
from tests.unit.test_templating import REDTEAM_QUOTED, REDTEAM_SSTI, REDTEAM_UNQUOTED

pytestmark = pytest.mark.timeout(300)

PG_PASSWORD = "Kx7vQ2rTz9Lm4pW8"
TOKEN = "tok-Hq5Zr8Wn3Jc6Yd"
PLAIN = "plain-Vb7Nq2Lx9Rf"
PIN = "4242"
LEAK_MARKERS = ("__", "<class", "built-in", "<function", "<bound", "root:x:", "Environment", "TemplateReference",
                "Traceback", "object at 0x", "<secret>", "jinja")
OK_CODES = ("QueryValidationError", "ValidationError")


def _forms(secret: str) -> set[str]:
    """A secret and what a database or template could make of it."""
    raw = secret.encode()
    forms = {
        secret, secret[::-1], secret.upper(), secret.lower(), secret.swapcase(), secret.title(),
        secret[::-1].upper(), secret[::-1].lower(),
        hashlib.md5(raw).hexdigest(), hashlib.sha1(raw).hexdigest(), hashlib.sha256(raw).hexdigest(),
        base64.b64encode(raw).decode().rstrip("="), base64.urlsafe_b64encode(raw).decode().rstrip("="),
        raw.hex(), raw.hex().upper(), "".join(sorted(secret)),
    }
    # every piece of 6 characters or more (prefixes, suffixes, slices)
    forms.update(secret[i : i + 6] for i in range(len(secret) - 5))
    return forms


def _assert_no_leak(response, secrets: list[str], *, also_short: tuple[str, ...] = ()) -> None:
    text = response.text
    for secret in secrets:
        for form in _forms(secret):
            assert form not in text, (form, text[:500])
    try:
        body = response.json()
    except ValueError:
        return
    visible = repr(body.get("data")) + repr(body.get("message")) + repr(body.get("columns"))
    for short in also_short:
        assert short not in visible, (short, visible[:500])


@pytest.fixture(scope="module")
def rt(live, sessions, ext_pg, ext_mysql):
    """A tenant with a PostgreSQL secret (known password), a MySQL secret, and generic secrets."""
    account = make_account(sessions, "redteam")
    http = HttpCaller(live, account)
    with ext_pg.connect() as conn, conn.cursor() as cur:
        cur.execute(f'ALTER ROLE "{ext_pg.role}" PASSWORD %s', (PG_PASSWORD,))
    create_secret(http, "pg", "analytics-postgres", pg_config(ext_pg, password=PG_PASSWORD))
    create_secret(http, "my", "analytics-mysql", ext_mysql)
    create_secret(http, "generic", "generic", {"token": TOKEN, "pin": PIN, "short": "ab", "flag": True})
    create_secret(http, "plain", "generic", PLAIN)
    pg = {
        "echo": create_query(http, "Echo", "SELECT '{{ v }}' AS v", secret_key="pg")["data"]["slug"],
        "count": create_query(
            http, "Count", "SELECT count(*) AS n FROM orders WHERE status = '{{ v }}'", secret_key="pg"
        )["data"]["slug"],
        "limit": create_query(
            http, "Limit", "SELECT id FROM accept_canary ORDER BY id LIMIT {{ v }}", secret_key="pg"
        )["data"]["slug"],
    }
    my = {
        "echo": create_query(http, "MyEcho", "SELECT '{{ v }}' AS v", secret_key="my")["data"]["slug"],
        "count": create_query(
            http, "MyCount", "SELECT COUNT(*) AS n FROM orders WHERE status = '{{ v }}'", secret_key="my"
        )["data"]["slug"],
        "limit": create_query(
            http, "MyLimit", "SELECT id FROM accept_canary ORDER BY id LIMIT {{ v }}", secret_key="my"
        )["data"]["slug"],
    }
    yield {"http": http, "pg": pg, "my": my, "secrets": [PG_PASSWORD, TOKEN, PLAIN, ext_mysql["password"]]}
    with ext_pg.connect() as conn, conn.cursor() as cur:  # give the fixture role its password back
        cur.execute(f'ALTER ROLE "{ext_pg.role}" PASSWORD %s', (ext_pg.password,))


def _pg_bound_count(ext_pg, value: str) -> int:
    with ext_pg.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM orders WHERE status = %s", (value,))
        return cur.fetchone()[0]


def _mysql_bound_count(ext_mysql, value: str) -> int:
    with mysql_target.admin_cursor(ext_mysql["database"]) as cur:
        cur.execute("SELECT COUNT(*) FROM orders WHERE status = %s", (value,))
        return cur.fetchone()[0]


def _refused(response, codes=OK_CODES) -> bool:
    return response.status_code == 400 and response.json().get("code") in codes


def _ids(case: tuple) -> str:
    return case[1]


# -- quoted values ---------------------------------------------------------------------------------


def _check_quoted(http, queries, value, bound_count):
    failures = []
    r = execute(http, queries["echo"], {"v": value})
    if not _refused(r):
        if r.status_code != 200:
            failures.append(("echo status", r.status_code, r.text[:300]))
        elif r.json()["data"] != [{"v": str(value)}]:
            failures.append(("echo", r.json()["data"]))
    r = execute(http, queries["count"], {"v": value})
    if not _refused(r):
        if r.status_code != 200:
            failures.append(("count status", r.status_code, r.text[:300]))
        elif r.json()["data"] != [{"n": bound_count(str(value))}]:
            failures.append(("count", r.json()["data"], bound_count(str(value))))
    return failures


@pytest.mark.parametrize("case", REDTEAM_QUOTED, ids=_ids)
def test_quoted_value_is_a_literal_on_postgres(rt, ext_pg, case):
    before = canary_state(ext_pg)
    failures = _check_quoted(rt["http"], rt["pg"], case[0], lambda v: _pg_bound_count(ext_pg, v))
    assert failures == []
    assert canary_state(ext_pg) == before


@pytest.mark.parametrize("case", REDTEAM_QUOTED, ids=_ids)
def test_quoted_value_is_a_literal_on_mysql(rt, ext_mysql, case):
    before = mysql_target.database_state(ext_mysql["database"])
    failures = _check_quoted(rt["http"], rt["my"], case[0], lambda v: _mysql_bound_count(ext_mysql, v))
    assert failures == []
    assert mysql_target.database_state(ext_mysql["database"]) == before


@pytest.mark.parametrize("value", ["paid", "it's complicated", "back\\slash", "PAID", "paid ", 42])
def test_real_statuses_are_found(rt, ext_pg, ext_mysql, value):
    # Not only "no injection": the values that should match do match, like bound parameters.
    for queries, count in ((rt["pg"], _pg_bound_count), (rt["my"], _mysql_bound_count)):
        db = ext_pg if queries is rt["pg"] else ext_mysql
        r = execute(rt["http"], queries["count"], {"v": value})
        assert r.status_code == 200, r.text
        assert r.json()["data"] == [{"n": count(db, str(value))}]


# -- values outside quotes ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", REDTEAM_UNQUOTED, ids=_ids)
def test_unquoted_value_must_be_a_number(rt, ext_pg, ext_mysql, case):
    before = (canary_state(ext_pg), mysql_target.database_state(ext_mysql["database"]))
    for queries in (rt["pg"], rt["my"]):
        r = execute(rt["http"], queries["limit"], {"v": case[0]})
        assert r.status_code == 400, r.text
        assert r.json()["code"] == "QueryValidationError"
    assert (canary_state(ext_pg), mysql_target.database_state(ext_mysql["database"])) == before


@pytest.mark.parametrize(("value", "rows"), [(2, 2), (0, 0), (Decimal("1"), 1), (True, 1)])
def test_numbers_outside_quotes_still_work(rt, value, rows):
    r = execute(rt["http"], rt["pg"]["limit"], {"v": value if value is not True else 1})
    assert r.status_code == 200, r.text
    assert len(r.json()["data"]) == rows


# -- template injection -------------------------------------------------------------------------------


def _expand(payload: str) -> str:
    return payload.replace("<<PG_SECRET>>", "pg").replace("<<GENERIC_SECRET>>", "generic")


@pytest.mark.parametrize("case", REDTEAM_SSTI, ids=_ids)
def test_template_injection_is_refused_or_inert(rt, ext_pg, case):
    http = rt["http"]
    payload = _expand(case[0])
    params = case[2] if len(case) > 2 else {}
    before = canary_state(ext_pg)
    for text in (f"SELECT '{payload}' AS x", f"SELECT 1 AS x -- {payload}", f"SELECT {payload} AS x"):
        started = time.monotonic()
        r = http.post("analytics/queries/", {"name": "ssti", "query_text": text, "secret_key": "pg"})
        assert time.monotonic() - started < 30, "a template may not hold the API"
        _assert_no_leak(r, rt["secrets"])
        if r.status_code != 201:
            assert _refused(r), r.text
            continue
        run = execute(http, r.json()["data"]["slug"], params)
        _assert_no_leak(run, rt["secrets"], also_short=(PIN,))
        if run.status_code == 200:
            for marker in LEAK_MARKERS:
                assert marker not in str(run.json()["data"]), marker
        else:
            assert _refused(run, OK_CODES + ("QueryExecutionError",)), run.text
    assert canary_state(ext_pg) == before


# -- secrets the database could transform -------------------------------------------------------------

S = "{{ secret.pg.password }}"
M = "{{ secret.my.password }}"
G = "{{ secret.generic.token }}"

PG_TRANSFORMS = [
    f"SELECT md5('{S}') AS h",
    f"SELECT encode(sha256(convert_to('{S}', 'UTF8')), 'hex') AS h",
    f"SELECT substr('{S}', 1, 6) AS c",
    f"SELECT encode(convert_to('{S}', 'UTF8'), 'base64') AS b",
    f"SELECT encode('{S}'::bytea, 'hex') AS b",
    f"SELECT '{S}'::bytea AS b",
    f"SELECT reverse('{S}') AS r",
    f"SELECT upper('{S}') AS u",
    f"SELECT initcap('{S}') AS u",
    f"SELECT translate('{S}', 'KQ', 'kq') AS t",
    f"SELECT length('{S}') AS n",
    f"SELECT '{S}'::varchar(6) AS c",
    f"SELECT regexp_split_to_array('{S}', '') AS a",
    f"SELECT to_json('{S}'::text) AS j",
    f"SELECT count(*) AS n FROM orders WHERE '{S}' LIKE 'K%'",
    f"SELECT count(*) AS n FROM orders WHERE '{S}' > 'm'",
    f"SELECT count(*) AS n FROM orders WHERE '{S}' ~ '^K'",
    f"SELECT count(*) AS n FROM orders WHERE position('K' IN '{S}') = 1",
    f"SELECT md5(p) AS h FROM (SELECT '{S}' AS p) t",
    f"WITH s AS (SELECT '{S}' AS p) SELECT reverse(p) AS r FROM s",
    f"SELECT upper(x) AS u FROM (VALUES ('{S}')) v(x)",
    f"SELECT substr(current_query(), 8, 6) AS q WHERE 'x' <> '{S}'",
    f"SELECT substr(query, 8, 6) AS q FROM pg_stat_activity WHERE 'x' <> '{S}'",
    f"SELECT md5('{G}') AS h",
    f"SELECT reverse('{{{{ secret.plain }}}}') AS r",
    "SELECT g + 1 AS n FROM generate_series(1, 10) g LIMIT {{ secret.generic.pin }}",
    "SELECT '{{ secret.generic.short }}' AS s",
    "SELECT {{ secret.generic.flag }} AS f",
    f"EXPLAIN VERBOSE SELECT md5('{S}')",
    f"SELECT '{S}' AS p UNION ALL SELECT NULL::bytea",
    f"SELECT '{S}' AS p UNION SELECT 'x'::\"char\"",
]

MY_TRANSFORMS = [
    f"SELECT MD5('{M}') AS h",
    f"SELECT SHA2('{M}', 256) AS h",
    f"SELECT HEX('{M}') AS h",
    f"SELECT TO_BASE64('{M}') AS h",
    f"SELECT SUBSTRING('{M}', 1, 6) AS c",
    f"SELECT REVERSE('{M}') AS r",
    f"SELECT UPPER('{M}') AS u",
    f"SELECT LENGTH('{M}') AS n",
    f"SELECT CAST('{M}' AS SIGNED) AS n",
    f"SELECT CONCAT('{M}', '') AS c",
    f"SELECT '{M}' 'x' AS c",
    f"SELECT COUNT(*) AS n FROM orders WHERE '{M}' LIKE 'a%'",
    f"SELECT COUNT(*) AS n FROM orders WHERE '{M}' > 'm'",
    f"SELECT COUNT(*) AS n FROM orders WHERE '{M}' RLIKE '^a'",
    f"SELECT MD5(p) AS h FROM (SELECT '{M}' AS p) t",
    f"SELECT SUBSTRING(INFO, 8, 6) AS q FROM information_schema.PROCESSLIST WHERE 'x' <> '{M}'",
    f"SELECT '{M}' AS p FROM dual HAVING p LIKE 'a%'",
    f"SELECT '{M}' AS p, 1 AS o FROM dual ORDER BY p > 'm'",
    f"SELECT @v := '{M}' AS p",
    f"SELECT '{M}' AS p UNION ALL SELECT CAST(NULL AS BINARY)",
]


@pytest.mark.parametrize(("key", "text"), [("pg", t) for t in PG_TRANSFORMS] + [("my", t) for t in MY_TRANSFORMS])
def test_secrets_cannot_be_transformed_by_the_database(rt, key, text):
    http = rt["http"]
    r = http.post("analytics/queries/", {"name": "transform", "query_text": text, "secret_key": key})
    _assert_no_leak(r, rt["secrets"])
    if r.status_code == 201:  # only what needs the real value is refused when it runs
        r = execute(http, r.json()["data"]["slug"])
    _assert_no_leak(r, rt["secrets"], also_short=(PIN,))
    assert _refused(r, ("QueryValidationError",)), r.text


def test_secrets_as_whole_values_still_work(rt, ext_mysql):
    http = rt["http"]
    q = create_query(
        http, "Whole", f"SELECT '{S}' AS p, '{G}' AS t, '{{{{ secret.plain }}}}' AS s, "
        "{{ secret.pg.port }} AS port, '{{ secret.generic.pin }}' AS pin", secret_key="pg",
    )
    r = execute(http, q["data"]["slug"])
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"p": "[REDACTED]", "t": "[REDACTED]", "s": "[REDACTED]", "port": "[REDACTED]",
                                 "pin": "[REDACTED]"}]
    _assert_no_leak(r, rt["secrets"], also_short=(PIN,))

    q = create_query(
        http, "Equal", f"SELECT count(*) AS n FROM orders WHERE customer <> '{S}' AND status IN ('paid', '{G}')",
        secret_key="pg",
    )
    r = execute(http, q["data"]["slug"])
    assert r.status_code == 200 and r.json()["data"] == [{"n": 2}], r.text

    q = create_query(http, "MyWhole", f"SELECT '{M}' AS p, COUNT(*) AS n FROM orders WHERE customer <> '{M}'",
                     secret_key="my")
    r = execute(http, q["data"]["slug"])
    assert r.status_code == 200, r.text
    assert r.json()["data"] == [{"p": "[REDACTED]", "n": 5}]
    _assert_no_leak(r, rt["secrets"])


def test_a_secret_in_a_database_error_stays_redacted(rt):
    http = rt["http"]
    for text in (f"SELECT '{S}'::int AS p", f"SELECT count(*) AS n FROM orders WHERE id = '{S}'",
                 "SELECT count(*) AS n FROM orders WHERE id = '{{ secret.plain }}'::bigint"):
        q = create_query(http, "Err", text, secret_key="pg")
        r = execute(http, q["data"]["slug"])
        assert r.status_code == 400 and r.json()["code"] == "QueryExecutionError", r.text
        _assert_no_leak(r, rt["secrets"])


# -- values nothing could carry ---------------------------------------------------------------------


@pytest.mark.parametrize("value", ["a\ud800", ["\udfff"], {"k": "\ud83d"}])
def test_unpaired_surrogates_are_a_400_not_a_500(rt, value):
    r = execute(rt["http"], rt["pg"]["echo"], {"v": value})
    assert _refused(r), r.text


@pytest.mark.parametrize("text", ["SELECT {{ 1e309 }} AS x", "SELECT {{ -1e308 - 1e308 }} AS x", "SELECT '{{ 1e309 }}' AS x"])
def test_infinite_constants_are_a_400_not_a_500(rt, text):
    r = rt["http"].post("analytics/queries/", {"name": "inf", "query_text": text, "secret_key": "pg"})
    assert _refused(r), r.text


def test_expensive_templates_are_stopped_at_create(rt):
    text = "{% for i in [1]*999999 %}{% set x = ('a'*999999)|reverse %}{% endfor %}SELECT 1 AS x"
    started = time.monotonic()
    r = rt["http"].post("analytics/queries/", {"name": "dos", "query_text": text, "secret_key": "pg"})
    assert _refused(r), r.text
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    "text",
    ["SELECT " + "{{a}}," * 150_000 + "1", "SELECT {{ [" + "1," * 400_000 + "1]|length }} AS n", "{% set x = 1 %}" * 60_000],
    ids=["many outputs", "huge literal", "many statements"],
)
def test_templates_too_big_to_compile_are_refused_quickly(rt, text):
    started = time.monotonic()
    r = rt["http"].post("analytics/queries/", {"name": "big", "query_text": text, "secret_key": "pg"})
    assert _refused(r), r.text[:300]
    assert time.monotonic() - started < 10


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("pg", "SELECT query FROM pg_stat_activity"),
        ("pg", "SELECT substr(query, 1, 40) AS q FROM pg_catalog.pg_stat_activity WHERE state = 'active'"),
        ("pg", "SELECT statement FROM pg_cursors"),
        ("my", "SELECT INFO FROM information_schema.PROCESSLIST"),
        ("my", "SELECT SQL_TEXT FROM performance_schema.events_statements_history"),
    ],
)
def test_no_query_reads_other_executions_texts(rt, key, text):
    # A concurrent (or logged) execution's text holds its parameters and secrets as plain
    # literals, so no query may read query texts, secret or not.
    r = rt["http"].post("analytics/queries/", {"name": "texts", "query_text": text, "secret_key": key})
    assert _refused(r, ("QueryValidationError",)), r.text
